"""Reference features of the real crops, computed once per shard set (the `evaluate_reference`
rule) and shared by every evaluation of that experiment.

A seeded sample of `reference_images` training crops and all held-out crops are passed through
the FID Inception network when its weights are present (see `pipeline.metrics.weights`), else
turned into pixel features; the file says which, and why.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pipeline.config import EvalSettings
from pipeline.gan.data import load_split
from pipeline.gan.devices import select_device, use_cpu_threads
from pipeline.io import atomic_path
from pipeline.metrics import features
from pipeline.metrics.weights import check_weights, find_weights, missing_weights_message
from pipeline.seeds import Stream, stream

log = logging.getLogger(__name__)


@dataclass
class Extractor:
    """Images -> feature vectors: Inception pool features, or pixels when there are no weights."""

    kind: str  # "inception" or "pixels"
    weights: str | None = None
    standard: bool = False  # the published FID weights (comparable numbers)
    note: str | None = None
    model: torch.nn.Module | None = None

    @classmethod
    def from_settings(cls, settings: EvalSettings, device: str | torch.device = "cpu") -> Extractor:
        path = find_weights(settings.inception_weights)
        if path is None:
            note = missing_weights_message(settings.inception_weights)
            log.warning(note)
            return cls("pixels", note=note)
        standard = check_weights(path)
        return cls("inception", str(path), standard, model=features.inception(path, device))

    def __call__(self, images: torch.Tensor, desc: str = "features") -> torch.Tensor:
        if self.model is None:
            return features.pixel_features(images)
        return features.inception_features(images, self.model, desc=desc)


@dataclass(frozen=True)
class ReferenceFeatures:
    """Features of the real crops that every evaluation of a shard set compares against."""

    kind: str  # inception or pixels
    weights: str | None  # the Inception weights file, for inception features
    standard_weights: bool | None  # whether those are the FID standard's weights
    note: str | None  # why the features are pixels, when they are
    train_index: torch.Tensor  # which training crops `train` holds, in the shards' order
    train: torch.Tensor
    holdout: torch.Tensor


def reference_features(
    shards_dir: Path, *, out_path: Path, settings: EvalSettings, seed: int, threads: int = 1
) -> ReferenceFeatures:
    """The `evaluate_reference` stage: features of the real crops, to `out_path`."""
    use_cpu_threads(threads)
    extractor = Extractor.from_settings(settings, select_device("auto"))
    train, holdout = load_split(shards_dir, "train"), load_split(shards_dir, "holdout")
    rng = torch.Generator().manual_seed(stream(seed, Stream.REFERENCE))
    index = torch.randperm(len(train), generator=rng)[: settings.reference_images].sort().values
    log.info(
        "reference features (%s) of %d of %d training crops and %d held-out crops",
        extractor.kind,
        len(index),
        len(train),
        len(holdout),
    )
    result = ReferenceFeatures(
        kind=extractor.kind,
        weights=extractor.weights,
        standard_weights=extractor.standard,
        note=extractor.note,
        train_index=index,
        train=extractor(train[index], desc="reference train"),
        holdout=extractor(holdout, desc="reference holdout"),
    )
    with atomic_path(out_path) as tmp:
        torch.save(asdict(result), tmp)  # plain tensors and strings: loads with weights_only
    return result


def load_reference(path: Path) -> ReferenceFeatures:
    try:
        return ReferenceFeatures(**torch.load(path, weights_only=True))
    except Exception as err:
        raise ValueError(f"{path}: cannot read the reference features: {err}") from err
