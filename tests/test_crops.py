"""The crop stage on images whose content is known, and on broken ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import pipeline.crops as crops_module
from pipeline.config import CropSettings
from pipeline.crops import (
    CROP_COLUMNS,
    Region,
    crop_id,
    cut,
    precheck,
    square_region,
)
from pipeline.records import REJECT_COLUMNS
from tests.fixtures import BLUE, RED, box, gradient_picture, picture, read_png, run_crops

PLAIN = CropSettings(margin=0.0, min_box_side=8, max_upscale=4.0)


# --- geometry -----------------------------------------------------------------------------------


def test_square_region_pads_around_the_centre_with_the_margin():
    # 100 x 50 box, 10% margin each side: 120 x 60, padded to 120 around the centre (150, 75)
    pad = square_region(100, 50, 200, 100, CropSettings(margin=0.1, square="pad"))
    assert (pad.x0, pad.y0, pad.side) == pytest.approx((90, 15, 120))


def test_square_region_crops_around_the_centre_with_the_margin():
    # the shorter side wins: 50 * 1.2 = 60 around (150, 75)
    crop = square_region(100, 50, 200, 100, CropSettings(margin=0.1, square="crop"))
    assert (crop.x0, crop.y0, crop.side) == pytest.approx((120, 45, 60))


def test_square_region_of_a_tall_box_may_leave_the_image():
    # 20 x 80 at (10, 20); 25% margin: 30 x 120; square of 120 around (20, 60)
    region = square_region(10, 20, 30, 100, CropSettings(margin=0.25, square="pad"))
    assert (region.x0, region.y0, region.side) == pytest.approx((-40, 0, 120))
    assert square_region(5, 5, 15, 15, CropSettings(margin=0.0)) == Region(5, 5, 10)


@pytest.mark.parametrize(
    ("row", "reason", "detail"),
    [
        ({"x0": 10, "y0": 10, "x1": 10, "y1": 50}, "degenerate_box", "0.0x40.0"),
        (
            {"x0": 10, "y0": 60, "x1": 50, "y1": 50, "is_crowd": True},
            "degenerate_box",
            "40.0x-10.0",
        ),
        (
            {"x0": 0, "y0": 0, "x1": 50, "y1": 50, "is_crowd": True},
            "crowd",
            "iscrowd is set (a box round a group); crops.skip_crowd: false keeps it",
        ),
        ({"x0": 0, "y0": 0, "x1": 50, "y1": 5}, "small_box", "5.0 < 8"),
        ({"x0": 0, "y0": 0, "x1": 10, "y1": 10}, "upscale", "x6.40 > 4.0"),  # 10 px -> 64 px
    ],
)
def test_precheck_reasons_and_details(row, reason, detail):
    assert precheck(row, PLAIN, 64) == (reason, detail)


@pytest.mark.parametrize(
    "row",
    [
        {"x0": 0, "y0": 0, "x1": 40, "y1": 30},
        {"x0": 0, "y0": 0, "x1": 16, "y1": 16},  # x4.0 exactly: allowed
        {"x0": 0, "y0": 0, "x1": 40, "y1": 30, "is_crowd": False},
        {"x0": 0, "y0": 0, "x1": 40, "y1": 30, "is_crowd": None},
        {"x0": 0, "y0": 0, "x1": 40, "y1": 30, "is_group": True},  # a filter's job, not this one
    ],
)
def test_precheck_passes_fine_boxes(row):
    assert precheck(row, PLAIN, 64) is None


def test_precheck_margin_counts_against_upscale_and_crowds_can_be_kept():
    row = {"x0": 0, "y0": 0, "x1": 14, "y1": 14, "is_crowd": True}
    assert precheck(row, CropSettings(margin=0.0, min_box_side=8), 64)[0] == "crowd"
    kept = CropSettings(margin=0.0, min_box_side=8, skip_crowd=False)
    assert precheck(row, kept, 64) == ("upscale", "x4.57 > 4.0")
    assert precheck(row, CropSettings(margin=0.1, min_box_side=8, skip_crowd=False), 64) is None
    # the square's side decides: padded 40 px is x1.6, cropped 15.9 px is x4.03
    thin = {"x0": 0, "y0": 0, "x1": 15.9, "y1": 40}
    assert precheck(thin, CropSettings(margin=0.0, min_box_side=8, square="pad"), 64) is None
    crop = CropSettings(margin=0.0, min_box_side=8, square="crop")
    assert precheck(thin, crop, 64) == ("upscale", "x4.03 > 4.0")


def test_crop_id_is_file_name_safe():
    assert crop_id("coco:123:456") == "coco_123_456"
    assert crop_id("openimages:0a/b c:train:7") == "openimages_0a_b_c_train_7"
    assert crop_id("vg-1.2_x") == "vg-1.2_x"


# --- cut ----------------------------------------------------------------------------------------


def grid(height: int, width: int) -> np.ndarray:
    """Pixels whose value is 10 * row + column, in all three channels."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.repeat((10 * yy + xx)[..., None], 3, axis=2).astype(np.uint8)


def cut_pixels(pixels: np.ndarray, region: Region, *args) -> np.ndarray:
    """`cut` of the image with these pixels, as an array."""
    return np.asarray(cut(Image.fromarray(pixels), region, *args))


def test_cut_inside_the_image_is_the_exact_window():
    pixels = grid(8, 9)
    out = cut_pixels(pixels, Region(2, 1, 5), 1.0, 1.0, 5, "reflect")
    assert np.array_equal(out, pixels[1:6, 2:7])


def test_cut_maps_source_coordinates_through_the_decode_scale():
    pixels = grid(8, 9)  # as if decoded at half the stored size
    out = cut_pixels(pixels, Region(4, 2, 10), 0.5, 0.5, 5, "reflect")
    assert np.array_equal(out, pixels[1:6, 2:7])


def test_cut_past_the_border_reflects():
    pixels = grid(4, 5)
    # x from -2 to 3, y from -1 to 4 (one row past the bottom)
    out = cut_pixels(pixels, Region(-2, -1, 6), 1.0, 1.0, 6, "reflect")[..., 0]
    rows, cols = [1, 0, 1, 2, 3, 2], [2, 1, 0, 1, 2, 3]
    assert np.array_equal(out, 10 * np.array(rows)[:, None] + np.array(cols)[None, :])


def test_cut_past_the_border_pads_with_zeros_in_constant_mode():
    pixels = grid(4, 5) + 100
    out = cut_pixels(pixels, Region(-2, -1, 6), 1.0, 1.0, 6, "constant")[..., 0]
    assert (out[0] == 0).all() and (out[-1] == 0).all() and (out[:, :2] == 0).all()
    assert np.array_equal(out[1:5, 2:6], pixels[0:4, 0:4, 0])


@pytest.mark.parametrize("mode", ["reflect", "edge", "constant"])
def test_cut_of_a_region_larger_than_the_image_is_size_by_size(mode):
    pixels = np.full((40, 60, 3), 200, dtype=np.uint8)
    for region in (Region(-10, -20, 50), Region(-100, -100, 300), Region(50, 30, 45)):
        out = cut_pixels(pixels, region, 1.0, 1.0, 16, mode)
        assert out.shape == (16, 16, 3) and out.dtype == np.uint8
        if mode == "constant":  # black where past the border, grey inside
            assert out.min() < 10 and out.max() > 150
        else:
            assert (out == 200).all()
    assert (cut_pixels(pixels, Region(5, 5, 20), 1.0, 1.0, 16, mode) == 200).all()


# --- the stage on pictures ----------------------------------------------------------------------


def test_crop_of_a_known_picture(tmp_path):
    path = picture(tmp_path / "p.png")  # 600 x 400 blue, red square 200..300 x 100..200
    crops, rejects = run_crops(tmp_path, [box(path, "t:p:1", 200, 100, 300, 200)], PLAIN)
    assert rejects.empty and crops["crop_id"].tolist() == ["t_p_1"]
    row = crops.iloc[0]
    assert row["path"] == "t_p_1.png" and row["box_id"] == "t:p:1"
    assert (row["crop_x0"], row["crop_y0"], row["crop_side"]) == (200, 100, 100)
    assert row["scale"] == pytest.approx(0.32)
    pixels = read_png(tmp_path / "out" / "crops" / row["path"])
    assert pixels.shape == (32, 32, 3)
    assert np.abs(pixels - RED).max() < 12  # red everywhere, edges included


def test_margin_shows_the_background_at_the_edges(tmp_path):
    path = picture(tmp_path / "p.png")
    settings = CropSettings(margin=0.25, min_box_side=8)  # region 150 px: 25 px blue each side
    crops, _ = run_crops(tmp_path, [box(path, "t:p:1", 200, 100, 300, 200)], settings, size=30)
    assert (crops.loc[0, "crop_x0"], crops.loc[0, "crop_side"]) == (175, 150)
    pixels = read_png(tmp_path / "out" / "crops" / crops["path"][0])
    edge = 30 * 25 // 150  # 5 px of blue around 20 px of red
    for band in (
        pixels[: edge - 1],
        pixels[-edge + 1 :],
        pixels[:, : edge - 1],
        pixels[:, -edge + 1 :],
    ):
        assert np.abs(band - BLUE).max() < 12
    assert np.abs(pixels[edge + 1 : -edge - 1, edge + 1 : -edge - 1] - RED).max() < 12


def test_a_box_at_the_border_is_padded_by_reflection_or_black(tmp_path):
    # red square in the top-left corner: the padded region above and left mirrors it
    path = picture(tmp_path / "corner.png", square=(0, 0, 100, 100))
    rows = [box(path, "t:corner:1", 0, 0, 100, 100)]
    settings = CropSettings(margin=0.5, min_box_side=8, pad_mode="reflect")
    crops, _ = run_crops(tmp_path, rows, settings, size=40, name="reflect")
    assert (crops.loc[0, "crop_x0"], crops.loc[0, "crop_y0"], crops.loc[0, "crop_side"]) == (
        -50,
        -50,
        200,
    )
    pixels = read_png(tmp_path / "reflect" / "crops" / crops["path"][0])
    assert np.abs(pixels[:28, :28] - RED).max() < 12  # 150 of 200 px are red after mirroring
    assert np.abs(pixels[-3:, -3:] - BLUE).max() < 12
    constant = CropSettings(margin=0.5, min_box_side=8, pad_mode="constant")
    crops, _ = run_crops(tmp_path, rows, constant, size=40, name="constant")
    pixels = read_png(tmp_path / "constant" / "crops" / crops["path"][0])
    assert pixels[:9, :].max() < 8 and pixels[:, :9].max() < 8  # 50 px of black above and left
    assert np.abs(pixels[12:28, 12:28] - RED).max() < 12


def test_rotation_turns_the_crop_counter_clockwise(tmp_path):
    path = picture(tmp_path / "p.png", square=(200, 100, 250, 200))  # left half of the box red
    rows = [
        box(path, "t:p:0", 200, 100, 300, 200, rotation=0),
        box(path, "t:p:90", 200, 100, 300, 200, rotation=90),
    ]
    crops, _ = run_crops(tmp_path, rows, PLAIN)
    plain = read_png(tmp_path / "out/crops/t_p_0.png")
    turned = read_png(tmp_path / "out/crops/t_p_90.png")
    assert np.array_equal(turned, np.rot90(plain))  # left half red -> bottom half red
    assert np.abs(turned[-8:] - RED).max() < 12 and np.abs(turned[:8] - BLUE).max() < 12


def test_reduced_jpeg_decode_is_close_to_the_full_decode(tmp_path, monkeypatch):
    path = gradient_picture(tmp_path / "big.jpg", (2400, 1600), (900, 500, 1500, 1100))
    rows = [
        box(path, "t:big:1", 800, 400, 1600, 1200, 2400, 1600),
        box(path, "t:big:2", 100, 100, 900, 700, 2400, 1600),
    ]
    decoded = []
    real = crops_module.open_reduced

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        decoded.append(got.image.size)
        return got

    monkeypatch.setattr(crops_module, "open_reduced", spy)
    draft = CropSettings(margin=0.0, min_box_side=8, jpeg_draft=True)
    full = CropSettings(margin=0.0, min_box_side=8, jpeg_draft=False)
    fast_crops, _ = run_crops(tmp_path, rows, draft, size=32, name="fast")
    full_crops, _ = run_crops(tmp_path, rows, full, size=32, name="full")
    assert decoded == [(300, 200), (2400, 1600)]  # libjpeg scaled by 1/8, then in full
    for rel in full_crops["path"]:
        a, b = (
            read_png(tmp_path / "fast" / "crops" / rel),
            read_png(tmp_path / "full" / "crops" / rel),
        )
        assert a.shape == b.shape == (32, 32, 3)
        assert np.abs(a - b).mean() < 3  # measured 0.2 to 0.4
    cols = ["crop_id", "crop_x0", "crop_y0", "crop_side", "scale"]
    pd.testing.assert_frame_equal(fast_crops[cols], full_crops[cols])


def test_each_image_is_decoded_once_for_all_its_boxes(tmp_path, monkeypatch):
    paths = [picture(tmp_path / f"p{i}.png") for i in range(3)]
    rows = [
        box(p, f"t:{p.stem}:{j}", 100 + 40 * j, 100, 200 + 40 * j, 200)
        for p in paths
        for j in range(3)
    ]
    opened = []
    real_open = crops_module.Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(crops_module.Image, "open", counting_open)
    crops, rejects = run_crops(tmp_path, rows, PLAIN, workers=1)
    assert len(crops) == 9 and rejects.empty
    assert sorted(opened) == sorted(str(p) for p in paths)


def test_broken_and_missing_images_are_rejected_and_the_rest_cropped(tmp_path):
    good = picture(tmp_path / "good.png")
    picture(tmp_path / "other.jpg", fmt="JPEG")
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "empty.png").write_bytes(b"")
    jpeg = picture(tmp_path / "whole.jpg", fmt="JPEG").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    png = picture(tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    names = ["good.png", "noise.jpg", "empty.png", "cut.jpg", "cut.png", "gone.jpg", "other.jpg"]
    rows = [box(tmp_path / n, f"t:{n}:1", 200, 100, 300, 200) for n in names]
    rows.append(box(good, "t:good.png:2", 210, 110, 290, 190))
    crops, rejects = run_crops(tmp_path, rows, PLAIN)
    assert crops["box_id"].tolist() == ["t:good.png:1", "t:good.png:2", "t:other.jpg:1"]
    reasons = rejects.set_index("box_id")
    for name in ("noise.jpg", "empty.png", "cut.jpg", "cut.png"):
        assert reasons.loc[f"t:{name}:1", "reason"] == "unreadable_image", name
        assert reasons.loc[f"t:{name}:1", "detail"].startswith(f"{tmp_path / name}: ")
    assert reasons.loc["t:gone.jpg:1", "reason"] == "missing_image"
    assert reasons.loc["t:gone.jpg:1", "detail"] == str(tmp_path / "gone.jpg")
    assert len(rejects) == 5
    for rel in crops["path"]:
        assert np.abs(read_png(tmp_path / "out" / "crops" / rel)[8:-8, 8:-8] - RED).max() < 16


@pytest.mark.parametrize(
    ("stored", "table", "fmt"),
    [
        ((600, 400), (400, 600), "PNG"),  # turned
        ((600, 400), (1200, 800), "PNG"),  # half the size the table says
        ((1200, 800), (600, 400), "JPEG"),  # twice the size, even where draft would hide it
        ((600, 400), (601, 400), "JPEG"),
    ],
)
def test_a_size_differing_from_the_table_is_a_mismatch(tmp_path, stored, table, fmt):
    path = picture(tmp_path / f"p.{fmt.lower()}", size=stored, fmt=fmt)
    rows = [
        box(path, "t:p:1", 100, 100, 300, 300, *table),
        box(path, "t:p:2", 0, 0, 200, 200, *table),
    ]
    crops, rejects = run_crops(tmp_path, rows, PLAIN, size=32)
    assert crops.empty
    assert rejects["reason"].tolist() == ["size_mismatch", "size_mismatch"]
    detail = rejects.loc[0, "detail"]
    assert detail == f"{path}: stored {stored[0]}x{stored[1]}, table says {table[0]}x{table[1]}"


def test_prechecked_rejects_keep_their_rows_and_every_box_is_accounted_for(tmp_path):
    path = picture(tmp_path / "p.png")
    rows = [
        box(path, "t:p:ok", 200, 100, 300, 200),
        box(path, "t:p:flat", 200, 100, 300, 100),
        box(path, "t:p:crowd", 200, 100, 300, 200, is_crowd=True),
        box(path, "t:p:small", 200, 100, 205, 200),
        box(path, "t:p:tiny", 200, 100, 210, 110),
    ]
    crops, rejects = run_crops(tmp_path, rows, PLAIN, size=64)
    assert list(crops.columns) == CROP_COLUMNS and list(rejects.columns) == REJECT_COLUMNS
    assert crops["box_id"].tolist() == ["t:p:ok"]
    assert rejects[["box_id", "reason"]].values.tolist() == [
        ["t:p:crowd", "crowd"],
        ["t:p:flat", "degenerate_box"],
        ["t:p:small", "small_box"],
        ["t:p:tiny", "upscale"],
    ]
    assert set(rejects["source"]) == {"test"} and set(rejects["image_id"]) == {"p"}
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out/crops.parquet"), crops)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out/rejects.parquet"), rejects)
    assert sorted(p.name for p in (tmp_path / "out/crops").iterdir()) == ["t_p_ok.png"]


def test_workers_give_identical_tables_and_png_bytes(tmp_path):
    paths = [
        picture(tmp_path / f"p{i}.png", square=(100 + 20 * i, 100, 220 + 20 * i, 220))
        for i in range(5)
    ]
    paths.append(gradient_picture(tmp_path / "g.jpg", (900, 600), (300, 200, 500, 400)))
    rows = [box(p, f"t:{p.stem}:1", 100, 90, 260, 250) for p in paths[:5]]
    rows += [
        box(paths[5], f"t:g:{i}", 100 * i, 100, 100 * i + 300, 400, 900, 600) for i in range(4)
    ]
    rows.append(box(tmp_path / "gone.png", "t:gone:1", 100, 90, 260, 250))
    one = run_crops(tmp_path, rows, PLAIN, workers=1, name="one")
    two = run_crops(tmp_path, rows, PLAIN, workers=2, name="two")
    pd.testing.assert_frame_equal(one[0], two[0])
    pd.testing.assert_frame_equal(one[1], two[1])
    assert len(one[0]) == 9 and one[1]["reason"].tolist() == ["missing_image"]
    for rel in one[0]["path"]:
        assert (tmp_path / "one" / "crops" / rel).read_bytes() == (
            tmp_path / "two" / "crops" / rel
        ).read_bytes()
    assert sorted(p.name for p in (tmp_path / "one/crops").iterdir()) == sorted(
        p.name for p in (tmp_path / "two/crops").iterdir()
    )


# --- atomic output ------------------------------------------------------------------------------


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_rerun_replaces_the_crops_folder_and_leaves_no_temporary_files(tmp_path):
    path = picture(tmp_path / "p.png")
    run_crops(tmp_path, [box(path, "t:p:1", 200, 100, 300, 200)], PLAIN)
    (tmp_path / "out/crops/stale.png").write_bytes(b"old")
    crops, _ = run_crops(tmp_path, [box(path, "t:p:2", 210, 100, 310, 200)], PLAIN)
    assert sorted(p.name for p in (tmp_path / "out/crops").iterdir()) == ["t_p_2.png"]
    assert crops["crop_id"].tolist() == ["t_p_2"]
    assert leftovers(tmp_path / "out") == []


def test_a_failing_run_leaves_no_crops_folder(tmp_path, monkeypatch):
    path = picture(tmp_path / "p.png")

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(crops_module, "write_parquet", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        run_crops(tmp_path, [box(path, "t:p:1", 200, 100, 300, 200)], PLAIN)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["boxes.parquet"]


def test_a_failure_while_cutting_keeps_the_previous_crops(tmp_path, monkeypatch):
    path = picture(tmp_path / "p.png")
    run_crops(tmp_path, [box(path, "t:p:1", 200, 100, 300, 200)], PLAIN)
    before = (tmp_path / "out/crops/t_p_1.png").read_bytes()

    def broken_cut(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(crops_module, "cut", broken_cut)
    with pytest.raises(MemoryError):
        run_crops(tmp_path, [box(path, "t:p:2", 200, 100, 300, 200)], PLAIN)
    assert sorted(p.name for p in (tmp_path / "out/crops").iterdir()) == ["t_p_1.png"]
    assert (tmp_path / "out/crops/t_p_1.png").read_bytes() == before
    assert leftovers(tmp_path / "out") == []


def test_box_ids_that_collide_as_file_names_are_refused(tmp_path):
    path = picture(tmp_path / "p.png")
    rows = [box(path, "t:p:1", 200, 100, 300, 200), box(path, "t_p:1", 200, 100, 300, 200)]
    with pytest.raises(ValueError, match=r"boxes\.parquet: box ids collide as file names: t_p_1"):
        run_crops(tmp_path, rows, PLAIN)
    assert not (tmp_path / "out/crops").exists()
