"""CelebA aligned-and-cropped faces: archive and lists verified by MD5, a centre crop per face.

The boxes of `list_bbox_celeba.txt` refer to the in-the-wild images, not the aligned ones, so the
box of each aligned image is the standard centre crop (`center_crop`, 108 in the DCGAN papers).
Faces can be chosen by attribute (`{Smiling: true}`) and by partition; only the chosen images are
extracted from the archive (into downloads_dir). A user who has the files sets `local_dir`: they are
read in place, MD5-checked, and nothing is downloaded or written there.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from PIL import Image

from pipeline.archive import safe_extract
from pipeline.boxes import normalise
from pipeline.download import DownloadJob, DownloadSettings, fetch, hosts_of
from pipeline.local import local_file
from pipeline.records import rejects_frame
from pipeline.schema import SOURCES, schema_defaults

log = logging.getLogger(__name__)
PARTITIONS = {0: "train", 1: "valid", 2: "test"}
ARCHIVE = "img_align_celeba.zip"


@dataclass(frozen=True)
@schema_defaults(f"{SOURCES}/celeba")
class CelebASettings:
    url_template: str
    local_dir: str | None
    files: dict
    center_crop: int
    attributes: dict
    partitions: tuple[str, ...]
    max_images: int | None
    exif: str  # boxes refer to the image as displayed (apply) or stored


class CelebAFormatError(ValueError):
    """A CelebA list file that breaks the format; the message names the file and line."""


def fetch_files(
    settings: CelebASettings, download: DownloadSettings, folder: Path, mismatch: str = "refuse"
) -> dict[str, Path]:
    """Each configured file in `folder`: read in place when `local_dir` is set (then `folder` is
    it), else downloaded there.

    Local files are checked against their MD5 and never written, moved or deleted; a mismatch is
    reported and then used or refused as `mismatch` says."""
    if settings.local_dir:
        return {
            name: local_file(folder / name, info.get("md5"), mismatch, "CelebA")
            for name, info in settings.files.items()
        }
    paths = {}
    for name, info in settings.files.items():
        url = settings.url_template.format(drive_id=info["drive_id"], name=name)
        allowed = replace(download, allowed_hosts=hosts_of(url))
        result = fetch(DownloadJob(url, folder / name, md5=info.get("md5")), allowed)
        if not result.ok:
            hint = (
                " Google Drive often refuses large files: download them by hand and set local_dir."
                if "drive.google" in url
                else ""
            )
            raise RuntimeError(f"CelebA {name} ({url}): {result.reason}.{hint}")
        paths[name] = folder / name
    return paths


def read_partitions(path: Path) -> dict[str, str]:
    parts = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) not in PARTITIONS:
            raise CelebAFormatError(
                f"{path}: line {number}: expected '<file> <0|1|2>', got {line!r}"
            )
        parts[fields[0]] = PARTITIONS[int(fields[1])]
    return parts


def read_attributes(path: Path) -> pd.DataFrame:
    """The attribute table: one row per image file, one boolean column per attribute."""
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise CelebAFormatError(
            f"{path}: line 1 must be the image count, then a header of attribute names"
        )
    names = lines[1].split()
    rows = {}
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise CelebAFormatError(
                f"{path}: line {number}: expected a file name and {len(names)} values of 1/-1"
            )
        rows[fields[0]] = [v == "1" for v in fields[1:]]
    if len(rows) != int(lines[0]):
        log.warning("%s: header says %s images, found %d", path, lines[0].strip(), len(rows))
    return pd.DataFrame.from_dict(rows, orient="index", columns=names)


def choose(
    settings: CelebASettings, attributes: pd.DataFrame, partitions: dict[str, str]
) -> list[str]:
    unknown = sorted(set(settings.attributes) - set(attributes.columns))
    if unknown:
        raise CelebAFormatError(
            f"CelebA has no attribute(s) {unknown}; it has {list(attributes.columns)}"
        )
    keep = pd.Series(True, index=attributes.index)
    for name, wanted in settings.attributes.items():
        keep &= attributes[name] == wanted
    chosen = [f for f in attributes.index[keep] if partitions.get(f) in settings.partitions]
    return sorted(chosen)[: settings.max_images] if settings.max_images else sorted(chosen)


def celeba_boxes(
    settings: CelebASettings,
    *,
    download: DownloadSettings,
    folder: Path,
    image_root: Path,
    mismatch: str = "refuse",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chosen faces, extracted from the archive into `image_root` (never into local_dir),
    and (as every source) its bad records: none, a file that does not match stops it."""
    files = fetch_files(settings, download, folder, mismatch)
    partitions = read_partitions(files["list_eval_partition.txt"])
    attributes = read_attributes(files["list_attr_celeba.txt"])
    chosen = choose(settings, attributes, partitions)
    with zipfile.ZipFile(files[ARCHIVE]) as archive:
        members = {Path(n).name: n for n in archive.namelist() if n.lower().endswith(".jpg")}
    missing = [f for f in chosen if f not in members]
    if missing:
        raise CelebAFormatError(
            f"{files[ARCHIVE]}: lacks {len(missing)} listed images, e.g. {missing[:3]}"
        )
    paths = safe_extract(files[ARCHIVE], image_root, [members[f] for f in chosen])
    rows = []
    for name, path in zip(chosen, paths, strict=True):
        with Image.open(path) as image:
            width, height = image.size
        side = min(settings.center_crop, width, height)
        x0, y0 = (width - side) / 2, (height - side) / 2
        rows.append(
            {
                "box_id": f"celeba:{Path(name).stem}",
                "source": "celeba",
                "image_id": Path(name).stem,
                "image_path": str(path),
                "image_url": "",
                "image_width": width,
                "image_height": height,
                "category": "face",
                "x0": x0,
                "y0": y0,
                "x1": x0 + side,
                "y1": y0 + side,
                "split": partitions[name],
            }
        )
    log.info(
        "CelebA: %d faces (attributes %s, partitions %s)",
        len(rows),
        settings.attributes,
        list(settings.partitions),
    )
    return normalise(rows), rejects_frame([])
