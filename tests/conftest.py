"""Shared fixtures: the repository, a Snakemake runner, and one tiny end-to-end demo run."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

import pipeline  # noqa: F401 (first: sets OMP_WAIT_POLICY before any test imports torch)
from pipeline.rule_scripts import import_statements

pytest_plugins = ["tests.conftest_http"]

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "config.yaml"

# The demo, shrunk so that the whole DAG runs in well under a minute on 2 cores.
TINY_DEMO = {
    "sources": {"synthetic": {"num_images": 90, "max_side": 400}},
    "experiments": {
        "demo": {
            "crops": {"min_box_side": 16},
            "train": {
                "steps": 30,
                "batch_size": 16,
                "nz": 16,
                "ngf": 8,
                "ndf": 8,
                "checkpoint_every": 10,
                "sample_every": 15,
                "eval_every": 15,
                "log_every": 5,
            },
            "evaluate": {"num_samples": 64, "grid_size": 4},
        }
    },
}


def deep_update(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            deep_update(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def write_config(workdir: Path, *overrides: dict) -> Path:
    """The repository's config with `overrides` merged in, written to `workdir/config/config.yaml`."""
    config = yaml.safe_load(CONFIG.read_text())
    for extra in overrides:
        config = deep_update(config, extra)
    path = workdir / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command line of Snakemake on the repository's workflow inside `workdir`."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float = 600, **popen
) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's workflow inside `workdir` (its config/config.yaml)."""
    cmd = snakemake_command(workdir, *args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **popen)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> count from the 'Job stats' table that `snakemake -n` prints."""
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    jobs = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match[1] != "total":
            jobs[match[1]] = int(match[2])
    return jobs


def dry_run(workdir: Path, *targets: str) -> dict[str, int]:
    proc = snakemake(workdir, "-n", *targets)
    return planned_jobs(proc.stdout + proc.stderr)


@contextlib.contextmanager
def exclusive(lock_path: Path):
    """Hold an exclusive lock on `lock_path` (one test worker at a time, across processes)."""
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A workdir where the tiny demo has run end to end (shared by the workflow tests: read only).

    Built once per session: under pytest-xdist the first worker that needs it builds it in the
    session's folder (above the workers' own) while holding a lock, the others wait and share it."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    workdir, done = shared / "demo_run", shared / "demo_run.done"
    with exclusive(shared / "demo_run.lock"):
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)  # a worker's failed attempt
            workdir.mkdir()
            write_config(workdir, TINY_DEMO)
            snakemake(workdir, "--cores", "2", "results/demo/report.html")
            snakemake(workdir, "--cores", "1", "results/index.html")  # compares what is evaluated
            done.touch()
    return workdir


@pytest.fixture
def demo_copy(demo_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished demo workdir (Snakemake metadata included)."""
    target = tmp_path / "demo"
    shutil.copytree(demo_run, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed here if missing (the test set-up needs root and apt)."""
    found = shutil.which("chromium")
    if not found and shutil.which("apt-get") and os.geteuid() == 0:
        # one installer at a time: the test workers (pytest-xdist) may all ask at once
        with exclusive(Path(tempfile.gettempdir()) / "gan-crops-chromium.lock"):
            if not shutil.which("chromium"):
                subprocess.run(
                    "apt-get update -qq && apt-get install -y -qq chromium",
                    shell=True,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                    capture_output=True,
                    timeout=900,
                )
        found = shutil.which("chromium")
    if not found:
        pytest.skip(
            "Chromium is not installed and cannot be installed here (apt-get install chromium)"
        )
    return found


def headless(chromium: str, profile: Path, width: int = 1400, height: int = 900) -> list[str]:
    """A headless Chromium command line that stays off the network, without the URL."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        f"--window-size={width},{height}",
    ]


@pytest.fixture(scope="session")
def random_inception(tmp_path_factory) -> Path:
    """The FID Inception network with random (He-initialised) weights, saved like the real ones:
    the real 91 MB file cannot be downloaded here, and the pipeline must never fetch it."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a: None)
        model = tf_inception.FeatureExtractorInceptionV3("x", ["2048"])
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(model.state_dict(), path)
    return path


SCRIPTS = REPO / "workflow" / "scripts"  # one a rule, named for it (sweep twins share theirs)


def script_imports(rule: str) -> str:
    """The import statements of a rule's script: what its job loads before its stage runs."""
    return import_statements(SCRIPTS / f"{rule}.py")


def copy_of_workflow(tmp_path: Path, *, package: bool = False) -> Path:
    """The workflow's files copied to `tmp_path/repo`, to change them there; with `package`,
    pipeline/ too (run with PYTHONPATH set to the copy to use it)."""
    copy = tmp_path / "repo"
    copy.mkdir()
    parts = ["Snakefile", "environment.yml", "workflow", "config", "resources"]
    for part in parts + (["pipeline"] if package else []):
        source = REPO / part
        if source.is_dir():
            ignore = shutil.ignore_patterns("downloads", "__pycache__", "exclusions")
            shutil.copytree(source, copy / part, ignore=ignore)
        elif source.exists():
            shutil.copy(source, copy / part)
    return copy
