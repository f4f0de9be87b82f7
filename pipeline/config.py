"""Stage settings as dataclasses, built from the config that Snakemake validated.

The workflow validates config/config.yaml against config/schema.yaml once (defaults come from the
schema) and hands each rule the slice it depends on as `params`. This module turns those plain
dicts into typed settings; an unknown key is an error here too, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CropSettings:
    margin: float = 0.1
    square: str = "pad"
    pad_mode: str = "reflect"
    min_box_side: float = 32
    max_upscale: float = 4.0
    skip_crowd: bool = True
    jpeg_draft: bool = True
    max_image_pixels: int = 178_956_970


@dataclass(frozen=True)
class ShardSettings:
    holdout_fraction: float = 0.1
    shard_size: int = 8192


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 20000
    batch_size: int = 64
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    hflip: bool = True
    checkpoint_every: int = 1000
    sample_every: int = 1000
    log_every: int = 50
    device: str = "auto"
    loss: str = "bce"
    label_smoothing: float = 0.0
    label_noise: float = 0.0
    d_norm: str = "batch"
    n_critic: int = 1
    gp_weight: float = 10.0
    r1_gamma: float = 0.0
    ema_decay: float = 0.0
    diffaugment: tuple[str, ...] = ()
    alarm_accuracy: float = 0.99
    alarm_steps: int = 500
    minibatch_std: bool = False
    replay: float = 0.0
    replay_size: int = 1024
    amp: str = "auto"
    channels_last: str = "auto"
    kernel: int = 4
    condition: str = "none"
    gpus: int = 1
    compile: bool = False
    eval_every: int = 1000
    eval_images: int = 256


@dataclass(frozen=True)
class EvalSettings:
    num_samples: int = 2048
    grid_size: int = 8
    inception_weights: str | None = None
    reference_images: int = 10000
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_neighbours: int = 3
    copy_quantile: float = 0.05
    copy_alarm: float = 3.0
    nearest_count: int = 16
    interpolation_rows: int = 6
    checkpoint: str = "best"


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
