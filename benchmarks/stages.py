"""The per-crop stages after the crop stage (filters, shards, the FiftyOne dataset), each against
its own limit, measured as benchmarks/crops.py measures the crop stage.

The crops come from the real crop job on benchmarks/crops.py's corpus (photo-like JPEGs, same
seed, kept between runs). For each stage:
  in-process      its stage function called here (its imports already done)
  snakemake job   its real rule run by Snakemake, start-up included: the whole call, the job
                  (Snakemake's benchmark file) and the stage alone (the job's log)
  limit           what the stage cannot do without: filters, reading the crops and boxes tables;
                  shards, decoding the accepted crop PNGs; FiftyOne, inserting as many bare
                  samples (file path only) into a dataset

    .venv/bin/python benchmarks/stages.py [--images 300] [--size 1600x1200] [--repeat 1]
        [--quick] [--corpus DIR] [--no-fiftyone]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from crops import (
    CROP_SIZE,
    EXPERIMENT,
    corpus_dir,
    describe,
    make_corpus,
    median_job,
    run_job,
    timed,
    write_workdir,
)
from PIL import Image

from pipeline.config import ShardSettings
from pipeline.filters import FilterSettings, apply_filters
from pipeline.shards import make_shards

FIFTYONE = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from pipeline.curate import build_dataset, fiftyone
fo = fiftyone()
t1 = time.perf_counter()
fo.list_datasets()  # starts the database
t2 = time.perf_counter()
decisions, crops_dir, record = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
build_dataset(decisions, crops_dir=crops_dir, name="gan-crops-bench-build", exclusions=None,
              tag="reject", record=record)
t3 = time.perf_counter()
paths = [str((crops_dir / p).resolve()) for p in __import__("pandas").read_parquet(decisions)["path"]]
bare = fo.Dataset("gan-crops-bench-bare", overwrite=True)
bare.add_samples([fo.Sample(filepath=p) for p in paths], progress=False)
t4 = time.perf_counter()
for name in ("gan-crops-bench-build", "gan-crops-bench-bare"):
    fo.delete_dataset(name)
print(json.dumps({"import": t1 - t0, "db_start": t2 - t1, "build": t3 - t2, "bare": t4 - t3,
                  "samples": len(paths)}))
"""


def line(name: str, seconds: float, count: int, limit: float | None) -> None:
    vs = f"{seconds / limit:9.2f}x" if limit else f"{'':>10}"
    print(f"{name:<50} {seconds:8.2f} {count / seconds:9.1f} {vs}")


def header(title: str) -> None:
    print(f"\n{title:<50} {'seconds':>8} {'crops/s':>9} {'vs limit':>10}")


def job_lines(t: dict, count: int, limit: float) -> None:
    line("snakemake job, whole call", t["wall"], count, limit)
    line("  the job (Snakemake's benchmark file)", t["job"], count, limit)
    line("  the stage alone (the job's log)", t["stage"], count, limit)


def read_pngs(paths: list[Path]) -> int:
    for path in paths:
        with Image.open(path) as image:
            np.asarray(image.convert("RGB"))
    return len(paths)


def fiftyone_lines(workdir: Path, results: Path, repeat: int) -> None:
    header("FiftyOne dataset (pipeline.curate.build_dataset)")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    env |= {"FIFTYONE_DO_NOT_TRACK": "true", "FIFTYONE_DATABASE_VALIDATION": "false"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", FIFTYONE, str(results / "filters.parquet"), str(results / "crops"),
         str(workdir / "scratch-dataset.json")],
        cwd=workdir, capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"  skipped: FiftyOne or its database cannot start here:\n{proc.stderr[-1500:]}")
        return
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    n = got["samples"]
    print(
        f"  (fresh process {wall:.2f} s: import fiftyone {got['import']:.2f} s, "
        f"database start {got['db_start']:.2f} s)"
    )
    line("limit: insert bare samples (file path only)", got["bare"], n, None)
    line("build_dataset in-process (database running)", got["build"], n, got["bare"])
    target = f"results/{EXPERIMENT}/curate/dataset.json"
    job_lines(median_job(workdir, "curate_dataset", target, 2, repeat, env), n, got["bare"])
    print("  (the job's stage includes importing FiftyOne and starting its database)")


def filter_lines(workdir: Path, results: Path, scratch: Path, count: int, args) -> None:
    header("filters (pipeline.filters.apply_filters)")
    t_limit, _ = timed(
        lambda: (pd.read_parquet(results / "crops.parquet"),
                 pd.read_parquet(results / "boxes.parquet")),
        args.repeat,
    )  # fmt: skip
    line("limit: read the crops and boxes tables", t_limit, count, None)
    t_stage, table = timed(
        lambda: apply_filters(results / "crops.parquet", boxes_table=results / "boxes.parquet", crops_dir=results / "crops",
                              decisions_out=scratch / "filters.parquet", sheets_dir=scratch / "sheets", settings=FilterSettings()),
        args.repeat,
        lambda: shutil.rmtree(scratch, ignore_errors=True),
    )  # fmt: skip
    rejected = int((~table["accepted"]).sum())
    line(f"apply_filters in-process ({rejected} rejected)", t_stage, count, t_limit)
    target = f"results/{EXPERIMENT}/filters.parquet"
    job_lines(median_job(workdir, "filters_apply", target, args.workers, args.repeat), count,
              t_limit)  # fmt: skip


def shard_lines(workdir: Path, results: Path, scratch: Path, args) -> None:
    header("shards (pipeline.shards.make_shards)")
    decisions = pd.read_parquet(results / "filters.parquet")
    accepted = [results / "crops" / p for p in decisions.loc[decisions["accepted"], "path"]]
    count = len(accepted)
    t_limit, _ = timed(lambda: read_pngs(accepted), args.repeat)
    line(f"limit: decode the {count} accepted PNGs", t_limit, count, None)
    t_stage, _ = timed(
        lambda: make_shards(results / "filters.parquet", rejects_table=results / "rejects.parquet", exclusions=None,
                            crops_dir=results / "crops", out_dir=scratch / "shards", settings=ShardSettings(), image_size=CROP_SIZE, seed=0),
        args.repeat,
        lambda: shutil.rmtree(scratch / "shards", ignore_errors=True),
    )  # fmt: skip
    line("make_shards in-process", t_stage, count, t_limit)
    target = f"results/{EXPERIMENT}/shards"
    job_lines(median_job(workdir, "shards_write", target, args.workers, args.repeat), count,
              t_limit)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="median of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="40 images")
    parser.add_argument("--no-fiftyone", action="store_true")
    parser.add_argument(
        "--corpus", type=Path, default=Path(tempfile.gettempdir()) / "gan-crops-bench"
    )
    args = parser.parse_args()
    if args.quick:
        args.images = 40
    width, height = (int(v) for v in args.size.split("x"))
    boxes = make_corpus(
        corpus_dir(args.corpus, args.images, width, height, args.seed),
        args.images, width, height, args.seed, args.workers,
    )  # fmt: skip
    print(f"{os.cpu_count()} CPUs; {args.size}: {describe(boxes)}; median of {args.repeat}")
    n = args.workers
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "workflow"
        scratch = Path(tmp) / "scratch"
        write_workdir(workdir, boxes)
        results = workdir / "results" / EXPERIMENT
        crop_job = run_job(workdir, "crops_extract", f"results/{EXPERIMENT}/crops.parquet", n)
        count = len(pd.read_parquet(results / "crops.parquet"))
        print(
            f"crop job (--cores {n}): {count} crops of {CROP_SIZE} px in {crop_job['wall']:.2f} s "
            f"(stage {crop_job['stage']:.2f} s)"
        )
        filter_lines(workdir, results, scratch, count, args)
        shard_lines(workdir, results, scratch, args)
        if args.no_fiftyone:
            print("\nFiftyOne: skipped (--no-fiftyone)")
        else:
            fiftyone_lines(workdir, results, args.repeat)
    print(
        "\nvs limit: seconds of the line / seconds of the stage's limit (1.00x: the stage costs "
        "no more than its limit)"
    )


if __name__ == "__main__":
    main()
