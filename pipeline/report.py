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


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    pyplot().close(fig)


def plot_losses(stats: list[dict], path: Path | str, title: str = "") -> None:
    """Loss curves of D and G, D's mean output, and how often D is right, on real and fake."""
    plt = pyplot()
    steps = np.array([s["step"] for s in stats])
    fig, (top, bottom, accuracy) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for key, label in (("loss_d", "D loss"), ("loss_g", "G loss")):
        top.plot(steps, [s[key] for s in stats], label=label)
    top.set_ylabel("loss")
    top.legend()
    top.set_title(title)
    for key, label in (("d_real", "D(x) real"), ("d_fake", "D(G(z)) fake")):
        bottom.plot(steps, [s[key] for s in stats], label=label)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("mean D output")
    bottom.legend()
    for key, label in (("acc_real", "D right on real"), ("acc_fake", "D right on fake")):
        if stats and key in stats[0]:
            accuracy.plot(steps, [s[key] for s in stats], label=label)
    accuracy.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    accuracy.set_ylim(0, 1.02)
    accuracy.set_xlabel("step")
    accuracy.set_ylabel("D accuracy")
    accuracy.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_metric_curve(evals: list[dict], path: Path | str, title: str = "") -> None:
    """SWD of generated against held-out crops over training steps (lower is better)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if evals:
        ax.plot([e["step"] for e in evals], [e["swd"] for e in evals], marker="o")
    else:
        ax.text(0.5, 0.5, "no measurement during training (train.eval_every: 0)", ha="center")
    ax.set_xlabel("step")
    ax.set_ylabel("SWD x1e3 (lower is better)")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_distances(
    generated, held_out, threshold: float | None, path: Path | str, title: str = ""
) -> None:
    """Histograms of distances to the nearest training crop: generated vs held-out real crops."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    bins = np.histogram_bin_edges(np.concatenate([generated, held_out]), bins=40)
    if len(held_out):
        ax.hist(held_out, bins=bins, alpha=0.6, density=True, label="held-out real crops")
    ax.hist(generated, bins=bins, alpha=0.6, density=True, label="generated")
    if threshold is not None:
        ax.axvline(threshold, color="red", linestyle="--", linewidth=1, label="copy threshold")
    ax.set_xlabel("distance to the nearest training crop (feature space)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def pairs_sheet(
    left: torch.Tensor,
    right: torch.Tensor,
    captions: list[str],
    path: Path | str,
    title: str,
    columns: int = 4,
    tile: int = 96,
) -> None:
    """Pairs of uint8 images side by side (e.g. a sample and its nearest training crop)."""
    from PIL import ImageDraw

    rows = max(1, -(-len(left) // columns))
    pair_w, header, caption = 2 * tile + 2, 28, 14
    sheet = Image.new(
        "RGB", (columns * (pair_w + 10) + 6, header + rows * (tile + caption + 8)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 8), title, fill=(0, 0, 0))
    for i, (a, b, text) in enumerate(zip(left, right, captions, strict=True)):
        x = 6 + (i % columns) * (pair_w + 10)
        y = header + (i // columns) * (tile + caption + 8)
        for offset, image in ((0, a), (tile + 2, b)):
            pixels = Image.fromarray(image.permute(1, 2, 0).numpy())
            sheet.paste(pixels.resize((tile, tile), Image.NEAREST), (x + offset, y))
        draw.text((x, y + tile + 1), text, fill=(80, 0, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
