"""Images per second from the shards into float training batches, against a per-file PNG loader.

Ours: `pipeline.gan.data.load_split` + `BatchSampler` (uint8 tensor in memory, random batches, flip,
uint8 -> float in [-1, 1]). Baseline: a torch DataLoader over PNG files (decode each image with
Pillow, to tensor, normalise), as an ImageFolder-style pipeline does, with 2 workers.

    .venv/bin/python benchmarks/loader.py [--count 20000] [--size 64] [--batch 128] [--seconds 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipeline.gan.data import BatchSampler, load_split
from pipeline.shards import write_arrays


class PngFiles(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        pixels = np.array(Image.open(self.paths[i]).convert("RGB"))
        return torch.from_numpy(pixels).permute(2, 0, 1).float().div(127.5).sub(1)


def make_shards(root: Path, count: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    write_arrays(root, splits={"train": images})
    return images


def time_batches(next_batch, batch: int, seconds: float) -> float:
    next_batch()  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = next_batch()
        done += x.shape[0]
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = make_shards(root, args.count, args.size)
        start = time.perf_counter()
        data = load_split(root, "train")
        t_load = time.perf_counter() - start
        sampler = BatchSampler(data, args.batch, seed=0, hflip=True)
        ours = time_batches(sampler, args.batch, args.seconds)

        paths = []
        for i in range(min(args.count, 4000)):
            paths.append(root / f"{i:06d}.png")
            Image.fromarray(images[i]).save(paths[-1], compress_level=1)
        loader = torch.utils.data.DataLoader(
            PngFiles(paths),
            batch_size=args.batch,
            shuffle=True,
            num_workers=2,
            drop_last=True,
            persistent_workers=True,
        )
        batches = iter(loader)

        def next_png():
            nonlocal batches
            try:
                return next(batches)
            except StopIteration:
                batches = iter(loader)
                return next(batches)

        baseline = time_batches(next_png, args.batch, args.seconds)
    print(f"{args.count} crops of {args.size} px loaded from shards in {t_load:.2f} s")
    print(f"shards + BatchSampler : {ours:10.0f} images/s  (goal >= 50,000)")
    print(f"PNG files + DataLoader: {baseline:10.0f} images/s")
    print(f"ratio                 : {ours / baseline:10.1f}x")


if __name__ == "__main__":
    main()
