"""The crop stage on images whose content is known, and on broken ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import pipeline.crops as crops_module
from pipeline.boxes import normalise
from pipeline.config import CropSettings
from pipeline.crops import Region, cut, extract_crops, precheck, square_region

PLAIN = CropSettings(margin=0.0, min_box_side=8, max_upscale=4.0)
BLUE, RED = (20, 40, 220), (230, 20, 20)


def picture(path: Path, size=(600, 400), square=(200, 100, 300, 200), fmt="PNG") -> Path:
    """Blue background with a red square at `square` (x0, y0, x1, y1)."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, square)
    image.save(path, format=fmt, quality=95)
    return path


def box(path: Path, box_id: str, x0, y0, x1, y1, width=600, height=400, **flags) -> dict:
    return {
        "box_id": box_id,
        "source": "test",
        "image_id": path.stem,
        "image_path": str(path),
        "image_width": width,
        "image_height": height,
        "category": "thing",
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "split": "train",
        **flags,
    }


def run(
    tmp_path: Path,
    rows: list[dict],
    settings: CropSettings = PLAIN,
    size: int = 32,
    workers: int = 1,
    name="out",
):
    out = tmp_path / name
    out.mkdir(exist_ok=True)
    normalise(rows).to_parquet(out / "boxes.parquet")
    return extract_crops(
        out / "boxes.parquet",
        out / "crops",
        out / "crops.parquet",
        out / "rejects.parquet",
        settings,
        size,
        workers=workers,
    )


def test_square_region_pads_or_crops_around_the_centre():
    pad = square_region(100, 50, 200, 100, CropSettings(margin=0.1, square="pad"))
    assert (pad.x0, pad.y0, pad.side) == pytest.approx((90, 15, 120))  # 100 wide + 2 * 10
    crop = square_region(100, 50, 200, 100, CropSettings(margin=0.1, square="crop"))
    assert (crop.x0, crop.y0, crop.side) == pytest.approx((120, 45, 60))  # 50 high + 2 * 5


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"x0": 10, "y0": 10, "x1": 10, "y1": 50}, "degenerate_box"),
        ({"x0": 0, "y0": 0, "x1": 50, "y1": 50, "is_crowd": True}, "crowd"),
        ({"x0": 0, "y0": 0, "x1": 50, "y1": 5}, "small_box"),
        ({"x0": 0, "y0": 0, "x1": 10, "y1": 10}, "upscale"),  # 10 px -> 64 px is x6.4
    ],
)
def test_precheck_reasons(row, reason):
    assert precheck(row, PLAIN, 64)[0] == reason


def test_precheck_passes_a_fine_box():
    assert precheck({"x0": 0, "y0": 0, "x1": 40, "y1": 30}, PLAIN, 64) is None
    assert (
        precheck({"x0": 0, "y0": 0, "x1": 40, "y1": 30, "is_group": True}, PLAIN, 64) is None
    )  # a filter's job


@pytest.mark.parametrize("mode", ["reflect", "edge", "constant"])
def test_cut_past_the_border_pads_to_a_full_square(mode):
    pixels = np.full((40, 60, 3), 200, dtype=np.uint8)
    out = np.asarray(cut(pixels, Region(-10, -20, 50), 1.0, 1.0, 16, mode))
    assert out.shape == (16, 16, 3)
    corner = out[0, 0]
    assert (corner == 0).all() if mode == "constant" else (corner == 200).all()


def test_crop_of_a_known_picture(tmp_path):
    path = picture(tmp_path / "p.png")
    crops, rejects = run(tmp_path, [box(path, "t:p:1", 200, 100, 300, 200)])
    assert rejects.empty and crops["crop_id"].tolist() == ["t_p_1"]
    pixels = np.asarray(Image.open(tmp_path / "out" / crops["path"][0]))
    assert pixels.shape == (32, 32, 3)
    assert np.abs(pixels[4:-4, 4:-4].astype(int) - RED).max() < 10  # all red inside
    assert crops.loc[0, "scale"] == pytest.approx(0.32)


def test_margin_shows_the_background(tmp_path):
    path = picture(tmp_path / "p.png")
    crops, _ = run(
        tmp_path,
        [box(path, "t:p:1", 200, 100, 300, 200)],
        CropSettings(margin=0.25, min_box_side=8),
    )
    pixels = np.asarray(Image.open(tmp_path / "out" / crops["path"][0])).astype(int)
    assert np.abs(pixels[1, 1] - BLUE).max() < 15 and np.abs(pixels[16, 16] - RED).max() < 15


def test_reduced_jpeg_decode_matches_full_decode(tmp_path):
    path = picture(
        tmp_path / "big.jpg", size=(3000, 2000), square=(1000, 600, 1800, 1400), fmt="JPEG"
    )
    rows = [box(path, "t:big:1", 900, 500, 1900, 1500, 3000, 2000)]
    fast, _ = run(
        tmp_path, rows, CropSettings(margin=0.0, min_box_side=8, jpeg_draft=True), name="fast"
    )
    full, _ = run(
        tmp_path, rows, CropSettings(margin=0.0, min_box_side=8, jpeg_draft=False), name="full"
    )
    a = np.asarray(Image.open(tmp_path / "fast" / fast["path"][0])).astype(int)
    b = np.asarray(Image.open(tmp_path / "full" / full["path"][0])).astype(int)
    assert np.abs(a - b).mean() < 3


def test_each_image_is_decoded_once_for_all_its_boxes(tmp_path, monkeypatch):
    paths = [picture(tmp_path / f"p{i}.png") for i in range(2)]
    rows = [
        box(p, f"t:{p.stem}:{j}", 100 + 40 * j, 100, 200 + 40 * j, 200)
        for p in paths
        for j in range(3)
    ]
    opened = []
    real_open = crops_module.Image.open
    monkeypatch.setattr(
        crops_module.Image,
        "open",
        lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k),
    )
    crops, _ = run(tmp_path, rows)
    assert len(crops) == 6
    assert sorted(opened) == sorted(str(p) for p in paths)


def test_broken_and_missing_images_are_rejected_and_the_rest_cropped(tmp_path):
    good = picture(tmp_path / "good.png")
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    jpeg = picture(tmp_path / "whole.jpg", fmt="JPEG").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    rows = [
        box(good, "t:good:1", 200, 100, 300, 200),
        box(tmp_path / "noise.jpg", "t:noise:1", 200, 100, 300, 200),
        box(tmp_path / "cut.jpg", "t:cut:1", 200, 100, 300, 200),
        box(tmp_path / "gone.jpg", "t:gone:1", 200, 100, 300, 200),
        box(good, "t:good:2", 0, 0, 100, 100, width=400, height=600),  # the table disagrees
    ]
    crops, rejects = run(tmp_path, rows)
    assert crops["box_id"].tolist() == ["t:good:1"]
    reasons = rejects.set_index("box_id")
    assert reasons.loc["t:noise:1", "reason"] == "unreadable_image"
    assert "noise.jpg" in reasons.loc["t:noise:1", "detail"]
    assert reasons.loc["t:gone:1", "reason"] == "missing_image"
    assert reasons.loc["t:good:2", "reason"] == "size_mismatch"
    assert reasons.loc["t:cut:1", "reason"] in {"unreadable_image"}


def test_workers_give_identical_results(tmp_path):
    paths = [
        picture(tmp_path / f"p{i}.png", square=(100 + 20 * i, 100, 220 + 20 * i, 220))
        for i in range(6)
    ]
    rows = [box(p, f"t:{p.stem}:1", 100, 90, 260, 250) for p in paths]
    one, _ = run(tmp_path, rows, workers=1, name="one")
    two, _ = run(tmp_path, rows, workers=2, name="two")
    pd.testing.assert_frame_equal(one, two)
    for rel in one["path"]:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


def test_failed_run_leaves_no_crops_folder(tmp_path, monkeypatch):
    path = picture(tmp_path / "p.png")

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(crops_module, "write_parquet", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        run(tmp_path, [box(path, "t:p:1", 200, 100, 300, 200)])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["boxes.parquet"]
