"""The demo through profiles/slurm on a real single-node SLURM cluster.

tests/slurm/start.sh installs Debian's slurm-wlm and munge where they are missing (root and apt
needed), starts munged, slurmctld and slurmd directly (no systemd) with all state in a temporary
folder, and records every finished job (id, the plugin's `rule_<name>` comment, partition, CPUs,
memory, state) in `log/jobcomp.tsv` through slurmctld's jobcomp/lua hook. One cluster serves
every test here, configured as a small site would run it with SLURM's defaults: one node of 2 CPUs
and 6000 MB, partitions `cpu` and `gpu` (no GPUs; MaxTime 12 hours on `gpu`), EnforcePartLimits
left at NO (a job over its partition's limits pends for ever instead of being refused).

The tests copy the repository's profile and edit its per-site block as the README says for such
a cluster (max-threads 2, training's runtime within MaxTime, cpu_only=True), then: the preflight
stops the run, before any submission, when one of those edits is missing; the tiny demo runs
with every rule as its own SLURM job in the partition the profile names; a training job the user
cancels is not resubmitted, and each attempt keeps its own log.

Where SLURM cannot be started the test is skipped with the reason, loudly; on CI (CI set) it
fails instead: there it must run.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TINY_DEMO, dry_run, snakemake_command, write_config
from tests.test_coco_source import serve_coco, workflow_config

# one test cluster for the module: its tests stay on one pytest-xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]
SCRIPTS = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm"


NODE = {"SLURM_NODE_MEM_MB": "6000", "SLURM_GPU_MAX_TIME": "12:00:00"}
GPU_MAX_TIME = 720  # minutes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Path:
    state = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "start.sh"), str(state)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SLURM_START_TIMEOUT": "60", **NODE},
    )
    if proc.returncode != 0:
        subprocess.run(["bash", str(SCRIPTS / "stop.sh"), str(state)], capture_output=True)
        reason = f"SLURM could not be started here:\n{proc.stderr[-3000:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    yield state
    subprocess.run(["bash", str(SCRIPTS / "stop.sh"), str(state)], capture_output=True, timeout=120)


def site_profile(workdir: Path, **undo: object) -> Path:
    """A copy of profiles/slurm with its per-site block edited as the README says for the test
    cluster: max-threads 2 (its node's CPUs), training's runtime within the gpu partition's
    MaxTime, cpu_only=True (no GPUs). `undo` puts keys back as they ship (max_threads=8,
    runtime=1440) to see the preflight stop."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile["max-threads"] = undo.get("max_threads", 2)
    for rule in ("train_experiment", "train_sweep_run"):
        profile["set-resources"][rule] = {
            **profile["set-resources"][rule],
            "runtime": undo.get("runtime", GPU_MAX_TIME),
        }
    profile["config"] = ["local_downloads=True", "cpu_only=True"]
    # a small test: status polled soon (the demo's jobs are short)
    profile.update({
        "slurm-init-seconds-before-status-checks": 5, "seconds-between-status-checks": 5,
        "latency-wait": 5,
    })  # fmt: skip
    folder = workdir / "profiles" / "mysite"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def profile_partition(profile: Path, rule: str) -> str:
    profile = yaml.safe_load((profile / "config.yaml").read_text())
    own = profile.get("set-resources", {}).get(rule, {})
    return own.get("slurm_partition", profile["default-resources"]["slurm_partition"])


def start_snakemake(workdir: Path, state: Path, profile: Path, *targets: str) -> subprocess.Popen:
    cmd = snakemake_command(workdir, "--profile", str(profile), *targets)
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 900) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # the plugin can wait for ever: kill it and its children
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(
            f"the SLURM run did not finish in {timeout} s:\n{out[-6000:]}"
        ) from None
    return out


def run_through_slurm(workdir: Path, state: Path, *targets: str, profile: Path | None = None):
    proc = start_snakemake(workdir, state, profile or site_profile(workdir), *targets)
    out = finish(proc)
    assert proc.returncode == 0, out[-8000:]
    return out


def finished_jobs(state: Path, workdir: Path) -> list[dict]:
    """SLURM's record of the jobs that ran in `workdir`, each with its rule (from the plugin's
    `--comment rule_<name>[_wildcards_...]`)."""
    record = state / "log" / "jobcomp.tsv"
    if not record.exists():  # no job has ended on this cluster yet
        return []
    with record.open() as f:
        jobs = [j for j in csv.DictReader(f, delimiter="\t") if j["work_dir"] == str(workdir)]
    for job in jobs:
        job["rule"] = job["comment"].removeprefix("rule_").split("_wildcards_")[0]
    return jobs


def jobs_table(jobs: list[dict]) -> str:
    keys = ("job_id", "rule", "partition", "cpus", "mem_mb", "state")
    return "\n".join("\t".join(job[k] for k in keys) for job in jobs)


@pytest.mark.parametrize(
    ("undo", "stop"),
    [
        ({"max_threads": 8}, "8 CPUs, cpu's nodes have at most 2: max-threads: 2"),
        ({"runtime": 1440}, "1440 min over gpu's MaxTime of 720 min"),
    ],
    ids=["job-larger-than-the-node", "time-over-the-partition"],
)
def test_the_preflight_stops_jobs_that_could_never_start(cluster, tmp_path, undo, stop):
    """With EnforcePartLimits=NO SLURM would accept these and leave them pending for ever: the
    run stops before its first submission, with the table and the setting to change."""
    write_config(tmp_path, TINY_DEMO)
    profile = site_profile(tmp_path, **undo)
    started = time.monotonic()
    proc = start_snakemake(tmp_path, cluster, profile, "results/demo/report.html")
    out = finish(proc, timeout=300)
    print(f"stopped after {time.monotonic() - started:.1f} s\n{out[-3000:]}")
    assert proc.returncode != 0
    assert "PreflightError" in out and "can never start on this cluster" in out, out[-6000:]
    assert stop in out, out[-6000:]
    table = out[out.index("rule  ") :]
    assert "train_experiment" in table and "NEVER" in table and "crops_extract" in table
    assert "Submitted" not in out and not finished_jobs(cluster, tmp_path)


def test_the_demo_runs_through_the_slurm_profile_one_job_per_rule(cluster, tmp_path):
    """As a small site runs it: the per-site block edited as the README says; and the training job
    cancelled by its user is not resubmitted; the rerun completes, each attempt with its log."""
    write_config(tmp_path, TINY_DEMO, {"experiments": {"demo": {"train": {"steps": 100000}}}})
    profile = site_profile(tmp_path)
    first = start_snakemake(tmp_path, cluster, profile, "results/demo/report.html")
    cancelled = cancel_when_running(cluster, tmp_path, "train_experiment", first)
    out = finish(first)
    assert first.returncode != 0, out[-6000:]
    first_run = finished_jobs(cluster, tmp_path)
    trains = [j for j in first_run if j["rule"] == "train_experiment"]
    assert [(j["job_id"], j["state"]) for j in trains] == [(cancelled, "CANCELLED")], out[-6000:]

    write_config(tmp_path, TINY_DEMO)
    planned = dry_run(tmp_path, "results/demo/report.html")
    assert {"train_experiment", "report_experiment"} <= set(planned), planned
    run_through_slurm(tmp_path, cluster, "results/demo/report.html", profile=profile)
    assert (tmp_path / "results/demo/report.html").stat().st_size > 10_000
    jobs = finished_jobs(cluster, tmp_path)
    table = jobs_table(jobs)
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "slurm_jobs.tsv").write_text(
        "job_id\trule\tpartition\tcpus\tmem_mb\tstate\n" + table
    )
    print(table)
    rerun = [j for j in jobs if j["job_id"] not in {f["job_id"] for f in first_run}]
    assert sorted(j["rule"] for j in rerun) == sorted(
        rule for rule, n in planned.items() for _ in range(n)
    ), table
    for job in (j for j in jobs if j["job_id"] != cancelled):
        rule = job["rule"]
        assert job["state"] == "COMPLETED", table
        assert job["partition"] == profile_partition(profile, rule), table
        # rules of 8 threads get the node's 2 CPUs (max-threads), the others 1
        threaded = rule in {
            "crops_extract",
            "train_experiment",
            "evaluate_reference",
            "evaluate_experiment",
        }
        assert int(job["cpus"]) == (2 if threaded else 1), table
        assert int(job["mem_mb"]) <= 6000, table
    # each attempt's own log: the cancelled one's and the rerun's
    (second,) = [j["job_id"] for j in rerun if j["rule"] == "train_experiment"]
    logs = tmp_path / "logs" / "train_experiment"
    assert "training on" in (logs / f"demo.slurm-{cancelled}.log").read_text()
    assert "rule train_experiment done" in (logs / f"demo.slurm-{second}.log").read_text()


def cancel_when_running(state: Path, workdir: Path, rule: str, proc: subprocess.Popen) -> str:
    """scancel the first job of `rule` once it runs (and has logged its start); its job id."""
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        listed = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"],
            capture_output=True,
            text=True,
            env=env,
        ).stdout.split("\n")
        running = [line.split()[0] for line in listed if f"rule_{rule}" in line]
        log = workdir / "logs" / rule / "demo.log"
        if running and log.exists() and "training on" in log.read_text():
            subprocess.run(["scancel", running[0]], check=True, env=env)
            return running[0]
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"no {rule} job ran:\n{proc.communicate()[0][-6000:]}")


def test_downloads_run_on_the_submit_host_and_the_rest_as_jobs(cluster, http_server, tmp_path):
    """COCO from a loopback server: its download rules run where Snakemake runs (compute nodes
    often have no internet), the crops as SLURM jobs."""
    write_config(tmp_path, TINY_DEMO, workflow_config(serve_coco(http_server)))
    log = run_through_slurm(tmp_path, cluster, "results/giraffe_test/crops.parquet")
    assert "localrule coco_annotations:" in log and "localrule coco_boxes:" in log
    assert sorted(j["rule"] for j in finished_jobs(cluster, tmp_path)) == [
        "boxes_merge",
        "crops_extract",
    ]
