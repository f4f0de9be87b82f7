"""Crop every box of the boxes table: margin, square, resize, reject with a reason.

Each source image is decoded once, however many boxes it holds, and JPEGs are decoded at reduced
scale (libjpeg's DCT scaling through Pillow's `draft`) when the crops need fewer pixels. Images are
spread over worker processes. Crops go to `crops/{crop_id}.png`; accepted boxes to the crops table,
rejected ones to the rejects table with the reason.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.config import CropSettings
from pipeline.image_scores import scores
from pipeline.io import atomic_dir, write_parquet
from pipeline.progress import progress
from pipeline.records import rejects_frame

log = logging.getLogger(__name__)

# zlib settings of the crop PNGs: run-length strategy at level 1 encodes photo crops ~1.6x
# faster than level 6 at the same size, and flat images smaller (encoding was a third of the stage)
PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}
REASONS = {
    "degenerate_box": "box has no area after clipping to the image",
    "crowd": "source marks the box as a crowd (COCO iscrowd)",
    "small_box": "shorter box side below min_box_side",
    "upscale": "crop would be enlarged more than max_upscale",
    "missing_image": "image file not found",
    "unreadable_image": "image file could not be decoded",
    "size_mismatch": "decoded image size differs from the size in the boxes table",
}
CROP_COLUMNS = [
    "crop_id",
    "box_id",
    "source",
    "image_id",
    "category",
    "split",
    "path",
    "x0",
    "y0",
    "x1",
    "y1",
    "crop_x0",
    "crop_y0",
    "crop_side",
    "scale",
    "sharpness",
    "contrast",
    "colourfulness",
    "phash",
    "thumb",
]


@dataclass(frozen=True)
class Region:
    """The square to cut, in source-image pixels (may extend past the border)."""

    x0: float
    y0: float
    side: float


def crop_id(box_id: str) -> str:
    """A file-name-safe id for a box id like `coco:123:456` -> `coco_123_456`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", box_id)


def square_region(x0: float, y0: float, x1: float, y1: float, s: CropSettings) -> Region:
    """The box grown by the margin on each side, then made square around its centre."""
    w, h = x1 - x0, y1 - y0
    w, h = w * (1 + 2 * s.margin), h * (1 + 2 * s.margin)
    side = max(w, h) if s.square == "pad" else min(w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return Region(cx - side / 2, cy - side / 2, side)


def precheck(box: dict, s: CropSettings, image_size: int) -> tuple[str, str] | None:
    """Reasons a box is rejected before any decoding, or None."""
    w, h = box["x1"] - box["x0"], box["y1"] - box["y0"]
    if w <= 0 or h <= 0:
        return "degenerate_box", f"{w:.1f}x{h:.1f}"
    if s.skip_crowd and box.get("is_crowd") is True:
        return "crowd", ""
    if min(w, h) < s.min_box_side:
        return "small_box", f"{min(w, h):.1f} < {s.min_box_side}"
    side = square_region(box["x0"], box["y0"], box["x1"], box["y1"], s).side
    if image_size / side > s.max_upscale:
        return "upscale", f"x{image_size / side:.2f} > {s.max_upscale}"
    return None


ORIENTATION = 0x0112  # the EXIF orientation tag
# EXIF orientations that swap width and height, and the transpose that shows such an image as
# displayed (as PIL.ImageOps.exif_transpose does)
SIDE_SWAPS = {
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}  # greyscale; older Pillow reads PNG as I
ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
WHITE = (255, 255, 255, 255)
# what decoding a broken or hostile file raises (Image.open turns unknown formats into OSError)
DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,  # raised only where warnings are errors
)


def exif_turn(image: Image.Image, width: int, height: int) -> Image.Transpose | None:
    """The transpose that turns `image` into the table's `width` x `height`, by EXIF; or None.

    Annotation tools give the size and boxes of the image as displayed, so an orientation that
    swaps the sides (5 to 8) is applied when the stored size is the table's size turned. A stored
    size that already matches is used as stored: orientations 2, 3 and 4 (mirror, half turn,
    flip) keep the size, and so do 5 to 8 on a square, so such a file cannot be told apart from
    one whose table was made from the stored pixels."""
    if image.size == (width, height) or image.size != (height, width):
        return None
    value = image.getexif().get(ORIENTATION)
    return SIDE_SWAPS.get(value) if isinstance(value, int) else None


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB image of `image`'s pixels (itself, loaded, when it is RGB already), whatever
    mode the file holds.

    16-bit greyscale is scaled by 1/257 (Pillow's own conversion clips all above 255 to white).
    Transparent pixels (alpha channel, transparent palette entry or colour key) are composited
    over white: the colour stored under them is arbitrary (often black), and white, the usual
    page background, keeps crops deterministic. CMYK is converted without its ICC profile."""
    if image.mode in SIXTEEN_BIT:
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64) / 257), 0, 255)
        return Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    if image.mode == "RGB":  # most photos: decoded as they are, no copy
        image.load()
        return image
    return image.convert("RGB")


def open_reduced(
    path: Path, width: int, height: int, scale: float, draft: bool
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an image as RGB, turned upright by EXIF where that gives the table's size.

    JPEGs are decoded at reduced scale when `scale` < 0.5 allows it. Returns the image and its
    full size as displayed (width, height): the stored size as read before any reduction,
    swapped when an EXIF orientation turned it."""
    with Image.open(path) as image:
        turn = exif_turn(image, width, height)
        shown = (image.height, image.width) if turn is not None else image.size
        if draft and image.format == "JPEG" and scale < 0.5:
            # libjpeg reduces the stored pixels: the target is in the stored orientation
            w, h = (height, width) if turn is not None else (width, height)
            image.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
        rgb = to_rgb(image)
    return (rgb if turn is None else rgb.transpose(turn)), shown


def cut(
    image: Image.Image, region: Region, fx: float, fy: float, size: int, pad_mode: str
) -> Image.Image:
    """Cut `region` (source pixels) out of `image` (decoded at scale fx, fy), pad, resize.

    Only the part inside the image is copied (no array of the whole image); padding, when the
    square reaches past the border, is added to that part alone."""
    width, height = image.size
    x0, y0 = math.floor(region.x0 * fx), math.floor(region.y0 * fy)
    side = max(round(region.side * fx), 1)
    x1, y1 = x0 + side, y0 + side
    inner = image.crop((max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)))
    pad = ((max(-y0, 0), max(y1 - height, 0)), (max(-x0, 0), max(x1 - width, 0)), (0, 0))
    if any(pad[0] + pad[1]):
        inner = Image.fromarray(np.pad(np.asarray(inner), pad, mode=pad_mode))
    return inner.resize((size, size), Image.LANCZOS)


TURNS = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def upright(crop: Image.Image, rotation) -> Image.Image:
    """Turn a crop counter-clockwise by `rotation` degrees (a multiple of 90; None or 0: as is)."""
    if rotation is None or pd.isna(rotation) or int(rotation) % 360 == 0:
        return crop
    return crop.transpose(TURNS[int(rotation) % 360])


def crop_image(
    task: tuple[str, list[dict], CropSettings, int, str],
) -> tuple[list[dict], list[dict]]:
    """Worker: decode one image once and cut all its boxes. Returns (crops, rejects)."""
    path, boxes, s, size, out_dir = task
    first = boxes[0]
    width, height = int(first["image_width"]), int(first["image_height"])
    regions = [square_region(b["x0"], b["y0"], b["x1"], b["y1"], s) for b in boxes]
    scale = max(size / r.side for r in regions)
    try:
        image, shown = open_reduced(Path(path), width, height, scale, s.jpeg_draft)
    except FileNotFoundError:
        return [], [_reject(b, "missing_image", path) for b in boxes]
    except DECODE_ERRORS as err:
        detail = f"{path}: {type(err).__name__}: {err}"
        return [], [_reject(b, "unreadable_image", detail) for b in boxes]
    if shown != (width, height):  # not turned by EXIF, so shown is the stored size
        detail = f"{path}: stored {shown[0]}x{shown[1]}, table says {width}x{height}"
        return [], [_reject(b, "size_mismatch", detail) for b in boxes]
    fx, fy = image.width / width, image.height / height
    crops = []
    for box, region in zip(boxes, regions, strict=True):
        cid = crop_id(box["box_id"])
        rel = f"crops/{cid}.png"
        crop = upright(cut(image, region, fx, fy, size, s.pad_mode), box.get("rotation"))
        crop.save(Path(out_dir) / f"{cid}.png", **PNG_OPTIONS)
        crops.append(
            {
                "crop_id": cid,
                "box_id": box["box_id"],
                "source": box["source"],
                "image_id": box["image_id"],
                "category": box["category"],
                "split": box["split"],
                "path": rel,
                "x0": box["x0"],
                "y0": box["y0"],
                "x1": box["x1"],
                "y1": box["y1"],
                "crop_x0": region.x0,
                "crop_y0": region.y0,
                "crop_side": region.side,
                "scale": size / region.side,
                **scores(np.asarray(crop)),
            }
        )
    return crops, []


def _reject(box: dict, reason: str, detail: str) -> dict:
    keys = ("box_id", "source", "image_id", "category")
    return {**{k: box[k] for k in keys}, "reason": reason, "detail": detail}


ImageKey = tuple[str, int, int]  # path, and the width and height the table gives it


def plan(
    boxes: pd.DataFrame, s: CropSettings, size: int
) -> tuple[dict[ImageKey, list[dict]], list[dict]]:
    """Group the boxes that pass the prechecks by image; reject the others."""
    by_image: dict[ImageKey, list[dict]] = {}
    rejects = []
    for box in boxes.to_dict("records"):
        reason = precheck(box, s, size)
        if reason:
            rejects.append(_reject(box, *reason))
        else:
            key = (box["image_path"], int(box["image_width"]), int(box["image_height"]))
            by_image.setdefault(key, []).append(box)
    return by_image, rejects


def extract_crops(
    boxes_path: Path,
    crops_dir: Path,
    crops_table: Path,
    rejects_table: Path,
    settings: CropSettings,
    image_size: int,
    workers: int = 1,
    record_rejects: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The crop stage: boxes table in; crop PNGs, crops table and rejects table out.

    The rejects table also holds the sources' bad records (`record_rejects`), so that every box
    that did not become a crop is listed in one place with its reason."""
    boxes = pd.read_parquet(boxes_path)
    ids = boxes["box_id"].map(crop_id)
    if ids.duplicated().any():
        raise ValueError(
            f"{boxes_path}: box ids collide as file names: {ids[ids.duplicated()].iloc[0]}"
        )
    by_image, rejects = plan(boxes, settings, image_size)
    crops: list[dict] = []
    with atomic_dir(crops_dir) as tmp:
        tasks = [
            (path, group, settings, image_size, str(tmp))
            for (path, _, _), group in sorted(by_image.items())
        ]
        for got, lost in _run(tasks, workers):
            crops.extend(got)
            rejects.extend(lost)
        crop_frame = pd.DataFrame(crops, columns=CROP_COLUMNS).sort_values(
            "crop_id", ignore_index=True
        )
        if record_rejects is not None:
            rejects.extend(pd.read_parquet(record_rejects).to_dict("records"))
        reject_frame = rejects_frame(rejects)
        write_parquet(crop_frame, crops_table)
        write_parquet(reject_frame, rejects_table)
    _summarise(len(boxes), crop_frame, reject_frame, settings, image_size)
    return crop_frame, reject_frame


def _run(tasks: list, workers: int):
    bar = progress(total=sum(len(t[1]) for t in tasks), desc="crops", unit="box")
    if workers <= 1:
        results = map(crop_image, tasks)
    else:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(
            crop_image, tasks, chunksize=max(1, min(16, len(tasks) // (workers * 8) or 1))
        )
    try:
        for got, lost in results:
            bar.update(len(got) + len(lost))
            yield got, lost
    finally:
        bar.close()
        if workers > 1:
            pool.shutdown()


def _summarise(
    total: int, crops: pd.DataFrame, rejects: pd.DataFrame, s: CropSettings, size: int
) -> None:
    log.info("crops: %d of %d boxes accepted at %d px (%s)", len(crops), total, size, asdict(s))
    for reason, count in rejects["reason"].value_counts().items():
        log.info("  rejected %-16s %6d  (%s)", reason, count, REASONS.get(reason, ""))
