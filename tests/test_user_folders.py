"""A user's own folders (local_dir) are read, never written: whatever Snakemake decides to rerun.

Each test builds a folder the way a user holds it (files older than the code, folder read-only),
hashes every file, runs the data stages, `--forceall` and a changed setting, and compares.
Runs as root on CI, where write bits do not stop us: the hashes are what proves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import TINY_DEMO, snakemake, write_config
from tests.httpserver import photo_jpeg
from tests.test_coco_source import IMAGES, instances

pytestmark = pytest.mark.slow
DEAD = "http://127.0.0.1:9"  # nothing listens there: any download fails the run
OLD = 1_577_836_800  # 2020-01-01: older than any code of this workflow


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def user_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder to fill; `freeze(folder)` makes it old and read-only; write bits come back after."""
    folder = tmp_path / "user data"  # a space in the path, as users have
    folder.mkdir()
    yield folder
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def freeze(folder: Path) -> dict[str, str]:
    """Set every file and folder to 2020 and read-only; return the files' hashes."""
    for p in sorted([folder, *folder.rglob("*")], key=lambda p: -len(p.parts)):
        os.utime(p, (OLD, OLD))
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return tree_hashes(folder)


def run_three_ways(workdir: Path, target: str, changed: dict, *, check: bool = True) -> list:
    """The target, then --forceall, then a changed setting; the processes."""
    procs = [snakemake(workdir, "--cores", "2", target, check=check)]
    procs.append(snakemake(workdir, "--cores", "2", "--forceall", target, check=check))
    config = workdir / "config" / "config.yaml"
    write_config(workdir, yaml_of(config), changed)
    procs.append(snakemake(workdir, "--cores", "2", target, check=check))
    return procs


def yaml_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# --- COCO in its own layout --------------------------------------------------------------------


def test_a_local_coco_folder_stays_byte_identical(user_folder, tmp_path):
    for split in ("train2017", "val2017"):
        (user_folder / "annotations").mkdir(exist_ok=True)
        data = json.dumps(instances(split))
        (user_folder / "annotations" / f"instances_{split}.json").write_text(data)
    for split, name, width, height in IMAGES.values():
        if name == "000000000139.jpg":
            continue  # missing from the folder: a reject, never a download
        (user_folder / split).mkdir(exist_ok=True)
        (user_folder / split / name).write_bytes(photo_jpeg(width, height))
    before, entries = freeze(user_folder), listing(user_folder)
    coco = {"annotations_url": f"{DEAD}/a.zip", "image_base_url": DEAD}
    config = {
        "bad_images": {"max_fraction": 0.5},  # one image of two is missing
        "sources": {"coco": {**coco, "local_dir": str(user_folder)}},
        "experiments": {
            "mine": {
                "sources": ["coco"],
                "categories": ["giraffe"],
                "image_size": 32,
                "crops": {"min_box_side": 16},
            }
        },
    }
    work = tmp_path / "work"
    write_config(work, TINY_DEMO, config)
    changed = {
        "sources": {"coco": {"annotations_url": f"{DEAD}/other.zip", "splits": ["train2017"]}},
        "experiments": {"mine": {"crops": {"margin": 0.3}}},
    }
    run_three_ways(work, "results/mine/crops.parquet", changed)
    assert tree_hashes(user_folder) == before
    assert listing(user_folder) == entries  # nothing added either
    assert not (work / "logs/coco_annotations.log").exists()  # the download rule never ran
    crops = pd.read_parquet(work / "results/mine/crops.parquet")
    assert sorted(crops["box_id"]) == ["coco:285:2", "coco:285:3"]  # after the split change


def test_missing_local_coco_images_stop_the_crops_naming_the_layout_never_a_download(
    user_folder, tmp_path
):
    (user_folder / "annotations").mkdir()
    for split in ("train2017", "val2017"):
        data = json.dumps(instances(split))
        (user_folder / "annotations" / f"instances_{split}.json").write_text(data)
    freeze(user_folder)
    config = {
        "sources": {"coco": {"image_base_url": DEAD, "local_dir": str(user_folder)}},
        "experiments": {"mine": {"sources": ["coco"], "categories": ["giraffe"], "image_size": 32}},
    }
    write_config(tmp_path, TINY_DEMO, config)
    proc = snakemake(tmp_path, "--cores", "1", "results/mine/crops.parquet", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/crops_extract/mine.log").read_text()
    assert "2 of 2 images (100.0%) could not be used" in log
    assert f"source 'coco': 2 images (missing_image 2), looked in {user_folder}" in log
    assert f"{user_folder / 'val2017' / '000000000139.jpg'} (missing_image)" in log
    assert "fix: sources.coco.local_dir must hold the images as {split}/{file_name}" in log
    assert not (tmp_path / "logs/coco_annotations.log").exists()  # nothing fetched
    assert not (tmp_path / "results/mine/crops.parquet").exists()


# --- CelebA and FFHQ with a file whose checksum differs ----------------------------------------


def celeba_folder(folder: Path) -> dict:
    """The three CelebA files, as torchvision lays them out; the config's files block (MD5s of a
    different copy of the attribute list: a file from another mirror)."""
    images = {f"img_align_celeba/{i:06d}.jpg": photo_jpeg(178, 218, seed=i) for i in range(1, 4)}
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as archive:
        for name, data in images.items():
            archive.writestr(name, data)
    attrs = "3\nSmiling Eyeglasses\n000001.jpg 1 -1\n000002.jpg -1 -1\n000003.jpg 1 1\n"
    (folder / "list_attr_celeba.txt").write_text(attrs)
    (folder / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n")
    files = {
        p.name: {"drive_id": "x", "md5": hashlib.md5(p.read_bytes()).hexdigest()}
        for p in folder.iterdir()
    }
    files["list_attr_celeba.txt"]["md5"] = hashlib.md5(
        attrs.replace(" 1", "  1").encode()
    ).hexdigest()
    return files


def test_celeba_local_files_with_a_differing_md5_are_refused_untouched_then_used(
    user_folder, tmp_path
):
    files = celeba_folder(user_folder)
    before = freeze(user_folder)
    celeba = {"local_dir": str(user_folder), "files": files, "url_template": f"{DEAD}/{{name}}"}
    config = {
        "sources": {"celeba": celeba},
        "experiments": {"faces": {"sources": ["celeba"], "categories": ["face"], "image_size": 32}},
    }
    write_config(tmp_path, TINY_DEMO, config)
    proc = snakemake(tmp_path, "--cores", "1", "results/faces/crops.parquet", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/celeba_boxes/faces.log").read_text()
    expected = files["list_attr_celeba.txt"]["md5"]
    found = hashlib.md5((user_folder / "list_attr_celeba.txt").read_bytes()).hexdigest()
    assert f"list_attr_celeba.txt: md5 differs: expected {expected}, found {found}" in log
    assert "local_checksum_mismatch: use" in log
    assert tree_hashes(user_folder) == before
    changed = {"experiments": {"faces": {"crops": {"margin": 0.1}}}}
    write_config(
        tmp_path, yaml_of(tmp_path / "config/config.yaml"), {"local_checksum_mismatch": "use"}
    )
    run_three_ways(tmp_path, "results/faces/crops.parquet", changed)
    assert tree_hashes(user_folder) == before
    assert len(pd.read_parquet(tmp_path / "results/faces/crops.parquet")) == 3
    extracted = tmp_path / "resources/downloads/celeba/images/img_align_celeba"
    assert sorted(p.name for p in extracted.iterdir()) == ["000001.jpg", "000002.jpg", "000003.jpg"]


def ffhq_folder(folder: Path) -> dict:
    """FFHQ's metadata and three thumbnails; the third's MD5 in the metadata is another file's."""
    metadata = {}
    for i in range(3):
        data = photo_jpeg(128, 128, seed=i)  # FFHQ's are PNG; the bytes' kind does not matter here
        path = f"thumbnails128x128/00000/{i:05d}.png"
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
        info = {
            "file_url": f"{DEAD}/{path}",
            "file_path": path,
            "file_size": len(data),
            "file_md5": hashlib.md5(data if i < 2 else b"another").hexdigest(),
            "pixel_size": [128, 128],
            "pixel_md5": "x",
        }
        metadata[str(i)] = {"image": info, "thumbnail": info, "in_the_wild": {}, "metadata": {}}
    (folder / "ffhq-dataset-v2.json").write_text(json.dumps(metadata))
    return {"metadata_md5": hashlib.md5((folder / "ffhq-dataset-v2.json").read_bytes()).hexdigest()}


def test_ffhq_local_image_with_a_differing_md5_is_a_reject_and_left_alone(user_folder, tmp_path):
    ffhq = {**ffhq_folder(user_folder), "local_dir": str(user_folder), "metadata_url": f"{DEAD}/m"}
    before = freeze(user_folder)
    config = {
        "sources": {"ffhq": ffhq},
        "experiments": {"faces": {"sources": ["ffhq"], "categories": ["face"], "image_size": 32}},
    }
    write_config(tmp_path, TINY_DEMO, config)
    changed = {"experiments": {"faces": {"crops": {"margin": 0.05}}}}
    run_three_ways(tmp_path, "results/faces/crops.parquet", changed)
    assert tree_hashes(user_folder) == before
    crops = pd.read_parquet(tmp_path / "results/faces/crops.parquet")
    rejects = pd.read_parquet(tmp_path / "results/faces/rejects.parquet").set_index("box_id")
    assert sorted(crops["box_id"]) == ["ffhq:00000", "ffhq:00001"]
    assert rejects.loc["ffhq:00002", "reason"] == "checksum_mismatch"
    assert "00002.png: md5 differs" in rejects.loc["ffhq:00002", "detail"]  # same size
    # with `use`, the same image is taken as it is
    write_config(
        tmp_path, yaml_of(tmp_path / "config/config.yaml"), {"local_checksum_mismatch": "use"}
    )
    snakemake(tmp_path, "--cores", "2", "results/faces/crops.parquet")
    crops = pd.read_parquet(tmp_path / "results/faces/crops.parquet")
    assert sorted(crops["box_id"]) == ["ffhq:00000", "ffhq:00001", "ffhq:00002"]
    assert tree_hashes(user_folder) == before


def test_no_job_of_any_source_has_an_output_in_a_local_dir(tmp_path):
    """Every source at once, local: even --forceall plans no download and writes nothing there."""
    local = {name: tmp_path / f"local {name}" for name in ("coco", "visual_genome", "openimages")}
    local |= {name: tmp_path / f"local {name}" for name in ("celeba", "ffhq")}
    files = {
        "coco": ["annotations/instances_train2017.json", "annotations/instances_val2017.json"],
        "visual_genome": ["image_data.json", "objects.json"],
        "openimages": [
            "metadata/v7/oidv7-class-descriptions-boxable.csv",
            *(f"metadata/v5/{s}-annotations-bbox.csv" for s in ("validation", "test")),
            "metadata/v6/oidv6-train-annotations-bbox.csv",
            "metadata/2018_04/train/train-images-boxable-with-rotation.csv",
            "metadata/2018_04/validation/validation-images-with-rotation.csv",
            "metadata/2018_04/test/test-images-with-rotation.csv",
        ],
        "celeba": ["img_align_celeba.zip", "list_attr_celeba.txt", "list_eval_partition.txt"],
        "ffhq": ["ffhq-dataset-v2.json"],
    }
    for name, relpaths in files.items():
        for rel in relpaths:
            (local[name] / rel).parent.mkdir(parents=True, exist_ok=True)
            (local[name] / rel).write_text("{}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "labels.json").write_text("{}")
    sources = {name: {"local_dir": str(path)} for name, path in local.items()}
    sources["mine"] = {"format": "coco", "annotations": str(mine / "labels.json")}
    every = [*files, "mine"]
    config = {
        "sources": sources,
        "experiments": {"all": {"sources": every, "categories": ["giraffe"], "image_size": 64}},
    }
    write_config(tmp_path / "work", config)
    proc = snakemake(tmp_path / "work", "-n", "--forceall", "results/all/boxes.parquet")
    outputs = [line for line in proc.stdout.splitlines() if line.strip().startswith("output:")]
    assert len(outputs) == len(every) + 1  # one boxes job per source, and the merge
    for line in outputs:
        assert "local " not in line and str(mine) not in line, line
    for rule in ("coco_annotations", "visual_genome_metadata", "openimages_metadata"):
        assert f"rule {rule}:" not in proc.stdout


def test_an_unknown_source_name_is_refused_when_the_workflow_loads(tmp_path):
    config = {"experiments": {"x": {"sources": ["cooc"], "categories": ["a"], "image_size": 32}}}
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, "-n", "results/x/boxes.parquet", check=False)
    assert proc.returncode != 0
    assert "experiment 'x': unknown source(s) ['cooc']" in proc.stdout + proc.stderr
