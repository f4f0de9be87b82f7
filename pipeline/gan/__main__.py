"""Train from the command line, e.g. on several GPUs with torchrun:

    torchrun --nproc_per_node=2 -m pipeline.gan --shards results/demo/shards --out results/demo/train \\
        --settings train.json --seed 0

`--settings` is a JSON or YAML file of the experiment's `train:` block (defaults as in the schema).
The arguments make a `TrainJob`, trained by `pipeline.gan.train.train_job` as the train rule's is.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import yaml

from pipeline.config import TrainSettings, from_dict
from pipeline.gan.job import TrainJob
from pipeline.gan.train import train_job


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.gan", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--shards", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="folder of model.pt, stats.jsonl, checkpoints/")
    parser.add_argument("--model", type=Path, help="final model file (default OUT/model.pt)")
    parser.add_argument("--stats", type=Path, help="training log (default OUT/stats.jsonl)")
    parser.add_argument("--evals", type=Path, help="SWD during training (default OUT/evals.jsonl)")
    parser.add_argument("--best", type=Path, help="model of the lowest SWD (default beside model)")
    parser.add_argument(
        "--progress", type=Path, help="sample grids as a GIF (default beside model)"
    )
    parser.add_argument("--work-dir", type=Path, help="checkpoints (default OUT/checkpoints)")
    parser.add_argument("--settings", type=Path, help="JSON or YAML of train settings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.out and not (args.model and args.stats and args.work_dir):
        parser.error("give --out, or all of --model, --stats and --work-dir")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s rank {os.environ.get('RANK', '0')} %(levelname)s %(name)s: %(message)s",
    )
    train_job(job_from(args))


def job_from(args: argparse.Namespace) -> TrainJob:
    """The job the parsed arguments describe."""
    values = {}
    if args.settings:
        text = args.settings.read_text()
        values = json.loads(text) if args.settings.suffix == ".json" else yaml.safe_load(text)
    return TrainJob(
        shards_dir=args.shards,
        model_path=args.model or args.out / "model.pt",
        stats_path=args.stats or args.out / "stats.jsonl",
        work_dir=args.work_dir or args.out / "checkpoints",
        settings=from_dict(TrainSettings, values),
        seed=args.seed,
        threads=args.threads,
        evals_path=args.evals or (args.out / "evals.jsonl" if args.out else None),
        best_path=args.best,
        progress_path=args.progress,
    )


if __name__ == "__main__":
    main()
