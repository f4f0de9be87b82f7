"""Filters that catch bad crops. Each is a small function: a crop's record -> reason or None.

Scores that need pixels (sharpness, contrast, colourfulness, perceptual hash) are measured once,
on the final crop, by the crop stage (`pipeline/image_scores.py`); the filter stage only compares
them with the experiment's thresholds, so changing a threshold reruns the filters, never the
cropping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io import atomic_dir, write_parquet
from pipeline.schema import EXPERIMENT, schema_defaults
from pipeline.sheets import contact_sheet

log = logging.getLogger(__name__)

FLAG_REASONS = {
    "group": "is_group",
    "depiction": "is_depiction",
    "truncated": "is_truncated",
    "occluded": "is_occluded",
}
REASONS = {
    "aspect": "box aspect ratio (w/h) outside [min_aspect, max_aspect] before squaring",
    "group": "source marks the box as a group of objects",
    "depiction": "source marks the object as a depiction (drawing, statue, toy)",
    "truncated": "source marks the object as truncated",
    "occluded": "source marks the object as occluded",
    "border": "box touches the image border (object cut by the frame)",
    "blurry": "variance of the Laplacian below min_sharpness",
    "uniform": "crop nearly uniform (largest per-channel std below min_contrast)",
    "grayscale": "grayscale crop in a colour experiment",
    "duplicate": "near-duplicate of another crop (perceptual hash within duplicate_distance bits)",
}


@dataclass(frozen=True)
@schema_defaults(f"{EXPERIMENT}/filters")
class FilterSettings:
    min_aspect: float
    max_aspect: float
    reject_flags: tuple[str, ...]
    reject_border: bool
    border_margin: float
    min_sharpness: float
    min_contrast: float
    reject_grayscale: bool
    grayscale_tolerance: float
    duplicate_distance: int


# --- the filters ------------------------------------------------------------------------------


def aspect(c: dict, settings: FilterSettings) -> str | None:
    w, h = c["x1"] - c["x0"], c["y1"] - c["y0"]
    return "aspect" if h <= 0 or not (settings.min_aspect <= w / h <= settings.max_aspect) else None


def flags(c: dict, settings: FilterSettings) -> str | None:
    return next((f for f in settings.reject_flags if c.get(FLAG_REASONS[f]) is True), None)


def border(c: dict, settings: FilterSettings) -> str | None:
    if not settings.reject_border:
        return None
    m = settings.border_margin
    cut = (
        c["x0"] <= m
        or c["y0"] <= m
        or c["x1"] >= c["image_width"] - m
        or c["y1"] >= c["image_height"] - m
    )
    return "border" if cut else None


def blurry(c: dict, settings: FilterSettings) -> str | None:
    return "blurry" if c["sharpness"] < settings.min_sharpness else None


def uniform(c: dict, settings: FilterSettings) -> str | None:
    return "uniform" if c["contrast"] < settings.min_contrast else None


def grayscale(c: dict, settings: FilterSettings) -> str | None:
    return (
        "grayscale"
        if settings.reject_grayscale and c["colourfulness"] < settings.grayscale_tolerance
        else None
    )


# Most specific first: a flat crop is also "blurry", but "uniform" says more.
FILTERS: list[Callable[[dict, FilterSettings], str | None]] = [
    aspect,
    flags,
    border,
    uniform,
    grayscale,
    blurry,
]


def hamming(a: np.ndarray, b: int) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(a.view(np.uint64), np.uint64(b & (2**64 - 1))))


def duplicates(
    crops: pd.DataFrame, distance: int, colour_tolerance: float = 12.0
) -> dict[str, str]:
    """crop_id -> the crop_id it duplicates: perceptual hashes within `distance` bits and colour
    thumbnails within `colour_tolerance` (mean absolute difference). The larger box is kept."""
    if distance < 0 or crops.empty:
        return {}
    order = crops.sort_values(["crop_side", "crop_id"], ascending=[False, True])
    ids, hashes = order["crop_id"].to_numpy(), order["phash"].to_numpy(np.int64)
    thumbs = np.stack([np.frombuffer(t, dtype=np.uint8) for t in order["thumb"]]).astype(np.int16)
    found: dict[str, str] = {}
    for i in range(len(ids)):
        if ids[i] in found:
            continue
        close = np.flatnonzero(hamming(hashes[i + 1 :], int(hashes[i])) <= distance) + i + 1
        for j in close:
            if np.abs(thumbs[j] - thumbs[i]).mean() <= colour_tolerance:
                found.setdefault(ids[j], ids[i])
    return found


def decide(crops: pd.DataFrame, boxes: pd.DataFrame, settings: FilterSettings) -> pd.DataFrame:
    """Every crop with `accepted`, `reason` and `detail`, after all filters."""
    flags_cols = ["box_id", "image_width", "image_height", *FLAG_REASONS.values()]
    table = crops.merge(boxes[flags_cols], on="box_id", how="left", validate="one_to_one")
    reasons = [
        next((r for f in FILTERS if (r := f(c, settings))), None) for c in table.to_dict("records")
    ]
    table["reason"], table["detail"] = reasons, ""
    passing = table[table["reason"].isna()]
    for dup, original in duplicates(passing, settings.duplicate_distance).items():
        table.loc[table["crop_id"] == dup, ["reason", "detail"]] = ["duplicate", original]
    table["accepted"] = table["reason"].isna()
    return table


def apply_filters(
    crops_table: Path,
    *,
    boxes_table: Path,
    crops_dir: Path,
    decisions_out: Path,
    sheets_dir: Path,
    settings: FilterSettings,
    per_sheet: int = 48,
) -> pd.DataFrame:
    """The filter stage: every crop with its scores and the decision in one table, and a contact
    sheet of the rejected crops per reason (`sheets_dir/rejected_{reason}.png`)."""
    table = decide(pd.read_parquet(crops_table), pd.read_parquet(boxes_table), settings)
    with atomic_dir(sheets_dir) as tmp:
        for reason, group in table[~table["accepted"]].groupby("reason"):
            sample = group.sort_values("crop_id").head(per_sheet)
            labels = [
                f"{c} {d}".strip() for c, d in zip(sample["crop_id"], sample["detail"], strict=True)
            ]
            title = f"{reason}: {len(group)} crops ({REASONS[reason]}); {len(sample)} shown"
            contact_sheet(
                [crops_dir / p for p in sample["path"]],
                labels=labels,
                path=tmp / f"rejected_{reason}.png",
                title=title,
            )
    write_parquet(table, decisions_out)
    log.info(
        "filters (%s): %d of %d crops accepted",
        asdict(settings),
        int(table["accepted"].sum()),
        len(table),
    )
    for reason, count in table["reason"].value_counts().items():
        log.info("  rejected %-10s %6d  (%s)", reason, count, REASONS[reason])
    return table
