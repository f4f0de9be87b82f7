"""Stage settings as dataclasses, built from the config that Snakemake validated.

The workflow validates config/config.yaml against config/schema.yaml once (defaults come from the
schema) and hands each rule the slice it depends on as `params`. This module turns those plain
dicts into typed settings; an unknown key is an error here too, so a typo never passes silently.
Their defaults are the schema's (`pipeline.schema`), for code that builds them outside the workflow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.schema import EXPERIMENT, schema_defaults

T = TypeVar("T")


@dataclass(frozen=True)
@schema_defaults(f"{EXPERIMENT}/crops")
class CropSettings:
    margin: float
    square: str
    pad_mode: str
    min_box_side: float
    max_upscale: float
    skip_crowd: bool
    jpeg_draft: bool
    max_image_pixels: int


@dataclass(frozen=True)
@schema_defaults(f"{EXPERIMENT}/shards")
class ShardSettings:
    holdout_fraction: float
    shard_size: int


@dataclass(frozen=True)
@schema_defaults(f"{EXPERIMENT}/train")
class TrainSettings:
    steps: int
    batch_size: int
    nz: int
    ngf: int
    ndf: int
    lr_g: float
    lr_d: float
    beta1: float
    beta2: float
    hflip: bool
    checkpoint_every: int
    sample_every: int
    log_every: int
    device: str
    loss: str
    label_smoothing: float
    label_noise: float
    d_norm: str
    n_critic: int
    gp_weight: float
    r1_gamma: float
    ema_decay: float
    diffaugment: tuple[str, ...]
    alarm_accuracy: float
    alarm_steps: int
    minibatch_std: bool
    replay: float
    replay_size: int
    amp: str
    channels_last: str
    kernel: int
    upsample: str
    condition: str
    gpus: int
    compile: bool
    eval_every: int
    eval_images: int


@dataclass(frozen=True)
@schema_defaults(f"{EXPERIMENT}/evaluate")
class EvalSettings:
    num_samples: int
    grid_size: int
    inception_weights: str | None
    reference_images: int
    kid_subsets: int
    kid_subset_size: int
    pr_neighbours: int
    copy_quantile: float
    copy_alarm: float
    nearest_count: int
    interpolation_rows: int
    checkpoint: str


def on_cpu(train: dict[str, Any]) -> dict[str, Any]:
    """A train block on a machine without GPUs (the top-level `cpu_only`): no GPU asked, none used."""
    return {**train, "gpus": 0, "device": "cpu"}


def from_dict(cls: type[T], values: dict[str, Any] | None) -> T:
    """Build settings `cls` from a dict; unknown keys raise, lists become tuples."""
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown setting(s) {unknown}; known: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able values (settings dicts, dataclasses, strings)."""
    norm = [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts]
    text = json.dumps(norm, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
