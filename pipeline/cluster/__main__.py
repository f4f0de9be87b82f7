"""Where each job of a plan goes, and whether the cluster can start it, without submitting.

    python -m pipeline.cluster --profile profiles/slurm results/giraffe128/report.html

Runs Snakemake's dry run with the given options (many cores, so that threads show as they will
be submitted: capped by the profile's max-threads) and prints one row per distinct job: rule,
count, where it runs (login node or a SLURM job), partition, CPUs, memory, time and GPUs, and
where `scontrol` answers, whether it can ever start (exit 1 if one cannot, with the setting to
change).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.cluster.preflight import rows, table
from pipeline.cluster.requests import from_dry_run
from pipeline.cluster.slurm import Unreachable, read_cluster


def local_downloads(argv: list[str]) -> bool:
    """Whether the run would download on the login node: `local_downloads=` in the profile's
    `config` list, or in a `--config` on the command line (which wins)."""
    words = " ".join(argv).split()
    value = False
    if "--profile" in words and words.index("--profile") + 1 < len(words):
        profile = Path(words[words.index("--profile") + 1]) / "config.yaml"
        if profile.exists():
            listed = (yaml.safe_load(profile.read_text()) or {}).get("config") or []
            value = "local_downloads=True" in listed
    for word in words:
        if word.startswith("local_downloads="):
            value = word.split("=", 1)[1] == "True"
    return value


def main(argv: list[str]) -> int:
    command = [sys.executable, "-m", "snakemake", *argv, "--dry-run", "--cores", "100000"]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        return proc.returncode
    try:
        cluster, unchecked = read_cluster(), None
    except Unreachable as error:
        cluster, unchecked = None, error
    text = proc.stdout + proc.stderr
    planned = rows(from_dry_run(text, local_downloads=local_downloads(argv)), cluster)
    print(table(planned, cluster))
    if unchecked:
        print(f"(not checked against a cluster: {unchecked})")
    return 1 if any(row.reasons for row in planned) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
