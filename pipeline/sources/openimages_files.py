"""OpenImages' settings and where its metadata files go: all the workflow needs while it loads
(no pandas, no Pillow: this is read on every Snakemake call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.archive import safe_join


@dataclass(frozen=True)
class OpenImagesSettings:
    base_url: str = "https://storage.googleapis.com/openimages"
    classes_file: str = "v7/oidv7-class-descriptions-boxable.csv"
    boxes_files: dict = field(
        default_factory=lambda: {
            "train": "v6/oidv6-train-annotations-bbox.csv",
            "validation": "v5/validation-annotations-bbox.csv",
            "test": "v5/test-annotations-bbox.csv",
        }
    )
    images_files: dict = field(
        default_factory=lambda: {
            "train": "2018_04/train/train-images-boxable-with-rotation.csv",
            "validation": "2018_04/validation/validation-images-with-rotation.csv",
            "test": "2018_04/test/test-images-with-rotation.csv",
        }
    )
    splits: tuple[str, ...] = ("train", "validation", "test")
    image_base_url: str = "https://open-images-dataset.s3.amazonaws.com"
    local_dir: str | None = None
    chunk_rows: int = 250_000
    exif: str = "ignore"  # boxes refer to the image as displayed (apply) or stored


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
