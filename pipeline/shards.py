"""Training shards: accepted crops packed as uint8 NumPy arrays (the trainer's reader of them is
`pipeline/gan/data.py`; this module needs no torch, so the shard job never imports it).

Layout of `shards/` (documented in the README):
  train-00000.npy, ...     uint8 arrays of shape (n, size, size, 3), crops sorted by crop_id
  holdout-00000.npy, ...   the crops kept out of training (for evaluation)
  index.parquet            crop_id, split, shard, offset, source, category
  manifest.json            counts, image size, shard files with SHA-256, seed, settings hash

A crop goes to holdout when a seeded hash of its crop_id falls under holdout_fraction, so adding or
removing crops never moves the others. The same crops and settings give byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.config import ShardSettings, fingerprint
from pipeline.io import atomic_dir, file_digest, write_json, write_parquet
from pipeline.progress import progress

log = logging.getLogger(__name__)
SPLITS = ("train", "holdout")


def holdout_mask(crop_ids: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """True for crops kept out of training: a seeded hash of each id, stable under edits."""

    def unit(cid: str) -> float:
        digest = hashlib.sha256(f"{seed}:{cid}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return np.array([unit(c) < fraction for c in crop_ids], dtype=bool)


def _load_crop(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    if pixels.shape != (size, size, 3):
        raise ValueError(f"{path}: crop is {pixels.shape}, expected {(size, size, 3)}")
    return pixels


def read_exclusions(path: Path | None) -> set[str]:
    """Crop ids of an exclusions file: one per line, `#` starts a comment."""
    if path is None or not Path(path).exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines())
    return {line for line in lines if line}


def summary(decisions: pd.DataFrame, rejects: pd.DataFrame, excluded: set[str]) -> pd.DataFrame:
    """Crops and boxes per source and outcome: accepted, excluded, or the rejection reason."""
    outcome = decisions["reason"].where(~decisions["accepted"], "accepted")
    outcome = outcome.where(~decisions["crop_id"].isin(excluded), "excluded")
    rows = pd.concat(
        [
            pd.DataFrame({"source": decisions["source"], "outcome": outcome}),
            pd.DataFrame({"source": rejects["source"], "outcome": rejects["reason"]}),
        ]
    )
    table = rows.groupby(["outcome", "source"]).size().unstack("source", fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.sort_index()


def make_shards(
    decisions_table: Path,
    *,
    rejects_table: Path,
    exclusions: Path | None,
    crops_dir: Path,
    out_dir: Path,
    settings: ShardSettings,
    image_size: int,
    seed: int,
) -> dict:
    """The shard stage: the crops the filters accepted, less the user's exclusions, packed."""
    decisions = pd.read_parquet(decisions_table)
    excluded = read_exclusions(exclusions)
    unknown = excluded - set(decisions["crop_id"])
    if unknown:
        log.warning(
            "%s: %d crop ids are not crops of this experiment, e.g. %s",
            exclusions,
            len(unknown),
            sorted(unknown)[:3],
        )
    chosen = decisions[decisions["accepted"] & ~decisions["crop_id"].isin(excluded)]
    log.info(
        "shards: %d crops accepted by the filters, %d of them excluded by %s",
        int(decisions["accepted"].sum()),
        int(decisions["crop_id"].isin(excluded).sum()),
        exclusions,
    )
    table = summary(decisions, pd.read_parquet(rejects_table), excluded)
    return write_shards(
        chosen,
        crops_dir=crops_dir,
        out_dir=out_dir,
        settings=settings,
        image_size=image_size,
        seed=seed,
        extra={"summary.csv": table},
    )


def _write_shard(chunk: pd.DataFrame, *, crops_dir: Path, path: Path, image_size: int) -> dict:
    """One .npy shard of the chunk's crops, in order; its count and SHA-256."""
    pixels = np.stack(
        [
            _load_crop(crops_dir / p, image_size)
            for p in progress(chunk["path"], desc=path.name, unit="img")
        ]
    )
    np.save(path, pixels, allow_pickle=False)
    return {"count": len(chunk), "sha256": file_digest(path, "sha256")}


def _index_rows(chunk: pd.DataFrame, split: str, shard: str) -> list[dict]:
    """Where each crop of the chunk lies: its shard and offset, with its source and category."""
    columns = zip(chunk["crop_id"], chunk["source"], chunk["category"], strict=True)
    return [
        {"crop_id": c, "split": split, "shard": shard, "offset": i, "source": s, "category": k}
        for i, (c, s, k) in enumerate(columns)
    ]


def write_shards(
    crops: pd.DataFrame,
    *,
    crops_dir: Path,
    out_dir: Path,
    settings: ShardSettings,
    image_size: int,
    seed: int,
    extra: dict[str, pd.DataFrame] | None = None,
) -> dict:
    """Pack `crops` (paths relative to `crops_dir`) into `out_dir`; `extra` tables go beside."""
    crops = crops.sort_values("crop_id", ignore_index=True)
    crops["split"] = np.where(
        holdout_mask(crops["crop_id"], settings.holdout_fraction, seed), "holdout", "train"
    )
    rows, files = [], {}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            part = crops[crops["split"] == split].reset_index(drop=True)
            for start in range(0, len(part), settings.shard_size):
                chunk = part.iloc[start : start + settings.shard_size]
                name = f"{split}-{start // settings.shard_size:05d}.npy"
                files[name] = _write_shard(
                    chunk, crops_dir=crops_dir, path=tmp / name, image_size=image_size
                )
                rows += _index_rows(chunk, split, name)
        write_parquet(
            pd.DataFrame(
                rows, columns=["crop_id", "split", "shard", "offset", "source", "category"]
            ),
            tmp / "index.parquet",
        )
        manifest = {
            "image_size": image_size,
            "seed": seed,
            "counts": {s: int((crops["split"] == s).sum()) for s in SPLITS},
            "files": files,
            "settings": asdict(settings),
            "settings_hash": fingerprint(settings, image_size, seed),
            "crops_hash": fingerprint(sorted(crops["crop_id"])),
        }
        write_json(manifest, tmp / "manifest.json")
        for name, frame in (extra or {}).items():
            frame.to_csv(tmp / name)
    log.info(
        "shards: %s train, %s holdout crops of %d px -> %s",
        manifest["counts"]["train"],
        manifest["counts"]["holdout"],
        image_size,
        out_dir,
    )
    return manifest


def write_arrays(
    out_dir: Path,
    *,
    splits: dict[str, np.ndarray | list[np.ndarray]],
    seed: int = 0,
    index: pd.DataFrame | None = None,
) -> dict:
    """Shards from uint8 arrays (n, size, size, 3) already in memory, laid out as `write_shards`
    lays them out (files with their SHA-256, index.parquet, manifest.json): for tests, benchmarks
    and subsets. A split given as a list of arrays gets one file each. `index`: the rows of
    index.parquet; by default one a crop, `{split}-{offset}` ids, no source or category."""
    files, rows, counts, size = {}, [], {}, None
    with atomic_dir(out_dir) as tmp:
        for split, arrays in splits.items():
            arrays = arrays if isinstance(arrays, list) else [arrays]
            counts[split] = sum(len(a) for a in arrays)
            for number, array in enumerate(arrays):
                size = array.shape[1]
                name = f"{split}-{number:05d}.npy"
                np.save(tmp / name, np.ascontiguousarray(array, dtype=np.uint8))
                files[name] = {"count": len(array), "sha256": file_digest(tmp / name, "sha256")}
                rows += [
                    {"crop_id": f"{name[:-4]}-{i}", "split": split, "shard": name, "offset": i,
                     "source": "", "category": ""}
                    for i in range(len(array))
                ]  # fmt: skip
        write_parquet(pd.DataFrame(rows) if index is None else index, tmp / "index.parquet")
        manifest = {
            "image_size": size,
            "seed": seed,
            "counts": {split: counts.get(split, 0) for split in SPLITS},
            "files": files,
            "settings_hash": fingerprint(sorted(files), seed),
        }
        write_json(manifest, tmp / "manifest.json")
    return manifest


def read_manifest(shards_dir: Path) -> dict:
    path = Path(shards_dir) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the shard manifest: {err}") from err
