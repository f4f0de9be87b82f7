"""Shards: packing, stable holdout, byte-identical rebuilds, loading, and the batch sampler."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.config import ShardSettings, fingerprint
from pipeline.gan.data import BatchSampler, load_split
from pipeline.io import file_digest
from pipeline.shards import (
    holdout_mask,
    make_shards,
    read_exclusions,
    read_manifest,
    write_arrays,
    write_shards,
)

SIZE = 8
COUNT = 40
SETTINGS = ShardSettings(holdout_fraction=0.25, shard_size=8)


def crop_pixels(i: int) -> np.ndarray:
    """Distinct seeded pixels for crop i."""
    return np.random.default_rng(i).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def make_crops(root: Path, count: int = COUNT) -> pd.DataFrame:
    """`count` crop PNGs under `root/crops` and their crops table, in a shuffled order."""
    (root / "crops").mkdir(parents=True)
    rows = []
    for i in range(count):
        cid = f"src_{i:03d}"
        Image.fromarray(crop_pixels(i)).save(root / "crops" / f"{cid}.png")
        rows.append(
            {
                "crop_id": cid,
                "source": "coco" if i % 2 else "vg",
                "category": "thing",
                "split": "train2017",
                "path": f"{cid}.png",
            }
        )
    order = np.random.default_rng(99).permutation(count)
    return pd.DataFrame(rows).iloc[order].reset_index(drop=True)


def pack(crops: pd.DataFrame, root: Path, out: Path, settings=SETTINGS, seed: int = 0) -> dict:
    """write_shards of the crops made under `root` by make_crops."""
    return write_shards(
        crops, crops_dir=root / "crops", out_dir=out, settings=settings, image_size=SIZE, seed=seed
    )


def index_of(crop_id: str) -> int:
    return int(crop_id.split("_")[1])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    crops = make_crops(root / "c")
    manifest = pack(crops, root / "c", root / "shards")
    return root, crops, manifest


def test_manifest_counts_files_and_hashes(built):
    root, crops, manifest = built
    counts = manifest["counts"]
    assert counts["train"] + counts["holdout"] == COUNT
    expected_holdout = int(holdout_mask(crops["crop_id"], 0.25, 0).sum())
    assert counts["holdout"] == expected_holdout and 4 <= expected_holdout <= 18
    files = manifest["files"]
    for split in ("train", "holdout"):
        names = sorted(n for n in files if n.startswith(f"{split}-"))
        full, rest = divmod(counts[split], 8)
        assert names == [f"{split}-{k:05d}.npy" for k in range(full + (rest > 0))]
        assert [files[n]["count"] for n in names] == [8] * full + ([rest] if rest else [])
    for name, info in files.items():
        assert info["sha256"] == file_digest(root / "shards" / name, "sha256")
    assert manifest["image_size"] == SIZE and manifest["seed"] == 0
    assert manifest["settings"] == {"holdout_fraction": 0.25, "shard_size": 8}
    assert manifest["settings_hash"] == fingerprint(SETTINGS, SIZE, 0)
    assert manifest["crops_hash"] == fingerprint(sorted(crops["crop_id"]))
    assert json.loads((root / "shards/manifest.json").read_text()) == manifest
    assert read_manifest(root / "shards") == manifest
    assert sorted(p.name for p in (root / "shards").iterdir()) == sorted(
        [*files, "index.parquet", "manifest.json"]
    )
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folder


def test_holdout_follows_the_seeded_hash_of_each_crop_id(built):
    root, crops, _ = built
    index = pd.read_parquet(root / "shards/index.parquet").set_index("crop_id")
    mask = holdout_mask(crops["crop_id"], 0.25, 0)
    for cid, held in zip(crops["crop_id"], mask, strict=True):
        assert index.loc[cid, "split"] == ("holdout" if held else "train")


def test_index_offsets_point_at_the_right_pixels(built):
    root, _, _ = built
    index = pd.read_parquet(root / "shards/index.parquet")
    assert list(index.columns) == ["crop_id", "split", "shard", "offset", "source", "category"]
    assert sorted(index["crop_id"]) == [f"src_{i:03d}" for i in range(COUNT)]
    shards = {name: np.load(root / "shards" / name) for name in index["shard"].unique()}
    for row in index.itertuples():
        i = index_of(row.crop_id)
        assert np.array_equal(shards[row.shard][row.offset], crop_pixels(i)), row.crop_id
        assert row.source == ("coco" if i % 2 else "vg")
        assert row.shard.startswith(f"{row.split}-")
    for _split, part in index.groupby("split"):
        assert part["crop_id"].tolist() == sorted(part["crop_id"])  # sorted within a split
        assert [o for _, g in part.groupby("shard") for o in g["offset"]] == [
            k % 8 for k in range(len(part))
        ]


def test_removing_a_crop_leaves_the_other_splits_alone(built, tmp_path):
    root, crops, _ = built
    before = pd.read_parquet(root / "shards/index.parquet").set_index("crop_id")["split"]
    for gone in (before[before == "holdout"].index[0], before[before == "train"].index[0]):
        fewer = crops[crops["crop_id"] != gone]
        out = tmp_path / f"without_{gone}"
        manifest = pack(fewer, root / "c", out)
        after = pd.read_parquet(out / "index.parquet").set_index("crop_id")["split"]
        assert gone not in after.index and len(after) == COUNT - 1
        pd.testing.assert_series_equal(after.sort_index(), before.drop(gone).sort_index())
        assert manifest["counts"][before[gone]] == (before == before[gone]).sum() - 1


def test_another_seed_moves_some_crops(built, tmp_path):
    root, crops, _ = built
    pack(crops, root / "c", tmp_path / "s", seed=1)
    a = pd.read_parquet(root / "shards/index.parquet").set_index("crop_id")["split"].sort_index()
    b = pd.read_parquet(tmp_path / "s/index.parquet").set_index("crop_id")["split"].sort_index()
    assert (a != b).any()


def test_same_crops_give_byte_identical_shards_in_another_folder(built, tmp_path):
    root, crops, _ = built
    shuffled = crops.sample(frac=1.0, random_state=3)  # the table's row order does not matter
    pack(shuffled, root / "c", tmp_path / "again")
    names = sorted(p.name for p in (root / "shards").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    for name in names:
        assert (root / "shards" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


@pytest.mark.parametrize("split", ["train", "holdout"])
def test_load_split_returns_the_png_pixels_channels_first(built, split):
    root, _, manifest = built
    images = load_split(root / "shards", split, verify=True)
    assert images.dtype == torch.uint8
    assert tuple(images.shape) == (manifest["counts"][split], 3, SIZE, SIZE)
    index = pd.read_parquet(root / "shards/index.parquet")
    ids = index[index["split"] == split].sort_values(["shard", "offset"])["crop_id"]
    for k, cid in enumerate(ids):
        with Image.open(root / "c" / "crops" / f"{cid}.png") as image:
            png = np.array(image)
        assert torch.equal(images[k], torch.from_numpy(png).permute(2, 0, 1)), cid
    assert images.is_contiguous()


def test_an_empty_split_loads_as_an_empty_tensor(tmp_path):
    crops = make_crops(tmp_path / "c", count=3)
    none_held = dataclasses.replace(SETTINGS, holdout_fraction=0.0)
    manifest = pack(crops, tmp_path / "c", tmp_path / "s", settings=none_held)
    assert manifest["counts"] == {"train": 3, "holdout": 0}
    assert load_split(tmp_path / "s", "holdout").shape == (0, 3, SIZE, SIZE)
    assert load_split(tmp_path / "s", "train").shape == (3, 3, SIZE, SIZE)


def test_a_tampered_shard_is_caught_on_verify(built, tmp_path):
    root, crops, _ = built
    pack(crops, root / "c", tmp_path / "s")
    shard = tmp_path / "s" / "train-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert load_split(tmp_path / "s", "train").shape[0] > 0  # unverified: still loads
    with pytest.raises(ValueError, match=r"train-00000\.npy: SHA-256 differs"):
        load_split(tmp_path / "s", "train", verify=True)


def test_a_missing_manifest_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"manifest\.json: cannot read the shard manifest"):
        load_split(tmp_path, "train")


def test_a_crop_of_the_wrong_size_is_named_and_nothing_is_written(tmp_path):
    crops = make_crops(tmp_path / "c", count=4)
    out = tmp_path / "shards"
    pack(crops, tmp_path / "c", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    Image.new("RGB", (SIZE + 1, SIZE)).save(tmp_path / "c/crops/src_002.png")
    with pytest.raises(
        ValueError, match=r"src_002\.png: crop is \(8, 9, 3\), expected \(8, 8, 3\)"
    ):
        pack(crops, tmp_path / "c", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old shards stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "shards"]  # no temporary folder
    with pytest.raises(ValueError, match=r"src_002\.png"):
        pack(crops, tmp_path / "c", tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_a_grey_crop_is_packed_as_rgb(tmp_path):
    crops = make_crops(tmp_path / "c", count=2)
    Image.fromarray(np.full((SIZE, SIZE), 77, dtype=np.uint8)).save(
        tmp_path / "c/crops/src_001.png"
    )
    keep_all = dataclasses.replace(SETTINGS, holdout_fraction=0.0)
    pack(crops, tmp_path / "c", tmp_path / "s", settings=keep_all)
    images = load_split(tmp_path / "s", "train")
    assert (images[1] == 77).all() and torch.equal(
        images[0], torch.from_numpy(crop_pixels(0)).permute(2, 0, 1)
    )


def test_holdout_mask_edges():
    ids = pd.Series([f"c{i}" for i in range(300)])
    assert not holdout_mask(ids, 0.0, seed=1).any() and holdout_mask(ids, 1.0, seed=1).all()
    assert 30 <= holdout_mask(ids, 0.2, seed=1).sum() <= 90
    assert holdout_mask(pd.Series([], dtype=str), 0.5, seed=1).shape == (0,)
    # a crop's fate depends only on its own id and the seed
    assert holdout_mask(ids[5:6], 0.2, seed=1)[0] == holdout_mask(ids, 0.2, seed=1)[5]


# --- exclusions and the stage -------------------------------------------------------------------


def test_read_exclusions_ignores_comments_and_blank_lines(tmp_path):
    path = tmp_path / "exclusions.txt"
    path.write_text("# bad crops\nsrc_001\n\n  src_002  # blurry\n#src_003\n")
    assert read_exclusions(path) == {"src_001", "src_002"}
    assert read_exclusions(tmp_path / "absent.txt") == set()
    assert read_exclusions(None) == set()


def test_shards_stage_packs_accepted_crops_less_exclusions(tmp_path):
    crops = make_crops(tmp_path / "c", count=10).sort_values("crop_id", ignore_index=True)
    decisions = crops.assign(
        accepted=[i not in (3, 4) for i in range(10)],
        reason=[None, None, None, "blurry", "duplicate", None, None, None, None, None],
    )
    decisions.to_parquet(tmp_path / "decisions.parquet")
    rejects = pd.DataFrame(
        {
            "box_id": ["vg:1:1", "coco:2:2"],
            "source": ["vg", "coco"],
            "reason": ["crowd", "small_box"],
        }
    )
    rejects.to_parquet(tmp_path / "rejects.parquet")
    (tmp_path / "exclusions.txt").write_text("src_005\nsrc_006 # ugly\nnot_a_crop\n")
    manifest = make_shards(
        tmp_path / "decisions.parquet",
        rejects_table=tmp_path / "rejects.parquet",
        exclusions=tmp_path / "exclusions.txt",
        crops_dir=tmp_path / "c" / "crops",
        out_dir=tmp_path / "shards",
        settings=SETTINGS,
        image_size=SIZE,
        seed=0,
    )
    packed = sorted(pd.read_parquet(tmp_path / "shards/index.parquet")["crop_id"])
    assert packed == [f"src_{i:03d}" for i in (0, 1, 2, 7, 8, 9)]
    assert manifest["counts"]["train"] + manifest["counts"]["holdout"] == 6
    summary = pd.read_csv(tmp_path / "shards/summary.csv", index_col="outcome")
    assert summary.to_dict("index") == {
        "accepted": {"coco": 3, "vg": 3, "total": 6},
        "blurry": {"coco": 1, "vg": 0, "total": 1},
        "crowd": {"coco": 0, "vg": 1, "total": 1},
        "duplicate": {"coco": 0, "vg": 1, "total": 1},
        "excluded": {"coco": 1, "vg": 1, "total": 2},
        "small_box": {"coco": 1, "vg": 0, "total": 1},
    }


# --- the batch sampler --------------------------------------------------------------------------


@pytest.fixture
def images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (30, 3, 6, 6), dtype=torch.uint8, generator=gen)
    data[:, :, :, 0] = 0  # left column black, right column white: a flip shows
    data[:, :, :, -1] = 255
    return data


def scaled(data: torch.Tensor) -> torch.Tensor:
    return data.float() / 127.5 - 1.0


def test_batches_are_floats_in_minus_one_to_one_of_the_right_shape(images):
    batch = BatchSampler(images, 12, seed=4, hflip=False)()
    assert batch.shape == (12, 3, 6, 6) and batch.dtype == torch.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    assert (batch[:, :, :, 0] == -1.0).all() and (batch[:, :, :, -1] == 1.0).all()
    table = scaled(images)
    for item in batch:  # every item is exactly one of the images, scaled
        assert any(torch.allclose(item, t, atol=1e-6) for t in table)


def test_flips_are_mirror_images_and_the_data_is_untouched(images):
    copy = images.clone()
    sampler = BatchSampler(images, 16, seed=5, hflip=True)
    table = scaled(images)
    flipped = 0
    for _ in range(4):
        for item in sampler():
            plain = any(torch.allclose(item, t, atol=1e-6) for t in table)
            mirror = any(torch.allclose(item, t.flip(2), atol=1e-6) for t in table)
            assert plain or mirror
            flipped += mirror and not plain
    assert 10 <= flipped <= 54  # about half of 64
    assert torch.equal(images, copy)


def test_the_sampler_is_deterministic_for_a_seed(images):
    a, b, c = (BatchSampler(images, 8, seed=s) for s in (4, 4, 5))
    first_a, first_b, first_c = a(), b(), c()
    assert torch.equal(first_a, first_b) and not torch.equal(first_a, first_c)
    assert torch.equal(a(), b())
    assert not torch.equal(a(), first_a)  # a new batch each call


def test_every_crop_is_drawn_about_equally_often(images):
    """Uniform draws over the whole split, not the same crops again: 150 batches of 8 from 30
    crops, 40 draws of each on average (standard deviation about 6)."""
    sampler = BatchSampler(images, 8, seed=6, hflip=False)
    table = scaled(images)
    counts = torch.zeros(len(images))
    for _ in range(150):
        for item in sampler():
            counts[(table - item).abs().flatten(1).amax(dim=1).argmin()] += 1
    assert counts.sum() == 1200
    assert counts.min() >= 15 and counts.max() <= 70


def test_saved_state_reproduces_the_next_batches(images, tmp_path):
    sampler = BatchSampler(images, 8, seed=4)
    for _ in range(3):
        sampler()
    torch.save({"sampler": sampler.state_dict()}, tmp_path / "checkpoint.pt")
    expected = [sampler() for _ in range(3)]
    resumed = BatchSampler(images, 8, seed=123)  # the seed is overridden by the state
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint.pt")["sampler"])
    for batch in expected:
        assert torch.equal(resumed(), batch)


def test_no_images_is_an_error():
    with pytest.raises(ValueError, match="no training images"):
        BatchSampler(torch.empty((0, 3, 4, 4), dtype=torch.uint8), 4, seed=0)


def test_sampler_gathers_on_the_host_and_sends_batches_to_the_device():
    """For crops too large for the GPU: indexing happens where the data is, each batch moves.
    (The "meta" device stands in for a GPU here: it has shapes and devices, no values.)"""
    images = torch.zeros((6, 3, 4, 4), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    sampler = BatchSampler(images, 5, seed=2, hflip=False, labels=labels, device="meta")
    batch, drawn = sampler.draw()
    assert (batch.device.type, drawn.device.type) == ("meta", "meta")
    assert batch.shape == (5, 3, 4, 4) and batch.dtype == torch.float32
    assert sampler.images.device.type == "cpu"  # the data itself never moved


def test_arrays_written_as_shards_read_back_verified(tmp_path):
    """The one helper tests and benchmarks use to write shards from memory: the trainer's loader
    reads them back as written, checksums verified, in the layout write_shards makes."""
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8) for n in (5, 3)]
    holdout = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    manifest = write_arrays(tmp_path / "s", splits={"train": train, "holdout": holdout})
    assert manifest["counts"] == {"train": 8, "holdout": 4} and manifest["image_size"] == 16
    loaded = load_split(tmp_path / "s", "train", verify=True).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(loaded, np.concatenate(train))
    assert sorted(pd.read_parquet(tmp_path / "s/index.parquet")["shard"].unique()) == [
        "holdout-00000.npy", "train-00000.npy", "train-00001.npy",
    ]  # fmt: skip
