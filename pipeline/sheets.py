"""Contact sheets: labelled grids of image files (Pillow only, no torch), for any stage to show."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.io import atomic_path


def contact_sheet(
    images: list[Path],
    labels: list[str],
    path: Path | str,
    title: str,
    columns: int = 8,
    tile: int = 96,
) -> None:
    """A labelled grid of image files (e.g. rejected crops), each tile `tile` px with its label."""
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


def pairs_sheet(
    left: Sequence[np.ndarray],
    right: Sequence[np.ndarray],
    captions: list[str],
    path: Path | str,
    title: str,
    columns: int = 4,
    tile: int = 96,
) -> None:
    """Pairs of uint8 CHW images (numpy, or CPU tensors) side by side (e.g. a sample and its
    nearest training crop)."""
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
            pixels = Image.fromarray(np.asarray(image).transpose(1, 2, 0))
            sheet.paste(pixels.resize((tile, tile), Image.NEAREST), (x + offset, y))
        draw.text((x, y + tile + 1), text, fill=(80, 0, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
