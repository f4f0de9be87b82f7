"""One dataset holding every kind of bad record and bad image, and the valid oddities that must be
accepted, through the workflow as a named COCO-format source: each gives its crop or its reject.

Every picture is 300 x 200, blue with a red 60 px square at SQUARE, annotated with the square's
box; an accepted crop is red at its centre. Bad records cost only their own box.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import TINY_DEMO, snakemake, write_config
from tests.fixtures import BLUE, RED, read_png

pytestmark = pytest.mark.slow
SIZE, SQUARE = (300, 200), (100, 70, 160, 130)
BBOX = [100, 70, 60, 60]


def scene(mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", SIZE, BLUE)
    image.paste(RED, SQUARE)
    return image.convert(mode)


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def sixteen_bit_png() -> bytes:
    values = np.full(SIZE[::-1], 8000, dtype=np.uint16)
    values[70:130, 100:160] = 60000
    return encoded(Image.fromarray(values), "PNG")


def rgba_png() -> bytes:
    image = scene("RGBA")
    image.putalpha(255)
    return encoded(image, "PNG")


def exif_turned_jpeg() -> bytes:
    """Stored turned a quarter; EXIF orientation 6 shows it as the 300 x 200 scene."""
    stored = scene().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(stored, "JPEG", quality=95, exif=exif.tobytes())


def luma(rgb) -> int:
    return Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0))


GREY_LEVELS = {  # (square, background) in 8 bits
    "grey.jpg": (luma(RED), luma(BLUE)),
    "deep.png": (round(60000 / 257), round(8000 / 257)),
}
# file name -> bytes; None: not written (missing)
GOOD_FILES = {
    "plain.jpg": encoded(scene(), "JPEG", quality=95),
    "cmyk.jpg": encoded(scene("CMYK"), "JPEG", quality=95),
    "grey.jpg": encoded(scene("L"), "JPEG", quality=95),
    "deep.png": sixteen_bit_png(),
    "alpha.png": rgba_png(),
    "png inside.jpg": encoded(scene(), "PNG"),
    "Gíraffe phötо ñ.jpg": encoded(scene(), "JPEG", quality=95),
    "turned.jpg": exif_turned_jpeg(),
    "edge.jpg": encoded(scene(), "JPEG", quality=95),
}
BAD_FILES = {
    "truncated.jpg": encoded(scene(), "JPEG", quality=95)[:600],
    "empty.jpg": b"",
    "text.jpg": b"<html>404 not found</html>",
    "missing.jpg": None,
    "small.jpg": encoded(scene().resize((150, 100)), "JPEG"),  # the record says 300 x 200
}
# annotation id -> (file name, bbox, category id); the expected outcome: "crop" or a reason
RECORDS = {
    1: ("plain.jpg", BBOX, 1, "crop"),
    2: ("cmyk.jpg", BBOX, 1, "crop"),
    3: ("grey.jpg", BBOX, 1, "grey"),  # a grey crop: the grayscale filter's business, not ours
    4: ("deep.png", BBOX, 1, "grey"),
    5: ("alpha.png", BBOX, 1, "crop"),
    6: ("png inside.jpg", BBOX, 1, "crop"),
    7: ("Gíraffe phötо ñ.jpg", BBOX, 1, "crop"),
    8: ("turned.jpg", BBOX, 1, "crop"),
    9: ("edge.jpg", [250, 150, 80, 80], 1, "edge"),  # partly outside: clipped, padded
    10: ("plain.jpg", [100, 70, "60", 60], 1, "bad_bbox"),
    11: ("plain.jpg", "NAN", 1, "bad_bbox"),
    12: ("plain.jpg", [100, 70, 0, 60], 1, "empty_box"),
    13: ("plain.jpg", [100, 70, 60, -5], 1, "empty_box"),
    14: ("plain.jpg", [400, 70, 60, 60], 1, "box_outside_image"),
    15: ("plain.jpg", BBOX, 99, "unknown_category"),
    16: (None, BBOX, 1, "unknown_image"),
    # a user's dataset may name files outside its folder (only read): used as named
    17: ("../escape.jpg", BBOX, 1, "crop"),
    18: ("/etc/hostname", BBOX, 1, "unreadable_image"),
    19: ("truncated.jpg", BBOX, 1, "unreadable_image"),
    20: ("empty.jpg", BBOX, 1, "unreadable_image"),
    21: ("text.jpg", BBOX, 1, "unreadable_image"),
    22: ("missing.jpg", BBOX, 1, "missing_image"),
    23: ("small.jpg", BBOX, 1, "size_mismatch"),
}


def write_dataset(root: Path) -> Path:
    """The images and labels.json (FiftyOne's layout); returns the annotations path."""
    (root / "data").mkdir(parents=True)
    for name, data in {**GOOD_FILES, **BAD_FILES}.items():
        if data is not None:
            (root / "data" / name).write_bytes(data)
    (root / "escape.jpg").write_bytes(GOOD_FILES["plain.jpg"])  # where `..` would lead
    names = sorted({r[0] for r in RECORDS.values() if r[0]})
    images = [
        {"id": i, "file_name": name, "width": SIZE[0], "height": SIZE[1]}
        for i, name in enumerate(names, 1)
    ]
    ids = {image["file_name"]: image["id"] for image in images}
    annotations = [
        {"id": a, "image_id": ids.get(name, 777), "category_id": cat, "bbox": bbox, "iscrowd": 0}
        for a, (name, bbox, cat, _) in RECORDS.items()
    ]
    categories = [{"id": 1, "name": "Thing"}, {"id": 2, "name": "other"}]
    text = json.dumps({"images": images, "annotations": annotations, "categories": categories})
    path = root / "labels.json"
    path.write_text(text.replace('"NAN"', "NaN"))  # NaN as the JSON literal Python writes
    return path


def run(tmp_path: Path, max_fraction: float, check: bool = True):
    labels = write_dataset(tmp_path / "odd")
    config = {
        "bad_records": {"max_fraction": max_fraction},
        "bad_images": {"max_fraction": 0.5},  # over a third of the images are unusable on purpose
        "sources": {
            "odd": {
                "format": "coco",
                "annotations": str(labels),
                "images": str(labels.parent / "data"),
            }
        },
        "experiments": {
            "odd_test": {
                "sources": ["odd"],
                "categories": ["thing"],
                "image_size": 32,
                "crops": {"min_box_side": 16, "margin": 0.25},
            }
        },
    }
    write_config(tmp_path / "work", TINY_DEMO, config)
    return snakemake(
        tmp_path / "work", "--cores", "2", "results/odd_test/crops.parquet", check=check
    )


def image_id_of(name: str) -> int:
    return sorted({r[0] for r in RECORDS.values() if r[0]}).index(name) + 1


def box_id(annotation: int) -> str:
    name = RECORDS[annotation][0]
    return f"odd:{image_id_of(name) if name else 777}:{annotation}"


def test_every_record_gives_its_crop_or_its_reject(tmp_path):
    run(tmp_path, max_fraction=0.5)
    results = tmp_path / "work/results/odd_test"
    crops = pd.read_parquet(results / "crops.parquet").set_index("box_id")
    rejects = pd.read_parquet(results / "rejects.parquet").set_index("box_id")
    for annotation, (name, _, _, outcome) in RECORDS.items():
        key = box_id(annotation)
        if outcome in ("crop", "grey", "edge"):
            assert key in crops.index, (annotation, name, rejects.loc[key].to_dict())
            centre = read_png(results / "crops" / crops.loc[key, "path"])[12:20, 12:20].mean(
                axis=(0, 1)
            )
            if outcome == "crop":
                assert np.abs(centre - RED).max() < 25, (name, centre)
            elif outcome == "grey":  # grey levels of the square and background, as stored
                inside, outside = GREY_LEVELS[name]
                border = read_png(results / "crops" / crops.loc[key, "path"])[:2].mean(axis=(0, 1))
                assert np.abs(centre - inside).max() < 4, (name, centre)
                assert np.abs(border - outside).max() < 4, (name, border)
        else:
            assert key not in crops.index, (annotation, name)
            assert rejects.loc[key, "reason"] == outcome, (annotation, rejects.loc[key].to_dict())
            detail = rejects.loc[key, "detail"]
            if outcome in ("unreadable_image", "missing_image", "size_mismatch"):
                assert name.split("/")[-1] in detail, detail
            else:  # a record: the file and the record's index and id
                labels = str(tmp_path / "odd" / "labels.json")
                assert detail.startswith(labels) and f"(id={annotation})" in detail, detail
    assert len(crops) == 10 and len(rejects) == len(RECORDS) - 10
    assert box_id(9) not in rejects.index  # the box partly outside its image is cropped


def test_over_the_limit_the_stage_stops_naming_every_reason(tmp_path):
    proc = run(tmp_path, max_fraction=0.02, check=False)
    assert proc.returncode != 0
    log = (tmp_path / "work/logs/coco_format_boxes/odd_test.odd.log").read_text()
    records = len({r[0] for r in RECORDS.values() if r[0]}) + len(RECORDS)  # images + annotations
    # 7 bad annotations (the names leaving the folder are no bad records in a user's dataset)
    assert f"7 of {records} records are bad, more than bad_records.max_fraction 0.02" in log
    for reason in (
        "bad_bbox",
        "empty_box",
        "box_outside_image",
        "unknown_category",
        "unknown_image",
    ):
        assert f"  {reason} (" in log, reason
    assert "annotations[9] (id=10)" in log and "annotations[15] (id=16)" in log
    assert not (tmp_path / "work/results/odd_test/sources/odd.parquet").exists()
