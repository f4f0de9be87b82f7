"""COCO: annotations archive and only the images of the category, from a server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from pipeline.config import CropSettings
from pipeline.download import DownloadError, DownloadSettings
from pipeline.records import BadRecordSettings
from pipeline.sources import coco
from pipeline.sources.coco import CocoSettings
from tests.conftest import TINY_DEMO, snakemake, write_config
from tests.fixtures import box, read_png, run_crops
from tests.httpserver import photo_jpeg

# image id -> (split, file name, width, height); boxes as COCO writes them: [x, y, w, h]
IMAGES = {
    139: ("val2017", "000000000139.jpg", 640, 426),
    285: ("train2017", "000000000285.jpg", 586, 640),
    632: ("train2017", "000000000632.jpg", 640, 483),
    724: ("train2017", "000000000724.jpg", 375, 500),  # zebras only: never fetched
}
ANNOTATIONS = [
    (1, 139, 25, [100.5, 50.25, 200.0, 300.0], 0),
    (2, 285, 25, [0.0, 10.0, 150.0, 150.0], 0),
    (3, 285, 25, [500.0, 600.0, 120.0, 80.0], 0),  # overflows: clipped to 586 x 640
    (4, 632, 25, [10.0, 20.0, 300.0, 400.0], 1),  # crowd
    (5, 724, 24, [5.0, 5.0, 100.0, 100.0], 0),
]
CATEGORIES = [
    {"id": 24, "name": "zebra", "supercategory": "animal"},
    {"id": 25, "name": "giraffe", "supercategory": "animal"},
]


def jpeg(width: int, height: int) -> bytes:
    return photo_jpeg(width, height)


def instances(split: str) -> dict:
    ids = {i for i, (s, *_) in IMAGES.items() if s == split}
    return {
        "info": {},
        "licenses": [],
        "images": [
            {
                "id": i,
                "file_name": IMAGES[i][1],
                "width": IMAGES[i][2],
                "height": IMAGES[i][3],
                "coco_url": f"http://images.cocodataset.org/{split}/{IMAGES[i][1]}",
            }
            for i in sorted(ids)
        ],
        "annotations": [
            {
                "id": a,
                "image_id": im,
                "category_id": c,
                "bbox": b,
                "iscrowd": crowd,
                "area": b[2] * b[3],
                "segmentation": [],
            }
            for a, im, c, b, crowd in ANNOTATIONS
            if im in ids
        ],
        "categories": CATEGORIES,
    }


def annotations_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split in ("train2017", "val2017"):
            archive.writestr(f"annotations/instances_{split}.json", json.dumps(instances(split)))
        archive.writestr("annotations/captions_train2017.json", "{}")
    return buffer.getvalue()


def serve_coco(server):
    archive = annotations_zip()
    server.add("/annotations/annotations_trainval2017.zip", archive)
    for split, name, width, height in IMAGES.values():
        server.add(f"/{split}/{name}", jpeg(width, height))
    server.archive_sha256 = hashlib.sha256(archive).hexdigest()
    return server


@pytest.fixture
def coco_server(http_server):
    return serve_coco(http_server)


def settings(server) -> CocoSettings:
    return CocoSettings(
        annotations_url=server.url("/annotations/annotations_trainval2017.zip"),
        annotations_sha256=server.archive_sha256,
        image_base_url=server.url("").rstrip("/"),
        splits=("train2017", "val2017"),
    )


FAST = DownloadSettings(workers=4, retries=1, backoff=0.01, timeout=5.0, max_failure_fraction=0.0)


def download(server, root: Path, download_settings=FAST) -> pd.DataFrame:
    s = settings(server)
    paths = {split: root / f"instances_{split}.json" for split in s.splits}
    coco.download_annotations(
        s, download=download_settings, archive=root / "annotations.zip", outputs=paths
    )
    boxes, rejects = coco.coco_boxes(
        s,
        instances=paths,
        image_root=root / "images",
        categories=("giraffe",),
        download=download_settings,
        failures=root / "failures.tsv",
        bad_records=BadRecordSettings(),
    )
    assert rejects.empty
    return boxes


def test_only_the_category_images_are_fetched_and_boxes_are_in_pixels(coco_server, tmp_path):
    boxes = download(coco_server, tmp_path).set_index("box_id")
    assert list(boxes.index) == ["coco:139:1", "coco:285:2", "coco:285:3", "coco:632:4"]
    assert boxes.loc["coco:139:1", ["x0", "y0", "x1", "y1"]].tolist() == [
        100.5,
        50.25,
        300.5,
        350.25,
    ]
    assert boxes.loc["coco:285:3", ["x0", "y0", "x1", "y1"]].tolist() == [
        500.0,
        600.0,
        586.0,
        640.0,
    ]
    assert boxes.loc["coco:632:4", "is_crowd"] and not boxes.loc["coco:139:1", "is_crowd"]
    assert boxes.loc["coco:139:1", "split"] == "val2017"
    assert boxes.loc["coco:139:1", "image_path"] == str(
        tmp_path / "images/val2017/000000000139.jpg"
    )
    assert (tmp_path / "images/train2017/000000000285.jpg").exists()
    assert not (tmp_path / "images/train2017/000000000724.jpg").exists()
    assert not any("000000000724" in path for path in coco_server.requested_paths())


def test_a_second_run_fetches_nothing_again(coco_server, tmp_path):
    download(coco_server, tmp_path)
    before = len(coco_server.requested_paths())
    again = download(coco_server, tmp_path)
    assert len(again) == 4
    assert len(coco_server.requested_paths()) == before


def test_wrong_archive_checksum_is_an_error(coco_server, tmp_path):
    coco_server.archive_sha256 = "0" * 64
    with pytest.raises(RuntimeError, match="sha256"):
        download(coco_server, tmp_path)
    assert not (tmp_path / "annotations.zip").exists()


def test_a_dead_image_link_is_recorded_and_the_threshold_honoured(coco_server, tmp_path):
    coco_server.add("/train2017/000000000632.jpg", b"", fail_status=404)
    with pytest.raises(DownloadError, match="failures.tsv"):
        download(coco_server, tmp_path)
    table = pd.read_csv(tmp_path / "failures.tsv", sep="\t")
    assert table["url"].str.endswith("/train2017/000000000632.jpg").tolist() == [True]
    tolerant = DownloadSettings(
        workers=4, retries=1, backoff=0.01, timeout=5.0, max_failure_fraction=0.5
    )
    boxes = download(coco_server, tmp_path / "again", tolerant)
    assert sorted(boxes["box_id"]) == ["coco:139:1", "coco:285:2", "coco:285:3"]


def workflow_config(server, **download) -> dict:
    s = settings(server)
    return {
        "download": {"retries": 0, "timeout": 5, **download},
        "sources": {
            "coco": {
                "annotations_url": s.annotations_url,
                "annotations_sha256": s.annotations_sha256,
                "image_base_url": s.image_base_url,
            }
        },
        "experiments": {
            "giraffe_test": {
                "sources": ["coco"],
                "categories": ["giraffe"],
                "image_size": 32,
                "crops": {"min_box_side": 16},
            }
        },
    }


def test_coco_experiment_through_the_workflow(coco_server, tmp_path):
    config = workflow_config(coco_server)
    write_config(tmp_path, TINY_DEMO, config)
    snakemake(tmp_path, "--cores", "2", "results/giraffe_test/crops.parquet")
    crops = pd.read_parquet(tmp_path / "results/giraffe_test/crops.parquet")
    rejects = pd.read_parquet(tmp_path / "results/giraffe_test/rejects.parquet")
    assert sorted(crops["box_id"]) == ["coco:139:1", "coco:285:2", "coco:285:3"]
    assert rejects.set_index("box_id")["reason"].to_dict() == {"coco:632:4": "crowd"}
    for path in crops["path"]:
        assert Image.open(tmp_path / "results/giraffe_test/crops" / path).size == (32, 32)


def test_local_coco_folder_is_used_without_any_download(tmp_path):
    local = tmp_path / "my_coco"
    for split in ("train2017", "val2017"):
        (local / "annotations").mkdir(parents=True, exist_ok=True)
        (local / "annotations" / f"instances_{split}.json").write_text(json.dumps(instances(split)))
    for split, name, width, height in IMAGES.values():
        (local / split).mkdir(exist_ok=True)
        (local / split / name).write_bytes(jpeg(width, height))
    dead = "http://127.0.0.1:9"  # nothing listens there: any download would fail the run
    config = {
        "sources": {
            "coco": {
                "annotations_url": f"{dead}/a.zip",
                "image_base_url": dead,
                "local_dir": str(local),
            }
        },
        "experiments": {
            "giraffe_local": {"sources": ["coco"], "categories": ["giraffe"], "image_size": 32}
        },
    }
    write_config(tmp_path / "work", config)
    snakemake(tmp_path / "work", "--cores", "1", "results/giraffe_local/boxes.parquet")
    boxes = pd.read_parquet(tmp_path / "work/results/giraffe_local/boxes.parquet")
    assert len(boxes) == 4 and boxes["image_path"].str.startswith(str(local)).all()


@pytest.mark.slow
def test_the_failure_list_outlives_the_failed_job(coco_server, tmp_path):
    coco_server.add("/train2017/000000000632.jpg", b"", fail_status=404)
    write_config(tmp_path, TINY_DEMO, workflow_config(coco_server, max_failure_fraction=0.0))
    proc = snakemake(tmp_path, "--cores", "1", "results/giraffe_test/boxes.parquet", check=False)
    assert proc.returncode != 0
    failures = tmp_path / "logs/coco_boxes/giraffe_test.failures.tsv"
    log = (tmp_path / "logs/coco_boxes/giraffe_test.log").read_text()
    assert f"the list is in {failures.relative_to(tmp_path)}" in log  # the file the error names ...
    table = pd.read_csv(failures, sep="\t")  # ... exists after the failed job
    assert table["url"].str.endswith("/train2017/000000000632.jpg").tolist() == [True]
    assert table["status"].tolist() == [404]
    assert not (tmp_path / "results/giraffe_test/sources/coco.parquet").exists()


@pytest.mark.slow
def test_a_transiently_corrupted_image_gives_the_right_crop_after_a_rerun(coco_server, tmp_path):
    good = jpeg(640, 426)
    coco_server.add("/val2017/000000000139.jpg", good, corrupt=1)  # wrong bytes, once
    write_config(tmp_path, TINY_DEMO, workflow_config(coco_server, max_failure_fraction=0.0))
    target = "results/giraffe_test/crops.parquet"
    proc = snakemake(tmp_path, "--cores", "1", target, check=False)
    assert proc.returncode != 0  # the damaged image counts as a failed download
    image = tmp_path / "resources/downloads/coco/val2017/000000000139.jpg"
    assert not image.exists() and image.with_name(image.name + ".corrupt").exists()
    snakemake(tmp_path, "--cores", "1", target)  # the next run fetches it again
    assert image.read_bytes() == good
    crops = pd.read_parquet(tmp_path / target).set_index("box_id")
    crop = read_png(tmp_path / "results/giraffe_test/crops" / crops.loc["coco:139:1", "path"])
    # the crop equals the crop stage's crop of the good bytes, cut in a clean folder
    clean = tmp_path / "clean.jpg"
    clean.write_bytes(good)
    row = box(clean, "coco:139:1", 100.5, 50.25, 300.5, 350.25, width=640, height=426)
    expected, _ = run_crops(tmp_path / "clean", [row], CropSettings(min_box_side=16))
    assert (
        crop.tolist() == read_png(tmp_path / "clean/out/crops" / expected.loc[0, "path"]).tolist()
    )
