"""Start-up costs: the dry run, imports in fresh processes, and the start-up of real jobs.

dry run        `snakemake -n results/demo/samples.png` in a fresh folder holding the
               repository's config (nothing built yet: the whole DAG is planned); one warm-up
               call, then the median of --repeat; also `snakemake --list-rules` (parse only)
imports        `python -c "import X"` in fresh processes (median of --repeat) for Python
               itself, snakemake, the modules the Snakefile imports, pipeline.job_context and
               the imports of each rule's script (workflow/scripts/), with which of torch,
               torchvision, matplotlib and fiftyone each one loads; `-X importtime` shows the
               slowest imports of the crop stage
jobs           one crops_extract, filters_apply and shards_write job each on a few images:
               the whole Snakemake call, the job (Snakemake's benchmark file), the stage alone
               (the job's log), and the heavy modules the job's own process had loaded at exit

  .venv/bin/python benchmarks/startup.py [--images 4] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crops import EXPERIMENT, make_corpus, run_job, snakemake_cmd, write_workdir

from pipeline.rule_scripts import import_statements

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "matplotlib", "fiftyone")
# The rules whose jobs neither train nor evaluate: none of HEAVY should be loaded by them.
JOBS = [
    ("crops_extract", f"results/{EXPERIMENT}/crops.parquet"),
    ("filters_apply", f"results/{EXPERIMENT}/filters.parquet"),
    ("shards_write", f"results/{EXPERIMENT}/shards"),
]
# Written into a folder on PYTHONPATH: at exit, a job's script process notes what it loaded.
SITECUSTOMIZE = f"""
import atexit, os, sys

def _note_modules():
    if ".snakemake/scripts/" in (sys.argv[0] if sys.argv else ""):
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        path = os.path.join(os.environ["BENCH_MODULES_DIR"], f"{{os.getpid()}}.json")
        with open(path, "w") as out:
            out.write(__import__("json").dumps({{"script": sys.argv[0], "heavy": heavy}}))

atexit.register(_note_modules)
"""


def run_python(code: str, repeat: int, cwd: Path = REPO) -> tuple[float, str]:
    """Median wall seconds of `python -c code` in fresh processes (after one warm-up), and the
    last run's stdout."""
    times, out = [], ""
    for i in range(repeat + 1):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"python -c {code!r} failed:\n{proc.stderr[-3000:]}")
        if i:
            times.append(time.perf_counter() - start)
        out = proc.stdout
    return statistics.median(times), out


def heavy_of(code: str) -> str:
    return (
        f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )


def snakefile_imports() -> list[str]:
    """The pipeline modules the workflow's rule files import at parse time."""
    found = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for line in path.read_text().splitlines():
            match = re.match(
                r"^\s*(?:from\s+(pipeline[\w.]*)\s+import|import\s+(pipeline[\w.]*))", line
            )
            if match:
                found.add(match[1] or match[2])
    return sorted(found)


def importtime(module: str, top: int) -> list[tuple[float, str]]:
    """The packages (and pipeline modules) with the largest cumulative import time under
    `import module`, in seconds, biggest first."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)", line)
        if match and ("." not in match[2] or match[2].startswith("pipeline.")):
            found[match[2]] = max(found.get(match[2], 0.0), int(match[1]) / 1e6)
    return sorted(((s, n) for n, s in found.items()), reverse=True)[:top]


def dry_run(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "config").mkdir()
        (workdir / "config" / "config.yaml").write_text(
            (REPO / "config" / "config.yaml").read_text()
        )
        for name, args in (
            ("snakemake -n results/demo/samples.png", ["-n", "results/demo/samples.png"]),
            ("snakemake --list-rules (parse only)", ["--list-rules"]),
        ):
            times, out = [], ""
            for i in range(repeat + 1):
                start = time.perf_counter()
                proc = subprocess.run(
                    snakemake_cmd(workdir, *args), capture_output=True, text=True, check=False
                )
                if proc.returncode != 0:
                    raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
                if i:
                    times.append(time.perf_counter() - start)
                out = proc.stdout + proc.stderr
            jobs = re.search(r"^total\s+(\d+)", out, re.M)
            planned = f"{jobs[1]} jobs planned" if jobs else ""
            note = "  (goal < 3 s)" if "-n" in args else ""
            print(f"{name:<52} {statistics.median(times):7.2f} s  {planned}{note}")


def imports(repeat: int) -> None:
    print(f"{'fresh process':<52} {'seconds':>7}    loads of {', '.join(HEAVY)}")
    base, _ = run_python("pass", repeat)
    print(f"{'python -c pass':<52} {base:7.2f} s")
    modules = ["snakemake", "snakemake.cli", *snakefile_imports(), "pipeline.job_context"]
    codes = {f"import {m}": f"import {m}" for m in modules}
    for script in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        codes[f"script {script.stem}"] = import_statements(script)
    for name, code in codes.items():
        seconds, out = run_python(heavy_of(code), repeat)
        heavy = json.loads(out.strip().splitlines()[-1])
        tag = "(Snakefile) " if name.removeprefix("import ") in snakefile_imports() else ""
        print(
            f"{tag + name:<52} {seconds:7.2f} s  "
            f"(+{seconds - base:.2f})  {', '.join(heavy) or 'none'}"
        )
    for module in ("pipeline.crops", "pipeline.job_context"):
        print(f"slowest imports under `import {module}` (cumulative, -X importtime):")
        for seconds, name in importtime(module, 10):
            print(f"    {seconds:6.3f} s  {name}")


def jobs(images: int, corpus: Path) -> None:
    """Real jobs on a few 640x480 images: start-up against the stage's own time."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        boxes = make_corpus(corpus / f"startup-640x480-n{images}", images, 640, 480)
        write_workdir(root / "workflow", boxes)
        (root / "site").mkdir()
        (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        (root / "modules").mkdir()
        env = {
            "PYTHONPATH": os.pathsep.join(
                [str(root / "site"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "BENCH_MODULES_DIR": str(root / "modules"),
        }
        print(
            f"{'job (' + str(len(boxes)) + ' boxes), --cores 2':<30} {'call':>7} {'job':>7} "
            f"{'stage':>7} {'start-up':>9} {'Snakemake':>9}   heavy modules in the job"
        )
        for rule, target in JOBS:
            for old in (root / "modules").iterdir():
                old.unlink()
            t = run_job(root / "workflow", rule, target, 2, env=env)
            notes = [json.loads(p.read_text()) for p in (root / "modules").iterdir()]
            heavy = sorted({m for n in notes for m in n["heavy"]})
            seen = "none" if notes and not heavy else ", ".join(heavy) or "(not recorded)"
            print(
                f"{rule:<30} {t['wall']:7.2f} {t['job']:7.2f} {t['stage']:7.2f} "
                f"{t['job'] - t['stage']:9.2f} {t['wall'] - t['job']:9.2f}   {seen}"
            )
        print(
            "  call: the whole snakemake call; job: Snakemake's benchmark file; stage: the job's "
            "log;\n  start-up = job - stage (Python, imports, the rule's script, provenance); "
            "Snakemake = call - job (parse, DAG, scheduling)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="images of the job lines")
    parser.add_argument("--repeat", type=int, default=3, help="median of this many runs")
    parser.add_argument("--quick", action="store_true", help="one run each")
    parser.add_argument(
        "--corpus", type=Path, default=Path(tempfile.gettempdir()) / "gan-crops-bench"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; median of {args.repeat}\n")
    dry_run(args.repeat)
    print()
    imports(args.repeat)
    print()
    jobs(args.images, args.corpus)


if __name__ == "__main__":
    main()
