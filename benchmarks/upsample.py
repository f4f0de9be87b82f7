"""The generator's two ways of doubling its resolution, side by side: what a step costs, and the
lattice each draws before training.

`upsample: transposed` (DCGAN: strided transposed convolutions) against `upsample: resize`
(nearest-neighbour resizing and a 3x3 convolution). For each size: the time of one training
step's forward and backward passes (G on a batch of latents, D on the fakes twice and on a batch
of reals), the best of `--repeats`, the two kinds interleaved so that a machine's load falls on
both alike; and `lattice` (pipeline.gan.monitor) of 64 samples of the untrained generator.
Networks as the long runs' (32 wide, batch 64; 16 wide, batch 32 at 32 px, as the learning tests).

    .venv/bin/python benchmarks/upsample.py [--sizes 32,64,128] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from pipeline.gan.models import Discriminator, Generator, ModelConfig
from pipeline.gan.monitor import lattice

KINDS = ("transposed", "resize")


def networks(size: int, upsample: str) -> tuple[Generator, Discriminator, int]:
    width, batch = (16, 32) if size == 32 else (32, 64)
    cfg = ModelConfig(image_size=size, nz=100, ngf=width, ndf=width, upsample=upsample)
    return Generator(cfg), Discriminator(cfg), batch


def step_seconds(generator: Generator, discriminator: Discriminator, batch: int) -> float:
    start = time.perf_counter()
    fakes = generator(torch.randn(batch, generator.cfg.nz))
    discriminator(fakes).mean().backward()  # G's step
    discriminator(fakes.detach()).mean().backward()  # D's step: fakes and reals
    discriminator(torch.rand_like(fakes) * 2 - 1).mean().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64,128")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| size | step transposed (s) | step resize (s) | ratio | lattice transposed / resize |")
    print("|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        torch.manual_seed(0)
        nets = {kind: networks(size, kind) for kind in KINDS}
        times = {kind: [] for kind in KINDS}
        for _ in range(args.repeats):
            for kind in KINDS:
                times[kind].append(step_seconds(*nets[kind]))
        with torch.no_grad():
            pattern = {
                kind: lattice(g(torch.randn(64, g.cfg.nz))) for kind, (g, _, _) in nets.items()
            }
        t, r = min(times["transposed"]), min(times["resize"])
        print(f"| {size} | {t:.3f} | {r:.3f} | {r / t:.2f} | "
              f"{pattern['transposed']:.3f} / {pattern['resize']:.3f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
