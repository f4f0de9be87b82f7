"""A COCO-format instances file as one compact table of all its boxes, built once and kept.

Reading COCO train2017's instances file (434 MB, 860k annotations) is the slow part of every
experiment that uses COCO. `box_table` reads and checks it once (`coco_records`), then keeps the
boxes of every category and the bad records as Parquet files in `cache_dir` (under
downloads_dir, never beside a user's file), keyed by the file's path, size and modification
time and by everything else the rows depend on. A later experiment or category only filters it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.boxes import canonical_category, empty_boxes, normalise
from pipeline.io import write_json, write_parquet
from pipeline.records import BadRecordSettings, RecordRejects
from pipeline.sources.coco_records import (
    DOWNLOADED,
    Checked,
    ImageRules,
    check_records,
    load_instances,
    wanted_categories,
)

log = logging.getLogger(__name__)
VERSION = 1  # of the table's layout and checks: a change makes old tables unused


@dataclass
class BoxTable:
    """Every usable box of one file (all categories) and every bad record, with the counts."""

    boxes: pd.DataFrame  # the boxes table's columns
    rejects: pd.DataFrame  # the bad records that concern some category (rejects-table rows)
    records: int  # image entries + annotations
    categories: list[dict]  # the file's categories (id, name)
    counts: dict[str, int]  # bad records per reason (the limit counts these)
    examples: dict[str, list[str]]  # first details per reason


META = ("records", "categories", "counts", "examples")  # the fields kept in the table's JSON


@dataclass(frozen=True)
class TableKey:
    """What the rows depend on besides the file's bytes."""

    image_dir: str
    source: str
    split: str
    image_url: str
    prefix: str
    rules: ImageRules = DOWNLOADED


def _rows(checked: Checked, names: dict[Any, str], key: TableKey) -> pd.DataFrame:
    """The boxes table's rows for the kept annotations, built column by column."""
    anns = checked.annotations
    if not anns:
        return empty_boxes()
    entries = [checked.images[a["image_id"]] for a in anns]
    width = np.array([int(e.record["width"]) for e in entries], dtype=np.float64)
    height = np.array([int(e.record["height"]) for e in entries], dtype=np.float64)
    x, y, w, h = np.array([[float(v) for v in a["bbox"]] for a in anns]).T
    url = key.image_url
    return normalise(
        {
            "box_id": [
                f"{key.prefix}{e.record['id']}:{a['id']}"
                for a, e in zip(anns, entries, strict=True)
            ],
            "source": key.source,
            "image_id": [str(e.record["id"]) for e in entries],
            "image_path": [str(e.path) for e in entries],
            "image_url": [
                url.format(file_name=e.record["file_name"], split=key.split) if url else ""
                for e in entries
            ],
            "image_width": width.astype(np.int64),
            "image_height": height.astype(np.int64),
            "category": [names[a["category_id"]] for a in anns],
            "x0": np.clip(x, 0.0, width),
            "y0": np.clip(y, 0.0, height),
            "x1": np.clip(x + w, 0.0, width),
            "y1": np.clip(y + h, 0.0, height),
            "is_crowd": [bool(a.get("iscrowd", 0)) for a in anns],
            "split": key.split,
        }
    )


def build(path: Path, key: TableKey) -> BoxTable:
    """Read and check the file once, keeping the boxes of every category."""
    data = load_instances(path)
    names = {c["id"]: canonical_category(c["name"]) for c in data["categories"]}
    bad = RecordRejects(key.source)
    checked = check_records(
        data,
        path=path,
        image_dir=Path(key.image_dir),
        wanted=names,
        rejects=bad,
        box_prefix=key.prefix,
        rules=key.rules,
    )
    records = len(data["images"]) + len(data["annotations"])
    categories = [{"id": c["id"], "name": c["name"]} for c in data["categories"]]
    boxes = _rows(checked, names, key)
    return BoxTable(boxes, bad.frame(), records, categories, dict(bad.counts), bad.examples)


def _cache_name(path: Path, key: TableKey) -> str:
    stat = path.stat()
    text = json.dumps(
        [str(path.resolve()), stat.st_size, stat.st_mtime_ns, asdict(key), VERSION],
        sort_keys=True,
    )
    return f"{path.stem}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def box_table(path: Path, key: TableKey, cache_dir: Path | None) -> BoxTable:
    """The file's table: from `cache_dir` when it was built before, else built (and kept)."""
    if cache_dir is None:
        return build(path, key)
    stem = str(Path(cache_dir) / _cache_name(path, key))
    meta_path = Path(f"{stem}.json")
    boxes_path, rejects_path = Path(f"{stem}.boxes.parquet"), Path(f"{stem}.rejects.parquet")
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        parts = {name: meta[name] for name in META}
        return BoxTable(pd.read_parquet(boxes_path), pd.read_parquet(rejects_path), **parts)
    table = build(path, key)
    write_parquet(table.boxes, boxes_path)
    write_parquet(table.rejects, rejects_path)
    meta = {name: getattr(table, name) for name in META}
    write_json({**meta, "file": str(path), "key": asdict(key)}, meta_path)  # written last
    log.info("%s: box table kept in %s for later reads", path, cache_dir)
    return table


def select(
    table: BoxTable,
    path: Path,
    categories: tuple[str, ...],
    bad_records: BadRecordSettings,
    rejects: RecordRejects | None,
) -> pd.DataFrame:
    """The rows of the experiment's categories; its bad records into `rejects` (those of other
    known categories counted, not listed); stop above `bad_records.max_fraction`."""
    wanted = set(wanted_categories({"categories": table.categories}, categories, path).values())
    concerns = table.rejects["category"].isin(wanted) | (table.rejects["category"] == "")
    rows = table.rejects[concerns].to_dict("records")  # the rows name their source
    bad = RecordRejects("", rows, Counter(table.counts), table.examples)
    bad.check(table.records, bad_records, str(path))
    if rejects is not None:
        rejects.extend(bad)
    return table.boxes[table.boxes["category"].isin(wanted)].reset_index(drop=True)
