"""Filters on crops with known defects: each is rejected for the right reason, clean ones pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from pipeline.boxes import normalise
from pipeline.config import CropSettings
from pipeline.crops import extract_crops
from pipeline.filters import (
    FilterSettings,
    apply_filters,
    decide,
    duplicates,
    hamming,
)
from pipeline.image_scores import phash, scores
from tests.fixtures import box as fixture_box

SETTINGS = FilterSettings(min_sharpness=2000.0, reject_flags=("group", "depiction", "truncated"))


def texture(seed: int, size: int = 200) -> Image.Image:
    """Colourful blocks with sharp edges."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (size // 10, size // 10, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize((size, size), Image.NEAREST)


def box(path: Path, box_id: str, x0=20, y0=20, x1=180, y1=180, **flags) -> dict:
    """A box on one of the 200x200 test pictures."""
    return fixture_box(path, box_id, x0, y0, x1, y1, width=200, height=200, **flags)


@pytest.fixture
def judged(tmp_path) -> pd.DataFrame:
    images = {
        "clean": texture(1),
        "clean2": texture(2),
        "copy": texture(1),  # the same photo under another name
        "blurred": texture(3).filter(
            ImageFilter.GaussianBlur(8)
        ),  # sharpness ~10x below a clean crop
        "truncated": texture(4),
        "tiny": texture(5),
        "grey": texture(6).convert("L").convert("RGB"),
        "flat": Image.new("RGB", (200, 200), (90, 140, 30)),
        "thin": texture(7),
        "group": texture(8),
    }
    rows = []
    for name, image in images.items():
        path = tmp_path / f"{name}.png"
        image.save(path)
        geometry = {
            "tiny": {"x1": 28, "y1": 28},
            "thin": {"y1": 40},
            "copy": {"x0": 22, "y0": 21, "x1": 181, "y1": 178},
        }  # its box drawn a little differently
        flags = {"truncated": {"is_truncated": True}, "group": {"is_group": True}}
        rows.append(box(path, f"t:{name}", **geometry.get(name, {}), **flags.get(name, {})))
    boxes = normalise(rows)
    boxes.to_parquet(tmp_path / "boxes.parquet")
    extract_crops(
        tmp_path / "boxes.parquet",
        crops_dir=tmp_path / "crops",
        crops_table=tmp_path / "crops.parquet",
        rejects_table=tmp_path / "rejects.parquet",
        settings=CropSettings(margin=0.0, min_box_side=16),
        image_size=32,
    )
    table = apply_filters(
        tmp_path / "crops.parquet",
        boxes_table=tmp_path / "boxes.parquet",
        crops_dir=tmp_path / "crops",
        decisions_out=tmp_path / "filters.parquet",
        sheets_dir=tmp_path / "sheets",
        settings=SETTINGS,
    )
    table.attrs["root"] = tmp_path
    return table.set_index("box_id")


def test_each_defect_is_rejected_for_its_reason(judged):
    reasons = judged["reason"].to_dict()
    assert reasons["t:blurred"] == "blurry"
    assert reasons["t:truncated"] == "truncated"
    assert reasons["t:grey"] == "grayscale"
    assert reasons["t:flat"] == "uniform"
    assert reasons["t:thin"] == "aspect"
    assert reasons["t:group"] == "group"
    assert reasons["t:copy"] == "duplicate" and judged.loc["t:copy", "detail"] == "t_clean"
    assert judged.loc["t:clean", "accepted"] and judged.loc["t:clean2", "accepted"]
    assert judged["accepted"].sum() == 2


def test_tiny_boxes_never_reach_the_filters(judged):
    rejects = pd.read_parquet(judged.attrs["root"] / "rejects.parquet").set_index("box_id")
    assert rejects.loc["t:tiny", "reason"] == "small_box"
    assert "t:tiny" not in judged.index


def test_a_contact_sheet_per_reason(judged):
    sheets = judged.attrs["root"] / "sheets"
    names = sorted(p.name for p in sheets.iterdir())
    assert names == sorted(f"rejected_{r}.png" for r in judged["reason"].dropna().unique())
    sheet = Image.open(sheets / "rejected_blurry.png")
    assert sheet.width > 300 and sheet.height > 96


def test_thresholds_move_the_decision(judged):
    crops = pd.read_parquet(judged.attrs["root"] / "crops.parquet")
    boxes = pd.read_parquet(judged.attrs["root"] / "boxes.parquet")
    lenient = FilterSettings(
        min_sharpness=0,
        min_contrast=0,
        reject_grayscale=False,
        reject_flags=(),
        min_aspect=0.01,
        max_aspect=100,
        duplicate_distance=-1,
    )
    assert decide(crops, boxes, lenient)["accepted"].all()


def test_perceptual_hash_is_robust_to_small_changes_and_tells_images_apart():
    a = np.asarray(texture(1, 64).convert("L"), dtype=np.float64)
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 4, a.shape), 0, 255)
    other = np.asarray(texture(9, 64).convert("L"), dtype=np.float64)
    keys = np.array([phash(noisy), phash(other)], dtype=np.int64)
    near, far = hamming(keys, phash(a))
    assert near <= 4 < 16 < far


def test_scores_of_plain_images():
    flat = np.full((32, 32, 3), 128, dtype=np.uint8)
    assert scores(flat)["sharpness"] == 0 and scores(flat)["contrast"] == 0
    assert scores(flat)["colourfulness"] == 0


def disc(colour, background) -> np.ndarray:
    image = Image.new("RGB", (32, 32), background)
    from PIL import ImageDraw

    ImageDraw.Draw(image).ellipse([6, 6, 26, 26], fill=colour)
    return np.asarray(image)


def test_colour_sees_what_grey_statistics_miss():
    """Same shape, different colours of equal brightness: neither duplicates nor uniform."""
    a, b = disc((200, 60, 60), (60, 60, 200)), disc((60, 200, 60), (200, 60, 200))
    sa, sb = scores(a), scores(b)
    crops = pd.DataFrame(
        [{"crop_id": "a", "crop_side": 10, **sa}, {"crop_id": "b", "crop_side": 10, **sb}]
    )
    assert duplicates(crops, 4) == {}
    same = pd.DataFrame(
        [
            {"crop_id": "a", "crop_side": 10, **sa},
            {"crop_id": "a2", "crop_side": 9, **scores(a.copy())},
        ]
    )
    assert duplicates(same, 4) == {"a2": "a"}
    assert sa["contrast"] > 30  # per-channel spread, though the grey levels are close
