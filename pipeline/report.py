"""Pictures a user looks at: sample grids and training curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


def contact_sheet(
    images: list[Path],
    labels: list[str],
    path: Path | str,
    title: str,
    columns: int = 8,
    tile: int = 96,
) -> None:
    """A labelled grid of image files (e.g. rejected crops), each tile `tile` px with its label."""
    from PIL import ImageDraw

    rows = max(1, -(-len(images) // columns))
    header, caption = 28, 14
    sheet = Image.new(
        "RGB", (columns * (tile + 4) + 4, header + rows * (tile + caption + 4) + 4), "white"
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 8), title, fill=(0, 0, 0))
    for i, (image_path, label) in enumerate(zip(images, labels, strict=True)):
        x = 4 + (i % columns) * (tile + 4)
        y = header + (i // columns) * (tile + caption + 4)
        with Image.open(image_path) as image:
            sheet.paste(image.convert("RGB").resize((tile, tile), Image.NEAREST), (x, y))
        draw.text((x, y + tile + 1), label[: tile // 6], fill=(80, 0, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def read_stats(path: Path | str) -> list[dict]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def plot_losses(stats: list[dict], path: Path | str, title: str = "") -> None:
    """Loss curves of D and G, and D's mean output on real and fake images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([s["step"] for s in stats])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for key, label in (("loss_d", "D loss"), ("loss_g", "G loss")):
        top.plot(steps, [s[key] for s in stats], label=label)
    top.set_ylabel("loss")
    top.legend()
    top.set_title(title)
    for key, label in (("d_real", "D(x) real"), ("d_fake", "D(G(z)) fake")):
        bottom.plot(steps, [s[key] for s in stats], label=label)
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("step")
    bottom.set_ylabel("mean D output")
    bottom.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
