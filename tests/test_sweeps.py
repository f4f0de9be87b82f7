"""Sweeps, model selection and GPU scheduling: several runs on one set of shards, the best run's
samples as the experiment's, the best checkpoint kept, jobs that each get their own GPUs."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from datetime import datetime

import pandas as pd
import pytest
import tomllib
import torch
import yaml

from pipeline.gan import devices
from pipeline.gan.monitor import QualityProbe
from pipeline.gan.train import train
from pipeline.sweep import ranking
from pipeline.sweep_runs import run_name, run_train_settings, runs_of
from tests.conftest import REPO, TINY_DEMO, dry_run, snakemake, write_config
from tests.test_gan import TINY, make_shards

GRID = {"experiments": {"demo": {"sweep": {"grid": {"lr_d": [2e-4, 5e-5]}}}}}
RUNS = ("lr_d-0.0002", "lr_d-5e-05")


def test_grid_and_listed_points_become_named_runs():
    runs = runs_of({"grid": {"loss": ["bce", "hinge"], "lr_d": [2e-4]}, "points": [{"ngf": 16}]})
    assert list(runs) == ["loss-bce_lr_d-0.0002", "loss-hinge_lr_d-0.0002", "ngf-16"]
    assert runs["loss-hinge_lr_d-0.0002"] == {"loss": "hinge", "lr_d": 2e-4}
    assert run_name({"diffaugment": ["color", "cutout"]}) == "diffaugment-color+cutout"
    assert runs_of(None) == {}
    with pytest.raises(ValueError, match="two points"):
        runs_of({"grid": {"lr_d": [1e-4]}, "points": [{"lr_d": 1e-4}]})


def test_a_run_with_an_unknown_setting_is_refused_naming_it():
    experiment = {"train": {"steps": 10}, "sweep": {"points": [{"lr_dd": 1e-4}]}}
    with pytest.raises(ValueError, match="sweep run 'lr_dd-0.0001'.*lr_dd"):
        run_train_settings(experiment, "lr_dd-0.0001")


def test_ranking_puts_the_lowest_metric_first_and_missing_last():
    table = ranking(
        {"a": {"swd": 5.0}, "b": {"swd": 3.0}, "c": {"swd": None}, "d": {"swd": 4.0}}, "swd"
    )
    assert list(table.index) == ["b", "d", "a", "c"] and list(table["rank"]) == [1, 2, 3, 4]


def job_intervals(log: str, rule: str) -> list[tuple[datetime, datetime]]:
    """(start, end) of each job of `rule` from Snakemake's output."""
    stamp, starts, ends, pending = None, {}, {}, False
    for line in log.splitlines():
        if m := re.match(r"^\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]$", line.strip()):
            stamp = datetime.strptime(m[1], "%a %b %d %H:%M:%S %Y")
        elif re.match(rf"^(local)?rule {rule}:$", line.strip()):
            pending = True
        elif pending and (m := re.match(r"^\s*jobid: (\d+)$", line)):
            starts[m[1]], pending = stamp, False
        elif m := re.match(rf"^Finished jobid: (\d+) \(Rule: {rule}\)", line.strip()):
            ends[m[1]] = stamp
    return sorted((starts[j], ends[j]) for j in starts)


def test_two_point_sweep_trains_both_compares_and_picks_the_better(demo_copy):
    # the demo's shards are reused; its single run's results go (Snakemake would keep them as
    # up to date: a file's producing rule changing is no rerun trigger, see the README)
    for name in ("samples.png", "metrics.json", "report.html"):
        (demo_copy / "results/demo" / name).unlink()
    write_config(demo_copy, TINY_DEMO, GRID)
    proc = snakemake(demo_copy, "results/demo/report.html", "--cores", "16", "--resources", "gpu=2")
    log = proc.stdout + proc.stderr
    results = demo_copy / "results/demo"
    table = pd.read_csv(results / "runs/comparison.csv", index_col="run")
    assert sorted(table.index) == sorted(RUNS) and table["swd"].notna().all()
    best = table["swd"].idxmin()
    assert table.loc[best, "rank"] == 1
    assert (results / "samples.png").read_bytes() == (
        results / "runs" / best / "samples.png"
    ).read_bytes()
    assert json.loads((results / "metrics.json").read_text())["run"] == best
    assert (results / "runs/comparison.png").stat().st_size > 10_000
    page = (results / "report.html").read_text()
    assert all(f'href="runs/{run}/report.html"' in page for run in RUNS)
    (first, first_end), (second, _) = job_intervals(log, "train_sweep_run")
    assert second < first_end  # gpu=2: both trainings at once (threads allowed it too)
    for run in RUNS:  # the shards were not rebuilt: only runs and what follows them ran
        assert (results / "runs" / run / "train/best.pt").exists()
    assert "rule shards_write" not in log and "rule crops_extract" not in log

    # a third point: only its run and the comparison are planned
    third = {"experiments": {"demo": {"sweep": {"points": [{"loss": "hinge"}]}}}}
    write_config(demo_copy, TINY_DEMO, GRID, third)
    assert dry_run(demo_copy, "results/demo/report.html") == {
        "train_sweep_run": 1,
        "evaluate_sweep_run": 1,
        "report_sweep_run": 1,
        "sweep_compare": 1,
    }
    # with one GPU the two trainings run one after the other (checkpoints gone: they retrain)
    for run in RUNS:
        shutil.rmtree(results / "runs" / run / "train/checkpoints")
    serial = snakemake(
        demo_copy,
        *(f"results/demo/runs/{run}/train/model.pt" for run in RUNS),
        "--forcerun",
        "train_sweep_run",
        "--cores",
        "16",
        "--resources",
        "gpu=1",
    )
    (a_start, a_end), (b_start, _) = job_intervals(serial.stdout + serial.stderr, "train_sweep_run")
    assert b_start >= a_end


def test_best_checkpoint_survives_a_metric_that_gets_worse(tmp_path, monkeypatch):
    # SWD at steps 0 (the untrained generator: measured, never kept), 2, 4, 6, 8: best at step 4
    scripted = iter([1.0, 5.0, 3.0, 4.0, 6.0])

    def probe(self, trainer):
        swd = next(scripted)
        return {"step": trainer.step, "swd": swd, "colour": swd, "layout": swd, "images": 16}

    monkeypatch.setattr(QualityProbe, "__call__", probe)
    settings = replace(TINY, steps=8, eval_every=2)
    shards = make_shards(tmp_path / "shards")
    out = tmp_path / "run"
    train(
        shards,
        model_path=out / "model.pt",
        stats_path=out / "stats.jsonl",
        work_dir=out / "w",
        settings=settings,
        seed=0,
    )
    best = torch.load(out / "best.pt", weights_only=True)
    last = torch.load(out / "model.pt", weights_only=True)
    assert (best["step"], best["metric"], last["step"]) == (4, 3.0, 8)
    assert not torch.equal(best["generator"]["main.0.weight"], last["generator"]["main.0.weight"])
    evals = [json.loads(ln) for ln in (out / "evals.jsonl").read_text().splitlines()]
    assert [e["swd"] for e in evals] == [1.0, 5.0, 3.0, 4.0, 6.0]
    assert [e["step"] for e in evals] == [0, 2, 4, 6, 8]


def test_evaluation_uses_the_best_checkpoint_unless_told_otherwise(tmp_path):
    write_config(tmp_path)
    proc = snakemake(tmp_path, "-n", "results/demo/samples.png")
    job = proc.stdout.split("rule evaluate_experiment:", 1)[1].split("\n\n", 1)[0]
    assert "results/demo/train/best.pt" in job
    write_config(tmp_path, {"experiments": {"demo": {"evaluate": {"checkpoint": "last"}}}})
    proc = snakemake(tmp_path, "-n", "results/demo/samples.png")
    job = proc.stdout.split("rule evaluate_experiment:", 1)[1].split("\n\n", 1)[0]
    assert "results/demo/train/model.pt" in job and "best.pt" not in job


def test_concurrent_jobs_claim_different_gpus_and_free_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    first, held = devices.try_claim(1, total=2, lock_dir=tmp_path)
    second, held_too = devices.try_claim(1, total=2, lock_dir=tmp_path)
    assert (first, second) == ([0], [1])
    assert devices.try_claim(1, total=2, lock_dir=tmp_path) == ([], [])  # both taken
    for handle in held:
        handle.close()  # a finished (or killed) job frees its GPU
    with devices.own_gpus(1, total=2, lock_dir=tmp_path) as ids:
        assert ids == [0] and devices.os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert "CUDA_VISIBLE_DEVICES" not in devices.os.environ
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # set by SLURM: left alone
    with devices.own_gpus(1, total=2, lock_dir=tmp_path) as ids:
        assert ids is None and devices.os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    for handle in held_too:
        handle.close()


@pytest.mark.parametrize("profile", ["slurm", "kubernetes"])
def test_cluster_profiles_plan_the_demo_with_gpus_for_training(tmp_path, profile):
    write_config(tmp_path, GRID)
    proc = snakemake(
        tmp_path, "--profile", str(REPO / "profiles" / profile), "-n", "results/demo/report.html"
    )
    jobs = re.split(r"\n(?=\[\w{3} \w{3} )", proc.stdout)  # one chunk per planned job
    train_jobs = [j for j in jobs if "rule train_sweep_run:" in j]
    assert len(train_jobs) == 2 and all("gpu=1" in j for j in train_jobs)
    if profile == "slurm":
        assert all("slurm_partition=gpu" in j for j in train_jobs)
        crops = next(j for j in jobs if "rule crops_extract:" in j)
        assert "slurm_partition=cpu" in crops
    # both profiles size jobs from the rules (no fixed 32 GB asks): every job within 16 GB
    asked = [int(m) for m in re.findall(r"\bmem_mb=(\d+)", proc.stdout)]
    assert asked and max(asked) <= 16000, asked


def test_cpu_only_is_one_switch_for_every_experiment_and_run(tmp_path):
    """cpu_only: no training job asks a GPU, whatever the experiments' train blocks say."""
    gpus = {"experiments": {"demo": {"train": {"gpus": 2}}}}
    write_config(tmp_path, GRID, gpus)
    profile = str(REPO / "profiles" / "slurm")
    asked = snakemake(tmp_path, "--profile", profile, "-n", "results/demo/report.html").stdout
    assert asked.count("gpu=2") == 2, asked[-3000:]
    # the site's copy of the profile flips the switch, as the README says
    site = tmp_path / "site-profile"
    site.mkdir()
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    assert "cpu_only=False" in text
    (site / "config.yaml").write_text(text.replace("cpu_only=False", "cpu_only=True"))
    proc = snakemake(tmp_path, "--profile", str(site), "-n", "results/demo/report.html")
    jobs = re.split(r"\n(?=\[\w{3} \w{3} )", proc.stdout)
    train_jobs = [j for j in jobs if "rule train_sweep_run:" in j]
    assert len(train_jobs) == 2 and all("gpu=0" in j for j in train_jobs), proc.stdout[-3000:]
    assert all("mem_mb=1500," in j for j in train_jobs)  # one process at the demo's 32 px


def test_environment_yml_pins_what_pyproject_requires():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    conda = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    renamed = {"torch": "pytorch"}  # conda-forge's name

    def spec(requirement: str) -> tuple[str, str]:
        name, version = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", requirement).groups()
        return renamed.get(name.lower(), name.lower()), version.replace(" ", "")

    wanted = dict(spec(r) for r in project["dependencies"])
    listed = dict(spec(d) for d in conda if isinstance(d, str) and not d.startswith("python"))
    listed.pop("pip")
    assert listed == wanted
    assert project["requires-python"].startswith(">=3.10")
