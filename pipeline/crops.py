"""Crop every box of the boxes table: margin, square, resize, reject with a reason.

Each source image is decoded once, however many boxes it holds, and JPEGs are decoded at reduced
scale (libjpeg's DCT scaling through Pillow's `draft`) when the crops need fewer pixels. Images are
spread over worker processes. Crops go to `{crops_dir}/{crop_id}.png` (the table's `path`, relative
to the crops folder); accepted boxes to the crops table,
rejected ones to the rejects table with the reason. Each image is decoded as its source's boxes
see it (`image_files`: EXIF applied or not, per source); too many unusable images, or no crop at
all, stop the stage before anything is kept (`image_checks`).
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.config import CropSettings
from pipeline.image_checks import IMAGE_PROBLEMS, BadImageSettings, ImageProblem, check_images
from pipeline.image_files import DECODE_ERRORS, Decoded, displayed_size, open_reduced
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
    "crowd": "source marks the box as a crowd (COCO iscrowd; crops.skip_crowd: false keeps it)",
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


def square_region(x0: float, y0: float, x1: float, y1: float, settings: CropSettings) -> Region:
    """The box grown by the margin on each side, then made square around its centre."""
    w, h = x1 - x0, y1 - y0
    w, h = w * (1 + 2 * settings.margin), h * (1 + 2 * settings.margin)
    side = max(w, h) if settings.square == "pad" else min(w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return Region(cx - side / 2, cy - side / 2, side)


def precheck(box: dict, settings: CropSettings, image_size: int) -> tuple[str, str] | None:
    """Reasons a box is rejected before any decoding, or None."""
    w, h = box["x1"] - box["x0"], box["y1"] - box["y0"]
    if w <= 0 or h <= 0:
        return "degenerate_box", f"{w:.1f}x{h:.1f}"
    if settings.skip_crowd and box.get("is_crowd") is True:
        return "crowd", "iscrowd is set (a box round a group); crops.skip_crowd: false keeps it"
    if min(w, h) < settings.min_box_side:
        return "small_box", f"{min(w, h):.1f} < {settings.min_box_side}"
    side = square_region(box["x0"], box["y0"], box["x1"], box["y1"], settings).side
    if image_size / side > settings.max_upscale:
        return "upscale", f"x{image_size / side:.2f} > {settings.max_upscale}"
    return None


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


@dataclass(frozen=True)
class ImageTask:
    """One image and all its boxes, for a worker; `exif` is its source's setting."""

    path: str
    boxes: list[dict]
    settings: CropSettings
    size: int
    out_dir: str
    exif: str


@dataclass
class ImageResult:
    """What a worker made of one image: crops and rejects (rows), and the orientation applied."""

    crops: list[dict]
    rejects: list[dict]
    turn: int = 1


def crop_image(task: ImageTask) -> ImageResult:
    """Worker: decode one image once and cut all its boxes."""
    path, boxes, settings, size = task.path, task.boxes, task.settings, task.size
    first = boxes[0]
    width, height = int(first["image_width"]), int(first["image_height"])
    regions = [square_region(b["x0"], b["y0"], b["x1"], b["y1"], settings) for b in boxes]
    scale = max(size / r.side for r in regions)
    try:
        decoded = open_reduced(
            Path(path),
            width=width,
            height=height,
            scale=scale,
            draft=settings.jpeg_draft,
            exif=task.exif,
            max_pixels=settings.max_image_pixels,
        )
    except FileNotFoundError:
        return ImageResult([], [_reject(b, "missing_image", path) for b in boxes])
    except DECODE_ERRORS as err:
        detail = f"{path}: {type(err).__name__}: {err}"
        return ImageResult([], [_reject(b, "unreadable_image", detail) for b in boxes])
    if decoded.size != (width, height):
        detail = size_mismatch(path, decoded, (width, height), first["source"], task.exif)
        return ImageResult([], [_reject(b, "size_mismatch", detail) for b in boxes])
    image = decoded.image
    fx, fy = image.width / width, image.height / height
    crops = []
    for box, region in zip(boxes, regions, strict=True):
        cid = crop_id(box["box_id"])
        crop = upright(cut(image, region, fx, fy, size, settings.pad_mode), box.get("rotation"))
        crop.save(Path(task.out_dir) / f"{cid}.png", **PNG_OPTIONS)
        crops.append(_crop_row(box, cid, region, size, crop))
    return ImageResult(crops, [], decoded.turn)


def size_mismatch(
    path: str, decoded: Decoded, table: tuple[int, int], source: str, exif: str
) -> str:
    """The detail of a size_mismatch reject, with the exif setting that would fit if one would."""
    (w, h), (sw, sh) = table, decoded.stored
    if decoded.turn != 1:
        found = f"{decoded.size[0]}x{decoded.size[1]} as displayed (EXIF orientation "
        found += f"{decoded.turn}), stored {sw}x{sh}"
    else:
        found = f"stored {sw}x{sh}"
    detail = f"{path}: {found}, table says {w}x{h}"
    other = "ignore" if exif == "apply" else "apply"
    turn = decoded.orientation if exif == "ignore" else 1
    if displayed_size(decoded.stored, turn) == table and decoded.orientation != 1:
        detail += (
            f" (the table's size is the image {'as stored' if other == 'ignore' else 'displayed'}"
            f": if the boxes of source {source!r} refer to it, set exif: {other} for it)"
        )
    return detail


def _crop_row(box: dict, cid: str, region: Region, size: int, crop: Image.Image) -> dict:
    return {
        "crop_id": cid,
        "box_id": box["box_id"],
        "source": box["source"],
        "image_id": box["image_id"],
        "category": box["category"],
        "split": box["split"],
        "path": f"{cid}.png",
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


def _reject(box: dict, reason: str, detail: str) -> dict:
    keys = ("box_id", "source", "image_id", "category")
    return {**{k: box[k] for k in keys}, "reason": reason, "detail": detail}


ImageKey = tuple[str, int, int, str]  # path, the width and height the table gives, exif


def plan(
    boxes: pd.DataFrame, settings: CropSettings, size: int, exif: dict[str, str] | None = None
) -> tuple[dict[ImageKey, list[dict]], list[dict]]:
    """Group the boxes that pass the prechecks by image; reject the others. `exif` is each
    source's setting (default apply: boxes refer to the image as displayed)."""
    exif = exif or {}
    by_image: dict[ImageKey, list[dict]] = {}
    rejects = []
    for box in boxes.to_dict("records"):
        reason = precheck(box, settings, size)
        if reason:
            rejects.append(_reject(box, *reason))
        else:
            key = (
                box["image_path"],
                int(box["image_width"]),
                int(box["image_height"]),
                exif.get(box["source"], "apply"),
            )
            by_image.setdefault(key, []).append(box)
    return by_image, rejects


def extract_crops(
    boxes_path: Path,
    *,
    crops_dir: Path,
    crops_table: Path,
    rejects_table: Path,
    settings: CropSettings,
    image_size: int,
    workers: int = 1,
    record_rejects: Path | None = None,
    exif: dict[str, str] | None = None,
    bad_images: BadImageSettings | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The crop stage: boxes table in; crop PNGs, crops table and rejects table out.

    The rejects table also holds the sources' bad records (`record_rejects`), so that every box
    that did not become a crop is listed in one place with its reason. `exif` gives each
    source's EXIF setting. With `bad_images`, the stage stops before anything is kept when too
    many images were unusable or no box became a crop (image_checks)."""
    boxes = pd.read_parquet(boxes_path)
    ids = boxes["box_id"].map(crop_id)
    if ids.duplicated().any():
        raise ValueError(
            f"{boxes_path}: box ids collide as file names: {ids[ids.duplicated()].iloc[0]}"
        )
    by_image, rejects = plan(boxes, settings, image_size, exif)
    crops: list[dict] = []
    problems: list[ImageProblem] = []
    turned: Counter = Counter()
    with atomic_dir(crops_dir) as tmp:
        tasks = [
            ImageTask(path, group, settings, image_size, str(tmp), policy)
            for (path, _, _, policy), group in sorted(by_image.items())
        ]
        for task, result in zip(tasks, _run(tasks, workers), strict=True):
            crops.extend(result.crops)
            rejects.extend(result.rejects)
            turned[result.turn] += 1
            if result.rejects and result.rejects[0]["reason"] in IMAGE_PROBLEMS:
                problems.append(
                    ImageProblem(task.boxes[0]["source"], task.path, result.rejects[0]["reason"])
                )
        crop_frame = pd.DataFrame(crops, columns=CROP_COLUMNS).sort_values(
            "crop_id", ignore_index=True
        )
        if record_rejects is not None:
            rejects.extend(pd.read_parquet(record_rejects).to_dict("records"))
        reject_frame = rejects_frame(rejects)
        if bad_images is not None:
            check_images(problems, len(tasks), len(crop_frame), reject_frame, bad_images)
        write_parquet(crop_frame, crops_table)
        write_parquet(reject_frame, rejects_table)
    _summarise(len(boxes), crop_frame, reject_frame, settings, image_size)
    _log_turns(turned)
    return crop_frame, reject_frame


def _run(tasks: list[ImageTask], workers: int):
    bar = progress(total=sum(len(t.boxes) for t in tasks), desc="crops", unit="box")
    if workers <= 1:
        results = map(crop_image, tasks)
    else:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(
            crop_image, tasks, chunksize=max(1, min(16, len(tasks) // (workers * 8) or 1))
        )
    try:
        for result in results:
            bar.update(len(result.crops) + len(result.rejects))
            yield result
    finally:
        bar.close()
        if workers > 1:
            pool.shutdown()


def _log_turns(turned: Counter) -> None:
    """How many images were turned upright by their EXIF orientation, by orientation."""
    applied = {turn: n for turn, n in sorted(turned.items()) if turn != 1}
    if applied:
        log.info(
            "EXIF orientation applied to %d images (%s)",
            sum(applied.values()),
            ", ".join(f"orientation {t}: {n}" for t, n in applied.items()),
        )


def _summarise(
    total: int, crops: pd.DataFrame, rejects: pd.DataFrame, settings: CropSettings, size: int
) -> None:
    log.info(
        "crops: %d of %d boxes accepted at %d px (%s)", len(crops), total, size, asdict(settings)
    )
    for reason, count in rejects["reason"].value_counts().items():
        log.info("  rejected %-16s %6d  (%s)", reason, count, REASONS.get(reason, ""))
