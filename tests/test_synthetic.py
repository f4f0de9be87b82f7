"""The synthetic source: deterministic from its seed, boxes that hold their shapes, COCO format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.sources import synthetic
from pipeline.sources.coco import load_instances, read_boxes
from pipeline.sources.synthetic import Shape, SyntheticSettings, render_image, render_scene
from tests.fixtures import as_loaded

SMALL = SyntheticSettings(seed=3, num_images=16, min_side=128, max_side=320)
ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9)


def generate(root: Path, settings: SyntheticSettings = SMALL) -> dict:
    return synthetic.generate(
        settings, images_dir=root / "images", annotations=root / "instances.json"
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    return root, generate(root)


def test_same_seed_gives_byte_identical_files(small, tmp_path):
    root, _ = small
    generate(tmp_path)
    names = sorted(p.name for p in (root / "images").iterdir())
    assert names == [f"{i:06d}.jpg" for i in range(SMALL.num_images)]
    assert names == sorted(p.name for p in (tmp_path / "images").iterdir())
    for name in names:
        assert (root / "images" / name).read_bytes() == (tmp_path / "images" / name).read_bytes()
    assert (root / "instances.json").read_bytes() == (tmp_path / "instances.json").read_bytes()


def test_another_seed_gives_other_images_and_boxes(small, tmp_path):
    root, data = small
    other = generate(tmp_path, dataclasses.replace(SMALL, seed=4))
    assert (root / "instances.json").read_bytes() != (tmp_path / "instances.json").read_bytes()
    assert [a["bbox"] for a in data["annotations"]] != [a["bbox"] for a in other["annotations"]]
    same = [
        (root / "images" / n).read_bytes() == (tmp_path / "images" / n).read_bytes()
        for n in (f"{i:06d}.jpg" for i in range(SMALL.num_images))
    ]
    assert not any(same)
    assert other["info"]["seed"] == 4 and data["info"]["seed"] == 3


def test_the_json_on_disk_is_what_generate_returns(small):
    root, data = small
    assert json.loads((root / "instances.json").read_text()) == data
    loaded = load_instances(root / "instances.json")  # passes the COCO reader's checks
    assert loaded == as_loaded(data)


def test_counts_ids_and_categories(small):
    _, data = small
    assert len(data["images"]) == SMALL.num_images
    assert [im["id"] for im in data["images"]] == list(range(1, SMALL.num_images + 1))
    assert [im["file_name"] for im in data["images"]] == [
        f"{i:06d}.jpg" for i in range(SMALL.num_images)
    ]
    assert data["categories"] == [
        {"id": 1, "name": "disc", "supercategory": "shape"},
        {"id": 2, "name": "square", "supercategory": "shape"},
        {"id": 3, "name": "triangle", "supercategory": "shape"},
        {"id": 4, "name": "creature", "supercategory": "animal"},
    ]
    anns = data["annotations"]
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    per_image = np.bincount([a["image_id"] for a in anns], minlength=SMALL.num_images + 1)[1:]
    assert per_image.min() >= 1 and per_image.max() <= SMALL.max_objects
    assert {a["category_id"] for a in anns} == {1, 2, 3}  # 16 images: every shape appears
    assert all(a["iscrowd"] == 0 and a["segmentation"] == [] for a in anns)


def test_every_box_lies_inside_its_image_with_positive_size(small):
    root, data = small
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        width, height = sizes[ann["image_id"]]
        assert w > 0 and h > 0, ann
        assert x >= 0 and y >= 0, ann
        assert x + w <= width + 1e-6 and y + h <= height + 1e-6, ann
        assert ann["area"] == pytest.approx(w * h, abs=0.02)
        # shapes are at least 18% of the shorter side, cut by the border at most to 70% of that
        assert min(w, h) >= 0.18 * 0.7 * min(width, height) - 0.02


def test_images_decode_to_the_stated_varied_sizes(small):
    root, data = small
    shapes = set()
    for im in data["images"]:
        with Image.open(root / "images" / im["file_name"]) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (im["width"], im["height"])
        long_side, short_side = max(image.size), min(image.size)
        assert SMALL.min_side <= long_side <= SMALL.max_side
        ratio = long_side / short_side
        nearest = min(ASPECTS, key=lambda a: abs(a - ratio))
        assert abs(nearest - ratio) < 0.03, image.size
        shapes.add((nearest, image.width >= image.height))
    assert len({aspect for aspect, _ in shapes}) >= 3  # several aspect ratios
    assert {landscape for _, landscape in shapes} == {True, False}  # and both orientations


def test_a_lone_square_fills_its_box_with_one_flat_colour(tmp_path):
    settings = SyntheticSettings(seed=11, num_images=12, categories=("square",), max_objects=1)
    data = generate(tmp_path, settings)
    assert {a["category_id"] for a in data["annotations"]} == {2}
    assert len(data["annotations"]) == 12
    contrasts = []
    for ann in data["annotations"]:
        image = data["images"][ann["image_id"] - 1]
        pixels = np.asarray(Image.open(tmp_path / "images" / image["file_name"])).astype(float)
        x, y, w, h = ann["bbox"]
        inner = pixels[int(y + 0.2 * h) : int(y + 0.8 * h), int(x + 0.2 * w) : int(x + 0.8 * w)]
        assert inner.std(axis=(0, 1)).max() < 6  # flat colour (JPEG noise only)
        # a band 3 to 7 px outside the box (where inside the image) shows the background
        yy, xx = np.mgrid[0 : image["height"], 0 : image["width"]]
        outside = np.maximum(
            np.maximum(x - xx, xx + 1 - (x + w)), np.maximum(y - yy, yy + 1 - (y + h))
        )
        ring = pixels[(outside >= 3) & (outside <= 7)]
        contrasts.append(np.abs(ring - inner.mean(axis=(0, 1))).sum(axis=1).mean())
    assert np.median(contrasts) > 60  # summed over RGB; measured about 250


def test_unknown_category_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown categories \['hexagon'\]"):
        generate(tmp_path, dataclasses.replace(SMALL, categories=("disc", "hexagon")))
    assert not (tmp_path / "instances.json").exists()


def test_the_coco_reader_reads_it_with_exact_corners(small):
    root, data = small
    rows = read_boxes(
        root / "instances.json",
        image_dir=root / "images",
        categories=("Disc", "square", "TRIANGLE"),
        source="synthetic",
        split="all",
    )
    assert len(rows) == len(data["annotations"])
    by_id = rows.set_index("box_id")
    names = {c["id"]: c["name"] for c in data["categories"]}
    for ann in data["annotations"]:
        row = by_id.loc[f"synthetic:{ann['image_id']}:{ann['id']}"]
        x, y, w, h = ann["bbox"]
        assert (row.x0, row.y0) == (x, y)
        assert row.x1 == pytest.approx(x + w, abs=1e-9) and row.y1 == pytest.approx(y + h, abs=1e-9)
        assert row.category == names[ann["category_id"]]
        assert row.image_path == str(root / "images" / f"{ann['image_id'] - 1:06d}.jpg")
        assert Path(row.image_path).exists()


# seed 0's shapes at 320 x 240, as drawn before creatures existed (commit b7908e2)
SEED_0_SHAPES = [
    Shape("square", 96.55, 149.79, 172.6, 225.84),
    Shape("disc", 52.89, 29.64, 160.52, 137.28),
    Shape("triangle", 0.0, 177.13, 54.91, 238.43),
    Shape("disc", 235.27, 124.22, 283.05, 172.01),
]


def test_without_creatures_a_scene_draws_exactly_the_shapes_it_drew_before():
    """The demo's data must not change because creatures exist: same random draws, same pixels."""
    for seed in range(5):
        scene_rng, shapes_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        scene = render_scene(scene_rng, 320, 240, SMALL)
        shapes = render_image(shapes_rng, 320, 240, SMALL.categories, 4)
        assert scene[1] == shapes[1]
        assert np.array_equal(np.asarray(scene[0]), np.asarray(shapes[0]))
        assert scene_rng.bit_generator.state == shapes_rng.bit_generator.state  # no draw more
    assert render_scene(np.random.default_rng(0), 320, 240, SMALL)[1] == SEED_0_SHAPES


def test_creatures_and_shapes_mix_in_one_dataset(tmp_path):
    settings = dataclasses.replace(SMALL, num_images=24, categories=("disc", "creature"))
    data = generate(tmp_path, settings)
    by_image: dict[int, set[int]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], set()).add(a["category_id"])
    assert {4} in by_image.values() and {1} in by_image.values()  # creature scenes, disc scenes
    assert all(len(ids) == 1 for ids in by_image.values())  # never both in one image
