"""How fast the generated datasets render, against the JPEG encode every generated picture pays.

The demo's shapes and the proxies' creatures are drawn at 640 x 480 (the largest pictures the
configs ask for); the baseline is Pillow's JPEG encode of the same pictures at the quality the
dataset writes (`jpeg_quality`, 92), so the ratio says how much drawing adds to writing a file.
Goal: a creature picture in under 0.1 s (a 1000-picture proxy in under 2 minutes on one core).

    .venv/bin/python benchmarks/synthetic.py [--count 40]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np

from pipeline.sources import synthetic, synthetic_creatures

WIDTH, HEIGHT, QUALITY = 640, 480, 92


def timed(fn, count: int) -> tuple[float, list]:
    """Seconds per call of `fn` over `count` calls, and what the calls returned."""
    start = time.perf_counter()
    out = [fn() for _ in range(count)]
    return (time.perf_counter() - start) / count, out


def encode(images) -> None:
    for image in images:
        image.save(io.BytesIO(), format="JPEG", quality=QUALITY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    synthetic_creatures.render_image(rng, 64, 48, 1)  # the noise tiles, once
    kinds = {
        "shapes (demo)": lambda: synthetic.render_image(
            rng, WIDTH, HEIGHT, ("disc", "square", "triangle"), 4
        )[0],
        "creatures (proxies)": lambda: synthetic_creatures.render_image(rng, WIDTH, HEIGHT, 4)[0],
    }
    print(f"{'pictures':<22} {'render s':>9} {'JPEG s':>8} {'render/JPEG':>12} {'goal 0.1 s':>11}")
    for name, render in kinds.items():
        seconds, images = timed(render, args.count)
        jpeg, _ = timed(lambda images=images: encode(images), 1)
        jpeg /= len(images)
        verdict = "met" if seconds < 0.1 else "MISSED"
        print(f"{name:<22} {seconds:>9.4f} {jpeg:>8.4f} {seconds / jpeg:>12.1f} {verdict:>11}")


if __name__ == "__main__":
    main()
