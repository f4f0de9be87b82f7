"""Small builders shared by the unit tests: pictures with known content, boxes, instances JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.boxes import normalise
from pipeline.config import CropSettings
from pipeline.crops import extract_crops

BLUE, RED = (20, 40, 220), (230, 20, 20)


def picture(
    path: Path,
    size: tuple[int, int] = (600, 400),
    square: tuple[int, int, int, int] = (200, 100, 300, 200),
    fmt: str = "PNG",
    background=BLUE,
    colour=RED,
    quality: int = 95,
) -> Path:
    """A flat `background` with a flat `colour` rectangle at `square` (x0, y0, x1, y1), saved."""
    image = Image.new("RGB", size, background)
    image.paste(colour, square)
    image.save(path, format=fmt, quality=quality)
    return path


def gradient_picture(path: Path, size: tuple[int, int], square, fmt: str = "JPEG") -> Path:
    """A smooth two-way gradient with a red rectangle: detail that a reduced decode must keep."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([xx / width * 200, yy / height * 200, 255 - xx / width * 120], axis=-1)
    image = Image.fromarray(rgb.astype(np.uint8))
    image.paste(RED, square)
    image.save(path, format=fmt, quality=92)
    return path


def box(path: Path, box_id: str, x0, y0, x1, y1, width=600, height=400, **extra) -> dict:
    """One row of the boxes table for an image at `path` of the given size."""
    return {
        "box_id": box_id,
        "source": "test",
        "image_id": Path(path).stem,
        "image_path": str(path),
        "image_width": width,
        "image_height": height,
        "category": "thing",
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "split": "train",
        **extra,
    }


def run_crops(
    root: Path,
    rows: list[dict],
    settings: CropSettings,
    size: int = 32,
    workers: int = 1,
    name: str = "out",
    **options,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The crop stage on `rows`, with everything under `root / name`; `options` are
    extract_crops' keyword arguments (exif, bad_images)."""
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    normalise(rows).to_parquet(out / "boxes.parquet")
    return extract_crops(
        out / "boxes.parquet",
        crops_dir=out / "crops",
        crops_table=out / "crops.parquet",
        rejects_table=out / "rejects.parquet",
        settings=settings,
        image_size=size,
        workers=workers,
        **options,
    )


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


# --- COCO instances JSON ------------------------------------------------------------------------

IMAGES = [
    {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
    {"id": 2, "file_name": "sub/b.jpg", "width": 300, "height": 200},
    {"id": 3, "file_name": "c.jpg", "width": 100, "height": 100},
]
ANNOTATIONS = [
    # inside the image: x1 = x + w, y1 = y + h exactly
    {"id": 10, "image_id": 1, "category_id": 25, "bbox": [10.5, 20.0, 100.0, 50.25], "iscrowd": 0},
    # overflows right and top: clipped to [250, 0, 300, 55]
    {"id": 11, "image_id": 2, "category_id": 25, "bbox": [250.0, -5.0, 100.0, 60.0], "iscrowd": 1},
    # another category, not asked for in most tests
    {"id": 12, "image_id": 2, "category_id": 24, "bbox": [0, 0, 10, 10], "iscrowd": 0},
    # overflows left and bottom, integers, no iscrowd key: clipped to [0, 40, 30, 100]
    {"id": 13, "image_id": 3, "category_id": 25, "bbox": [-20, 40, 50, 90]},
    # a second giraffe in image 1
    {"id": 14, "image_id": 1, "category_id": 25, "bbox": [600, 400, 40, 80], "iscrowd": 0},
]
CATEGORIES = [
    {"id": 25, "name": "giraffe", "supercategory": "animal"},
    {"id": 24, "name": "Zebra", "supercategory": "animal"},
    {"id": 1, "name": "person", "supercategory": "person"},
]


def instances(images=None, annotations=None, categories=None, **extra) -> dict:
    """A small instances dict; any part may be replaced."""
    return {
        "images": IMAGES if images is None else images,
        "annotations": ANNOTATIONS if annotations is None else annotations,
        "categories": CATEGORIES if categories is None else categories,
        **extra,
    }


def as_loaded(data: dict) -> dict:
    """What load_instances keeps of `data`: images and categories whole, annotations' box fields
    (other top-level keys, such as info and licenses, are dropped)."""
    keys = ("id", "image_id", "category_id", "bbox")
    annotations = [
        {**{k: a.get(k) for k in keys}, "iscrowd": a.get("iscrowd", 0)} for a in data["annotations"]
    ]
    return {"images": data["images"], "annotations": annotations, "categories": data["categories"]}


def write_instances(path: Path, data: dict | None = None, **parts) -> Path:
    path.write_text(json.dumps(instances(**parts) if data is None else data))
    return path
