"""Shards: packing, stable holdout, byte-identical rebuilds, and the batch sampler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.boxes import merge_boxes, normalise, validate_boxes
from pipeline.config import ShardSettings
from pipeline.shards import BatchSampler, holdout_mask, load_split, write_shards

SIZE = 16


def make_crops(root: Path, count: int = 40) -> Path:
    """`count` crop PNGs whose pixels encode their index, and their crops table."""
    (root / "crops").mkdir(parents=True)
    rows = []
    for i in range(count):
        cid = f"src_{i:03d}"
        pixels = np.full((SIZE, SIZE, 3), i * 5 % 256, dtype=np.uint8)
        pixels[0, 0] = (i, 255 - i, 7)
        Image.fromarray(pixels).save(root / "crops" / f"{cid}.png")
        rows.append(
            {"crop_id": cid, "source": "src", "category": "thing", "path": f"crops/{cid}.png"}
        )
    pd.DataFrame(rows).to_parquet(root / "crops.parquet")
    return root / "crops.parquet"


SETTINGS = ShardSettings(holdout_fraction=0.25, shard_size=16)


def build(root: Path, table: Path, seed: int = 0):
    return write_shards(pd.read_parquet(table), table.parent, root, SETTINGS, SIZE, seed)


def test_manifest_counts_and_index_point_at_the_right_pixels(tmp_path):
    table = make_crops(tmp_path / "c")
    manifest = build(tmp_path / "shards", table)
    counts = manifest["counts"]
    assert counts["train"] + counts["holdout"] == 40 and 3 <= counts["holdout"] <= 18
    assert sum(f["count"] for f in manifest["files"].values()) == 40
    assert all(f["count"] <= 16 for f in manifest["files"].values())
    assert json.loads((tmp_path / "shards/manifest.json").read_text()) == manifest
    index = pd.read_parquet(tmp_path / "shards/index.parquet")
    for row in index.itertuples():
        pixels = np.load(tmp_path / "shards" / row.shard)[row.offset]
        i = int(row.crop_id.split("_")[1])
        assert tuple(pixels[0, 0]) == (i, 255 - i, 7)


def test_holdout_is_stable_when_crops_are_removed(tmp_path):
    ids = pd.Series([f"c{i}" for i in range(200)])
    full = holdout_mask(ids, 0.2, seed=1)
    fewer = holdout_mask(ids.drop(index=range(0, 200, 3)).reset_index(drop=True), 0.2, seed=1)
    assert (full[[i for i in range(200) if i % 3]] == fewer).all()
    assert 20 <= full.sum() <= 60
    assert (holdout_mask(ids, 0.2, seed=2) != full).any()


def test_same_crops_give_byte_identical_shards(tmp_path):
    table = make_crops(tmp_path / "c")
    build(tmp_path / "a", table)
    build(tmp_path / "b", table)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_load_split_returns_the_crops_channels_first(tmp_path):
    table = make_crops(tmp_path / "c")
    manifest = build(tmp_path / "shards", table)
    train = load_split(tmp_path / "shards", "train", verify=True)
    assert train.dtype == torch.uint8 and train.shape == (
        manifest["counts"]["train"],
        3,
        SIZE,
        SIZE,
    )
    index = pd.read_parquet(tmp_path / "shards/index.parquet")
    first = index[index["split"] == "train"].iloc[0]
    png = np.array(Image.open(tmp_path / "c" / "crops" / f"{first.crop_id}.png"))
    assert torch.equal(train[0], torch.from_numpy(png).permute(2, 0, 1))


def test_a_crop_of_the_wrong_size_is_named(tmp_path):
    table = make_crops(tmp_path / "c", count=4)
    Image.new("RGB", (SIZE + 1, SIZE)).save(tmp_path / "c/crops/src_002.png")
    with pytest.raises(ValueError, match="src_002.png"):
        build(tmp_path / "shards", table)
    assert not (tmp_path / "shards").exists()


def test_a_tampered_shard_is_caught(tmp_path):
    table = make_crops(tmp_path / "c")
    build(tmp_path / "shards", table)
    shard = next((tmp_path / "shards").glob("train-*.npy"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        load_split(tmp_path / "shards", "train", verify=True)


def test_batch_sampler_is_seeded_resumable_and_scaled():
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    images[:, :, :, 0] = 0
    images[:, :, :, -1] = 255
    a, b = BatchSampler(images, 10, seed=4), BatchSampler(images, 10, seed=4)
    first = a()
    assert first.shape == (10, 3, 8, 8) and first.dtype == torch.float32
    assert first.min() >= -1 and first.max() <= 1
    assert torch.equal(first, b())
    state = a.state_dict()
    expected = a()
    c = BatchSampler(images, 10, seed=99)
    c.load_state_dict(state)
    assert torch.equal(c(), expected)
    left = torch.cat([a()[:, :, :, 0] for _ in range(20)])
    assert set(left.unique().tolist()) == {-1.0, 1.0}  # some images flipped, some not
    assert images[:, :, :, 0].max() == 0  # the data itself is untouched


def test_boxes_table_contract(tmp_path):
    rows = [
        {
            "box_id": "b:2",
            "source": "b",
            "x0": 0,
            "y0": 0,
            "x1": 1,
            "y1": 1,
            "image_width": 5,
            "image_height": 5,
        },
        {"box_id": "a:1", "source": "a", "x0": 0, "y0": 0, "x1": 2, "y1": 2, "is_crowd": True},
    ]
    frame = normalise(rows)
    assert frame["box_id"].tolist() == ["a:1", "b:2"]
    assert str(frame["x0"].dtype) == "float64" and frame["is_truncated"].isna().all()
    frame.iloc[[0]].to_parquet(tmp_path / "a.parquet")
    frame.iloc[[1]].to_parquet(tmp_path / "b.parquet")
    merged = merge_boxes([tmp_path / "b.parquet", tmp_path / "a.parquet"], tmp_path / "all.parquet")
    assert merged["box_id"].tolist() == ["a:1", "b:2"]
    with pytest.raises(ValueError, match="origin.*duplicate box_id 'a:1'"):
        validate_boxes(pd.concat([frame, frame.iloc[[0]]]), "origin")
    bad = frame.copy()
    bad.loc[1, "x1"] = float("inf")
    with pytest.raises(ValueError, match="origin.*'b:2'.*non-finite"):
        validate_boxes(bad, "origin")
