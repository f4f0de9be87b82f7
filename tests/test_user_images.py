"""Where a named dataset's images are and how big they are, as other tools write it.

File names may be absolute (FiftyOne's labels-only export) or leave the annotation file's folder
(Label Studio's `../../media/upload/...`): a user's dataset is only read. Entries without width and
height get them from the image's header (as displayed or stored, by the source's `exif`). A wrong
images folder, or boxes that all fail, stop the crop stage saying where it looked and why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image, ImageFile

from pipeline.config import CropSettings
from pipeline.image_files import ORIENTATION
from pipeline.records import BadRecordSettings, RecordRejects
from pipeline.sources.coco import read_boxes
from pipeline.sources.coco_format import CocoFormatSettings, coco_format_boxes
from tests.conftest import TINY_DEMO, snakemake, write_config
from tests.fixtures import BLUE, RED, picture, read_png, run_crops

CATS = [{"id": 1, "name": "thing"}]
SIZES = {"a.jpg": (600, 400), "b.jpg": (320, 480), "c.jpg": (500, 500)}
SQUARE_AT = {
    "a.jpg": (200, 100, 300, 200),
    "b.jpg": (60, 200, 160, 300),
    "c.jpg": (300, 300, 400, 400),
}
CROPS = CropSettings(margin=0.0, min_box_side=8)


def photos(folder: Path) -> dict[str, Path]:
    """Three pictures, each with a red square at SQUARE_AT on blue."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        name: picture(folder / name, size=size, square=SQUARE_AT[name], fmt="JPEG")
        for name, size in SIZES.items()
    }


def labels(path: Path, names: dict[str, str], sizes: bool = True) -> Path:
    """An instances file of one red-square box per picture, `names` giving each file_name."""
    images, anns = [], []
    for i, (name, file_name) in enumerate(sorted(names.items()), start=1):
        entry = {"id": i, "file_name": file_name}
        if sizes:
            entry |= dict(zip(("width", "height"), SIZES[name], strict=True))
        images.append(entry)
        x0, y0, x1, y1 = SQUARE_AT[name]
        anns.append(
            {"id": 10 + i, "image_id": i, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0]}
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATS}))
    return path


def boxes_of(annotations: Path, **settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    cfg = CocoFormatSettings(annotations=str(annotations), **settings)
    return coco_format_boxes(
        "zoo", settings=cfg, categories=("thing",), bad_records=BadRecordSettings()
    )


def assert_red_squares(tmp_path: Path, frame: pd.DataFrame) -> None:
    crops, rejects = run_crops(tmp_path, frame.to_dict("records"), CROPS, name="crops")
    assert rejects.empty, rejects["detail"].tolist()
    assert len(crops) == len(SIZES)
    for rel in crops["path"]:
        assert abs(read_png(tmp_path / "crops" / "crops" / rel) - RED).max() <= 12


def test_absolute_file_names_are_read_where_they_are(tmp_path):
    files = photos(tmp_path / "pictures")
    # FiftyOne's labels-only export (abs_paths=True): labels.json names every file absolutely
    path = labels(tmp_path / "export/labels.json", {n: str(p) for n, p in files.items()})
    frame, rejects = boxes_of(path)
    assert rejects.empty
    assert sorted(frame["image_path"]) == sorted(str(p) for p in files.values())
    assert_red_squares(tmp_path, frame)


def test_names_relative_to_the_annotation_file_may_leave_its_folder(tmp_path):
    # Label Studio: export/project-1/result.json names ../../media/upload/1/{file}
    files = photos(tmp_path / "media/upload/1")
    names = {n: f"../../media/upload/1/{n}" for n in files}
    frame, rejects = boxes_of(labels(tmp_path / "export/project-1/result.json", names))
    assert rejects.empty
    assert all(
        Path(p).resolve() in {f.resolve() for f in files.values()} for p in frame["image_path"]
    )
    assert_red_squares(tmp_path, frame)


def test_a_downloaded_source_still_refuses_names_that_leave_its_folder(tmp_path):
    files = photos(tmp_path / "pictures")
    path = labels(
        tmp_path / "coco/annotations.json",
        {"a.jpg": str(files["a.jpg"]), "b.jpg": "../x/b.jpg", "c.jpg": "c.jpg"},
    )
    rejects = RecordRejects("coco")
    frame = read_boxes(
        path,
        image_dir=tmp_path / "coco/images",
        categories=("thing",),
        source="coco",
        split="train",
        rejects=rejects,
        bad_records=BadRecordSettings(max_fraction=1),
    )
    assert frame["image_path"].tolist() == [str(tmp_path / "coco/images/c.jpg")]
    assert sorted(rejects.frame()["reason"]) == ["unsafe_file_name", "unsafe_file_name"]


def test_missing_sizes_are_read_from_the_headers_without_decoding(tmp_path, monkeypatch):
    files = photos(tmp_path / "pictures")

    def no_decoding(self, *args):
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    frame, rejects = boxes_of(
        labels(tmp_path / "pictures/labels.json", {n: n for n in files}, sizes=False)
    )
    assert rejects.empty
    got = {Path(r.image_path).name: (r.image_width, r.image_height) for r in frame.itertuples()}
    assert got == SIZES
    monkeypatch.undo()
    assert_red_squares(tmp_path, frame)


def turned_photo(path: Path) -> Path:
    """A 600 x 400 picture stored turned (400 x 600) with EXIF orientation 6, as phones write."""
    image = Image.new("RGB", (600, 400), BLUE)
    image.paste(RED, SQUARE_AT["a.jpg"])
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    image.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    return path


def test_read_sizes_follow_the_exif_setting(tmp_path):
    turned_photo(tmp_path / "a.jpg")
    path = labels(tmp_path / "labels.json", {"a.jpg": "a.jpg"}, sizes=False)
    frame, _ = boxes_of(path)
    assert (frame.loc[0, "image_width"], frame.loc[0, "image_height"]) == (600, 400)
    # as stored, the box [200, 100, 300, 200] still lies inside the 400 x 600 image
    frame, _ = boxes_of(path, exif="ignore")
    assert (frame.loc[0, "image_width"], frame.loc[0, "image_height"]) == (400, 600)


def test_sizes_images_replaces_the_stored_size_an_export_wrote(tmp_path):
    # Label Studio's COCO export: boxes as displayed, width and height as stored (label-studio#6608)
    turned_photo(tmp_path / "a.jpg")
    path = labels(tmp_path / "labels.json", {"a.jpg": "a.jpg"})
    data = json.loads(path.read_text())
    data["images"][0] |= {"width": 400, "height": 600}
    path.write_text(json.dumps(data))
    frame, _ = boxes_of(path)
    crops, rejects = run_crops(tmp_path, frame.to_dict("records"), CROPS, name="as_written")
    assert rejects["reason"].tolist() == ["size_mismatch"]  # and says: set exif: ignore
    frame, _ = boxes_of(path, sizes="images")
    assert (frame.loc[0, "image_width"], frame.loc[0, "image_height"]) == (600, 400)
    crops, rejects = run_crops(tmp_path, frame.to_dict("records"), CROPS, name="read")
    assert (
        rejects.empty
        and abs(read_png(tmp_path / "read" / "crops" / crops.loc[0, "path"]) - RED).max() <= 12
    )


def test_an_image_without_size_and_file_is_a_missing_image_record(tmp_path):
    photos(tmp_path / "pictures")
    (tmp_path / "pictures/b.jpg").unlink()
    path = labels(tmp_path / "pictures/labels.json", {n: n for n in SIZES}, sizes=False)
    cfg = CocoFormatSettings(annotations=str(path))
    frame, rejects = coco_format_boxes(
        "zoo", settings=cfg, categories=("thing",), bad_records=BadRecordSettings(max_fraction=0.5)
    )
    assert len(frame) == 2
    assert rejects[["box_id", "reason"]].values.tolist() == [["zoo:2:12", "missing_image"]]
    assert f"{tmp_path / 'pictures/b.jpg'}: not found" in rejects.loc[0, "detail"]


# --- the crop stage stops when images are not where they were looked for ----------------------


def configure(work: Path, zoo: dict, crops: dict | None = None, **top) -> None:
    exp = {"sources": ["zoo"], "categories": ["thing"], "image_size": 32}
    exp["crops"] = {"min_box_side": 8, "margin": 0.0, **(crops or {})}
    config = {"sources": {"zoo": zoo}, "experiments": {"zoo_exp": exp}, **top}
    write_config(work, TINY_DEMO, config)


def test_a_wrong_images_folder_stops_the_crop_stage_naming_it_and_the_fix(tmp_path):
    photos(tmp_path / "export/data")
    path = labels(tmp_path / "export/labels.json", {n: n for n in SIZES})  # names without data/
    work = tmp_path / "work"
    configure(work, {"format": "coco", "annotations": str(path)})
    proc = snakemake(work, "--cores", "1", "results/zoo_exp/crops.parquet", check=False)
    log = (work / "logs/crops_extract/zoo_exp.log").read_text()
    assert proc.returncode != 0
    assert "3 of 3 images (100.0%) could not be used, more than bad_images.max_fraction 0.02" in log
    assert f"source 'zoo': 3 images (missing_image 3), looked in {tmp_path / 'export'}" in log
    assert f"{tmp_path / 'export/a.jpg'} (missing_image)" in log
    assert f"a.jpg is in {tmp_path / 'export/data'}" in log  # where they are, found below
    assert (
        "fix: sources.zoo.images must be the folder that holds the images by their file_name" in log
    )
    assert not (work / "results/zoo_exp/crops.parquet").exists()
    # the fix it names works
    configure(
        work, {"format": "coco", "annotations": str(path), "images": str(tmp_path / "export/data")}
    )
    snakemake(work, "--cores", "1", "results/zoo_exp/crops.parquet")
    assert len(pd.read_parquet(work / "results/zoo_exp/crops.parquet")) == 3


def test_a_few_missing_images_are_rejects_under_the_limit(tmp_path):
    photos(tmp_path / "data")
    (tmp_path / "data/b.jpg").unlink()
    path = labels(tmp_path / "data/labels.json", {n: n for n in SIZES})
    work = tmp_path / "work"
    configure(work, {"format": "coco", "annotations": str(path)}, bad_images={"max_fraction": 0.5})
    snakemake(work, "--cores", "1", "results/zoo_exp/crops.parquet")
    rejects = pd.read_parquet(work / "results/zoo_exp/rejects.parquet")
    assert rejects[["box_id", "reason"]].values.tolist() == [["zoo:2:12", "missing_image"]]


def test_no_crop_at_all_stops_with_the_rejects_by_reason(tmp_path):
    photos(tmp_path / "data")
    path = labels(tmp_path / "data/labels.json", {n: n for n in SIZES})
    work = tmp_path / "work"
    configure(work, {"format": "coco", "annotations": str(path)}, {"min_box_side": 200})
    proc = snakemake(work, "--cores", "1", "results/zoo_exp/crops.parquet", check=False)
    log = (work / "logs/crops_extract/zoo_exp.log").read_text()
    assert proc.returncode != 0
    assert "no crop: every one of 3 boxes was rejected (small_box 3)" in log
    assert "small_box: 100.0 < 200" in log
