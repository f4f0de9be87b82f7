"""The crop stage on the oddities of real image files: EXIF orientation, pixel modes, broken files.

Most pictures are 600 x 400 with a flat 100 px square at SQUARE; FRAMED crops show it at 30 px with
5 px of background on each side, so the crop's centre gives the square's colour and its border
the background's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

from pipeline.config import CropSettings
from pipeline.image_files import ORIENTATION, open_reduced, to_rgb
from tests.fixtures import BLUE, RED, box, picture, read_png, run_crops

T = Image.Transpose
PLAIN = CropSettings(margin=0.0, min_box_side=8, max_upscale=4.0)
FRAMED = CropSettings(margin=0.25, min_box_side=8)
FULL = CropSettings(margin=0.25, min_box_side=8, jpeg_draft=False)
SQUARE = (200, 100, 300, 200)
GREEN, WHITE, BLACK = (30, 200, 60), (255, 255, 255), (0, 0, 0)
LOSSLESS = 2  # Lanczos rings by a level or two next to an edge, even from exact pixels


def grey(value: int) -> tuple[int, int, int]:
    return (value, value, value)


def framed(path: Path, inside, outside, tol: int = LOSSLESS) -> None:
    """Assert a FRAMED 30 px crop: `inside` at the centre, `outside` in a 3 px border."""
    pixels = read_png(path)
    assert pixels.shape == (30, 30, 3)
    centre = np.abs(pixels[8:22, 8:22] - inside).max()
    border = max(
        np.abs(part - outside).max()
        for part in (pixels[:3], pixels[-3:], pixels[:, :3], pixels[:, -3:])
    )
    assert centre <= tol, f"centre {pixels[15, 15]} is not {inside}"
    assert border <= tol, f"border {pixels[0, 0]} is not {outside}"


# --- pixel modes --------------------------------------------------------------------------------


def scene(mode: str, background, colour, size=(600, 400), square=SQUARE) -> Image.Image:
    image = Image.new(mode, size, background)
    image.paste(colour, square)
    return image


def grey16(dtype) -> Image.Image:
    """16-bit grey: 10000 (39 at 8 bits) round a square of 50000 (195 at 8 bits)."""
    values = np.full((400, 600), 10000, dtype=dtype)
    values[100:200, 200:300] = 50000
    return Image.fromarray(values)


def palette() -> Image.Image:
    image = scene("RGB", BLUE, RED).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    assert sorted(image.convert("RGB").getcolors()) == sorted([(230000, BLUE), (10000, RED)])
    return image


def transparent_palette(path: Path) -> None:
    image = palette()
    image.save(path, "PNG", transparency=image.getpixel((0, 0)))  # the blue entry


Writer = Callable[[Path], object]
MODES: list[tuple[str, Writer, str, tuple, tuple, int]] = [
    # file name, writer, mode Pillow opens it in, colour of the square, of the background, tolerance
    (
        "cmyk.jpg",
        lambda p: scene("CMYK", (235, 215, 35, 0), (25, 235, 235, 0)).save(p, quality=95),
        "CMYK",
        RED,
        BLUE,
        12,
    ),
    ("grey.jpg", lambda p: scene("L", 60, 200).save(p, quality=95), "L", grey(200), grey(60), 4),
    ("grey.png", lambda p: scene("L", 60, 200).save(p), "L", grey(200), grey(60), LOSSLESS),
    (
        "grey_alpha.png",
        lambda p: scene("LA", (60, 0), (200, 255)).save(p),
        "LA",
        grey(200),
        WHITE,
        LOSSLESS,
    ),
    ("palette.png", lambda p: palette().save(p), "P", RED, BLUE, LOSSLESS),
    ("palette_transparent.png", transparent_palette, "P", RED, WHITE, LOSSLESS),
    ("bits.png", lambda p: scene("1", 0, 1).save(p), "1", WHITE, BLACK, LOSSLESS),
    ("bits.tif", lambda p: scene("1", 1, 0).save(p), "1", BLACK, WHITE, LOSSLESS),
    ("grey16.png", lambda p: grey16(np.uint16).save(p), "I;16", grey(195), grey(39), LOSSLESS),
    (
        "grey16_big_endian.tif",
        lambda p: grey16(">u2").save(p),
        "I;16B",
        grey(195),
        grey(39),
        LOSSLESS,
    ),
    ("grey32.tif", lambda p: grey16(np.int32).save(p), "I", grey(195), grey(39), LOSSLESS),
    (
        "rgba.png",
        lambda p: scene("RGBA", (*BLUE, 0), (*RED, 255)).save(p),
        "RGBA",
        RED,
        WHITE,
        LOSSLESS,
    ),
    (
        "colour_key.png",
        lambda p: scene("RGB", BLUE, RED).save(p, transparency=BLUE),
        "RGB",
        RED,
        WHITE,
        LOSSLESS,
    ),
    ("png_inside.jpg", lambda p: picture(p, fmt="PNG"), "RGB", RED, BLUE, LOSSLESS),
    ("Gíraffe photo ñ.jpg", lambda p: picture(p, fmt="JPEG"), "RGB", RED, BLUE, 12),
]


@pytest.mark.parametrize(
    ("name", "write", "mode", "inside", "outside", "tol"), MODES, ids=[m[0] for m in MODES]
)
def test_every_pixel_mode_gives_the_colours_the_file_shows(
    tmp_path, name, write, mode, inside, outside, tol
):
    path = tmp_path / name
    write(path)
    with Image.open(path) as image:
        # 16-bit grey PNGs open as "I" in older Pillow: the test is about the values either way
        assert image.mode == mode or (mode, image.mode) == ("I;16", "I")
    crops, rejects = run_crops(tmp_path, [box(path, "t:odd:1", *SQUARE)], FRAMED, size=30)
    assert rejects.empty and crops["box_id"].tolist() == ["t:odd:1"]
    framed(tmp_path / "out" / "crops" / crops.loc[0, "path"], inside, outside, tol)


def test_half_transparent_pixels_are_composited_over_white(tmp_path):
    path = tmp_path / "glass.png"
    scene("RGBA", (*BLUE, 255), (*RED, 128)).save(path)
    crops, _ = run_crops(tmp_path, [box(path, "t:glass:1", *SQUARE)], FRAMED, size=30)
    over_white = [255 + (c - 255) * 128 / 255 for c in RED]  # 242.5, 137.0, 137.0
    framed(tmp_path / "out" / "crops" / crops.loc[0, "path"], over_white, BLUE, tol=1)


@pytest.mark.parametrize("dtype", [np.uint16, ">u2", np.int32])
def test_sixteen_bit_grey_is_scaled_by_1_over_257(dtype):
    values = np.array([[0, 257, 32896, 65535, 128]], dtype=dtype)
    image = Image.fromarray(values)
    assert image.mode in ("I;16", "I;16B", "I")
    assert Image.fromarray(values).convert("RGB").getpixel((1, 0)) == WHITE  # Pillow clips
    rgb = np.asarray(to_rgb(image))
    assert rgb.shape == (1, 5, 3) and (rgb == rgb[..., :1]).all()
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255, 0]


def test_out_of_range_32_bit_grey_is_clipped():
    rgb = np.asarray(to_rgb(Image.fromarray(np.array([[-5, 70000]], dtype=np.int32))))
    assert rgb[0, :, 0].tolist() == [0, 255]


@pytest.mark.parametrize(("pad_mode", "right"), [("constant", BLACK), ("reflect", RED)])
def test_a_box_partly_outside_its_image_is_padded(tmp_path, pad_mode, right):
    path = picture(tmp_path / "edge.png", square=(500, 100, 600, 200))  # red at the right edge
    settings = CropSettings(margin=0.0, min_box_side=8, pad_mode=pad_mode)
    # 200 x 100 box, half past the border: the 200 px square is x 500..700, y 50..250
    crops, rejects = run_crops(tmp_path, [box(path, "t:edge:1", 500, 100, 700, 200)], settings, 40)
    assert rejects.empty
    assert (crops.loc[0, "crop_x0"], crops.loc[0, "crop_y0"], crops.loc[0, "crop_side"]) == (
        500,
        50,
        200,
    )
    pixels = read_png(tmp_path / "out" / "crops" / crops.loc[0, "path"])
    assert np.abs(pixels[12:28, 2:18] - RED).max() <= 2  # inside the image: the red square
    assert (
        np.abs(pixels[:8, 2:18] - BLUE).max() <= 2 and np.abs(pixels[-8:, 2:18] - BLUE).max() <= 2
    )
    assert np.abs(pixels[12:28, 22:38] - right).max() <= 2  # past the border: padding


# --- EXIF orientation ---------------------------------------------------------------------------

# the transpose that stores a displayed picture under each EXIF orientation (undoes exif_transpose)
STORE = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}
RED_AT, GREEN_AT = (100, 50, 200, 150), (400, 250, 500, 350)  # no turn or mirror swaps them
# on a square picture: boxes off every axis and diagonal, so any wrong turn or mirror moves them
SQUARE_BOXES = [(40, 60, 140, 120), (230, 250, 380, 330), (260, 20, 330, 190)]
WIDE_BOXES = [RED_AT, GREEN_AT, (330, 20, 590, 120)]


def displayed(size=(600, 400)) -> Image.Image:
    image = scene("RGB", BLUE, RED, size, RED_AT)
    if size[0] > GREEN_AT[2]:
        image.paste(GREEN, GREEN_AT)
    return image


def textured(size) -> Image.Image:
    """A picture that no turn or mirror leaves alike anywhere: two gradients and a pattern."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack(
        [xx / width * 230, yy / height * 230, 127 + 100 * np.sin(xx / 9.0) * np.cos(yy / 23.0)],
        axis=-1,
    )
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def stored(path: Path, orientation: int, fmt: str, image: Image.Image | None = None) -> Path:
    """Save `image` (default: the displayed picture) as a file that shows it under `orientation`."""
    image = displayed() if image is None else image
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    turned = image if STORE[orientation] is None else image.transpose(STORE[orientation])
    turned.save(path, fmt, exif=exif, quality=95)
    return path


def crops_of(tmp_path: Path, path: Path, at: list, size, name: str, exif: str = "apply") -> list:
    """The crops (as arrays, by box) of `path` with boxes `at` on a table of `size`."""
    rows = [box(path, f"t:{name}:{i}", *xy, *size, source="mine") for i, xy in enumerate(at)]
    crops, rejects = run_crops(tmp_path, rows, FRAMED, size=48, name=name, exif={"mine": exif})
    assert rejects.empty, rejects["detail"].tolist()
    return [
        read_png(tmp_path / name / "crops" / rel) for rel in crops.sort_values("box_id")["path"]
    ]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("size", [(600, 400), (400, 400)], ids=["wide", "square"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_crops_of_the_displayed_picture(
    tmp_path, orientation, size, fmt
):
    # boxes in displayed coordinates (what CVAT, Label Studio and FiftyOne users annotate)
    picture = textured(size)
    path = stored(tmp_path / f"o{orientation}.{fmt.lower()}", orientation, fmt, picture)
    with Image.open(path) as image:  # the file shows the picture, as a viewer turns it
        assert ImageOps.exif_transpose(image).size == size
    at = SQUARE_BOXES if size[0] == size[1] else WIDE_BOXES
    got = crops_of(tmp_path, path, at, size, "turned")
    picture.save(tmp_path / "direct.png")
    want = crops_of(tmp_path, tmp_path / "direct.png", at, size, "direct")
    for mine, expected in zip(got, want, strict=True):
        difference = np.abs(mine - expected)
        if fmt == "PNG":  # the very pixels of the displayed picture
            assert difference.max() == 0
        else:  # JPEG at quality 95 (a wrong turn or mirror differs by 40-120 on average)
            assert difference.mean() < 3, difference.mean()


@pytest.mark.parametrize("orientation", [3, 6])
def test_exif_ignore_crops_the_stored_pixels(tmp_path, orientation):
    # boxes in stored coordinates, as COCO, Visual Genome and OpenImages give them
    picture = textured((600, 400))
    path = stored(tmp_path / "o.png", orientation, "PNG", picture)
    with Image.open(path) as image:
        as_stored = image.convert("RGB")
    at = [(30, 40, 130, 140), (150, 200, 350, 390)]
    got = crops_of(tmp_path, path, at, as_stored.size, "ignored", exif="ignore")
    as_stored.save(tmp_path / "plain.png")
    want = crops_of(tmp_path, tmp_path / "plain.png", at, as_stored.size, "plain")
    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_orientations_applied_are_counted_in_the_log(tmp_path, caplog):
    rows = []
    for orientation in (1, 3, 6, 6):
        path = stored(tmp_path / f"o{orientation}-{len(rows)}.png", orientation, "PNG")
        rows.append(box(path, f"t:{len(rows)}:1", *RED_AT))
    with caplog.at_level("INFO", logger="pipeline.crops"):
        crops, _ = run_crops(tmp_path, rows, FRAMED, size=30)
    assert len(crops) == 4
    assert (
        "EXIF orientation applied to 3 images (orientation 3: 1, orientation 6: 2)" in caplog.text
    )


def test_reduced_decode_of_a_turned_jpeg_targets_the_stored_orientation(tmp_path):
    # displayed 1600 x 400, stored 400 x 1600: 0.16 of the displayed size is 256 x 64, which in the
    # stored orientation (64 x 256) lets libjpeg decode at 1/4; taken unturned, only at 1/1
    path = stored(tmp_path / "long.jpg", 6, "JPEG", displayed((1600, 400)))
    decoded = open_reduced(path, width=1600, height=400, scale=0.16, draft=True)
    assert (decoded.image.size, decoded.size, decoded.stored) == (
        (400, 100),
        (1600, 400),
        (400, 1600),
    )
    whole = open_reduced(path, width=1600, height=400, scale=0.16, draft=False)
    assert (whole.image.size, whole.size) == ((1600, 400), (1600, 400))
    small = np.asarray(whole.image.resize((400, 100), Image.BOX)).astype(int)
    assert np.abs(np.asarray(decoded.image).astype(int) - small).mean() < 3
    upright = tmp_path / "upright.jpg"
    displayed((1600, 400)).save(upright, quality=95)
    for settings, name in ((FRAMED, "fast"), (FULL, "full")):  # 1/4 scale, then in full
        for source, kind in ((path, "turned"), (upright, "upright")):
            rows = [
                box(source, "t:long:red", *RED_AT, 1600, 400),
                box(source, "t:long:green", *GREEN_AT, 1600, 400),
            ]
            run_crops(tmp_path, rows, settings, size=30, name=f"{name}_{kind}")
        for crop, colour in (("t_long_red.png", RED), ("t_long_green.png", GREEN)):
            turned = read_png(tmp_path / f"{name}_turned/crops" / crop)
            framed(tmp_path / f"{name}_turned/crops" / crop, colour, BLUE, tol=12)
            # as the same picture stored upright gives (measured: mean 0.04, max 2)
            difference = np.abs(turned - read_png(tmp_path / f"{name}_upright/crops" / crop))
            assert difference.mean() < 0.5 and difference.max() <= 6


@pytest.mark.parametrize(
    ("orientation", "table", "exif", "hint"),
    [
        # the table has the stored size of a turned image: the boxes may be in stored pixels
        (6, (400, 600), "apply", "set exif: ignore"),
        (8, (400, 600), "apply", "set exif: ignore"),
        # the table has the displayed size and EXIF is ignored
        (6, (600, 400), "ignore", "set exif: apply"),
        # no setting fits
        (1, (400, 600), "apply", None),
        (6, (601, 400), "apply", None),
        (8, (300, 200), "ignore", None),
    ],
)
def test_a_size_that_fits_neither_way_is_a_mismatch_naming_the_setting_that_fits(
    tmp_path, orientation, table, exif, hint
):
    path = stored(tmp_path / "p.png", orientation, "PNG")  # 600 x 400, or 400 x 600 for 5 to 8
    with Image.open(path) as image:
        w, h = image.size
    rows = [box(path, "t:p:1", 0, 0, 100, 100, *table, source="zoo")]
    crops, rejects = run_crops(tmp_path, rows, PLAIN, exif={"zoo": exif})
    assert crops.empty and rejects["reason"].tolist() == ["size_mismatch"]
    detail = rejects.loc[0, "detail"]
    found = (
        f"stored {w}x{h}"
        if exif == "ignore" or orientation == 1
        else (f"{h}x{w} as displayed (EXIF orientation {orientation}), stored {w}x{h}")
    )
    assert detail.startswith(f"{path}: {found}, table says {table[0]}x{table[1]}"), detail
    if hint:
        assert detail.endswith(f"if the boxes of source 'zoo' refer to it, {hint} for it)")
    else:
        assert "exif:" not in detail


# --- broken files -------------------------------------------------------------------------------


def broken_files(root: Path) -> list[Path]:
    """Files that cannot be decoded, each in its own way."""
    jpeg = picture(root / "whole.jpg", fmt="JPEG").read_bytes()
    png = picture(root / "whole.png").read_bytes()
    contents = {
        "cut_early.jpg": jpeg[:300],  # headers only
        "cut_late.jpg": jpeg[:-2],  # all but the end marker
        "cut.png": png[: len(png) // 2],
        "zero bytes.jpg": b"",
        "noise.jpg": np.random.default_rng(7).bytes(4000),
        "notes.jpg": b"Une girafe, pas une image.\n",
        "not_a_png.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return [root / name for name in contents]


@pytest.mark.parametrize("workers", [1, 2])
def test_broken_files_are_named_rejects_and_the_rest_is_cropped(tmp_path, workers):
    broken = broken_files(tmp_path)
    good = [picture(tmp_path / "good.png"), picture(tmp_path / "good.jpg", fmt="JPEG")]
    rows = [box(p, f"t:{p.name}:1", *SQUARE) for p in broken + good]
    crops, rejects = run_crops(tmp_path, rows, FRAMED, size=30, workers=workers)
    assert sorted(crops["box_id"]) == ["t:good.jpg:1", "t:good.png:1"]
    for rel in crops["path"]:
        framed(tmp_path / "out" / "crops" / rel, RED, BLUE, tol=12)
    by_box = rejects.set_index("box_id")
    assert len(rejects) == len(broken)
    for path in broken:
        row = by_box.loc[f"t:{path.name}:1"]
        assert row["reason"] == "unreadable_image", path.name
        assert row["detail"].startswith(f"{path}: "), row["detail"]
        assert len(row["detail"]) > len(f"{path}: ") + 4  # says what went wrong


def test_an_image_over_max_image_pixels_is_a_reject_naming_the_setting(tmp_path):
    bomb = picture(tmp_path / "bomb.png")  # 240 000 pixels
    small = picture(tmp_path / "small.png", size=(80, 80), square=(20, 20, 60, 60))
    rows = [box(bomb, "t:bomb:1", *SQUARE), box(small, "t:small:1", 20, 20, 60, 60, 80, 80)]
    limited = CropSettings(margin=0.0, min_box_side=8, max_image_pixels=100_000)
    crops, rejects = run_crops(tmp_path, rows, limited, workers=1)
    assert crops["box_id"].tolist() == ["t:small:1"]
    assert rejects[["box_id", "reason"]].values.tolist() == [["t:bomb:1", "unreadable_image"]]
    assert rejects.loc[0, "detail"] == (
        f"{bomb}: ImageTooLargeError: 600x400 = 240000 pixels, more than "
        "crops.max_image_pixels (100000); raise it to crop this image"
    )
    assert np.abs(read_png(tmp_path / "out/crops/t_small_1.png") - RED).max() <= 2
    raised = CropSettings(margin=0.0, min_box_side=8, max_image_pixels=240_000)
    crops, rejects = run_crops(tmp_path, rows, raised, name="raised")
    assert len(crops) == 2 and rejects.empty


def test_the_setting_replaces_pillows_global_limit_and_leaves_it_as_it_was(tmp_path, monkeypatch):
    # Pillow's own guard (a global, warning between its limit and twice it) is not consulted
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    path = picture(tmp_path / "big.png")  # 240 000 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        crops, rejects = run_crops(tmp_path, [box(path, "t:big:1", *SQUARE)], PLAIN)
    assert crops["box_id"].tolist() == ["t:big:1"] and rejects.empty
    assert Image.MAX_IMAGE_PIXELS == 10_000


# --- workers ------------------------------------------------------------------------------------


def test_odd_files_give_identical_tables_and_png_bytes_with_any_number_of_workers(tmp_path):
    rows = []
    for name, write, *_ in MODES:
        write(tmp_path / name)
        rows.append(box(tmp_path / name, f"t:{name}:1", *SQUARE))
    for orientation in (5, 6, 7, 8):
        path = stored(tmp_path / f"o{orientation}.jpg", orientation, "JPEG")
        rows += [box(path, f"t:o{orientation}:{i}", *at) for i, at in enumerate((RED_AT, GREEN_AT))]
    rows += [box(p, f"t:{p.name}:1", *SQUARE) for p in broken_files(tmp_path)]
    one = run_crops(tmp_path, rows, FRAMED, size=30, workers=1, name="one")
    three = run_crops(tmp_path, rows, FRAMED, size=30, workers=3, name="three")
    assert len(one[0]) == len(MODES) + 8 and len(one[1]) == 7
    pd.testing.assert_frame_equal(one[0], three[0])
    pd.testing.assert_frame_equal(one[1], three[1])
    for rel in one[0]["path"]:
        assert (tmp_path / "one" / "crops" / rel).read_bytes() == (
            tmp_path / "three" / "crops" / rel
        ).read_bytes()
