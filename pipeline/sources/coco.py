"""COCO-format detection datasets: real COCO (any split), the synthetic demo set, user datasets.

`read_boxes` turns an instances JSON into rows of the boxes table. Whole-file defects stop with
the file named (`load_instances`); every image entry and annotation is checked on its own
(`check_records`), and a bad one is skipped and listed as a reject naming the file and record.
`download_annotations` and `coco_boxes` fetch COCO's annotation archive and only the images that
hold the experiment's category; with `local_dir` nothing is fetched and nothing there is written.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.archive import UnsafePathError, safe_extract, safe_join
from pipeline.boxes import canonical_category, normalise
from pipeline.download import DownloadJob, DownloadSettings, fetch, fetch_images, hosts_of
from pipeline.records import BadRecordSettings, RecordRejects

log = logging.getLogger(__name__)
DEFAULT_BAD_RECORDS = BadRecordSettings()


@dataclass(frozen=True)
class CocoSettings:
    annotations_url: str = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
    annotations_sha256: str | None = (
        "113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268"
    )
    image_base_url: str = "http://images.cocodataset.org"
    splits: tuple[str, ...] = ("train2017", "val2017")
    local_dir: str | None = None


class CocoFormatError(ValueError):
    """An instances JSON whose whole file is unusable; the message names the file and part."""


def _require(ok: bool, path: Path, record: str, message: str) -> None:
    if not ok:
        raise CocoFormatError(f"{path}: {record}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _as_id(value: Any) -> int | str | None:
    """`value` if it can be an id (a list or object in its place cannot: None)."""
    return value if _is_id(value) else None


def _record_id(record: Any) -> Any:
    return record.get("id", "?") if isinstance(record, dict) else "?"


def load_instances(path: Path) -> dict:
    """Parse an instances JSON and check what makes the whole file unusable.

    Not JSON, not an object, `images`/`annotations`/`categories` missing or not lists, duplicate
    image or annotation ids, a category without id and name: CocoFormatError naming the file.
    Single bad image entries and annotations are left to `check_records`.
    """
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CocoFormatError(f"{path}: not valid JSON: {err}") from err
    _require(isinstance(data, dict), path, "top level", "must be an object")
    for key in ("images", "annotations", "categories"):
        _require(isinstance(data.get(key), list), path, key, "missing or not a list")
    for key in ("images", "annotations"):
        seen: set = set()
        for i, record in enumerate(data[key]):
            rid = record.get("id") if isinstance(record, dict) else None
            if _is_id(rid):
                _require(
                    rid not in seen, path, f"{key}[{i}] (id={rid})", f"duplicate {key[:-1]} id"
                )
                seen.add(rid)
    for i, cat in enumerate(data["categories"]):
        _require(
            isinstance(cat, dict) and _is_id(cat.get("id")) and isinstance(cat.get("name"), str),
            path,
            f"categories[{i}]",
            "needs id and name",
        )
    return data


@dataclass
class ImageEntry:
    """A usable image entry: its record and where its file is."""

    record: dict
    path: Path


def _image_defect(image: Any, image_dir: Path) -> tuple[str, str] | ImageEntry:
    """The image entry as an ImageEntry, or (reason, message) when it is unusable."""
    if not isinstance(image, dict):
        return "bad_image_record", "not an object"
    if not _is_id(image.get("id")):
        return "bad_image_record", f"id missing, got {image.get('id')!r}"
    name = image.get("file_name")
    if not isinstance(name, str) or not name:
        return "bad_image_record", f"file_name missing, got {name!r}"
    for key in ("width", "height"):
        value = image.get(key)
        if not (_is_number(value) and value > 0 and float(value).is_integer()):
            return "bad_image_record", f"{key} must be a positive integer, got {value!r}"
    try:
        return ImageEntry(image, safe_join(image_dir, name))
    except UnsafePathError as err:
        return "unsafe_file_name", str(err)


def _box_defect(ann: dict, image: dict) -> tuple[str, str] | None:
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return "bad_bbox", f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}"
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return "empty_box", f"bbox {bbox} has no area"
    if x >= image["width"] or y >= image["height"] or x + w <= 0 or y + h <= 0:
        size = f"{image['width']}x{image['height']}"
        return "box_outside_image", f"bbox {bbox} lies outside the {size} image"
    return None


def _annotation_defect(
    ann: dict, images: dict, bad_images: dict, known_categories: set
) -> tuple[str, str, bool] | None:
    """(reason, message, counted) for an unusable annotation, or None. An annotation lost with
    its bad image entry carries the entry's reason and is not counted again."""
    image_id, category_id = _as_id(ann.get("image_id")), _as_id(ann.get("category_id"))
    if category_id not in known_categories:
        return "unknown_category", f"unknown category_id {ann.get('category_id')!r}", True
    if image_id in bad_images:
        reason, detail = bad_images[image_id]
        return reason, f"its image entry is unusable: {detail}", False
    if image_id not in images:
        return "unknown_image", f"unknown image_id {ann.get('image_id')!r}", True
    defect = _box_defect(ann, images[image_id].record)
    return (*defect, True) if defect else None


@dataclass
class Checked:
    """The usable records of one instances file."""

    images: dict[Any, ImageEntry]
    annotations: list[dict]


def check_records(
    data: dict,
    path: Path,
    image_dir: Path,
    wanted: dict[Any, str],
    rejects: RecordRejects,
    box_prefix: str,
) -> Checked:
    """Keep the usable image entries and the usable annotations of the `wanted` categories.

    Every record is checked; a bad one is counted in `rejects` and listed there (as a row of the
    rejects table) when it could hold a wanted box: annotations of a wanted or unknown category,
    and the wanted annotations of a bad image entry.
    """
    images: dict[Any, ImageEntry] = {}
    bad_images: dict[Any, tuple[str, str]] = {}
    for i, image in enumerate(data["images"]):
        got = _image_defect(image, image_dir)
        if isinstance(got, ImageEntry):
            images[image["id"]] = got
            continue
        rec = f"{path}: images[{i}] (id={_record_id(image)})"
        reason, detail = got[0], f"{rec}: {got[1]}"
        if isinstance(image, dict) and _is_id(image.get("id")):
            bad_images[image["id"]] = (reason, detail)
        # counted here; listed through the wanted annotations that point at it
        rejects.add(reason, detail, image_id=_record_id(image), listed=False)
    known_categories = {c["id"] for c in data["categories"]}
    kept = []
    for i, ann in enumerate(data["annotations"]):
        rec = f"{path}: annotations[{i}] (id={_record_id(ann)})"
        if not isinstance(ann, dict) or not _is_id(ann.get("id")):
            rejects.add(
                "bad_record",
                f"{rec}: not an object with an id",
                box_id=f"{box_prefix}annotations[{i}]",
            )
            continue
        image_id, category_id = _as_id(ann.get("image_id")), _as_id(ann.get("category_id"))
        defect = _annotation_defect(ann, images, bad_images, known_categories)
        if defect:
            reason, detail, counted = defect
            rejects.add(
                reason,
                f"{rec}: {detail}",
                f"{box_prefix}{image_id}:{ann['id']}",
                image_id,
                wanted.get(category_id, ""),
                listed=category_id in wanted or category_id not in known_categories,
                counted=counted,
            )
        elif category_id in wanted:
            kept.append(ann)
    return Checked(images, kept)


def wanted_categories(data: dict, names: tuple[str, ...], path: Path) -> dict[Any, str]:
    """Category id -> the experiment's category (canonical form), matched case-insensitively.

    A name the file lacks is a warning (another source of the experiment may have it); none at
    all is an error listing the names the file has.
    """
    canon = {canonical_category(n) for n in names}
    found = {
        c["id"]: canonical_category(c["name"])
        for c in data["categories"]
        if canonical_category(c["name"]) in canon
    }
    available = sorted({canonical_category(c["name"]) for c in data["categories"]})
    missing = sorted(canon - set(found.values()))
    if not found:
        raise CocoFormatError(f"{path}: no category named {missing}; it has {available}")
    if missing:
        log.warning("%s: no category named %s; it has %s", path, missing, available)
    return found


def read_boxes(
    instances: Path,
    image_dir: Path,
    categories: tuple[str, ...],
    source: str,
    split: str,
    image_url: str = "",
    rejects: RecordRejects | None = None,
    bad_records: BadRecordSettings = DEFAULT_BAD_RECORDS,
    box_prefix: str | None = None,
) -> pd.DataFrame:
    """Rows of the boxes table for the named categories of one instances JSON.

    `image_dir` holds the images by `file_name`; `image_url`, if given, is formatted with
    `file_name` and `split` to give each row's URL. Boxes are clipped to the image. Bad records
    are skipped into `rejects`; more than `bad_records.max_fraction` of them stop the read.
    Box ids are `{box_prefix}{image_id}:{annotation_id}` (prefix default `{source}:`).
    """
    data = load_instances(instances)
    prefix = f"{source}:" if box_prefix is None else box_prefix
    wanted = wanted_categories(data, categories, instances)
    bad = RecordRejects(source)
    checked = check_records(data, instances, image_dir, wanted, bad, prefix)
    bad.check(len(data["images"]) + len(data["annotations"]), bad_records, str(instances))
    if rejects is not None:
        rejects.extend(bad)
    rows = [
        _row(ann, checked.images[ann["image_id"]], wanted, prefix, source, split, image_url)
        for ann in checked.annotations
    ]
    log.info(
        "%s: %d boxes of %s in %d images, %d bad records",
        instances,
        len(rows),
        sorted(set(wanted.values())),
        len({r["image_id"] for r in rows}),
        bad.total,
    )
    return normalise(rows)


def _row(
    ann: dict,
    image: ImageEntry,
    wanted: dict[Any, str],
    prefix: str,
    source: str,
    split: str,
    image_url: str,
) -> dict:
    """One row of the boxes table (box clipped to the image)."""
    record = image.record
    width, height = int(record["width"]), int(record["height"])
    x, y, w, h = (float(v) for v in ann["bbox"])
    return {
        "box_id": f"{prefix}{record['id']}:{ann['id']}",
        "source": source,
        "image_id": str(record["id"]),
        "image_path": str(image.path),
        "image_url": image_url.format(file_name=record["file_name"], split=split)
        if image_url
        else "",
        "image_width": width,
        "image_height": height,
        "category": wanted[ann["category_id"]],
        "x0": min(max(x, 0.0), width),
        "y0": min(max(y, 0.0), height),
        "x1": min(max(x + w, 0.0), width),
        "y1": min(max(y + h, 0.0), height),
        "is_crowd": bool(ann.get("iscrowd", 0)),
        "split": split,
    }


def download_annotations(
    settings: CocoSettings, download: DownloadSettings, archive: Path, outputs: dict[str, Path]
) -> None:
    """Fetch (or reuse) the annotations zip, then extract `instances_{split}.json` per split."""
    result = fetch(
        DownloadJob(settings.annotations_url, archive, sha256=settings.annotations_sha256), download
    )
    if not result.ok:
        raise RuntimeError(f"COCO annotations {settings.annotations_url}: {result.reason}")
    for split, path in outputs.items():
        member = f"annotations/instances_{split}.json"
        (extracted,) = safe_extract(archive, archive.parent, [member])
        if extracted.resolve() != Path(path).resolve():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            extracted.replace(path)


def coco_boxes(
    settings: CocoSettings,
    instances: dict[str, Path],
    image_root: Path,
    categories: tuple[str, ...],
    download: DownloadSettings,
    failures: Path,
    bad_records: BadRecordSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All boxes of the categories over the configured splits, and the bad records.

    Images are fetched into `image_root/{split}/` unless `local_dir` is set: then they are read
    where they are, and one that is missing becomes a `missing_image` reject of the crop stage.
    """
    rejects = RecordRejects("coco")
    parts = [
        read_boxes(
            instances[split],
            image_root / split,
            categories,
            "coco",
            split,
            image_url=f"{settings.image_base_url.rstrip('/')}/{{split}}/{{file_name}}",
            rejects=rejects,
            bad_records=bad_records,
        )
        for split in settings.splits
    ]
    boxes = normalise(pd.concat(parts, ignore_index=True))
    if settings.local_dir:
        return boxes, rejects.frame()
    allowed = replace(download, allowed_hosts=hosts_of(settings.image_base_url))
    return fetch_images(boxes, allowed, failures, "COCO images"), rejects.frame()
