"""Where the correct trainer ends in the learning tests, seed by seed: the numbers behind PINNED.

tests/test_learning.py requires each shipped recipe to end within 10% of the worst of seeds 1, 2
and 3 of the correct trainer on SWD, colour and layout. This script measures them with the test's
own data, settings and measurement (1 thread, so the numbers are the same at any load): rerun it
after a change that moves where training ends (a recipe, the networks, the data) and copy the
worst of each measure into PINNED, the per-seed numbers into the comment above it.

    .venv/bin/python benchmarks/learning_pins.py [--recipes bce,stable+resize] [--seeds 1,2,3]
        [--workdir DIR]

About 1-3 minutes per run on one core (the 3000-step recipe with the resizing generator longest).
"""

# ruff: noqa: E402 (tqdm reads TQDM_DISABLE when imported: set before the pipeline's imports)
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests package: its data, recipes and measurement

from tests.test_learning import PINNED, RUN, SHIPPED, build_shards, real_floor, train_and_measure

MEASURES = ("swd", "colour", "layout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(SHIPPED), help=f"of {', '.join(SHIPPED)}")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gan-crops-pins"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    shards = args.workdir / "results/learn32/shards"
    if not (shards / "manifest.json").exists():
        shards = build_shards(args.workdir)
    floor = real_floor(shards)
    print(f"real-vs-real SWD floor {floor:.1f}")
    for recipe in args.recipes.split(","):
        settings = replace(RUN, **SHIPPED[recipe])
        ends = []
        for seed in seeds:
            out = args.workdir / "runs" / f"{recipe}-seed{seed}"
            outcome = train_and_measure(shards, out, settings, floor, seed=seed)
            ends.append(outcome.last)
            print(f"{recipe} seed {seed}: {outcome}", flush=True)
        worst = {key: round(max(end[key] for end in ends), 1) for key in MEASURES}
        print(f"{recipe}: worst {worst}; PINNED now {PINNED.get(recipe)}", flush=True)


if __name__ == "__main__":
    main()
