"""The synthetic source and the COCO reader: exact rows, and clear errors on malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pipeline.archive import UnsafePathError
from pipeline.config import SyntheticSettings
from pipeline.sources import synthetic
from pipeline.sources.coco import CocoFormatError, read_boxes

SMALL = SyntheticSettings(seed=3, num_images=12, max_side=300, min_side=128)


def generate(root: Path, settings: SyntheticSettings = SMALL) -> dict:
    return synthetic.generate(settings, root / "images", root / "instances.json")


def test_synthetic_is_deterministic_from_its_seed(tmp_path):
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    generate(tmp_path / "c", SyntheticSettings(**{**SMALL.__dict__, "seed": 4}))
    for name in ["instances.json"] + [f"images/{i:06d}.jpg" for i in range(12)]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a/instances.json").read_bytes() != (
        tmp_path / "c/instances.json"
    ).read_bytes()


def test_synthetic_boxes_lie_in_their_images(tmp_path):
    data = generate(tmp_path)
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    assert len(data["images"]) == 12 and len(data["annotations"]) >= 12
    assert {c["name"] for c in data["categories"]} == {"disc", "square", "triangle"}
    assert len(set(sizes.values())) > 6  # varied sizes and aspect ratios
    for image in data["images"]:
        assert Image.open(tmp_path / "images" / image["file_name"]).size == sizes[image["id"]]
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        width, height = sizes[ann["image_id"]]
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= width + 0.01 and y + h <= height + 0.01


def test_synthetic_disc_box_holds_the_disc(tmp_path):
    """The pixels at a lone disc's centre differ from those at its box's corners (background)."""
    data = generate(
        tmp_path, SyntheticSettings(seed=5, num_images=20, categories=("disc",), max_objects=1)
    )
    checked = 0
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        if w < 60 or abs(w - h) > 1:  # cut by the border: its centre is not the disc's
            continue
        image = data["images"][ann["image_id"] - 1]
        pixels = Image.open(tmp_path / "images" / image["file_name"]).convert("RGB")
        centre = pixels.getpixel((int(x + w / 2), int(y + h / 2)))
        inner = pixels.getpixel((int(x + w / 2 + w / 5), int(y + h / 2)))
        assert max(abs(a - b) for a, b in zip(centre, inner, strict=True)) < 40  # flat disc colour
        checked += 1
    assert checked >= 5


def write_instances(path: Path, images=None, annotations=None, categories=None) -> Path:
    data = {
        "images": images
        if images is not None
        else [
            {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "sub/b.jpg", "width": 300, "height": 200},
        ],
        "annotations": annotations
        if annotations is not None
        else [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 25,
                "bbox": [10.5, 20.0, 100.0, 50.25],
                "iscrowd": 0,
            },
            {
                "id": 11,
                "image_id": 2,
                "category_id": 25,
                "bbox": [250.0, -5.0, 100.0, 60.0],
                "iscrowd": 1,
            },
            {"id": 12, "image_id": 2, "category_id": 24, "bbox": [0, 0, 10, 10], "iscrowd": 0},
        ],
        "categories": categories
        if categories is not None
        else [{"id": 25, "name": "giraffe"}, {"id": 24, "name": "zebra"}],
    }
    path.write_text(json.dumps(data))
    return path


def test_coco_reader_gives_pixel_boxes_clipped_to_the_image(tmp_path):
    path = write_instances(tmp_path / "i.json")
    rows = read_boxes(
        path, tmp_path / "img", ("Giraffe",), "coco", "val2017", "http://h/{split}/{file_name}"
    )
    rows = rows.set_index("box_id")
    assert list(rows.index) == ["coco:1:10", "coco:2:11"]
    assert rows.loc["coco:1:10", ["x0", "y0", "x1", "y1"]].tolist() == [10.5, 20.0, 110.5, 70.25]
    assert rows.loc["coco:2:11", ["x0", "y0", "x1", "y1"]].tolist() == [250.0, 0.0, 300.0, 55.0]
    assert rows.loc["coco:2:11", "is_crowd"] and not rows.loc["coco:1:10", "is_crowd"]
    assert rows.loc["coco:2:11", "image_path"] == str(tmp_path / "img" / "sub" / "b.jpg")
    assert rows.loc["coco:2:11", "image_url"] == "http://h/val2017/sub/b.jpg"
    assert rows.loc["coco:1:10", "category"] == "giraffe"
    assert (rows.loc["coco:1:10", "image_width"], rows.loc["coco:1:10", "image_height"]) == (
        640,
        480,
    )
    assert rows["is_truncated"].isna().all()  # COCO has no such flag


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"annotations": [{"id": 1, "image_id": 99, "category_id": 25, "bbox": [0, 0, 1, 1]}]},
            r"annotations\[0\] \(id=1\).*image_id 99",
        ),
        (
            {"annotations": [{"id": 1, "image_id": 1, "category_id": 25, "bbox": [0, 0, 1]}]},
            r"annotations\[0\].*bbox",
        ),
        (
            {"annotations": [{"id": 1, "image_id": 1, "category_id": 25, "bbox": [0, "a", 1, 1]}]},
            "bbox",
        ),
        (
            {
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 25, "bbox": [0, 0, float("nan"), 1]}
                ]
            },
            "bbox",
        ),
        (
            {
                "annotations": [{"id": 1, "image_id": 1, "category_id": 25, "bbox": [0, 0, 1, 1]}]
                * 2
            },
            r"annotations\[1\].*duplicate",
        ),
        (
            {"images": [{"id": 1, "file_name": "a.jpg", "width": 0, "height": 5}]},
            r"images\[0\].*width",
        ),
        ({"images": [{"id": 1, "width": 5, "height": 5}]}, "file_name"),
        ({"categories": [{"id": 25}]}, r"categories\[0\]"),
    ],
)
def test_malformed_records_are_named(tmp_path, change, message):
    path = write_instances(tmp_path / "bad.json", **change)
    with pytest.raises(CocoFormatError, match=message) as err:
        read_boxes(path, tmp_path, ("giraffe",), "coco", "train")
    assert "bad.json" in str(err.value)


def test_invalid_json_and_missing_lists_are_named(tmp_path):
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(CocoFormatError, match="broken.json: not valid JSON"):
        read_boxes(tmp_path / "broken.json", tmp_path, ("giraffe",), "coco", "train")
    (tmp_path / "empty.json").write_text('{"images": []}')
    with pytest.raises(CocoFormatError, match="empty.json: annotations"):
        read_boxes(tmp_path / "empty.json", tmp_path, ("giraffe",), "coco", "train")


def test_unknown_category_lists_the_known_ones(tmp_path):
    path = write_instances(tmp_path / "i.json")
    with pytest.raises(CocoFormatError, match=r"no category named \['okapi'\].*giraffe.*zebra"):
        read_boxes(path, tmp_path, ("okapi",), "coco", "train")


@pytest.mark.parametrize("name", ["/etc/passwd", "../../outside.jpg"])
def test_file_names_that_leave_the_image_folder_are_refused(tmp_path, name):
    images = [{"id": 1, "file_name": name, "width": 10, "height": 10}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 25, "bbox": [0, 0, 5, 5]}]
    path = write_instances(tmp_path / "i.json", images=images, annotations=annotations)
    with pytest.raises(UnsafePathError):
        read_boxes(path, tmp_path / "img", ("giraffe",), "coco", "train")
