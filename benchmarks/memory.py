"""What each rule's job really uses: peak RSS from Snakemake's benchmark files, beside what it asks.

Runs the workflow on the proxy experiments (`proxy64`, `proxy128`: the generated creatures, 2500
pictures of 256-640 px, cropped like giraffe128) through a short training (`--steps`, with the
schema's network widths and batch size) and evaluation, in `--workdir`, then prints per rule and
experiment the peak RSS that Snakemake's `benchmark:` file recorded (max_rss) and the `mem_mb`
the rule declares (from a dry run, as the SLURM profile would submit it), and their ratio.

    .venv/bin/python benchmarks/memory.py [--workdir DIR] [--steps 40] [--experiments proxy64,proxy128]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml
from crops import snakemake_cmd

from pipeline.cluster.requests import from_dry_run

REPO = Path(__file__).resolve().parents[1]


def write_config(workdir: Path, experiments: list[str], steps: int) -> None:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for name in experiments:
        train = config["experiments"][name].setdefault("train", {})
        train.update(steps=steps, eval_every=steps // 2, sample_every=steps // 2,
                     checkpoint_every=steps, gpus=0)  # fmt: skip
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def peaks(workdir: Path) -> dict[tuple[str, str], float]:
    """(rule, benchmark file name) -> max_rss in MB, from every benchmark file of the run."""
    found = {}
    for path in sorted((workdir / "logs").glob("*/*.benchmark.tsv")):
        with path.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if rows and rows[-1]["max_rss"] not in ("", "NA", "-"):
            found[(path.parent.name, path.name.removesuffix(".benchmark.tsv"))] = float(
                rows[-1]["max_rss"]
            )
    return found


def declared(workdir: Path, targets: list[str]) -> dict[str, set[int]]:
    """rule -> the mem_mb values its jobs ask, from a dry run of the whole plan."""
    dry = subprocess.run(
        snakemake_cmd(workdir, "-n", "--forceall", "--cores", "100000", *targets),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    asked = defaultdict(set)
    for request in from_dry_run(dry.stdout + dry.stderr):
        asked[request.rule].add(request.mem_mb or 0)
    return asked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gan-crops-memory"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--experiments", default="proxy64,proxy128")
    args = parser.parse_args()
    experiments = args.experiments.split(",")
    write_config(args.workdir, experiments, args.steps)
    targets = [f"results/{name}/report.html" for name in experiments]
    subprocess.run(snakemake_cmd(args.workdir, "--cores", "2", *targets, "--quiet", "progress"),
                   check=True)  # fmt: skip
    asked = declared(args.workdir, targets)
    print("| rule | job | peak RSS MB | mem_mb asked | asked / peak |\n|---|---|---|---|---|")
    for (rule, job), peak in peaks(args.workdir).items():
        mem = max(asked.get(rule, {0}))
        ratio = f"{mem / peak:.1f}" if peak and mem else "-"
        print(f"| {rule} | {job} | {peak:.0f} | {mem or '-'} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
