"""Feature vectors of images: the standard FID Inception network, or plain pixels.

The Inception network is the TensorFlow FID graph ported to PyTorch (torch-fidelity's
`FeatureExtractorInceptionV3`, 2048-d pool features, uint8 input resized to 299 px as TF did). Its
weights are never downloaded here: they are read from `evaluate.inception_weights` in the config or
from the torch hub cache, where torch-fidelity and torchvision put what they download. Without
them FID and KID are skipped with a message that says which file to place where; precision/recall
and the memorisation check then fall back to pixel features.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from pipeline.metrics.weights import check_weights
from pipeline.progress import progress

log = logging.getLogger(__name__)


def inception(path: Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    check_weights(path)
    model = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
    )
    return model.to(device).eval()


@torch.no_grad()
def inception_features(
    images: torch.Tensor, model: torch.nn.Module, batch: int = 64, desc: str = "inception"
) -> torch.Tensor:
    """2048-d features of uint8 images (n, 3, h, w), as float32 on the CPU."""
    device = next(model.parameters()).device
    out = []
    for start in progress(range(0, len(images), batch), desc=desc, unit="batch"):
        (features,) = model(images[start : start + batch].to(device))
        out.append(features.float().cpu())
    return torch.cat(out) if out else torch.empty((0, 2048))


def pixel_features(images: torch.Tensor, side: int = 32) -> torch.Tensor:
    """Images shrunk (area average) to at most `side` px, flattened, in [0, 1]."""
    x = images.float() / 255
    if x.shape[-1] > side:
        x = F.interpolate(x, size=(side, side), mode="area")
    return x.flatten(1)
