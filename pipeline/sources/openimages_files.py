"""OpenImages' settings and where its metadata files go: all the workflow needs while it loads
(no pandas, no Pillow: this is read on every Snakemake call)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.archive import safe_join
from pipeline.schema import SOURCES, schema_defaults


@dataclass(frozen=True)
@schema_defaults(f"{SOURCES}/openimages")
class OpenImagesSettings:
    base_url: str
    classes_file: str
    boxes_files: dict
    images_files: dict
    splits: tuple[str, ...]
    image_base_url: str
    local_dir: str | None
    chunk_rows: int
    exif: str  # boxes refer to the image as displayed (apply) or stored


def metadata_relpaths(settings: OpenImagesSettings) -> dict[str, str]:
    """Path of each metadata file under base_url, keyed 'classes', 'boxes_{split}', 'images_{split}'."""
    files = {"classes": settings.classes_file}
    for split in settings.splits:
        files[f"boxes_{split}"] = settings.boxes_files[split]
        files[f"images_{split}"] = settings.images_files[split]
    return files


def metadata_files(settings: OpenImagesSettings, folder: Path) -> dict[str, Path]:
    """Local path of each metadata file, same keys as `metadata_relpaths`."""
    return {key: safe_join(folder, rel) for key, rel in metadata_relpaths(settings).items()}
