"""Recipes judged where they end: long runs on the creatures proxy, resumable, with curves and grids.

`benchmarks/recipes.py` compares how recipes start (a few minutes each). This script trains each
recipe for as many steps as `--hours` of training give on this machine at full speed (measured
once in a short calibration run per recipe and kept in `plan.json`, so a slower recipe gets fewer
steps), on the proxy experiment's shards (`proxy64`, `proxy128`: the creatures, cropped by the
workflow's own stages), with networks `--width` wide (default 32).

The recipes advance in turns, one milestone each (`--milestones`, default 8), so that an
interrupted run has every recipe at comparable steps; a rerun goes on from each recipe's
checkpoint (the trainer resumes: `pipeline.gan.checkpoint`) and skips milestones already measured.
At each milestone: SWD, colour and layout against held-out crops (the training probe), precision
and recall (512 samples, pixel features), sample diversity against real diversity, the lattice
of 64 samples and of 64 held-out crops (`pipeline.gan.monitor.lattice`: the pattern tied to pixel
positions that transposed convolutions draw), and how often D was right on reals and on fakes
since the last milestone; a grid of 64 samples (`grids/{recipe}_{step}.png`). After each turn: `curves.png` (each measure against steps, every
recipe) and `table.md`; with `--publish DIR`, also a copy small enough to commit: the table, the
curves, the plan, each recipe's curve and `{recipe}_milestones.jpg` (the first row of each
milestone's grid, one row per milestone, top to bottom) and `{recipe}_last.jpg` (the latest
grid, all 64 samples), at half size, so that the results outlive the workdir
and a later machine can run the remaining recipes with the same steps (`--plan DIR/plan.json`).

    .venv/bin/python benchmarks/long_runs.py --size 128 [--hours 1] [--recipes a,b]
        [--workdir DIR] [--threads N] [--milestones 8] [--width 32] [--publish DIR] [--plan FILE]
        [--plan-only] [--against RECIPE]

The workdir's shards are made once (Snakemake, as `benchmarks/recipes.py` does): start a second
size in the same workdir only once the first has begun training (two Snakemake runs in one folder
at once fail on its lock), or give it its own `--workdir`. Threads: 1 by
default, so the run takes one core and its steps do not depend on the thread count; the step
counts still come from the calibration at all the CPUs, on an idle machine. A recipe added to a
published plan when no idle machine is at hand: `--against RECIPE` times it beside a planned
recipe, in turns, and scales that recipe's steps by the ratio of their step rates.
"""

# ruff: noqa: E402 (tqdm reads TQDM_DISABLE when imported: set before the pipeline's imports)
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import json
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from PIL import Image
from recipes import BASE, RECIPES, build_shards, real_reference

from pipeline.config import TrainSettings
from pipeline.gan.grids import save_grid
from pipeline.gan.monitor import diversity, lattice
from pipeline.gan.sampling import generate
from pipeline.gan.train import train
from pipeline.metrics.features import pixel_features
from pipeline.metrics.prc import precision_recall
from pipeline.plots import read_stats

LONG = ("plain", "plain+da", "stable", "r1+da")
GRID_ROW = 8  # samples per row of the milestone grids
MEASURES = (
    "swd", "colour", "layout", "precision", "recall", "diversity", "lattice", "d_right_real",
    "d_right_fake",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What a long run is: kept in plan.json so that a rerun goes on with the same steps."""

    size: int
    width: int
    hours: float
    steps: dict[str, int]  # per recipe
    milestones: int

    @classmethod
    def read(cls, path: Path) -> Plan:
        return cls(**json.loads(path.read_text()))

    def milestone_steps(self, recipe: str) -> list[int]:
        total = self.steps[recipe]
        return [round(total * (k + 1) / self.milestones) for k in range(self.milestones)]


def settings(recipe: str, width: int, steps: int, eval_every: int) -> TrainSettings:
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in RECIPES[recipe].items()}
    return replace(
        BASE, **spec, ngf=width, ndf=width, steps=steps, eval_every=eval_every,
        sample_every=eval_every or steps, checkpoint_every=min(eval_every or steps, 250),
        log_every=50,
    )  # fmt: skip


def train_to(*, shards: Path, out: Path, settings: TrainSettings, threads: int):
    """Train (or go on training) the run in `out` up to `settings.steps`."""
    return train(shards, model_path=out / "model.pt", stats_path=out / "stats.jsonl", work_dir=out / "ckpt", settings=settings,
                 seed=0, threads=threads, evals_path=out / "evals.jsonl")  # fmt: skip


def calibrate(*, shards: Path, out: Path, recipe: str, width: int, threads: int, turn: int = 0):
    """Steps per second of this recipe: 10 steps after 3 of warm-up, from step 13 * turn (a later
    turn goes on from the checkpoint the earlier one left in `out`)."""
    warm = settings(recipe, width, 13 * turn + 3, 0)
    train_to(shards=shards, out=out, settings=warm, threads=threads)
    start = time.perf_counter()
    train_to(shards=shards, out=out, settings=replace(warm, steps=13 * (turn + 1)), threads=threads)
    return 10 / (time.perf_counter() - start)


def steps_against(*, plan: Plan, shards: Path, workdir: Path, recipe: str, against: str,
                  threads: int, turns: int = 5) -> int:  # fmt: skip
    """`recipe`'s steps from its step rate relative to a planned recipe's: the two timed in turns,
    one right after the other, and the median of the turns' ratios taken, so that a steady load
    (another run beside) falls on both alike and a burst spoils one turn only. For a recipe added
    to a plan when no idle machine is at hand; bursty load (a test suite beside) still moves it."""
    ratios = []
    for turn in range(turns):
        rate = {}
        for name in (against, recipe):
            out = workdir / "calibration" / f"{recipe}-against-{against}" / name
            rate[name] = calibrate(shards=shards, out=out, recipe=name, width=plan.width,
                                   threads=threads, turn=turn)  # fmt: skip
        ratios.append(rate[recipe] / rate[against])
    ratio = statistics.median(ratios)
    print(f"{recipe}: {ratio:.2f}x the step rate of {against} (turns: "
          f"{', '.join(f'{r:.2f}' for r in ratios)})", flush=True)  # fmt: skip
    return int(plan.steps[against] * ratio)


def make_plan(args, shards: Path, workdir: Path) -> Plan:
    path = workdir / "plan.json"
    if args.plan and not path.exists():
        shutil.copyfile(args.plan, path)
    if path.exists():
        plan = Plan.read(path)
        if (plan.size, plan.width) != (args.size, args.width):
            raise SystemExit(f"{path}: a plan for {plan.size} px, width {plan.width}, not "
                             f"{args.size} px, width {args.width}")  # fmt: skip
        missing = [r for r in args.recipes if r not in plan.steps]
    else:
        plan = Plan(args.size, args.width, args.hours, {}, args.milestones)
        missing = list(args.recipes)
    for recipe in missing:
        if args.against:
            plan.steps[recipe] = steps_against(plan=plan, shards=shards, workdir=workdir,
                                               recipe=recipe, against=args.against,
                                               threads=args.threads)  # fmt: skip
        else:
            out, cpus = workdir / "calibration" / recipe, os.cpu_count() or 1
            rate = calibrate(shards=shards, out=out, recipe=recipe, width=plan.width, threads=cpus)
            plan.steps[recipe] = int(rate * plan.hours * 3600)
        print(f"{recipe}: {plan.steps[recipe]} steps", flush=True)
    path.write_text(json.dumps(plan.__dict__, indent=1))
    return plan


def d_right(stats: list[dict], after: int) -> tuple[float, float]:
    """How often D was right on reals and on fakes over the stats lines after step `after`."""
    lines = [line for line in stats if line["step"] > after] or stats[-1:]
    return (
        sum(line["acc_real"] for line in lines) / len(lines),
        sum(line["acc_fake"] for line in lines) / len(lines),
    )


def milestone(*, trainer, out: Path, reference, previous: int) -> dict:
    """The row of one recipe at the step its trainer reached."""
    real, floor = reference
    with trainer.sampling() as generator:
        fake = generate(generator, len(real), 1)
    save_grid(fake[:64], out.parent / "grids" / f"{out.name}_{trainer.step:06d}.png", nrow=GRID_ROW)
    last_eval = read_stats(out / "evals.jsonl")[-1]
    right_real, right_fake = d_right(read_stats(out / "stats.jsonl"), previous)
    return {
        "step": trainer.step,
        "swd": last_eval["swd"],
        "swd_floor": floor,
        "colour": last_eval["colour"],
        "layout": last_eval["layout"],
        **precision_recall(pixel_features(real), pixel_features(fake)),
        "diversity": diversity(fake) / diversity(real),
        "lattice": lattice(fake[:64]),  # as many images on both sides (its noise floor)
        "lattice_real": lattice(real[:64]),
        "d_right_real": right_real,
        "d_right_fake": right_fake,
    }


def advance(*, plan: Plan, recipe: str, k: int, shards: Path, workdir: Path, reference, threads):
    """Train `recipe` to its k-th milestone and measure it there (skipped when measured)."""
    curve_path = workdir / f"{recipe}.curve.jsonl"
    curve = read_stats(curve_path) if curve_path.exists() else []
    marks = plan.milestone_steps(recipe)
    if any(row["step"] == marks[k] for row in curve):
        return
    every = marks[0]
    start = time.perf_counter()
    trainer = train_to(
        shards=shards,
        out=workdir / recipe,
        settings=settings(recipe, plan.width, marks[k], every),
        threads=threads,
    )
    row = milestone(
        trainer=trainer,
        out=workdir / recipe,
        reference=reference,
        previous=marks[k - 1] if k else 0,
    )
    row["seconds"] = round(time.perf_counter() - start, 1)
    with open(curve_path, "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(recipe, json.dumps(row), flush=True)


def plot(workdir: Path, recipes: list[str]) -> None:
    curves = {r: read_stats(workdir / f"{r}.curve.jsonl") for r in recipes}
    curves = {r: c for r, c in curves.items() if c}
    fig, axes = plt.subplots(3, 3, figsize=(15, 11))
    for ax, key in zip(axes.flat, MEASURES, strict=True):
        for recipe, curve in curves.items():
            rows = [row for row in curve if key in row]  # measures added later: not in old runs
            ax.plot([row["step"] for row in rows], [row[key] for row in rows], "o-", label=recipe)
        if key == "swd" and curves:
            ax.axhline(next(iter(curves.values()))[0]["swd_floor"], color="grey", ls="--")
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("step")
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(workdir / "curves.png", dpi=80)
    plt.close(fig)


def table(workdir: Path, plan: Plan, recipes: list[str]) -> str:
    head = (
        "| recipe | steps (of) | SWD last / best (floor) | colour | layout | precision | recall "
        "| diversity | lattice (real) | D right real / fake (last stretch) |"
    )
    lines = [head, "|" + "---|" * 10]
    for recipe in recipes:
        path = workdir / f"{recipe}.curve.jsonl"
        curve = read_stats(path) if path.exists() else []
        if not curve:
            continue
        last = curve[-1]
        pattern = (  # measured since this column was added
            f"{last['lattice']:.2f} ({last['lattice_real']:.2f})" if "lattice" in last else "-"
        )
        lines.append(
            f"| {recipe} | {last['step']} ({plan.steps[recipe]}) | {last['swd']:.1f} / "
            f"{min(r['swd'] for r in curve):.1f} ({last['swd_floor']:.1f}) | {last['colour']:.1f} "
            f"| {last['layout']:.1f} | {last['precision']:.2f} | {last['recall']:.2f} "
            f"| {last['diversity']:.2f} | {pattern} "
            f"| {last['d_right_real']:.2f} / {last['d_right_fake']:.2f} |"
        )
    return "\n".join(lines)


def half(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize(
        (image.width // 2, image.height // 2), Image.Resampling.LANCZOS
    )


def milestone_pictures(workdir: Path, recipe: str, out: Path) -> None:
    """`{recipe}_milestones.jpg`: the first row of each milestone's grid, one under the other;
    `{recipe}_last.jpg`: the latest grid, all 64 samples; both at half size."""
    grids = sorted((workdir / "grids").glob(f"{recipe}_[0-9]*.png"))
    if not grids:
        return
    rows = []
    for path in grids:
        with Image.open(path) as grid:
            tile = (grid.width - 2) // GRID_ROW  # make_grid: each cell image + padding
            rows.append(grid.convert("RGB").crop((0, 0, grid.width, tile + 2)))
    strip = Image.new("RGB", (rows[0].width, sum(row.height for row in rows)), "white")
    for k, row in enumerate(rows):
        strip.paste(row, (0, k * rows[0].height))
    half(strip).save(out / f"{recipe}_milestones.jpg", quality=85)
    with Image.open(grids[-1]) as grid:
        half(grid).save(out / f"{recipe}_last.jpg", quality=85)


def merge_plan(source: Path, dest: Path) -> None:
    """`dest` gets the steps of every recipe in `source`, and keeps those of recipes that only it
    has (a run of some recipes published beside others)."""
    plan = Plan.read(source)
    if dest.exists():
        kept = Plan.read(dest)
        if (kept.size, kept.width, kept.milestones) != (plan.size, plan.width, plan.milestones):
            raise SystemExit(f"{dest}: a plan for {kept.size} px, width {kept.width}, "
                             f"not {plan.size} px, width {plan.width}")  # fmt: skip
        plan = replace(plan, steps={**kept.steps, **plan.steps})
    dest.write_text(json.dumps(plan.__dict__, indent=1))


def publish(workdir: Path, recipes: list[str], out: Path) -> None:
    """What is worth keeping of a long run, small enough to commit (see the module's doc)."""
    out.mkdir(parents=True, exist_ok=True)
    merge_plan(workdir / "plan.json", out / "plan.json")
    for recipe in recipes:
        if (workdir / f"{recipe}.curve.jsonl").exists():
            shutil.copyfile(workdir / f"{recipe}.curve.jsonl", out / f"{recipe}.curve.jsonl")
        milestone_pictures(workdir, recipe, out)
    # the table and curves of every recipe published here, by this run or an earlier one
    plan = Plan.read(out / "plan.json")
    ordered = [r for r in LONG if r in plan.steps] + [r for r in plan.steps if r not in LONG]
    shown = [r for r in ordered if (out / f"{r}.curve.jsonl").exists()]
    plot(out, shown)
    (out / "table.md").write_text(table(out, plan, shown) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--recipes", default=",".join(LONG), help=f"of {', '.join(RECIPES)}")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gan-crops-long"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--milestones", type=int, default=8)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--publish", type=Path, help="copy the results worth keeping here")
    parser.add_argument("--plan", type=Path, help="a published plan.json: the same steps again")
    parser.add_argument("--plan-only", action="store_true", help="calibrate, write the plan, stop")
    parser.add_argument("--against", help="a planned recipe: time new recipes beside it")
    args = parser.parse_args()
    args.recipes = args.recipes.split(",")
    shards = build_shards(args.workdir, [args.size], None)[args.size]
    workdir = args.workdir / f"long{args.size}"
    workdir.mkdir(parents=True, exist_ok=True)
    plan = make_plan(args, shards, workdir)
    if args.plan_only:
        return
    reference = real_reference(shards)
    torch.set_num_threads(args.threads)
    for k in range(plan.milestones):
        for recipe in args.recipes:
            advance(plan=plan, recipe=recipe, k=k, shards=shards, workdir=workdir,
                    reference=reference, threads=args.threads)  # fmt: skip
        plot(workdir, args.recipes)
        (workdir / "table.md").write_text(table(workdir, plan, args.recipes) + "\n")
        if args.publish:
            publish(workdir, args.recipes, args.publish)
    print(table(workdir, plan, args.recipes))


if __name__ == "__main__":
    main()
