"""OpenImages V7 boxes: class name -> label id, box CSVs streamed in chunks, only needed images.

The train box CSV is gigabytes: it is read in chunks of `chunk_rows`, only the columns needed, and
only the rows of the wanted labels are kept, so memory stays flat as the file grows. Coordinates
are normalised (note the column order XMin, XMax, YMin, YMax) and become pixels once the image is
here and its size known. `Rotation` (degrees counter-clockwise that turn the stored image and its
boxes upright) is carried as the table's `rotation`, which the crop stage applies to each crop.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.archive import safe_join
from pipeline.boxes import canonical_category, normalise
from pipeline.download import DownloadJob, DownloadSettings, fetch, fetch_unless_local, hosts_of
from pipeline.records import RecordRejects
from pipeline.sources.openimages_files import (  # noqa: F401 (the source's API)
    OpenImagesSettings,
    metadata_files,
    metadata_relpaths,
)

log = logging.getLogger(__name__)
BOX_COLUMNS = [
    "ImageID",
    "LabelName",
    "XMin",
    "XMax",
    "YMin",
    "YMax",
    "IsOccluded",
    "IsTruncated",
    "IsGroupOf",
    "IsDepiction",
]
FLAGS = {
    "IsOccluded": "is_occluded",
    "IsTruncated": "is_truncated",
    "IsGroupOf": "is_group",
    "IsDepiction": "is_depiction",
}


class OpenImagesFormatError(ValueError):
    """An OpenImages file that breaks the format; the message names the file and record."""


def download_metadata(
    settings: OpenImagesSettings, *, download: DownloadSettings, paths: dict[str, Path]
) -> None:
    download = replace(download, allowed_hosts=hosts_of(settings.base_url))
    for key, rel in metadata_relpaths(settings).items():
        result = fetch(DownloadJob(f"{settings.base_url.rstrip('/')}/{rel}", paths[key]), download)
        if not result.ok:
            raise RuntimeError(f"OpenImages {result.job.url}: {result.reason}")


def label_ids(path: Path, categories: tuple[str, ...]) -> dict[str, str]:
    """Label id (e.g. /m/03bk1) -> category, from the class descriptions (with or without header)."""
    with open(path, newline="", encoding="utf-8") as handle:
        names = {}
        for i, row in enumerate(csv.reader(handle)):
            if i == 0 and row[:2] == ["LabelName", "DisplayName"]:
                continue
            if len(row) < 2:
                raise OpenImagesFormatError(
                    f"{path}: line {i + 1}: expected LabelName,DisplayName, got {row}"
                )
            names.setdefault(canonical_category(row[1]), []).append(row[0].strip())
    found, missing = {}, []
    for category in categories:
        ids = names.get(canonical_category(category))
        if ids:
            found.update({label: canonical_category(category) for label in ids})
        else:
            missing.append(category)
    if missing:
        raise OpenImagesFormatError(
            f"{path}: no class named {missing} (among {sum(map(len, names.values()))} classes)"
        )
    return found


def _check_header(path: Path, required: list[str]) -> None:
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in required if c not in header]
    if missing:
        raise OpenImagesFormatError(f"{path}: header lacks columns {missing}; it has {header}")


def stream_boxes(path: Path, labels: dict[str, str], chunk_rows: int) -> pd.DataFrame:
    """The rows of `path` whose LabelName is wanted, read chunk by chunk."""
    _check_header(path, BOX_COLUMNS)
    dtypes = {"ImageID": str, "LabelName": str, **{c: "float64" for c in BOX_COLUMNS[2:]}}
    kept = []
    reader = pd.read_csv(path, usecols=BOX_COLUMNS, dtype=dtypes, chunksize=chunk_rows)
    try:
        for number, chunk in enumerate(reader):
            chunk = chunk[chunk["LabelName"].isin(labels.keys())]
            chunk.index += number * chunk_rows + 2  # the CSV line of each row
            kept.append(chunk)
    except (ValueError, pd.errors.ParserError) as err:
        raise OpenImagesFormatError(f"{path}: cannot parse: {err}") from err
    frame = pd.concat(kept) if kept else pd.DataFrame(columns=BOX_COLUMNS)
    _check_boxes(frame, path)
    return frame


def _check_boxes(frame: pd.DataFrame, path: Path) -> None:
    x0, x1, y0, y1 = (frame[c].to_numpy() for c in ("XMin", "XMax", "YMin", "YMax"))
    bad = ~(np.isfinite(x0) & np.isfinite(x1) & np.isfinite(y0) & np.isfinite(y1))
    bad |= (x0 < -0.01) | (y0 < -0.01) | (x1 > 1.01) | (y1 > 1.01) | (x0 > x1) | (y0 > y1)
    if bad.any():
        line = frame.index[np.argmax(bad)]
        row = frame.iloc[int(np.argmax(bad))]
        raise OpenImagesFormatError(
            f"{path}: line {line} (ImageID {row['ImageID']}): box must be normalised with "
            f"XMin <= XMax and YMin <= YMax in [0, 1], got {row[['XMin', 'XMax', 'YMin', 'YMax']].tolist()}"
        )


def stream_rotations(path: Path, image_ids: set[str], chunk_rows: int) -> dict[str, int]:
    """ImageID -> Rotation (0 where missing) for the wanted images."""
    _check_header(path, ["ImageID", "Rotation"])
    found: dict[str, int] = {}
    for chunk in pd.read_csv(
        path, usecols=["ImageID", "Rotation"], dtype={"ImageID": str}, chunksize=chunk_rows
    ):
        chunk = chunk[chunk["ImageID"].isin(image_ids)]
        for image_id, rotation in zip(chunk["ImageID"], chunk["Rotation"].fillna(0), strict=True):
            if rotation not in (0, 90, 180, 270):
                raise OpenImagesFormatError(
                    f"{path}: ImageID {image_id}: Rotation {rotation} is not 0, 90, 180 or 270"
                )
            found[image_id] = int(rotation)
    return found


def select(
    settings: OpenImagesSettings,
    files: dict[str, Path],
    categories: tuple[str, ...],
    image_root: Path,
) -> pd.DataFrame:
    """The wanted boxes of every split, still normalised, with rotation and image path/URL."""
    labels = label_ids(files["classes"], categories)
    parts = []
    for split in settings.splits:
        boxes = stream_boxes(files[f"boxes_{split}"], labels, settings.chunk_rows)
        rotations = stream_rotations(
            files[f"images_{split}"], set(boxes["ImageID"]), settings.chunk_rows
        )
        boxes = boxes.assign(
            split=split,
            category=boxes["LabelName"].map(labels),
            rotation=boxes["ImageID"].map(rotations).fillna(0).astype(int),
            image_path=[str(safe_join(image_root, f"{split}/{i}.jpg")) for i in boxes["ImageID"]],
            image_url=[
                f"{settings.image_base_url.rstrip('/')}/{split}/{i}.jpg" for i in boxes["ImageID"]
            ],
            line=boxes.index,
        )
        log.info(
            "OpenImages %s: %d boxes of %s in %d images",
            split,
            len(boxes),
            list(categories),
            boxes["ImageID"].nunique(),
        )
        parts.append(boxes.reset_index(drop=True))
    return pd.concat(parts, ignore_index=True)


def _box_id(row) -> str:
    """A selected row's box id: its image, split and line in the box CSV."""
    return f"openimages:{row.ImageID}:{row.split}:{row.line}"


def to_pixels(selected: pd.DataFrame, sizes: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Rows of the boxes table, for the images whose size is known."""
    rows = []
    for row in selected.itertuples(index=False):
        if row.image_path not in sizes:
            continue
        width, height = sizes[row.image_path]
        rows.append(
            {
                "box_id": _box_id(row),
                "source": "openimages",
                "image_id": row.ImageID,
                "image_path": row.image_path,
                "image_url": row.image_url,
                "image_width": width,
                "image_height": height,
                "category": row.category,
                "x0": row.XMin * width,
                "x1": row.XMax * width,
                "y0": row.YMin * height,
                "y1": row.YMax * height,
                "split": row.split,
                "rotation": row.rotation,
                **{
                    flag: bool(getattr(row, col) == 1) if getattr(row, col) in (0, 1) else None
                    for col, flag in FLAGS.items()
                },
            }
        )
    return normalise(rows)


def image_sizes(paths: list[str]) -> tuple[dict[str, tuple[int, int]], list[tuple[str, str, str]]]:
    """Width and height from each image's header; the others as (path, reason, message)."""
    sizes, bad = {}, []
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes[path] = image.size
        except FileNotFoundError:
            bad.append((path, "missing_image", f"{path}: image file not found"))
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            bad.append((path, "unreadable_image", f"{path}: unreadable image: {err}"))
    return sizes, bad


def _reject_unsized(
    selected: pd.DataFrame, bad: list[tuple[str, str, str]], rejects: RecordRejects
) -> None:
    """Each box of an image whose size could not be read becomes a reject."""
    by_path = {path: (reason, message) for path, reason, message in bad}
    for row in selected[selected["image_path"].isin(by_path)].itertuples(index=False):
        reason, message = by_path[row.image_path]
        box_id = _box_id(row)
        rejects.add(reason, message, box_id, row.ImageID, row.category)


def openimages_boxes(
    settings: OpenImagesSettings,
    *,
    files: dict[str, Path],
    image_root: Path,
    categories: tuple[str, ...],
    download: DownloadSettings,
    failures: Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The boxes of the categories, in pixels, and the boxes whose image could not be read.

    Images are fetched into `image_root` unless `local_dir` is set: then they are read in place,
    and a missing one is a `missing_image` reject."""
    selected = select(settings, files, categories, image_root)
    selected = fetch_unless_local(
        selected,
        source=settings,
        download=download,
        failures=failures,
        desc="OpenImages images",
    )
    sizes, bad = image_sizes(list(selected["image_path"].unique()))
    rejects = RecordRejects("openimages")
    _reject_unsized(selected, bad, rejects)
    if bad:
        log.warning("OpenImages: %d images could not be read (listed in the rejects)", len(bad))
    return to_pixels(selected, sizes), rejects.frame()
