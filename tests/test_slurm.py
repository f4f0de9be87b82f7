"""The demo through profiles/slurm on a real single-node SLURM cluster.

tests/slurm/start.sh installs Debian's slurm-wlm and munge where they are missing (root and apt
needed), starts munged, slurmctld and slurmd directly (no systemd) with all state in a temporary
folder, and records every finished job (id, the plugin's `rule_<name>` comment, partition, CPUs,
memory, state) in `log/jobcomp.tsv` through slurmctld's jobcomp/lua hook. The test runs the tiny
demo with the repository's profile, as a user would, and checks from that record that every rule
of the plan ran as its own SLURM job, in the partition the profile names, and succeeded.

Where SLURM cannot be started the test is skipped with the reason, loudly; on CI (CI set) it
fails instead: there it must run.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TINY_DEMO, dry_run, snakemake_command, write_config
from tests.test_coco_source import serve_coco, workflow_config

pytestmark = pytest.mark.slow
SCRIPTS = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Path:
    state = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "start.sh"), str(state)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SLURM_START_TIMEOUT": "60"},
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


def profile_partition(rule: str) -> str:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    own = profile.get("set-resources", {}).get(rule, {})
    return own.get("slurm_partition", profile["default-resources"]["slurm_partition"])


def run_through_slurm(workdir: Path, state: Path, *targets: str) -> subprocess.CompletedProcess:
    cmd = snakemake_command(
        workdir, "--profile", str(PROFILE),
        # a 2-CPU node: jobs capped at its CPUs; status polled soon (the demo's jobs are short)
        "--max-threads", "2", "--slurm-init-seconds-before-status-checks", "5",
        "--seconds-between-status-checks", "5", "--latency-wait", "5", *targets,
    )  # fmt: skip
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:  # the plugin can wait for ever: kill it and its children
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(
            f"the SLURM run did not finish in 15 minutes:\n{out[-6000:]}"
        ) from None
    assert proc.returncode == 0, out[-8000:]
    proc.stdout = out
    return proc


def finished_jobs(state: Path, workdir: Path) -> list[dict]:
    """SLURM's record of the jobs that ran in `workdir`, each with its rule (from the plugin's
    `--comment rule_<name>[_wildcards_...]`)."""
    with (state / "log" / "jobcomp.tsv").open() as f:
        jobs = [j for j in csv.DictReader(f, delimiter="\t") if j["work_dir"] == str(workdir)]
    for job in jobs:
        job["rule"] = job["comment"].removeprefix("rule_").split("_wildcards_")[0]
    return jobs


def test_the_demo_runs_through_the_slurm_profile_one_job_per_rule(cluster, tmp_path):
    cpu_only = {"experiments": {"demo": {"train": {"gpus": 0}}}}  # the profile's advice
    write_config(tmp_path, TINY_DEMO, cpu_only)
    planned = dry_run(tmp_path, "results/demo/report.html")
    assert {"crops_extract", "train_gan", "report_experiment"} <= set(planned), planned
    run_through_slurm(tmp_path, cluster, "results/demo/report.html")
    assert (tmp_path / "results/demo/report.html").stat().st_size > 10_000
    jobs = finished_jobs(cluster, tmp_path)
    table = "\n".join(
        "\t".join(j[k] for k in ("job_id", "rule", "partition", "cpus", "mem_mb", "state"))
        for j in jobs
    )
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "slurm_jobs.tsv").write_text(
        "job_id\trule\tpartition\tcpus\tmem_mb\tstate\n" + table
    )
    print(table)
    ran = sorted(j["rule"] for j in jobs)
    assert ran == sorted(rule for rule, n in planned.items() for _ in range(n)), table
    for job in jobs:
        rule = job["rule"]
        assert job["state"] == "COMPLETED", table
        assert job["partition"] == profile_partition(rule), table
        # rules of 8 threads get the node's 2 CPUs (--max-threads), the others 1
        threaded = rule in {"crops_extract", "train_gan", "evaluate_reference", "evaluate_run"}
        assert int(job["cpus"]) == (2 if threaded else 1), table


def test_downloads_run_on_the_submit_host_and_the_rest_as_jobs(cluster, http_server, tmp_path):
    """COCO from a loopback server: its download rules run where Snakemake runs (compute nodes
    often have no internet), the crops as SLURM jobs."""
    write_config(tmp_path, TINY_DEMO, workflow_config(serve_coco(http_server)))
    proc = run_through_slurm(tmp_path, cluster, "results/giraffe_test/crops.parquet")
    log = proc.stdout
    assert "localrule coco_annotations:" in log and "localrule coco_boxes:" in log
    assert sorted(j["rule"] for j in finished_jobs(cluster, tmp_path)) == [
        "boxes_merge",
        "crops_extract",
    ]
