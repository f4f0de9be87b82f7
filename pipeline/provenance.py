"""The provenance of a rule's result: resolved settings, the experiment's config, seed, package
versions and git commit, written beside the rule's first output as `{rule}.provenance.json`."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import time
from pathlib import Path

from pipeline.io import write_json

PACKAGES = [
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "pyarrow",
    "pillow",
    "msgspec",
    "snakemake",
    "requests",
]


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent
    )


def git_commit() -> str:
    try:
        out = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain").stdout.strip()
        return (
            out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(smk, started: float) -> dict:
    exp = dict(smk.wildcards).get("exp")
    return {
        "rule": smk.rule,
        "wildcards": dict(smk.wildcards),
        "params": {k: v for k, v in smk.params.items()},
        "experiment_config": smk.config.get("experiments", {}).get(exp) if exp else None,
        "seed": smk.params.get("seed"),
        "inputs": [str(p) for p in smk.input],
        "outputs": [str(p) for p in smk.output],
        "versions": versions(),
        "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 2),
    }


def write_provenance(smk, started: float) -> Path:
    """Write the job's provenance record beside its first output; return the record's path."""
    record = Path(str(smk.output[0])).parent / f"{smk.rule}.provenance.json"
    write_json(provenance(smk, started), record)
    return record
