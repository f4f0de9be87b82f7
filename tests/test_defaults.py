"""One home per default: config/schema.yaml holds them, and every settings dataclass agrees.

The workflow fills defaults from the schema; the dataclasses are what code outside the workflow
(tests, benchmarks, `python -m pipeline.gan`) gets. A default changed in one place and not the
other would make the two disagree silently: this test fails on any difference.
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
from pipeline.records import BadRecordSettings
from pipeline.sources.celeba import CelebASettings
from pipeline.sources.coco import CocoSettings
from pipeline.sources.coco_format import CocoFormatSettings
from pipeline.sources.ffhq import FFHQSettings
from pipeline.sources.openimages import OpenImagesSettings
from pipeline.sources.synthetic import SyntheticSettings
from pipeline.sources.visual_genome import VisualGenomeSettings
from tests.conftest import REPO

SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
TOP, EXPERIMENT = SCHEMA["properties"], SCHEMA["$defs"]["experiment"]["properties"]
SOURCES = TOP["sources"]["properties"]

# settings class -> its block of the schema, and the fields that only code sets (not config)
BLOCKS = [
    (CropSettings, EXPERIMENT["crops"], set()),
    (FilterSettings, EXPERIMENT["filters"], set()),
    (ShardSettings, EXPERIMENT["shards"], set()),
    (TrainSettings, EXPERIMENT["train"], set()),
    (EvalSettings, EXPERIMENT["evaluate"], set()),
    # backoff and allowed_hosts are set by the sources from their own URLs, never by the config
    (DownloadSettings, TOP["download"], {"backoff", "allowed_hosts"}),
    (BadRecordSettings, TOP["bad_records"], set()),
    (SyntheticSettings, SCHEMA["$defs"]["synthetic"], set()),
    (CocoSettings, SOURCES["coco"], set()),
    (VisualGenomeSettings, SOURCES["visual_genome"], set()),
    (OpenImagesSettings, SOURCES["openimages"], set()),
    (CelebASettings, SOURCES["celeba"], set()),
    (FFHQSettings, SOURCES["ffhq"], set()),
    (CocoFormatSettings, SCHEMA["$defs"]["coco_format"], {"annotations", "format"}),
]


def default_of(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def as_config(value):
    """A dataclass value as the config would hold it (tuples are lists)."""
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize(
    ("cls", "block", "code_only"), BLOCKS, ids=lambda v: getattr(v, "__name__", "")
)
def test_every_dataclass_default_equals_the_schema_default(cls, block, code_only):
    properties = block["properties"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(fields) - code_only == set(properties) - code_only, (
        f"{cls.__name__}: fields and schema keys differ"
    )
    for name, prop in properties.items():
        if name in code_only:
            continue
        assert "default" in prop, f"{cls.__name__}.{name}: the schema gives no default"
        assert as_config(default_of(fields[name])) == prop["default"], f"{cls.__name__}.{name}"


def leaves(block: dict, path: tuple = ()):
    for key, value in block.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key)


def test_the_config_sets_only_what_differs_from_the_schema():
    """config/config.yaml says "set here only what differs": a key whose removal leaves the
    resolved config unchanged repeats a default (and would hide a change of it)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    def resolved(config: dict) -> dict:
        config = copy.deepcopy(config)
        validate(config, str(REPO / "config" / "schema.yaml"), set_default=True)
        return config

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


def test_the_losses_the_schema_offers_are_the_ones_the_trainer_has():
    from pipeline.gan.losses import LOSSES

    assert EXPERIMENT["train"]["properties"]["loss"]["enum"] == list(LOSSES)
