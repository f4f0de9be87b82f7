"""One home per default: config/schema.yaml; the settings dataclasses take theirs from it.

`pipeline.schema.schema_defaults` gives each settings class the defaults of its schema block at
import, and refuses a class and a block that disagree on their keys; these tests show that it does,
and that every settings class the workflow builds is tied to its block.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import operator

import pytest
import yaml

from pipeline.config import CropSettings, EvalSettings, ShardSettings, TrainSettings
from pipeline.download import DownloadSettings
from pipeline.filters import FilterSettings
from pipeline.gan.models import ModelConfig
from pipeline.image_checks import BadImageSettings
from pipeline.records import BadRecordSettings
from pipeline.schema import SchemaMismatch, check_choices, schema_defaults
from pipeline.sources.celeba import CelebASettings
from pipeline.sources.coco import CocoSettings
from pipeline.sources.coco_format import CocoFormatSettings
from pipeline.sources.ffhq import FFHQSettings
from pipeline.sources.openimages import OpenImagesSettings
from pipeline.sources.synthetic import SyntheticSettings
from pipeline.sources.visual_genome import VisualGenomeSettings
from tests.conftest import REPO

SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
TRAIN = "#/$defs/experiment/properties/train"
SETTINGS = {
    CropSettings: "#/$defs/experiment/properties/crops",
    FilterSettings: "#/$defs/experiment/properties/filters",
    ShardSettings: "#/$defs/experiment/properties/shards",
    TrainSettings: TRAIN,
    EvalSettings: "#/$defs/experiment/properties/evaluate",
    ModelConfig: TRAIN,
    DownloadSettings: "#/properties/download",
    BadRecordSettings: "#/properties/bad_records",
    BadImageSettings: "#/properties/bad_images",
    SyntheticSettings: "#/$defs/synthetic",
    CocoSettings: "#/properties/sources/properties/coco",
    VisualGenomeSettings: "#/properties/sources/properties/visual_genome",
    OpenImagesSettings: "#/properties/sources/properties/openimages",
    CelebASettings: "#/properties/sources/properties/celeba",
    FFHQSettings: "#/properties/sources/properties/ffhq",
    CocoFormatSettings: "#/$defs/coco_format",
}


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_settings_class_takes_its_defaults_from_its_schema_block(cls):
    assert getattr(cls, "__schema_block__", None) == SETTINGS[cls]


def test_a_settings_class_and_its_block_that_disagree_fail_at_import():
    with pytest.raises(SchemaMismatch, match=r"schema keys without a field \['shard_size'\]"):

        @dataclasses.dataclass(frozen=True)
        @schema_defaults("#/$defs/experiment/properties/shards")
        class OneFieldShort:
            holdout_fraction: float

    with pytest.raises(SchemaMismatch, match=r"without a schema default \['shard_count'\]"):

        @dataclasses.dataclass(frozen=True)
        @schema_defaults("#/$defs/experiment/properties/shards")
        class OneFieldTooMany:
            holdout_fraction: float
            shard_size: int
            shard_count: int


def test_defaults_come_from_the_schema_and_are_not_shared_between_instances():
    train = SCHEMA["$defs"]["experiment"]["properties"]["train"]["properties"]
    assert TrainSettings().steps == train["steps"]["default"]
    assert TrainSettings().diffaugment == tuple(train["diffaugment"]["default"])
    assert ModelConfig().ngf == train["ngf"]["default"]
    one, two = CelebASettings(), CelebASettings()
    one.files["extra.txt"] = {}
    assert "extra.txt" not in two.files  # a dict default is copied, not shared


def leaves(block: dict, path: tuple = ()):
    for key, value in block.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key)


def resolved(config: dict) -> dict:
    """The config as the workflow sees it: validated, the schema's defaults filled in."""
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(REPO / "config" / "schema.yaml"), set_default=True)
    return config


def test_the_config_sets_only_what_differs_from_the_schema():
    """config/config.yaml says "set here only what differs": a key whose removal leaves the
    resolved config unchanged repeats a default (and would hide a change of it)."""
    from snakemake.exceptions import WorkflowError

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    full = resolved(config)
    repeated = []
    for path in leaves(config):
        trimmed = copy.deepcopy(config)
        parent = functools.reduce(operator.getitem, path[:-1], trimmed)
        del parent[path[-1]]
        try:
            same = resolved(trimmed) == full
        except WorkflowError:  # invalid without it: needed (a named dataset's format)
            same = False
        if same:
            repeated.append(".".join(path))
    assert repeated == [], f"config.yaml repeats the schema's defaults: {repeated}"


NOT_RECIPE = {  # a run's length, network size, hardware and bookkeeping: the learning tests' own
    "steps", "batch_size", "nz", "ngf", "ndf", "checkpoint_every", "sample_every", "log_every",
    "eval_every", "eval_images", "alarm_accuracy", "alarm_steps", "device", "gpus", "amp",
    "channels_last", "compile",
}  # fmt: skip
# every other train setting makes the recipe, a setting added later too
RECIPE = tuple(f.name for f in dataclasses.fields(TrainSettings) if f.name not in NOT_RECIPE)


def test_every_experiment_trains_a_recipe_the_learning_tests_train():
    """The learning tests train "the recipes the experiments ship": an experiment whose recipe
    is none of them (a changed default, a new experiment) must come with a learning test."""
    from pipeline.config import from_dict
    from tests.test_learning import RUN, SHIPPED

    def recipe(settings: TrainSettings) -> dict:
        return {key: getattr(settings, key) for key in RECIPE}

    tested = {name: recipe(dataclasses.replace(RUN, **extra)) for name, extra in SHIPPED.items()}
    config = resolved(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    for name, experiment in config["experiments"].items():
        shipped = recipe(from_dict(TrainSettings, experiment["train"]))
        assert shipped in tested.values(), f"{name} trains an untested recipe: {shipped}"


def test_the_losses_the_schema_offers_are_checked_against_the_trainers_at_import():
    from pipeline.gan.losses import LOSSES

    check_choices(TRAIN, "loss", LOSSES)
    with pytest.raises(SchemaMismatch, match="offers"):
        check_choices(TRAIN, "loss", (*LOSSES, "relativistic"))
