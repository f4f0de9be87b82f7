"""Training recipes on the offline proxy of animals in photos, for the same wall-clock budget.

The proxy: the `creatures` dataset of config/config.yaml (articulated, textured animals in
clutter, often cut by the frame or hidden in part), cropped by the workflow's own stages as the
experiments `proxy64` and `proxy128` (Snakemake builds their shards in --workdir). Each recipe
then trains on those shards for the same wall-clock budget: its steps are the budget times its
own step rate, measured in a short calibration run first, so a slower recipe gets fewer steps.

Per recipe and size it prints: SWD of the last and of the best measurement against the
real-vs-real floor (held-out against training crops), precision and recall (k-NN manifolds, pixel
features: the Inception weights cannot be fetched here), the D-accuracy alarms raised, sample
diversity against real diversity (below 0.25: collapse), steps and images/s, and it saves each
recipe's final sample grid (EMA generator where the recipe has one) under --workdir/grids/.

    .venv/bin/python benchmarks/recipes.py [--sizes 64,128] [--budget 150] [--recipes a,b]
        [--workdir DIR] [--train-crops N] [--quick]

Default: the recipes plain, hinge-sn, plain+da and stable at 64 and 128 px, 180 s each (about 30
minutes on 2 cores); --recipes names others (r1+da, stable+mbstd, stable+k5, plain+da+resize,
stable+resize).
--quick: 64 px, plain and stable, 60 s each, fewer proxy images (about 4 minutes). Networks are narrower than
the schema's (ngf = ndf = 16, not 64) so that 2 CPU cores get a few thousand steps at 64 px and
about a thousand at 128: on a CPU this compares how recipes start, not where they end.
--train-crops N trains on N of the proxy's crops only: with few crops the discriminator overfits
(the failure of the plain recipe on a few thousand crops over a long run) within a CPU's budget.
"""

# ruff: noqa: E402 (tqdm reads TQDM_DISABLE when imported: set before the pipeline's imports)
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import json
import logging
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml
from crops import snakemake_cmd

from pipeline.config import TrainSettings
from pipeline.gan.data import load_split
from pipeline.gan.grids import save_grid
from pipeline.gan.monitor import diversity
from pipeline.gan.sampling import generate, real_sets
from pipeline.gan.train import train
from pipeline.metrics.features import pixel_features
from pipeline.metrics.prc import precision_recall
from pipeline.metrics.swd import sliced_wasserstein
from pipeline.plots import read_stats
from pipeline.shards import SPLITS, read_manifest, write_arrays

REPO = Path(__file__).resolve().parents[1]
STABLE = {
    "loss": "hinge",
    "d_norm": "spectral",
    "diffaugment": ["color", "translation", "cutout"],
    "ema_decay": 0.995,  # short runs: 0.999 would still lag the weights by ~1000 steps
    "lr_g": 1e-4,
    "lr_d": 4e-4,  # TTUR
    "beta1": 0.0,
    "beta2": 0.9,
}
RECIPES = {
    "plain": {},  # the DCGAN of the paper: bce, batch-norm D, Adam 2e-4 / 0.5
    "hinge-sn": {"loss": "hinge", "d_norm": "spectral"},
    "plain+da": {"diffaugment": ["color", "translation", "cutout"]},
    "plain+da+resize": {"diffaugment": ["color", "translation", "cutout"], "upsample": "resize"},
    "stable": STABLE,  # hinge + spectral norm + DiffAugment + EMA + TTUR
    "stable+resize": {**STABLE, "upsample": "resize"},
    "stable+mbstd": {**STABLE, "minibatch_std": True},
    "stable+k5": {**STABLE, "kernel": 5},
    "r1+da": {**STABLE, "loss": "bce", "d_norm": "none", "r1_gamma": 1.0},
}
DEFAULT = ("plain", "hinge-sn", "plain+da", "stable")  # the others: --recipes
QUICK = ("plain", "stable")
BASE = TrainSettings(
    batch_size=64, nz=100, ngf=16, ndf=16, log_every=25, gpus=0, eval_images=256, alarm_steps=100
)


class AlarmCounter(logging.Handler):
    """Counts the training monitor's warnings: D wins, and collapsed diversity."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.d_wins = self.collapse = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.d_wins += "discriminator has been right" in message
        self.collapse += "diversity collapsed" in message


def build_shards(workdir: Path, sizes: list[int], images: int | None) -> dict[int, Path]:
    """The proxy experiments' shards, made by the workflow's data stages."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if images:
        config["sources"]["creatures"]["num_images"] = images
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    targets = [f"results/proxy{size}/shards" for size in sizes]
    subprocess.run(
        snakemake_cmd(workdir, "--cores", "2", *targets, "--quiet", "progress"), check=True
    )
    return {size: workdir / f"results/proxy{size}/shards" for size in sizes}


def subset(shards: Path, out: Path, count: int) -> Path:
    """The shards with only `count` training crops (seeded pick; the held-out ones all kept): the
    same proxy with less data, where a discriminator overfits within a CPU's budget."""
    crops, holdout = (load_split(shards, split).permute(0, 2, 3, 1).numpy() for split in SPLITS)
    pick = np.random.default_rng(0).permutation(len(crops))[:count]
    write_arrays(out, splits={"train": crops[np.sort(pick)], "holdout": holdout})
    return out


def run(shards: Path, out: Path, s: TrainSettings) -> tuple[object, float]:
    start = time.perf_counter()
    trainer = train(shards, model_path=out / "model.pt", stats_path=out / "stats.jsonl", work_dir=out / "ckpt", settings=s, seed=0,
                    threads=torch.get_num_threads(), evals_path=out / "evals.jsonl")  # fmt: skip
    return trainer, time.perf_counter() - start


def steps_for(shards: Path, out: Path, s: TrainSettings, budget: float) -> int:
    """Steps that fit the budget at this recipe's rate (a 20-step calibration run)."""
    calibration = replace(s, steps=20, eval_every=0, sample_every=20, checkpoint_every=20)
    _, seconds = run(shards, out / "calibration", calibration)
    return max(20, int(budget * 20 / seconds))


def real_reference(shards: Path) -> tuple[torch.Tensor, float]:
    """What every recipe on these shards is measured against, computed once: 512 held-out crops
    and the real-vs-real SWD floor (held-out against training crops, `eval_images` of BASE)."""
    holdout, crops = load_split(shards, "holdout"), load_split(shards, "train")
    real, _ = real_sets(holdout, crops, 512, 1)
    floor = sliced_wasserstein(*real_sets(holdout, crops, BASE.eval_images, 0))["swd_mean"]
    return real, floor


def measure(shards: Path, out: Path, recipe: dict, size: int, budget: float, reference) -> dict:
    """One recipe's row, measured against `reference`: `real_reference` of the shards."""
    real, floor = reference
    shutil.rmtree(out, ignore_errors=True)  # no resuming from an earlier benchmark's checkpoint
    s = replace(BASE, **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items()})
    steps = steps_for(shards, out, s, budget)
    every = max(steps // 6, 1)
    s = replace(s, steps=steps, eval_every=every, sample_every=steps, checkpoint_every=steps)
    alarms = AlarmCounter()
    logging.getLogger("pipeline.gan").addHandler(alarms)
    try:
        trainer, seconds = run(shards, out / "run", s)
    finally:
        logging.getLogger("pipeline.gan").removeHandler(alarms)
    evals = read_stats(out / "run/evals.jsonl")
    with trainer.sampling() as generator:
        fake = generate(generator, len(real), 1)
    save_grid(fake[:64], out.parent / f"{out.name}.png", nrow=8)
    pr = precision_recall(pixel_features(real), pixel_features(fake))
    return {
        "swd": evals[-1]["swd"],
        "best_swd": min(e["swd"] for e in evals),
        "floor": floor,
        **pr,
        "d_wins_alarms": alarms.d_wins,
        "collapse_alarms": alarms.collapse,
        "diversity": diversity(fake) / diversity(real),
        "steps": steps,
        "images_per_s": steps * s.batch_size / seconds,
    }


def table(rows: list[dict]) -> str:
    head = "| size | recipe | SWD last / best (floor) | ×floor | precision | recall | D-wins alarms | collapse alarms | diversity | steps | img/s |"
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['recipe']} | {r['swd']:.1f} / {r['best_swd']:.1f} ({r['floor']:.1f}) "
            f"| {r['swd'] / r['floor']:.2f} | {r['precision']:.2f} | {r['recall']:.2f} "
            f"| {r['d_wins_alarms']} | {r['collapse_alarms']} | {r['diversity']:.2f} "
            f"| {r['steps']} | {r['images_per_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--budget", type=float, default=180, help="seconds of training per run")
    parser.add_argument("--recipes", default=",".join(DEFAULT), help=f"of {', '.join(RECIPES)}")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gan-crops-recipes"))
    parser.add_argument("--train-crops", type=int, help="train on this many crops only")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    names = args.recipes.split(",")
    if args.quick:
        sizes, names, args.budget = [64], list(QUICK), 60.0
    shards = build_shards(args.workdir, sizes, 800 if args.quick else None)
    if args.train_crops:
        shards = {
            k: subset(v, args.workdir / f"subset{k}", args.train_crops) for k, v in shards.items()
        }
    rows = []
    tag = f"_{args.train_crops}crops" if args.train_crops else ""
    for size in sizes:
        count = read_manifest(shards[size])["counts"]["train"]
        print(f"{size} px: {count} training crops", flush=True)
        reference = real_reference(shards[size])
        for name in names:
            out = args.workdir / "grids" / f"{size}_{name}{tag}"
            row = {"size": size, "recipe": name}
            row.update(measure(shards[size], out, RECIPES[name], size, args.budget, reference))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{torch.get_num_threads()} threads, budget {args.budget:.0f} s per run\n")
    print(table(rows))
    (args.workdir / f"recipes{tag}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
