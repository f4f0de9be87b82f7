"""Generator output as pictures: uint8 images and sample grids (imports no pipeline stage)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

from pipeline.io import atomic_path


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (n, 3, h, w) -> uint8 in [0, 255]."""
    return images.detach().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def save_grid(images: torch.Tensor, path: Path | str, nrow: int, min_tile: int = 96) -> None:
    """A grid of uint8 images (n, 3, h, w), tiles enlarged (nearest) to at least `min_tile` px."""
    factor = max(1, -(-min_tile // images.shape[-1]))
    if factor > 1:
        images = images.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    grid = make_grid(images, nrow=nrow, padding=2 * factor, pad_value=255)
    with atomic_path(path) as tmp:
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(tmp, format="PNG")
