"""The workflow as a user drives it: planning, config errors, reruns, the demo end to end."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from pipeline.crops import REASONS
from tests.conftest import (
    CONFIG,
    TINY_DEMO,
    dry_run,
    snakemake,
    snakemake_command,
    write_config,
)

DATA_STAGES = {
    "synthetic_dataset",
    "synthetic_boxes",
    "boxes_merge",
    "crops_extract",
    "filters_apply",
    "shards_write",
}
EVALUATION = {"train_experiment", "evaluate_reference", "evaluate_experiment"}
DOWNSTREAM_OF_CROPS = {"crops_extract", "filters_apply", "shards_write"} | EVALUATION
SWEEP = {
    "evaluate_reference",
    "train_sweep_run",
    "evaluate_sweep_run",
    "report_sweep_run",
    "sweep_compare",
}
EXPECTED_PLANS = {
    "demo": DATA_STAGES | EVALUATION,
    "proxy64": DATA_STAGES | EVALUATION,
    "proxy128": DATA_STAGES | EVALUATION,
    "demo_sweep": DATA_STAGES | SWEEP,
    "giraffe128": {
        "coco_annotations",
        "coco_boxes",
        "visual_genome_metadata",
        "visual_genome_boxes",
        "openimages_metadata",
        "openimages_boxes",
        "boxes_merge",
    }
    | DOWNSTREAM_OF_CROPS,
    "celeba64": {"celeba_boxes", "boxes_merge"} | DOWNSTREAM_OF_CROPS,
    "ffhq128": {"ffhq_boxes", "boxes_merge"} | DOWNSTREAM_OF_CROPS,
}


@pytest.mark.parametrize("exp", sorted(yaml.safe_load(CONFIG.read_text())["experiments"]))
def test_dry_run_plans_every_declared_experiment(tmp_path, exp):
    write_config(tmp_path)
    jobs = dry_run(tmp_path, f"results/{exp}/samples.png")
    assert set(jobs) == EXPECTED_PLANS[exp]
    runs = {"train_sweep_run", "evaluate_sweep_run", "report_sweep_run"}
    assert all(count == (4 if rule in runs else 1) for rule, count in jobs.items())


def test_bad_config_key_stops_with_its_name(tmp_path):
    write_config(tmp_path, {"experiments": {"demo": {"crops": {"margn": 0.2}}}})
    proc = snakemake(tmp_path, "-n", "results/demo/samples.png", check=False)
    assert proc.returncode != 0
    assert "margn" in proc.stdout + proc.stderr


def test_bad_config_value_stops_with_its_name(tmp_path):
    write_config(tmp_path, {"experiments": {"demo": {"image_size": 48}}})
    proc = snakemake(tmp_path, "-n", "results/demo/samples.png", check=False)
    assert proc.returncode != 0
    assert "48" in proc.stdout + proc.stderr and "image_size" in proc.stdout + proc.stderr


def test_a_named_synthetic_dataset_is_generated_apart_and_read_like_coco(tmp_path):
    zoo = {"format": "synthetic", "num_images": 4, "categories": ["creature"], "max_side": 256}
    experiment = {"sources": ["zoo"], "categories": ["creature"], "image_size": 32}
    config = {"sources": {"zoo": zoo}, "experiments": {"zoo32": experiment}}
    write_config(tmp_path, config)
    snakemake(tmp_path, "--cores", "1", "results/zoo32/boxes.parquet")
    boxes = pd.read_parquet(tmp_path / "results/zoo32/boxes.parquet")
    assert len(boxes) >= 4 and set(boxes["category"]) == {"creature"}
    assert set(boxes["source"]) == {"zoo"} and boxes["box_id"].str.startswith("zoo:").all()
    assert len(list((tmp_path / "resources/downloads/zoo/images").glob("*.jpg"))) == 4
    assert not (tmp_path / "resources/downloads/synthetic").exists()  # the demo's is not made
    bad = {"sources": {"zoo": {**zoo, "categories": ["unicorn"]}}}
    write_config(tmp_path, config, bad)
    proc = snakemake(tmp_path, "-n", "results/zoo32/boxes.parquet", check=False)
    assert proc.returncode != 0 and "unicorn" in proc.stdout + proc.stderr


def test_demo_end_to_end(demo_run):
    results = demo_run / "results" / "demo"
    samples = Image.open(results / "samples.png")
    assert samples.format == "PNG" and samples.mode == "RGB"
    assert samples.width >= 4 * 96  # a 4x4 grid of 32 px tiles shown at 96 px
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["step"] == TINY_DEMO["experiments"]["demo"]["train"]["steps"]
    assert 0 < metrics["swd_real_floor"] < metrics["swd"]  # an untrained generator is far from real
    assert Image.open(results / "losses.png").size[0] > 300
    crops = pd.read_parquet(results / "crops.parquet")
    rejects = pd.read_parquet(results / "rejects.parquet")
    boxes = pd.read_parquet(results / "boxes.parquet")
    assert len(crops) + len(rejects) == len(boxes) and len(crops) > 50
    assert set(boxes["category"]) == {"disc"}
    assert set(rejects["reason"]) <= set(REASONS)
    manifest = json.loads((results / "shards" / "manifest.json").read_text())
    decisions = pd.read_parquet(results / "filters.parquet")
    assert len(decisions) == len(crops) and decisions["accepted"].mean() > 0.9
    assert sum(manifest["counts"].values()) == decisions["accepted"].sum()
    stats = [
        json.loads(line) for line in (results / "train" / "stats.jsonl").read_text().splitlines()
    ]
    assert [s["step"] for s in stats] == list(range(5, 31, 5))


def test_every_result_records_provenance_and_logs(demo_run):
    records = sorted(demo_run.glob("results/demo/**/*.provenance.json"))
    rules = {p.name.removesuffix(".provenance.json") for p in records}
    assert rules == (DATA_STAGES - {"synthetic_dataset"}) | EVALUATION | {"report_experiment"}
    assert (demo_run / "results/report_index.provenance.json").exists()
    train = json.loads(
        (demo_run / "results/demo/train/train_experiment.provenance.json").read_text()
    )
    assert train["seed"] == 0 and train["params"]["train"]["steps"] == 30
    assert train["experiment_config"]["image_size"] == 32
    assert train["versions"]["torch"] == importlib.metadata.version("torch")
    assert train["versions"]["snakemake"] == importlib.metadata.version("snakemake")
    assert (demo_run / "resources/downloads/synthetic/synthetic_dataset.provenance.json").exists()
    for rule in DATA_STAGES | EVALUATION | {"report_experiment", "report_index"}:
        logs = list((demo_run / "logs").glob(f"{rule}*")) + list(
            (demo_run / "logs" / rule).glob("*.log")
        )
        assert logs, f"no log for {rule}"


def test_crop_size_change_reruns_exactly_crops_and_after(demo_copy):
    assert dry_run(demo_copy, "results/demo/samples.png") == {}
    write_config(demo_copy, TINY_DEMO, {"experiments": {"demo": {"image_size": 64}}})
    assert set(dry_run(demo_copy, "results/demo/samples.png")) == DOWNSTREAM_OF_CROPS
    write_config(demo_copy, TINY_DEMO, {"experiments": {"demo": {"crops": {"margin": 0.3}}}})
    assert set(dry_run(demo_copy, "results/demo/samples.png")) == DOWNSTREAM_OF_CROPS
    write_config(demo_copy, TINY_DEMO, {"experiments": {"demo": {"filters": {"min_contrast": 10}}}})
    after_filters = {"filters_apply", "shards_write"} | EVALUATION
    assert set(dry_run(demo_copy, "results/demo/samples.png")) == after_filters
    write_config(demo_copy, TINY_DEMO, {"experiments": {"demo": {"train": {"lr_d": 1e-4}}}})
    assert set(dry_run(demo_copy, "results/demo/samples.png")) == {
        "train_experiment",
        "evaluate_experiment",
    }


def test_exclusions_rerun_only_shards_and_after_and_leave_the_shards(demo_copy):
    decisions = pd.read_parquet(demo_copy / "results/demo/filters.parquet")
    chosen = sorted(decisions[decisions["accepted"]]["crop_id"])[:3]
    exclusions = demo_copy / "resources/exclusions/demo.txt"
    exclusions.parent.mkdir(parents=True)
    exclusions.write_text("# rejected in review\n" + "\n".join(chosen) + "\n")
    after = {"shards_write"} | EVALUATION
    assert set(dry_run(demo_copy, "results/demo/samples.png")) == after
    snakemake(demo_copy, "--cores", "2", "results/demo/shards")
    index = pd.read_parquet(demo_copy / "results/demo/shards/index.parquet")
    assert not set(chosen) & set(index["crop_id"])
    assert len(index) == int(decisions["accepted"].sum()) - 3
    summary = pd.read_csv(demo_copy / "results/demo/shards/summary.csv", index_col="outcome")
    assert summary.loc["excluded", "total"] == 3


def test_data_stages_give_byte_identical_shards(demo_run, tmp_path):
    other = tmp_path / "again"
    write_config(other, TINY_DEMO)
    snakemake(other, "--cores", "2", "results/demo/shards")
    first, second = demo_run / "results/demo/shards", other / "results/demo/shards"
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert any(n.endswith(".npy") for n in names)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if time.time() > deadline:
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.2)


def test_killed_training_resumes_from_checkpoint(demo_copy):
    train_dir = demo_copy / "results/demo/train"
    for path in train_dir.glob("*"):
        if path.is_file():
            path.unlink()
    checkpoints = train_dir / "checkpoints"
    for path in checkpoints.glob("*"):
        if path.is_file():
            path.unlink()
    long_run = {"experiments": {"demo": {"train": {"steps": 100000, "checkpoint_every": 20}}}}
    write_config(demo_copy, TINY_DEMO, long_run)
    cmd = snakemake_command(demo_copy, "--cores", "2", "results/demo/train/model.pt")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for(checkpoints / "checkpoint.pt", 180)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert not (train_dir / "model.pt").exists()
    killed_at = torch.load(checkpoints / "checkpoint.pt", weights_only=False)["step"]
    assert killed_at >= 20 and killed_at % 20 == 0

    write_config(
        demo_copy, TINY_DEMO, {"experiments": {"demo": {"train": {"steps": killed_at + 10}}}}
    )
    snakemake(demo_copy, "--unlock")
    snakemake(demo_copy, "--cores", "2", "--rerun-incomplete", "results/demo/train/model.pt")
    log = (demo_copy / "logs/train_experiment/demo.log").read_text()
    assert f"at step {killed_at}" in log and "resumed" in log
    final = torch.load(train_dir / "model.pt", weights_only=True)
    assert final["step"] == killed_at + 10
    steps = [
        json.loads(line)["step"] for line in (train_dir / "stats.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps)) and steps[-1] == killed_at + 10 and steps[0] == 5
