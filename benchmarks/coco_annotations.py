"""Reading COCO's train instances file: the first read, and every later experiment or category.

Writes an instances JSON of COCO train2017's shape (118,287 images, 860,001 annotations with
polygon segmentations, 80 categories: about 430 MB), then measures, each in a fresh process with
its peak memory: `json.load` alone (the baseline: the old reader's first step), our first read of
one category (`read_boxes` with a table cache: parse, check every record, keep the table), and a
later read of another category (from the kept table).

    .venv/bin/python benchmarks/coco_annotations.py [--scale 1.0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMAGES, ANNOTATIONS, CATEGORIES = 118_287, 860_001, 80


def write_file(path: Path, scale: float, seed: int = 0) -> None:
    """An instances JSON of train2017's shape (streamed out, so writing it stays small)."""
    rng = np.random.default_rng(seed)
    images, annotations = int(IMAGES * scale), int(ANNOTATIONS * scale)
    with open(path, "w") as out:
        out.write('{"info": {"year": 2017}, "licenses": [], "images": [')
        for i in range(images):
            sep = "," if i else ""
            out.write(
                f'{sep}{{"license": 3, "file_name": "{i:012d}.jpg", "coco_url": '
                f'"http://images.cocodataset.org/train2017/{i:012d}.jpg", "height": 480, '
                f'"width": 640, "date_captured": "2013-11-14 16:28:13", "id": {i}}}'
            )
        out.write('], "annotations": [')
        for a in range(annotations):
            x, y = rng.uniform(0, 500, 2).round(2)
            w, h = rng.uniform(5, 140, 2).round(2)
            points = rng.uniform(0, 600, int(rng.integers(16, 60))).round(2).tolist()
            out.write(
                f'{"," if a else ""}{{"segmentation": [{json.dumps(points)}], "area": '
                f'{w * h:.3f}, "iscrowd": 0, "image_id": {int(rng.integers(images))}, '
                f'"bbox": [{x}, {y}, {w}, {h}], "category_id": {1 + a % CATEGORIES}, "id": {a}}}'
            )
        out.write('], "categories": [')
        out.write(
            ",".join(
                f'{{"supercategory": "animal", "id": {c}, "name": "cat{c}"}}'
                for c in range(1, CATEGORIES + 1)
            )
        )
        out.write("]}")


MEASURE = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
{body}
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "rows": rows}}))
"""
BASELINE = "data = json.load(open(sys.argv[1]))\nrows = len(data['annotations'])"
OURS = """
from pipeline.records import BadRecordSettings
from pipeline.sources.coco import read_boxes
rows = len(read_boxes(Path(sys.argv[1]), Path(sys.argv[2]), (sys.argv[3],), "coco", "train2017",
                      bad_records=BadRecordSettings(1.0), cache_dir=Path(sys.argv[2]) / "tables"))
"""


def measure(body: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE.format(body=body), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of train2017's size")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="coco-bench-"))
    path = root / "instances_train2017.json"
    started = time.perf_counter()
    write_file(path, args.scale)
    print(
        f"{path}: {path.stat().st_size / 1e6:.0f} MB written in {time.perf_counter() - started:.0f} s"
    )
    try:
        lines = [
            ("json.load (baseline)", measure(BASELINE, str(path))),
            ("ours, first read (cat1)", measure(OURS, str(path), str(root), "cat1")),
            ("ours, later read (cat2)", measure(OURS, str(path), str(root), "cat2")),
            ("ours, later read (cat1)", measure(OURS, str(path), str(root), "cat1")),
        ]
    finally:
        if not args.keep:
            shutil.rmtree(root)
    base = lines[0][1]["seconds"]
    print(f"{'what':28} {'seconds':>8} {'peak MB':>8} {'rows':>8} {'vs json.load':>13}")
    for name, r in lines:
        ratio = base / r["seconds"]
        print(f"{name:28} {r['seconds']:8.2f} {r['peak_mb']:8.0f} {r['rows']:8d} {ratio:12.1f}x")


if __name__ == "__main__":
    main()
