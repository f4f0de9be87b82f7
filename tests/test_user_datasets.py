"""Named datasets of the user's own in COCO format: FiftyOne, CVAT and Roboflow exports of real
photographs, through the workflow to crops; the user's folder is only ever read."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import (
    REPO,
    SCRIPTS,
    TINY_DEMO,
    dry_run,
    script_imports,
    snakemake,
    write_config,
)
from tests.user_datasets import (
    PHOTO_BOXES,
    Box,
    UserDataset,
    cvat_coco,
    fiftyone_coco,
    roboflow_coco,
)

pytest.importorskip("skimage", reason="the photographs are scikit-image's: pip install -e '.[dev]'")

IMAGE_SIZE = 32
MIN_BOX_SIDE = 8
OLD = datetime(2020, 1, 1, 12, 0).timestamp()  # older than any code of the workflow
# the rules of the built-in sources: those whose scripts use a source, less named datasets' rule
BUILTIN_RULES = {
    path.stem
    for path in SCRIPTS.glob("*.py")
    if "pipeline.sources" in script_imports(path.stem) and path.stem != "coco_format_boxes"
}


def test_the_built_in_rules_are_those_of_every_built_in_source():
    """assert_nothing_downloaded checks against these: an empty set would let anything pass."""
    sources = {path.stem for path in (REPO / "workflow/rules/sources").glob("*.smk")}
    assert {"synthetic", "coco", "visual_genome", "openimages", "celeba", "ffhq"} <= sources
    assert {rule.rsplit("_", 1)[0] for rule in BUILTIN_RULES} == sources
    assert {"coco_annotations", "coco_boxes", "synthetic_dataset"} <= BUILTIN_RULES


def needs_fiftyone():
    pytest.importorskip("fiftyone", reason="FiftyOne exports this layout: pip install -e '.[dev]'")


# --------------------------------------------------------------------------------------------
# The user's folder: frozen before the run (old mtimes, no write bits), compared after it.


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under `root`: content hash (files), mode and mtime."""
    out = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = (digest, stat.S_IMODE(st.st_mode), st.st_mtime_ns, st.st_size)
    return out


def _walk_bottom_up(root: Path) -> list[Path]:
    return sorted([root, *root.rglob("*")], key=lambda p: len(p.parts), reverse=True)


@pytest.fixture
def freeze():
    """`freeze(root)`: mtimes set to 2020 and write bits taken away; restored at teardown."""
    frozen: list[Path] = []

    def _freeze(root: Path) -> dict[str, tuple]:
        for path in _walk_bottom_up(root):  # contents first: a folder's mtime set last
            os.utime(path, (OLD, OLD), follow_symlinks=False)
        for path in _walk_bottom_up(root):
            os.chmod(path, stat.S_IMODE(path.lstat().st_mode) & ~0o222)
        frozen.append(root)
        return snapshot(root)

    yield _freeze
    for root in frozen:
        for path in [root, *root.rglob("*")]:
            os.chmod(path, stat.S_IMODE(path.lstat().st_mode) | 0o200)


def assert_untouched(root: Path, before: dict[str, tuple], when: str) -> None:
    after = snapshot(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), (
        f"{when}: the user's folder {root} changed: added {added}, removed {removed}, "
        f"changed {[(k, before[k], after[k]) for k in changed]}"
    )


# --------------------------------------------------------------------------------------------
# The workflow on a fresh workdir.


def configure(workdir: Path, exp: str, sources: dict[str, dict], categories: list[str]) -> None:
    write_config(
        workdir,
        TINY_DEMO,
        {
            "sources": sources,
            "experiments": {
                exp: {
                    "sources": list(sources),
                    "categories": categories,
                    "image_size": IMAGE_SIZE,
                    # margin 0 and padded squares: the crop is the box's square, checked below
                    "crops": {"min_box_side": MIN_BOX_SIDE, "margin": 0.0, "square": "pad"},
                }
            },
        },
    )


def crops_run(workdir: Path, exp: str, *args: str) -> None:
    snakemake(workdir, "--cores", "2", *args, f"results/{exp}/crops.parquet")


def assert_nothing_downloaded(workdir: Path, exp: str) -> None:
    jobs = dry_run(workdir, f"results/{exp}/crops.parquet")
    assert jobs.get("coco_format_boxes") == 1, jobs
    assert not set(jobs) & BUILTIN_RULES, f"a built-in source's rule is planned: {jobs}"


# --------------------------------------------------------------------------------------------
# What the tables must hold.


def annotation_index(dataset: UserDataset, name: str) -> dict[str, tuple[str, str, tuple]]:
    """box_id -> (file name, category as written, (x0, y0, x1, y1)), from the annotation files."""
    several = len(dataset.annotations) > 1
    index = {}
    for k, path in enumerate(dataset.annotations):
        data = json.loads(path.read_text())
        files = {image["id"]: image["file_name"] for image in data["images"]}
        names = {c["id"]: c["name"] for c in data["categories"]}
        for a in data["annotations"]:
            prefix = f"{name}:{k}" if several else name
            x, y, w, h = a["bbox"]
            index[f"{prefix}:{a['image_id']}:{a['id']}"] = (
                files[a["image_id"]],
                names[a["category_id"]],
                (x, y, x + w, y + h),
            )
    return index


def is_small(x0: float, y0: float, x1: float, y1: float) -> bool:
    return min(x1 - x0, y1 - y0) < MIN_BOX_SIDE


def square(box: Box) -> tuple[int, int, int, int]:
    """The box grown to a square around its centre (the crop stage with margin 0, pad)."""
    side = max(box.x1 - box.x0, box.y1 - box.y0)
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    return x0, y0, x0 + round(side), y0 + round(side)


def region(dataset: UserDataset, file_name: str, box: Box) -> np.ndarray:
    """The box's square cut from the user's photograph with Pillow, resized like a crop."""
    with Image.open(dataset.paths[file_name]) as image:
        cut = image.convert("RGB").crop(square(box))
    return np.asarray(cut.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS), dtype=float)


def matching_box(dataset: UserDataset, file_name: str, row) -> Box:
    """The box the user drew that this crop row stands for (same file, category and corners)."""
    found = [
        b
        for b in dataset.boxes[file_name]
        if b.category.lower() == row.category
        and np.allclose([b.x0, b.y0, b.x1, b.y1], [row.x0, row.y0, row.x1, row.y1], atol=0.5)
    ]
    assert len(found) == 1, (
        f"{row.box_id}: no single box of {file_name} drawn as {row.category} at "
        f"{[row.x0, row.y0, row.x1, row.y1]}; drawn: {dataset.boxes[file_name]}"
    )
    return found[0]


def check_crops(
    workdir: Path,
    exp: str,
    dataset: UserDataset,
    name: str,
    categories: list[str],
    split: str | None = None,
) -> pd.DataFrame:
    """One crop per asked box of `dataset` (named `name`), of the photograph's region."""
    results = workdir / "results" / exp
    crops = pd.read_parquet(results / "crops.parquet")
    rejects = pd.read_parquet(results / "rejects.parquet")
    asked = {c.lower() for c in categories}
    index = annotation_index(dataset, name)
    wanted = {bid: v for bid, v in index.items() if v[1].lower() in asked}
    small = {bid for bid, (_, _, xyxy) in wanted.items() if is_small(*xyxy)}

    # the builder's own boxes, asked ones only: the truth the tables are held to
    drawn = Counter(
        (f, b.category)
        for f, boxes in dataset.boxes.items()
        for b in boxes
        if b.category in asked and not is_small(b.x0, b.y0, b.x1, b.y1)
    )
    assert len(crops) == sum(drawn.values()), (
        f"{len(crops)} crops for {sum(drawn.values())} boxes: {sorted(crops['box_id'])}"
    )
    assert sorted(crops["box_id"]) == sorted(set(wanted) - small)
    assert crops["crop_id"].is_unique
    assert set(crops["source"]) == {name}
    assert set(crops["category"]) <= asked
    if split is not None:
        assert set(crops["split"]) == {split}
    assert Counter((wanted[r.box_id][0], r.category) for r in crops.itertuples()) == drawn

    mine = rejects[rejects["source"] == name]
    assert sorted(mine["box_id"]) == sorted(small), mine.to_dict("records")
    assert set(mine["reason"]) <= {"small_box"}

    # each crop is its box's square of the photograph: closer to it than to any other box's
    regions = {}
    for row in crops.itertuples():
        file_name = wanted[row.box_id][0]
        assert row.category == wanted[row.box_id][1].lower()
        regions[row.box_id] = region(dataset, file_name, matching_box(dataset, file_name, row))
    for row in crops.itertuples():
        png = results / "crops" / row.path
        assert png.is_file(), f"{row.box_id}: no crop at {png}"
        with Image.open(png) as image:
            assert image.size == (IMAGE_SIZE, IMAGE_SIZE)
            pixels = np.asarray(image.convert("RGB"), dtype=float)
        own = regions[row.box_id]
        colour = np.abs(pixels.mean(axis=(0, 1)) - own.mean(axis=(0, 1)))
        assert colour.max() < 8, f"{row.box_id}: mean colour off by {colour.round(1)}"
        distance = np.abs(pixels - own).mean()
        assert distance < 25, f"{row.box_id}: crop differs from its region by {distance:.1f}"
        for other, theirs in regions.items():
            if other != row.box_id:
                assert distance < np.abs(pixels - theirs).mean(), (
                    f"{row.box_id}: crop is closer to the region of {other}"
                )
    return crops


# --------------------------------------------------------------------------------------------
# The builders alone (no workflow): the layouts the exporters write.


def test_fiftyone_export_layout(tmp_path):
    needs_fiftyone()
    dataset = fiftyone_coco(tmp_path / "zoo")
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == ["data", "labels.json"]
    assert sorted(p.name for p in (tmp_path / "zoo/data").iterdir()) == sorted(dataset.paths)
    index = annotation_index(dataset, "zoo")
    assert len(index) == sum(len(b) for b in dataset.boxes.values())
    for file_name, category, xyxy in index.values():
        assert any(
            b.category == category and np.allclose([b.x0, b.y0, b.x1, b.y1], xyxy, atol=0.01)
            for b in dataset.boxes[file_name]
        ), (file_name, category, xyxy)


def test_cvat_and_roboflow_layouts(tmp_path):
    cvat = cvat_coco(tmp_path / "cvat")
    assert sorted(str(p.relative_to(tmp_path / "cvat")) for p in cvat.root.rglob("*.json")) == [
        "annotations/instances_default.json"
    ]
    data = json.loads(cvat.annotations[0].read_text())
    assert min(a["id"] for a in data["annotations"]) == 1
    assert all(c["supercategory"] == "" for c in data["categories"])
    rf = roboflow_coco(tmp_path / "rf")
    assert [str(p.relative_to(rf.root)) for p in rf.annotations] == [
        "train/_annotations.coco.json",
        "valid/_annotations.coco.json",
    ]
    assert all(".rf." in f for f in rf.paths) and all(p.is_file() for p in rf.paths.values())
    for path in rf.annotations:
        data = json.loads(path.read_text())
        assert data["categories"][0] == {"id": 0, "name": "household", "supercategory": "none"}
        assert {a["image_id"] for a in data["annotations"]} == {0, 1}  # ids repeat across splits


# --------------------------------------------------------------------------------------------
# Through the workflow.


def astronaut_boxes(dataset: UserDataset, name: str) -> set[str]:
    return {
        bid
        for bid, (file_name, _, _) in annotation_index(dataset, name).items()
        if file_name.startswith("astronaut")
    }


@pytest.mark.slow
def test_fiftyone_export_through_the_workflow(tmp_path, freeze):
    needs_fiftyone()
    dataset = fiftyone_coco(tmp_path / "user/zoo", scratch=tmp_path / "fiftyone")
    workdir = tmp_path / "work"
    categories = ["face", "cat", "cup", "rocket"]  # not flag, eye, patch, spoon
    configure(workdir, "zoo", {"fo_zoo": dataset.source()}, categories)
    before = freeze(dataset.root)
    crops_run(workdir, "zoo")
    crops = check_crops(workdir, "zoo", dataset, "fo_zoo", categories)
    # the astronaut photo holds two asked categories: both cropped
    assert sorted(crops[crops["box_id"].isin(astronaut_boxes(dataset, "fo_zoo"))]["category"]) == [
        "face",
        "rocket",
    ]
    assert_untouched(dataset.root, before, "after the run")
    crops_run(workdir, "zoo", "--forceall")
    check_crops(workdir, "zoo", dataset, "fo_zoo", categories)
    assert_untouched(dataset.root, before, "after a second run with --forceall")


@pytest.mark.slow
def test_cvat_export_through_the_workflow(tmp_path, freeze):
    dataset = cvat_coco(tmp_path / "user/cvat_task")
    workdir = tmp_path / "work"
    categories = ["face", "cup", "spoon", "rocket", "lamp"]  # not patch, flag
    source = dataset.source(split="validation")
    configure(workdir, "lab", {"cvat_lab": source}, categories)
    before = freeze(dataset.root)
    assert_nothing_downloaded(workdir, "lab")
    crops_run(workdir, "lab")
    crops = check_crops(workdir, "lab", dataset, "cvat_lab", categories, split="validation")
    # CVAT counts images and annotations from 1: astronaut is image 1, its face annotation 1
    assert "cvat_lab:1:1" in set(crops["box_id"])
    rejects = pd.read_parquet(workdir / "results/lab/rejects.parquet").set_index("box_id")
    tiny = [bid for bid, v in annotation_index(dataset, "cvat_lab").items() if is_small(*v[2])]
    assert rejects.loc[tiny, "reason"].tolist() == ["small_box"]
    assert_untouched(dataset.root, before, "after the run")
    crops_run(workdir, "lab", "--forceall")
    check_crops(workdir, "lab", dataset, "cvat_lab", categories, split="validation")
    assert_untouched(dataset.root, before, "after a second run with --forceall")


@pytest.mark.slow
def test_roboflow_splits_as_a_list_of_annotation_files(tmp_path, freeze):
    dataset = roboflow_coco(tmp_path / "user/household.coco")
    assert dataset.images is None  # each split's images lie beside its annotations file
    workdir = tmp_path / "work"
    categories = ["Cat", "FACE", "cup", "Rocket"]  # another case than the export's; not eye
    configure(workdir, "home", {"rf_home": dataset.source()}, categories)
    assert "images" not in dataset.source()
    before = freeze(dataset.root)
    crops_run(workdir, "home")
    crops = check_crops(workdir, "home", dataset, "rf_home", categories)
    assert sorted(crops["category"]) == ["cat", "cup", "face", "rocket", "rocket"]
    # both splits come through, told apart by the annotation file's index in the list
    by_file = Counter(bid.split(":")[1] for bid in crops["box_id"])
    assert by_file == {"0": 3, "1": 2}, sorted(crops["box_id"])
    assert {"rf_home:0:0:0", "rf_home:1:0:0"} <= set(crops["box_id"])  # ids from 0, repeated
    assert_untouched(dataset.root, before, "after the run")
    crops_run(workdir, "home", "--forceall")
    check_crops(workdir, "home", dataset, "rf_home", categories)
    assert_untouched(dataset.root, before, "after a second run with --forceall")


def test_photo_boxes_fit_the_photographs():
    """Every box's square lies inside its photograph (so regions need no padding)."""
    from tests.user_datasets import photo

    for name, boxes in PHOTO_BOXES.items():
        width, height = photo(name).size
        for box in boxes:
            x0, y0, x1, y1 = square(box)
            assert min(x0, y0) >= 0 and x1 <= width and y1 <= height, (name, box)
