"""The boxes table: one row per box, the same columns from every source.

Coordinates are pixels of the image file as stored (what a decoder returns, no EXIF turn); where
a source says the stored image must be turned to stand upright, `rotation` holds the degrees
(counter-clockwise) and the crop stage turns each crop.

Every source module produces rows of this table (see `empty_boxes` / `validate_boxes`); the crop
stage reads only this table and never needs to know which source a row came from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.io import write_parquet
from pipeline.records import rejects_frame

log = logging.getLogger(__name__)

# Column -> pyarrow type. Flags are nullable booleans: None where a source has no such flag.
SCHEMA = pa.schema(
    [
        ("box_id", pa.string()),
        ("source", pa.string()),
        ("image_id", pa.string()),
        ("image_path", pa.string()),
        ("image_url", pa.string()),
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("category", pa.string()),
        ("x0", pa.float64()),
        ("y0", pa.float64()),
        ("x1", pa.float64()),
        ("y1", pa.float64()),
        ("is_crowd", pa.bool_()),
        ("is_group", pa.bool_()),
        ("is_truncated", pa.bool_()),
        ("is_occluded", pa.bool_()),
        ("is_depiction", pa.bool_()),
        ("split", pa.string()),
        # degrees counter-clockwise (0, 90, 180, 270) that turn the crop upright (OpenImages)
        ("rotation", pa.int16()),
    ]
)
COLUMNS = SCHEMA.names
FLAGS = ["is_crowd", "is_group", "is_truncated", "is_occluded", "is_depiction"]


def canonical_category(name: str) -> str:
    """The one form a category takes in every table: lower case, single spaces ('Teddy  Bear'
    -> 'teddy bear'). Sources match names in this form, so matching is case-insensitive."""
    return " ".join(str(name).lower().split())


def empty_boxes() -> pd.DataFrame:
    return SCHEMA.empty_table().to_pandas()


def normalise(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """Rows -> a DataFrame with exactly the table's columns, types and a stable order."""
    frame = pd.DataFrame(rows)
    for name in COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    table = pa.Table.from_pandas(frame[COLUMNS], schema=SCHEMA, preserve_index=False)
    return table.to_pandas().sort_values("box_id", kind="stable").reset_index(drop=True)


def validate_boxes(frame: pd.DataFrame, origin: str) -> None:
    """Raise a ValueError naming `origin` and the box for rows that break the table's contract."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{origin}: boxes table lacks columns {missing}")
    dup = frame["box_id"][frame["box_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{origin}: duplicate box_id {dup.iloc[0]!r}")
    coords = frame[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{origin}: box {frame['box_id'].iloc[int(np.argmax(bad))]!r} has non-finite coordinates"
        )


def merge_rejects(parts: Sequence[Path], *, output: Path) -> pd.DataFrame:
    """Concatenate the sources' bad records (rejects-table rows) of an experiment."""
    frames = [pd.read_parquet(path) for path in parts]
    merged = rejects_frame(pd.concat(frames, ignore_index=True) if frames else [])
    write_parquet(merged, output)
    if len(merged):
        counts = merged.groupby(["source", "reason"]).size()
        log.info("bad records skipped per source and reason:\n%s", counts.to_string())
    return merged


def merge_boxes(parts: Sequence[Path], *, output: Path) -> pd.DataFrame:
    """Concatenate the per-source tables of an experiment into one boxes table."""
    frames = []
    for path in parts:
        frame = pd.read_parquet(path)
        validate_boxes(frame, str(path))
        log.info("%s: %d boxes", path, len(frame))
        frames.append(frame)
    merged = normalise(pd.concat(frames, ignore_index=True) if frames else empty_boxes())
    validate_boxes(merged, "merged boxes")
    write_parquet(merged, output)
    counts = merged.groupby(["source", "category"]).size()
    log.info("boxes per source and category:\n%s", counts.to_string() if len(counts) else "none")
    return merged
