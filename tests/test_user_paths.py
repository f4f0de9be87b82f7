"""A user's folders may not overlap the folders the workflow writes: refused when it loads.

Snakemake deletes the outputs of any job it reruns; a `local_dir` inside downloads_dir made the
COCO download's output the user's own instances file, which `--forceall` deleted. Now every
user path is compared with downloads_dir, results/, logs/, .snakemake/ and resources/exclusions/
(symbolic links followed, either way round) before any job is planned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.user_paths import UserPathError, check_user_paths
from tests.conftest import snakemake, write_config
from tests.test_user_folders import freeze, tree_hashes

GIRAFFE = {"sources": ["coco"], "categories": ["giraffe"], "image_size": 64}


def config(sources: dict, downloads_dir: str = "resources/downloads", **experiment) -> dict:
    exp = {**GIRAFFE, "sources": list(experiment.get("uses", sources))}
    return {"downloads_dir": downloads_dir, "sources": sources, "experiments": {"x": exp}}


def refusal(cfg: dict, workdir: Path) -> str:
    with pytest.raises(UserPathError) as caught:
        check_user_paths(cfg, workdir)
    return str(caught.value)


def test_a_local_dir_in_downloads_dir_is_refused_naming_both(tmp_path):
    message = refusal(config({"coco": {"local_dir": "resources/downloads/coco"}}), tmp_path)
    assert "sources.coco.local_dir = resources/downloads/coco" in message
    assert (
        f"lies inside downloads_dir (resources/downloads) = {tmp_path / 'resources/downloads'}"
        in message
    )
    assert "drop the local_dir setting" in message


def test_a_local_dir_equal_to_downloads_dir_or_results_is_refused(tmp_path):
    message = refusal(
        config({"coco": {"local_dir": str(tmp_path / "dl")}}, str(tmp_path / "dl")), tmp_path
    )
    assert f"({tmp_path / 'dl'}) is downloads_dir" in message
    message = refusal(config({"coco": {"local_dir": "results/mine"}}), tmp_path)
    assert f"({tmp_path / 'results/mine'}) lies inside results/ = {tmp_path / 'results'}" in message


def test_downloads_dir_inside_a_local_dir_is_refused(tmp_path):
    cfg = config({"ffhq": {"local_dir": str(tmp_path / "data")}}, str(tmp_path / "data/cache"))
    cfg["experiments"]["x"]["sources"] = ["ffhq"]
    message = refusal(cfg, tmp_path / "work")
    assert f"sources.ffhq.local_dir = {tmp_path / 'data'}" in message
    assert (
        f"contains downloads_dir ({tmp_path / 'data/cache'}) = {tmp_path / 'data/cache'}" in message
    )


def test_a_folder_that_holds_the_workflow_is_refused(tmp_path):
    # images: . in the working directory holds results/ and logs/
    (tmp_path / "labels.json").write_text("{}")
    cfg = config({"zoo": {"format": "coco", "annotations": "labels.json", "images": "."}})
    message = refusal(cfg, tmp_path)
    assert f"sources.zoo.images = . ({tmp_path}) contains downloads_dir" in message
    assert f"results/ = {tmp_path / 'results'}, logs/ = {tmp_path / 'logs'}" in message
    # unset, images is the annotation file's folder: the same
    cfg = config({"zoo": {"format": "coco", "annotations": "labels.json"}})
    assert "sources.zoo.images (unset: the folder of annotations) = . " in refusal(cfg, tmp_path)


def test_a_symbolic_link_into_downloads_dir_is_followed(tmp_path):
    (tmp_path / "resources/downloads/coco").mkdir(parents=True)
    (tmp_path / "my coco").symlink_to(tmp_path / "resources/downloads/coco")
    message = refusal(config({"coco": {"local_dir": str(tmp_path / "my coco")}}), tmp_path)
    assert f"({tmp_path / 'resources/downloads/coco'}) lies inside downloads_dir" in message


def test_an_annotation_file_in_results_is_refused(tmp_path):
    cfg = config(
        {"zoo": {"format": "coco", "annotations": "results/x/labels.json", "images": "/data"}}
    )
    message = refusal(cfg, tmp_path)
    assert "sources.zoo.annotations = results/x/labels.json" in message


def test_folders_apart_from_the_workflow_pass(tmp_path):
    (tmp_path / "data/zoo").mkdir(parents=True)
    (tmp_path / "data/zoo/labels.json").write_text("{}")
    sources = {
        "coco": {"local_dir": str(tmp_path / "data/coco")},
        "zoo": {"format": "coco", "annotations": str(tmp_path / "data/zoo/labels.json")},
        # resources/ itself is no output: only downloads and exclusion lists in it are
        "zoo2": {"format": "coco", "annotations": "resources/zoo2/labels.json"},
    }
    check_user_paths(config(sources), tmp_path / "work")
    check_user_paths(config(sources), tmp_path)


def test_an_annotations_folder_is_refused_naming_its_json_files(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export/labels.json").write_text("{}")
    cfg = config(
        {"zoo": {"format": "coco", "annotations": str(tmp_path / "export"), "images": "/x"}}
    )
    message = refusal(cfg, tmp_path / "work")
    assert f"sources.zoo.annotations = {tmp_path / 'export'} is a folder" in message
    assert "JSON files in it: labels.json" in message


def test_the_same_annotation_file_twice_in_an_experiment_is_refused(tmp_path):
    labels = tmp_path / "data/labels.json"
    labels.parent.mkdir()
    labels.write_text("{}")
    twice = {"zoo": {"format": "coco", "annotations": [str(labels), str(labels)]}}
    message = refusal(config(twice), tmp_path / "work")
    assert f"experiment 'x': {labels} is named twice" in message
    # two names for one file, in two datasets of one experiment
    (tmp_path / "data/again.json").symlink_to(labels)
    both = {
        "zoo": {"format": "coco", "annotations": str(labels)},
        "zoo_again": {"format": "coco", "annotations": str(tmp_path / "data/again.json")},
    }
    message = refusal(config(both), tmp_path / "work")
    assert "(sources.zoo.annotations and sources.zoo_again.annotations)" in message
    # in two experiments it is fine
    apart = config(both, uses=["zoo"])
    apart["experiments"]["y"] = {**GIRAFFE, "sources": ["zoo_again"]}
    check_user_paths(apart, tmp_path / "work")


# --- through Snakemake: refused at load, the user's files untouched even by --forceall ----------


def coco_folder(root: Path) -> dict[str, str]:
    """A user's COCO folder (instances of both splits, one image), old and read-only."""
    (root / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        images = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}]
        anns = [{"id": 1, "image_id": 1, "category_id": 25, "bbox": [8, 8, 40, 40]}]
        cats = [{"id": 25, "name": "giraffe"}]
        data = {"images": images, "annotations": anns, "categories": cats}
        (root / f"annotations/instances_{split}.json").write_text(json.dumps(data))
        (root / split).mkdir()
        (root / split / "a.jpg").write_bytes(b"\xff\xd8 not really")
    return freeze(root)


@pytest.mark.parametrize(
    ("downloads_dir", "local_dir", "says"),
    [
        ("resources/downloads", "resources/downloads/coco", "lies inside downloads_dir"),
        ("{data}", "{data}/coco", "lies inside downloads_dir"),
        ("resources/downloads", "results/my coco", "lies inside results/"),
        ("{data}/coco/cache", "{data}/coco", "contains downloads_dir"),
    ],
)
def test_snakemake_refuses_at_load_and_forceall_changes_nothing(
    tmp_path, downloads_dir, local_dir, says
):
    work = tmp_path / "work"
    data = tmp_path / "data"
    local = Path(local_dir.format(data=data))
    folder = local if local.is_absolute() else work / local
    before = coco_folder(folder)
    sources = {"coco": {"local_dir": str(local), "image_base_url": "http://127.0.0.1:9"}}
    write_config(work, config(sources, downloads_dir.format(data=data)))
    for args in (["-n"], ["--cores", "1", "--forceall"]):
        proc = snakemake(work, *args, "results/x/crops.parquet", check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert f"sources.coco.local_dir = {local}" in out and says in out, out[-3000:]
        assert "Your data and the workflow's outputs may not share folders" in out
    assert tree_hashes(folder) == before
    assert not (work / "results/x").exists() and not (folder / "tables").exists()
