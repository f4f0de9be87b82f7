"""Contact sheets: labelled grids of image files (Pillow only, no torch), for any stage to show."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.io import atomic_path

HEADER, CAPTION = 28, 14  # px: the title above the grid, the caption under each tile


def _blank(width: int, height: int, title: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A white sheet with `title` at the top, and its drawing context."""
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 8), title, fill=(0, 0, 0))
    return sheet, draw


def _save(sheet: Image.Image, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def contact_sheet(
    images: list[Path],
    *,
    labels: list[str],
    path: Path | str,
    title: str,
    columns: int = 8,
    tile: int = 96,
) -> None:
    """A labelled grid of image files (e.g. rejected crops), each tile `tile` px with its label."""
    rows = max(1, -(-len(images) // columns))
    sheet, draw = _blank(columns * (tile + 4) + 4, HEADER + rows * (tile + CAPTION + 4) + 4, title)
    for i, (image_path, label) in enumerate(zip(images, labels, strict=True)):
        x = 4 + (i % columns) * (tile + 4)
        y = HEADER + (i // columns) * (tile + CAPTION + 4)
        with Image.open(image_path) as image:
            sheet.paste(image.convert("RGB").resize((tile, tile), Image.NEAREST), (x, y))
        draw.text((x, y + tile + 1), label[: tile // 6], fill=(80, 0, 0))
    _save(sheet, path)


def pairs_sheet(
    left: Sequence[np.ndarray],
    *,
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
    pair_w = 2 * tile + 2
    sheet, draw = _blank(columns * (pair_w + 10) + 6, HEADER + rows * (tile + CAPTION + 8), title)
    for i, (a, b, text) in enumerate(zip(left, right, captions, strict=True)):
        x = 6 + (i % columns) * (pair_w + 10)
        y = HEADER + (i // columns) * (tile + CAPTION + 8)
        for offset, image in ((0, a), (tile + 2, b)):
            pixels = Image.fromarray(np.asarray(image).transpose(1, 2, 0))
            sheet.paste(pixels.resize((tile, tile), Image.NEAREST), (x + offset, y))
        draw.text((x, y + tile + 1), text, fill=(80, 0, 0))
    _save(sheet, path)
