"""What SWD cannot see: the colours and the layout of two image sets, in 0..255 levels.

SWD compares Laplacian patches after normalising each set per channel (as progressive GAN's
reference does), so it is blind to a set's brightness, contrast and colour order: washed-out,
inverted or BGR copies of the real crops score like the real crops. Reported beside it:

- `colour`: the sliced Wasserstein distance between the two sets' pixel colours, the joint (r, g,
  b) distribution of every pixel (at most `pixels` per set, seeded), unnormalised, projected on
  `projections` random directions: brightness, contrast, saturation, channel order.
- `layout`: the mean absolute difference between the two sets' mean images: where things are on
  average (a centred object, a sky at the top), so a flipped or shifted set scores.

Both are 0 for identical sets, deterministic for a seed, and need no pretrained weights.
"""

from __future__ import annotations

import numpy as np
import torch

PROJECTIONS = 64
PIXELS = 200_000


def _as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (n, 3, h, w) in 0..255, or floats in -1..1, as float 0..255 on the CPU."""
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        return images.float()
    return images.float().add(1).mul(127.5).clamp(0, 255)


def _colours(images: torch.Tensor, count: int, rng: torch.Generator) -> torch.Tensor:
    """`count` pixels' (r, g, b), drawn from every image alike, (count, 3)."""
    flat = images.permute(0, 2, 3, 1).reshape(-1, images.shape[1])
    if len(flat) <= count:
        return flat
    return flat[torch.randperm(len(flat), generator=rng)[:count]]


def colour_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    seed: int = 0,
    projections: int = PROJECTIONS,
    pixels: int = PIXELS,
) -> float:
    """Sliced Wasserstein-1 between the sets' pixel colours, in 0..255 levels."""
    rng = torch.Generator().manual_seed(seed)
    a, b = _as_float(real), _as_float(fake)
    count = min(pixels, a[:, 0].numel(), b[:, 0].numel())
    a, b = _colours(a, count, rng), _colours(b, count, rng)
    dirs = torch.randn(a.shape[1], projections, generator=rng)
    dirs /= dirs.norm(dim=0, keepdim=True)
    pa, pb = np.sort((a @ dirs).numpy(), axis=0), np.sort((b @ dirs).numpy(), axis=0)
    return float(np.abs(pa - pb).mean())


def layout_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Mean absolute difference of the sets' mean images, in 0..255 levels."""
    return float((_as_float(real).mean(0) - _as_float(fake).mean(0)).abs().mean())


def colour_metrics(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> dict[str, float]:
    return {
        "colour": round(colour_distance(real, fake, seed), 4),
        "layout": round(layout_distance(real, fake), 4),
    }
