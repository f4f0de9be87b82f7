"""What the synthetic scenes share: the boxes they report and their backgrounds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

SUPERSAMPLE = 2  # shapes are drawn at 2x and downsampled, for smooth edges


@dataclass(frozen=True)
class Shape:
    category: str
    x0: float
    y0: float
    x1: float
    y1: float


def background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    kind = rng.integers(3)
    c0, c1 = rng.integers(20, 236, size=(2, 3))
    if kind == 0:  # linear gradient at a random angle
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    elif kind == 1:  # soft stripes
        period = rng.uniform(20, 80)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        t = 0.5 + 0.5 * np.sin((xx + rng.uniform(0.3, 1.0) * yy) * 2 * np.pi / period)
    else:  # smooth noise
        small = rng.random((max(height // 32, 2), max(width // 32, 2)), dtype=np.float32)
        t = np.asarray(
            Image.fromarray((small * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC),
            dtype=np.float32,
        )
        t = t / 255.0
    rgb = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    noise = rng.normal(0, 6, size=rgb.shape)
    return Image.fromarray(np.clip(rgb + noise, 0, 255).astype(np.uint8))
