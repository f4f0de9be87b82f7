"""COCO-format detection datasets: real COCO (any split), the synthetic demo set, user datasets.

`read_boxes` turns an instances JSON into rows of the boxes table. Whole-file defects stop with
the file named (`load_instances`); every image entry and annotation is checked on its own
(`check_records`), and a bad one is skipped and listed as a reject naming the file and record.
`download_annotations` and `coco_boxes` fetch COCO's annotation archive and only the images that
hold the experiment's category; with `local_dir` nothing is fetched and nothing there is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.archive import safe_extract
from pipeline.boxes import canonical_category, normalise
from pipeline.download import DownloadJob, DownloadSettings, fetch, fetch_unless_local
from pipeline.records import BadRecordSettings, RecordRejects
from pipeline.schema import SOURCES, schema_defaults
from pipeline.sources.coco_records import (  # noqa: F401 (the reader's API, used by tests)
    DOWNLOADED,
    CocoFormatError,
    ImageRules,
    load_instances,
    wanted_categories,
)
from pipeline.sources.coco_table import TableKey, box_table, select

log = logging.getLogger(__name__)
DEFAULT_BAD_RECORDS = BadRecordSettings()


@dataclass(frozen=True)
@schema_defaults(f"{SOURCES}/coco")
class CocoSettings:
    annotations_url: str
    annotations_sha256: str | None
    image_base_url: str
    splits: tuple[str, ...]
    local_dir: str | None
    exif: str  # boxes refer to the image as displayed (apply) or stored


def read_boxes(
    instances: Path,
    *,
    image_dir: Path,
    categories: tuple[str, ...],
    source: str,
    split: str,
    image_url: str = "",
    rejects: RecordRejects | None = None,
    bad_records: BadRecordSettings = DEFAULT_BAD_RECORDS,
    box_prefix: str | None = None,
    cache_dir: Path | None = None,
    rules: ImageRules = DOWNLOADED,
) -> pd.DataFrame:
    """Rows of the boxes table for the named categories of one instances JSON.

    `image_dir` holds the images by `file_name`; `image_url`, if given, is formatted with
    `file_name` and `split` to give each row's URL. Boxes are clipped to the image. Bad records
    are skipped into `rejects`; more than `bad_records.max_fraction` of them stop the read.
    Box ids are `{box_prefix}{image_id}:{annotation_id}` (prefix default `{source}:`). With a
    `cache_dir`, the file is read once and its table of all boxes kept there (coco_table).
    `rules` say how image entries may name and size their files (coco_records.ImageRules).
    """
    prefix = f"{source}:" if box_prefix is None else box_prefix
    key = TableKey(str(image_dir), source, split, image_url, prefix, rules)
    table = box_table(Path(instances), key, cache_dir)
    rows = select(table, Path(instances), categories, bad_records, rejects)
    log.info(
        "%s: %d boxes of %s in %d images, %d bad records",
        instances,
        len(rows),
        sorted({canonical_category(c) for c in categories}),
        rows["image_id"].nunique(),
        sum(table.counts.values()),
    )
    return rows


def download_annotations(
    settings: CocoSettings, *, download: DownloadSettings, archive: Path, outputs: dict[str, Path]
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
    *,
    instances: dict[str, Path],
    image_root: Path,
    categories: tuple[str, ...],
    download: DownloadSettings,
    failures: Path,
    bad_records: BadRecordSettings,
    tables: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All boxes of the categories over the configured splits, and the bad records.

    Images are fetched into `image_root/{split}/` unless `local_dir` is set: then they are read
    where they are, and one that is missing becomes a `missing_image` reject of the crop stage.
    """
    rejects = RecordRejects("coco")
    parts = [
        read_boxes(
            instances[split],
            image_dir=image_root / split,
            categories=categories,
            source="coco",
            split=split,
            image_url=f"{settings.image_base_url.rstrip('/')}/{{split}}/{{file_name}}",
            rejects=rejects,
            bad_records=bad_records,
            cache_dir=tables,
        )
        for split in settings.splits
    ]
    boxes = normalise(pd.concat(parts, ignore_index=True))
    boxes = fetch_unless_local(
        boxes,
        source=settings,
        download=download,
        failures=failures,
        desc="COCO images",
    )
    return boxes, rejects.frame()
