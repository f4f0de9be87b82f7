"""Images the crop stage could not use: counted against a limit, like failed downloads.

A missing, unreadable or wrongly sized image costs its boxes. A few such images are listed as
rejects and the stage goes on; more than `bad_images.max_fraction` of the images, or no crop at
all, stop it with the folder it looked in, the count, the first paths and the likely fix, so a
wrong `images:` folder fails here and not as an empty training set much later.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.schema import schema_defaults

IMAGE_PROBLEMS = ("missing_image", "unreadable_image", "size_mismatch")
SHOWN = 5  # paths shown per source when the stage stops
# Where each built-in source's images are looked for; a named dataset's come from `images:`.
LAYOUTS = {
    "coco": "sources.coco.local_dir must hold the images as {split}/{file_name} "
    "(train2017/000000000139.jpg) beside annotations/",
    "visual_genome": "sources.visual_genome.local_dir must hold VG_100K/ and VG_100K_2/ with "
    "the images by id",
    "openimages": "sources.openimages.local_dir must hold images/{split}/{ImageID}.jpg",
    "celeba": "the faces are extracted from img_align_celeba.zip into downloads_dir: rerun "
    "celeba_boxes (snakemake --forcerun celeba_boxes)",
    "ffhq": "sources.ffhq.local_dir must hold the images by ffhq-dataset-v2.json's file_path",
}


@dataclass(frozen=True)
@schema_defaults("#/properties/bad_images")
class BadImageSettings:
    max_fraction: float


class BadImagesError(ValueError):
    """Too many unusable images, or no crop at all; the message says where and why."""


@dataclass(frozen=True)
class ImageProblem:
    source: str
    path: str
    reason: str


def hint(source: str) -> str:
    """The likely fix when a source's images are not where they were looked for."""
    if source in LAYOUTS:
        return LAYOUTS[source]
    if source == "synthetic":
        return "the generated dataset lost files: rerun it (snakemake --forcerun synthetic_dataset)"
    return (
        f"sources.{source}.images must be the folder that holds the images by their file_name "
        "(unset: the folder of the annotation file); absolute file names are used as they are"
    )


def found_elsewhere(folder: str, name: str, depth: int = 2, limit: int = 2000) -> str | None:
    """A folder at most `depth` levels below `folder` that holds a file called `name` (the
    first of at most `limit` folders looked at), or None."""
    root = Path(folder)
    for seen, (current, dirs, files) in enumerate(os.walk(root), start=1):
        if name in files and Path(current) != root:
            return current
        if seen >= limit:
            return None
        if len(Path(current).relative_to(root).parts) >= depth:
            dirs.clear()
        dirs.sort()
    return None


def _by_source(problems: list[ImageProblem]) -> list[str]:
    lines = []
    groups: dict[str, list[ImageProblem]] = defaultdict(list)
    for problem in problems:
        groups[problem.source].append(problem)
    for source, found in sorted(groups.items()):
        reasons = Counter(p.reason for p in found)
        folder = os.path.commonpath([os.path.dirname(p.path) or "." for p in found])
        counts = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
        lines.append(f"  source {source!r}: {len(found)} images ({counts}), looked in {folder}")
        lines.extend(f"    {p.path} ({p.reason})" for p in found[:SHOWN])
        if reasons["missing_image"]:
            missing = next(p for p in found if p.reason == "missing_image")
            there = found_elsewhere(folder, os.path.basename(missing.path))
            if there:
                lines.append(f"    {os.path.basename(missing.path)} is in {there}")
            lines.append(f"    fix: {hint(source)}")
    return lines


def check_images(
    problems: list[ImageProblem],
    images: int,
    crops: int,
    rejects: pd.DataFrame,
    settings: BadImageSettings,
) -> None:
    """Raise BadImagesError when more than `max_fraction` of `images` are unusable, or when
    there is no crop at all (then with the rejects by reason)."""
    fraction = len(problems) / max(images, 1)
    if problems and fraction > settings.max_fraction:
        head = (
            f"{len(problems)} of {images} images ({100 * fraction:.1f}%) could not be used, more "
            f"than bad_images.max_fraction {settings.max_fraction}:"
        )
        raise BadImagesError("\n".join([head, *_by_source(problems)]))
    if crops == 0 and rejects.empty:
        raise BadImagesError("no crop: the sources gave no box of the experiment's categories")
    if crops == 0:
        counts = rejects["reason"].value_counts()
        reasons = ", ".join(f"{r} {n}" for r, n in counts.items())
        lines = [f"no crop: every one of {len(rejects)} boxes was rejected ({reasons})"]
        for reason in counts.index[:SHOWN]:
            lines.append(
                f"  {reason}: {rejects.loc[rejects['reason'] == reason, 'detail'].iloc[0]}"
            )
        raise BadImagesError("\n".join([*lines, *_by_source(problems)]))
