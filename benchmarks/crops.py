"""Crops per second of the crop stage against a naive loop, on the same large generated JPEGs.

Naive: for each box, open its image with Pillow, decode it fully, cut the square, Lanczos resize,
save the PNG, in one process. Ours: `pipeline.crops.extract_crops` (each image decoded once, JPEG
reduced-scale decoding, worker processes). Both write PNGs of the same crops.

    .venv/bin/python benchmarks/crops.py [--images 24] [--size 128] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from pipeline.boxes import normalise
from pipeline.config import CropSettings
from pipeline.crops import crop_id, extract_crops, precheck, square_region


def make_images(root: Path, count: int, seed: int = 0) -> pd.DataFrame:
    """`count` 4000x3000 photos-like JPEGs with 3 boxed shapes each, as a boxes table."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        width, height = (4000, 3000) if i % 3 else (3000, 4000)
        small = rng.integers(0, 256, size=(height // 100, width // 100, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((width, height), Image.BICUBIC)
        draw = ImageDraw.Draw(image)
        path = root / f"{i:04d}.jpg"
        for j in range(3):
            side = rng.uniform(400, 1400)
            x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
            draw.ellipse(
                [x0, y0, x0 + side, y0 + side], fill=tuple(int(c) for c in rng.integers(0, 256, 3))
            )
            rows.append(
                {
                    "box_id": f"bench:{i}:{j}",
                    "source": "bench",
                    "image_id": str(i),
                    "image_path": str(path),
                    "image_width": width,
                    "image_height": height,
                    "category": "disc",
                    "x0": x0,
                    "y0": y0,
                    "x1": x0 + side,
                    "y1": y0 + side,
                    "split": "train",
                }
            )
        image.save(path, quality=90)
    return normalise(rows)


def naive(boxes: pd.DataFrame, out: Path, s: CropSettings, size: int) -> int:
    done = 0
    for box in boxes.to_dict("records"):
        if precheck(box, s, size):
            continue
        region = square_region(box["x0"], box["y0"], box["x1"], box["y1"], s)
        image = Image.open(box["image_path"]).convert("RGB")
        square = image.crop(
            (
                round(region.x0),
                round(region.y0),
                round(region.x0 + region.side),
                round(region.y0 + region.side),
            )
        )
        square.resize((size, size), Image.LANCZOS).save(out / f"{crop_id(box['box_id'])}.png")
        done += 1
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    s = CropSettings(margin=0.1, min_box_side=32, max_upscale=4.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        boxes = make_images(root / "images", args.images)
        boxes.to_parquet(root / "boxes.parquet")
        (root / "naive").mkdir()

        start = time.perf_counter()
        count = naive(boxes, root / "naive", s, args.size)
        t_naive = time.perf_counter() - start

        start = time.perf_counter()
        crops, _ = extract_crops(
            root / "boxes.parquet",
            root / "crops",
            root / "crops.parquet",
            root / "rejects.parquet",
            s,
            args.size,
            workers=args.workers,
        )
        t_ours = time.perf_counter() - start
        shutil.rmtree(root / "naive")
    print(
        f"{len(boxes)} boxes in {args.images} JPEGs of 4000x3000, crops of {args.size} px, {args.workers} workers"
    )
    print(f"naive loop : {count / t_naive:8.1f} crops/s  ({t_naive:.2f} s)")
    print(f"crop stage : {len(crops) / t_ours:8.1f} crops/s  ({t_ours:.2f} s)")
    print(f"ratio      : {t_naive / t_ours * len(crops) / count:8.2f}x  (goal >= 4x)")


if __name__ == "__main__":
    main()
