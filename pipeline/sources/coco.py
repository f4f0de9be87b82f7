"""COCO-format detection datasets: real COCO 2017 and the synthetic demo set.

`read_boxes` turns an instances JSON into rows of the boxes table, through pycocotools' index, with
every record checked first so that a malformed file stops with the file and record named.
`download_annotations` and `coco_boxes` fetch COCO's annotation archive and only the images that
hold the experiment's category.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from pycocotools.coco import COCO

from pipeline.archive import UnsafePathError, safe_extract, safe_join
from pipeline.boxes import normalise
from pipeline.download import DownloadJob, DownloadSettings, fetch, fetch_images, hosts_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CocoSettings:
    annotations_url: str = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
    annotations_sha256: str | None = None
    image_base_url: str = "http://images.cocodataset.org"
    splits: tuple[str, ...] = ("train2017", "val2017")
    local_dir: str | None = None


class CocoFormatError(ValueError):
    """An instances JSON that breaks the COCO format; the message names the file and record."""


def _require(ok: bool, path: Path, record: str, message: str) -> None:
    if not ok:
        raise CocoFormatError(f"{path}: {record}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_instances(path: Path) -> dict:
    """Parse and check an instances JSON (images, annotations, categories)."""
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as err:
        raise CocoFormatError(f"{path}: not valid JSON: {err}") from err
    _require(isinstance(data, dict), path, "top level", "must be an object")
    for key in ("images", "annotations", "categories"):
        _require(isinstance(data.get(key), list), path, key, "missing or not a list")
    images = {}
    for i, image in enumerate(data["images"]):
        rec = f"images[{i}] (id={image.get('id') if isinstance(image, dict) else '?'})"
        _require(isinstance(image, dict), path, rec, "not an object")
        _require(isinstance(image.get("id"), int | str), path, rec, "id missing")
        _require(isinstance(image.get("file_name"), str), path, rec, "file_name missing")
        for key in ("width", "height"):
            value = image.get(key)
            _require(
                isinstance(value, int) and value > 0,
                path,
                rec,
                f"{key} must be a positive integer, got {value!r}",
            )
        _require(image["id"] not in images, path, rec, "duplicate image id")
        images[image["id"]] = image
    category_ids = set()
    for i, cat in enumerate(data["categories"]):
        rec = f"categories[{i}]"
        _require(
            isinstance(cat, dict) and "id" in cat and isinstance(cat.get("name"), str),
            path,
            rec,
            "needs id and name",
        )
        category_ids.add(cat["id"])
    seen = set()
    for i, ann in enumerate(data["annotations"]):
        rec = f"annotations[{i}] (id={ann.get('id') if isinstance(ann, dict) else '?'})"
        _require(isinstance(ann, dict), path, rec, "not an object")
        _require("id" in ann and ann["id"] not in seen, path, rec, "id missing or duplicate")
        seen.add(ann["id"])
        _require(
            ann.get("image_id") in images, path, rec, f"unknown image_id {ann.get('image_id')!r}"
        )
        _require(
            ann.get("category_id") in category_ids,
            path,
            rec,
            f"unknown category_id {ann.get('category_id')!r}",
        )
        bbox = ann.get("bbox")
        _require(
            isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox),
            path,
            rec,
            f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}",
        )
    return data


def _index(data: dict) -> COCO:
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def category_ids(coco: COCO, names: tuple[str, ...], path: Path) -> list[int]:
    """The ids of the named categories (case-insensitive); unknown names raise."""
    by_name = {c["name"].lower(): c["id"] for c in coco.loadCats(coco.getCatIds())}
    missing = [n for n in names if n.lower() not in by_name]
    if missing:
        raise CocoFormatError(f"{path}: no category named {missing}; it has {sorted(by_name)}")
    return [by_name[n.lower()] for n in names]


def read_boxes(
    instances: Path,
    image_dir: Path,
    categories: tuple[str, ...],
    source: str,
    split: str,
    image_url: str = "",
) -> pd.DataFrame:
    """Rows of the boxes table for the named categories of one instances JSON.

    `image_dir` holds the images by `file_name`; `image_url`, if given, is formatted with
    `file_name` and `split` to give each row's URL. Boxes are clipped to the image.
    """
    data = load_instances(instances)
    coco = _index(data)
    cat_ids = category_ids(coco, categories, instances)
    names = {c["id"]: c["name"] for c in coco.loadCats(cat_ids)}
    rows = []
    for ann in coco.loadAnns(coco.getAnnIds(catIds=cat_ids, iscrowd=None)):
        image = coco.imgs[ann["image_id"]]
        width, height = image["width"], image["height"]
        x, y, w, h = (float(v) for v in ann["bbox"])
        try:
            image_path = safe_join(image_dir, image["file_name"])
        except UnsafePathError as err:
            raise UnsafePathError(f"{instances}: image id={image['id']!r}: {err}") from err
        rows.append(
            {
                "box_id": f"{source}:{image['id']}:{ann['id']}",
                "source": source,
                "image_id": str(image["id"]),
                "image_path": str(image_path),
                "image_url": image_url.format(file_name=image["file_name"], split=split)
                if image_url
                else "",
                "image_width": width,
                "image_height": height,
                "category": names[ann["category_id"]],
                "x0": min(max(x, 0.0), width),
                "y0": min(max(y, 0.0), height),
                "x1": min(max(x + w, 0.0), width),
                "y1": min(max(y + h, 0.0), height),
                "is_crowd": bool(ann.get("iscrowd", 0)),
                "split": split,
            }
        )
    log.info(
        "%s: %d boxes of %s in %d images",
        instances,
        len(rows),
        list(categories),
        len({r["image_id"] for r in rows}),
    )
    return normalise(rows)


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
) -> pd.DataFrame:
    """All boxes of the categories over the configured splits, with their images fetched."""
    parts = [
        read_boxes(
            instances[split],
            image_root / split,
            categories,
            "coco",
            split,
            image_url=f"{settings.image_base_url.rstrip('/')}/{{split}}/{{file_name}}",
        )
        for split in settings.splits
    ]
    boxes = normalise(pd.concat(parts, ignore_index=True))
    allowed = replace(download, allowed_hosts=hosts_of(settings.image_base_url))
    return fetch_images(boxes, allowed, failures, "COCO images")
