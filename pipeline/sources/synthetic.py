"""A small dataset in COCO format, generated offline and deterministically from a seed.

JPEG photos of varied sizes and aspect ratios, each with a few boxed shapes (discs, squares,
triangles) in varied colours on varied backgrounds (gradients, stripes, noise): the demo's data.
The category `creature` draws instead scenes of articulated, textured animals in clutter
(`pipeline.sources.synthetic_creatures`), a proxy as hard for a GAN as animals in photos. It is
read by the same code path that reads real COCO (`pipeline.sources.coco.read_boxes`).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.io import write_bytes, write_json
from pipeline.progress import progress
from pipeline.schema import schema_defaults
from pipeline.sources import synthetic_creatures
from pipeline.sources.synthetic_drawing import SUPERSAMPLE, Shape, background

log = logging.getLogger(__name__)


@dataclass(frozen=True)
@schema_defaults("#/$defs/synthetic")
class SyntheticSettings:
    format: str  # what a named dataset of this kind says it is
    seed: int
    num_images: int
    categories: tuple[str, ...]
    min_side: int
    max_side: int
    max_objects: int
    jpeg_quality: int
    exif: str  # boxes refer to the image as displayed (apply) or stored


CATEGORY_IDS = {"disc": 1, "square": 2, "triangle": 3, "creature": 4}
SHAPES = ("disc", "square", "triangle")


def _place(
    rng: np.random.Generator, width: int, height: int, taken: list[tuple[float, float, float]]
) -> tuple[float, float, float]:
    """Centre and side of a shape: mostly inside the image and apart from the others, some cut
    by the border or overlapping (as objects in photos are)."""
    for _ in range(20):
        side = rng.uniform(0.18, 0.5) * min(width, height)
        inside = rng.random() < 0.85
        lo = side / 2 if inside else side * 0.2
        cx, cy = rng.uniform(lo, width - lo), rng.uniform(lo, height - lo)
        apart = all(
            abs(cx - x) > (side + s) / 2 or abs(cy - y) > (side + s) / 2 for x, y, s in taken
        )
        if apart or rng.random() < 0.1:
            break
    return cx, cy, side


def _draw(
    draw: ImageDraw.ImageDraw, category: str, cx: float, cy: float, side: float, fill
) -> None:
    s, h = SUPERSAMPLE, side / 2
    if category == "disc":
        draw.ellipse([(cx - h) * s, (cy - h) * s, (cx + h) * s, (cy + h) * s], fill=fill)
    elif category == "square":
        draw.rectangle([(cx - h) * s, (cy - h) * s, (cx + h) * s, (cy + h) * s], fill=fill)
    else:
        points = [(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
        draw.polygon([(x * s, y * s) for x, y in points], fill=fill)


def render_image(
    rng: np.random.Generator, width: int, height: int, categories: tuple[str, ...], max_objects: int
) -> tuple[Image.Image, list[Shape]]:
    """One image and its shapes' boxes (clipped to the image)."""
    base = background(rng, width, height)
    layer = Image.new("RGBA", (width * SUPERSAMPLE, height * SUPERSAMPLE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    shapes, taken = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        category = categories[int(rng.integers(len(categories)))]
        cx, cy, side = _place(rng, width, height, taken)
        taken.append((cx, cy, side))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3)) + (255,)
        _draw(draw, category, cx, cy, side, colour)
        h = side / 2
        x0, y0 = max(cx - h, 0.0), max(cy - h, 0.0)
        x1, y1 = min(cx + h, float(width)), min(cy + h, float(height))
        shapes.append(Shape(category, round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)))
    layer = layer.resize((width, height), Image.LANCZOS).filter(ImageFilter.SMOOTH)
    base.paste(layer, (0, 0), layer)
    return base, shapes


def render_scene(
    rng: np.random.Generator, width: int, height: int, settings: SyntheticSettings
) -> tuple[Image.Image, list[Shape]]:
    """One image: a scene of creatures (as often as `creature` is among the categories, always
    when it is the only one) or of shapes. Without creatures, the random draws are the shapes'
    alone, so the demo's data does not change."""
    shapes = tuple(c for c in settings.categories if c in SHAPES)
    if "creature" in settings.categories and (
        not shapes or rng.integers(len(settings.categories)) == 0
    ):
        return synthetic_creatures.render_image(rng, width, height, settings.max_objects)
    return render_image(rng, width, height, shapes, settings.max_objects)


def _image_size(rng: np.random.Generator, settings: SyntheticSettings) -> tuple[int, int]:
    long_side = int(rng.integers(settings.min_side, settings.max_side + 1))
    aspect = rng.choice([1.0, 4 / 3, 3 / 2, 16 / 9])
    short_side = max(int(long_side / aspect), 64)
    return (long_side, short_side) if rng.random() < 0.7 else (short_side, long_side)


def generate(settings: SyntheticSettings, *, images_dir: Path, annotations: Path) -> dict:
    """Write the JPEGs under `images_dir` and a COCO instances JSON at `annotations`."""
    unknown = set(settings.categories) - set(CATEGORY_IDS)
    if unknown:
        raise ValueError(
            f"synthetic: unknown categories {sorted(unknown)}; known {sorted(CATEGORY_IDS)}"
        )
    rng = np.random.default_rng(settings.seed)
    images, anns = [], []
    for index in progress(range(settings.num_images), desc="synthetic images", unit="img"):
        width, height = _image_size(rng, settings)
        image, shapes = render_scene(rng, width, height, settings)
        file_name = f"{index:06d}.jpg"
        write_bytes(_jpeg_bytes(image, settings.jpeg_quality), images_dir / file_name)
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for shape in shapes:
            w, h = shape.x1 - shape.x0, shape.y1 - shape.y0
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_IDS[shape.category],
                    "bbox": [shape.x0, shape.y0, round(w, 2), round(h, 2)],
                    "area": round(w * h, 2),
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    data = {
        "info": {"description": "synthetic scenes", "seed": settings.seed},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [
            {"id": i, "name": n, "supercategory": "shape" if n in SHAPES else "animal"}
            for n, i in CATEGORY_IDS.items()
        ],
    }
    write_json(data, annotations)
    log.info("synthetic: %d images, %d boxes -> %s", len(images), len(anns), annotations)
    return data


def _jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
