"""FFHQ: the metadata JSON, then each 128 px thumbnail (or 1024 px image) verified by its MD5.

Each image is one face, aligned and cropped by the dataset: its box is the whole image. The first
60,000 are the training split, the last 10,000 validation. `local_dir` points at a folder that
already holds the JSON and the images by their `file_path`: they are read in place and checked
against their MD5s, nothing is downloaded or written there, and a missing or (by default)
mismatching image is a reject of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import ijson
import pandas as pd

from pipeline.archive import safe_join
from pipeline.boxes import normalise
from pipeline.download import DownloadJob, DownloadSettings, fetch, fetch_all, hosts_of
from pipeline.local import local_file
from pipeline.local import problem as local_problem
from pipeline.records import RecordRejects
from pipeline.schema import SOURCES, schema_defaults

log = logging.getLogger(__name__)
TRAIN_IMAGES = 60_000
METADATA = "ffhq-dataset-v2.json"


@dataclass(frozen=True)
@schema_defaults(f"{SOURCES}/ffhq")
class FFHQSettings:
    metadata_url: str
    metadata_md5: str | None
    local_dir: str | None
    resolution: str
    allowed_hosts: tuple[str, ...]
    max_images: int | None
    exif: str  # boxes refer to the image as displayed (apply) or stored


class FFHQFormatError(ValueError):
    """A metadata record that breaks the format; the message names the file and record."""


def fetch_metadata(
    settings: FFHQSettings, download: DownloadSettings, folder: Path, mismatch: str = "refuse"
) -> Path:
    """The metadata JSON in `folder`: local_dir's (checked, never replaced) or downloaded there."""
    if settings.local_dir:
        return local_file(folder / METADATA, settings.metadata_md5, mismatch, "FFHQ metadata")
    dest = folder / METADATA
    result = fetch(
        DownloadJob(settings.metadata_url, dest, md5=settings.metadata_md5),
        replace(download, allowed_hosts=hosts_of(settings.metadata_url)),
    )
    if not result.ok:
        raise RuntimeError(
            f"FFHQ metadata {settings.metadata_url}: {result.reason}. Drive quotas are common: set local_dir."
        )
    return dest


def read_entries(path: Path, settings: FFHQSettings, root: Path) -> list[dict]:
    """One record per image (index, url, local path, md5, size, pixel size), streaming the JSON."""
    entries = []
    with open(path, "rb") as handle:
        try:
            for key, entry in ijson.kvitems(handle, "", use_float=True):
                if settings.max_images and len(entries) >= settings.max_images:
                    break
                try:
                    info = entry[settings.resolution]
                    index = int(key)
                    width, height = info["pixel_size"]
                    entries.append(
                        {
                            "index": index,
                            "url": info["file_url"],
                            "md5": info["file_md5"],
                            "size": int(info["file_size"]),
                            "width": int(width),
                            "height": int(height),
                            "path": str(safe_join(root, info["file_path"])),
                        }
                    )
                except (KeyError, TypeError, ValueError) as err:
                    raise FFHQFormatError(
                        f"{path}: record {key!r}: {type(err).__name__}: {err}"
                    ) from err
        except ijson.JSONError as err:
            raise FFHQFormatError(f"{path}: not valid JSON: {err}") from err
    return entries


def _local_images(entries: list[dict], mismatch: str, rejects: RecordRejects) -> set[str]:
    """The local images that may be used; the others become rejects (nothing is touched)."""
    usable = set()
    for e in entries:
        image_id = f"{e['index']:05d}"
        found = local_problem(Path(e["path"]), e["md5"], mismatch, e["size"])
        if found:
            rejects.add(*found, f"ffhq:{image_id}", image_id, "face")
        else:
            usable.add(e["path"])
    return usable


def _fetched_images(
    entries: list[dict], settings: FFHQSettings, download: DownloadSettings, failures: Path
) -> set[str]:
    jobs = [DownloadJob(e["url"], Path(e["path"]), md5=e["md5"], size=e["size"]) for e in entries]
    results = fetch_all(
        jobs, replace(download, allowed_hosts=settings.allowed_hosts), failures, desc="FFHQ images"
    )
    return {str(r.job.dest) for r in results if r.ok}


def ffhq_boxes(
    settings: FFHQSettings,
    *,
    download: DownloadSettings,
    folder: Path,
    failures: Path,
    mismatch: str = "refuse",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One whole-image face box per usable image, and the images refused (local_dir only)."""
    metadata = fetch_metadata(settings, download, folder, mismatch)
    entries = read_entries(metadata, settings, folder)
    rejects = RecordRejects("ffhq")
    if settings.local_dir:
        ok = _local_images(entries, mismatch, rejects)
    else:
        ok = _fetched_images(entries, settings, download, failures)
    rows = [
        {
            "box_id": f"ffhq:{e['index']:05d}",
            "source": "ffhq",
            "image_id": f"{e['index']:05d}",
            "image_path": e["path"],
            "image_url": e["url"],
            "image_width": e["width"],
            "image_height": e["height"],
            "category": "face",
            "x0": 0.0,
            "y0": 0.0,
            "x1": float(e["width"]),
            "y1": float(e["height"]),
            "split": "train" if e["index"] < TRAIN_IMAGES else "validation",
        }
        for e in entries
        if e["path"] in ok
    ]
    log.info("FFHQ: %d faces of %d listed", len(rows), len(entries))
    return normalise(rows), rejects.frame()
