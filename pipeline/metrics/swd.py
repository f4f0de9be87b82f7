"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, progressive GAN).

For each pyramid level from the full resolution down to `min_resolution`, random 7x7 patches of
every image are taken as descriptors, normalised per channel within each set, projected on random
unit directions, sorted, and compared: the mean absolute difference of the sorted projections is
the level's distance (reported x1e3). Needs no pretrained weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SWDSettings:
    patches_per_image: int = 128
    patch_size: int = 7
    projections: int = 512  # the paper: 4 repeats x 128 directions
    min_resolution: int = 16
    seed: int = 0


def _as_float_nchw(images) -> torch.Tensor:
    """uint8/float NCHW tensors, or NHWC NumPy arrays -> float32 NCHW tensor."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if images.ndim != 4:
        raise ValueError(
            f"expected a batch of images (n, c, h, w), got shape {tuple(images.shape)}"
        )
    return images.float()


def _kernel(channels: int, device) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device) / 16
    return (k[:, None] * k[None, :]).expand(channels, 1, 5, 5).contiguous()


def _blur(x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(
        F.pad(x, (2, 2, 2, 2), mode="reflect"), _kernel(x.shape[1], x.device), groups=x.shape[1]
    )


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x * 4
    return _blur(up)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels, finest first; the last level is the low-pass residual."""
    pyramid, current = [], images
    for _ in range(levels - 1):
        down = pyr_down(current)
        pyramid.append(current - pyr_up(down))
        current = down
    pyramid.append(current)
    return pyramid


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Invert `laplacian_pyramid`."""
    image = pyramid[-1]
    for level in reversed(pyramid[:-1]):
        image = pyr_up(image) + level
    return image


def _descriptors(level: torch.Tensor, s: SWDSettings, seed: int) -> torch.Tensor:
    """Random patches of every image, normalised per channel: (n * patches, c * p * p).

    The patch positions depend only on `seed` and the shape, so both sets are sampled alike.
    """
    n, c, h, w = level.shape
    p = s.patch_size
    rng = torch.Generator().manual_seed(seed)
    ys = torch.randint(0, h - p + 1, (n, s.patches_per_image), generator=rng)
    xs = torch.randint(0, w - p + 1, (n, s.patches_per_image), generator=rng)
    offsets = torch.arange(p)
    rows = (ys[..., None] + offsets)[..., :, None]  # n, k, p, 1
    cols = (xs[..., None] + offsets)[..., None, :]  # n, k, 1, p
    batch = torch.arange(n)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[
        batch, rows.to(level.device), cols.to(level.device)
    ]  # n,k,p,p,c
    patches = patches.reshape(-1, p * p, c)
    patches = (patches - patches.mean(dim=(0, 1))) / patches.std(dim=(0, 1)).clamp_min(1e-8)
    return patches.reshape(len(patches), -1)


def _sliced(a: torch.Tensor, b: torch.Tensor, s: SWDSettings, rng: torch.Generator) -> float:
    total, chunk = 0.0, 128
    for start in range(0, s.projections, chunk):
        count = min(chunk, s.projections - start)
        dirs = torch.randn(a.shape[1], count, generator=rng).to(a.device)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # NumPy's row sort is several times faster than torch.sort on the CPU
        pa = np.sort((a @ dirs).T.contiguous().cpu().numpy(), axis=1)
        pb = np.sort((b @ dirs).T.contiguous().cpu().numpy(), axis=1)
        total += float(np.abs(pa - pb).mean()) * count
    return total / s.projections


def sliced_wasserstein(real, fake, settings: SWDSettings = SWDSettings()) -> dict[str, float]:
    """SWD (x1e3) per pyramid level, keyed `swd_{resolution}`, and their mean `swd_mean`."""
    a, b = _as_float_nchw(real), _as_float_nchw(fake)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("sliced_wasserstein needs two non-empty image sets")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"image sets differ in shape: {tuple(a.shape[1:])} vs {tuple(b.shape[1:])}"
        )
    size = a.shape[-1]
    if min(a.shape[-2:]) < settings.min_resolution:
        raise ValueError(
            f"images of {size} px are smaller than min_resolution {settings.min_resolution}"
        )
    levels = 1 + int(np.log2(min(a.shape[-2:]) / settings.min_resolution))
    n = min(len(a), len(b))
    rng = torch.Generator().manual_seed(settings.seed)
    a = a[torch.randperm(len(a), generator=rng)[:n]] if len(a) > n else a
    b = b[torch.randperm(len(b), generator=rng)[:n]] if len(b) > n else b
    result = {}
    for level_a, level_b in zip(
        laplacian_pyramid(a, levels), laplacian_pyramid(b, levels), strict=True
    ):
        seed = settings.seed + level_a.shape[-1]
        da, db = _descriptors(level_a, settings, seed), _descriptors(level_b, settings, seed)
        dirs = torch.Generator().manual_seed(settings.seed + 7919 * level_a.shape[-1])
        result[f"swd_{level_a.shape[-1]}"] = _sliced(da, db, settings, dirs) * 1e3
    result["swd_mean"] = float(np.mean(list(result.values())))
    return result
