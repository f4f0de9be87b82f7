"""The crop stage as users see it, against a naive loop and against what decoding alone allows.

Corpus: photo-like JPEGs (smooth gradients, textured blobs, fine grain; quality 90, about 2.3
bits per pixel like camera photos), deterministic from a seed, at 1600x1200 and 640x480, with
COCO-like boxes that pass min_box_side (sides 0.1 to 0.7 of the image's shorter side, about 1.3
boxes per image). Crops of 128 px, margin 0.1 (CropSettings(margin=0.1, min_box_side=32)).

Lines, per image size, all on the same boxes (all but "decode only" write the crops as PNGs):
  naive loop          per box: open the image, decode it fully, cut the square, Lanczos, PNG
  extract_crops       `pipeline.crops.extract_crops` called in-process (workers 1 and N; reduced
                      JPEG decoding off and on)
  snakemake job       the real rule `crops_extract` run by Snakemake, start-up included: the
                      whole call (wall), the job as Snakemake's benchmark file times it, and the
                      stage's own time from the job's log
  decode only         each image decoded once as the crop stage decodes it (draft at the scale
                      its largest crop needs, RGB), nothing else: the limit of the stage

    .venv/bin/python benchmarks/crops.py [--images 300] [--sizes 1600x1200,640x480] [--workers 2]
        [--quick] [--repeat 1] [--corpus DIR] [--profile]

--quick: 40 images per size. --corpus: where the generated JPEGs are kept and reused (default: a
folder under the system's temp dir). --profile: instead, cProfile of extract_crops (1 process) on
the first of --sizes.
"""

# ruff: noqa: E402 (tqdm reads TQDM_DISABLE when imported: set before the pipeline's imports)
from __future__ import annotations

import os

# the stages' progress bars off in this process (jobs run by Snakemake keep them, as users see)
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import cProfile
import dataclasses
import io
import math
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image, ImageDraw, ImageFilter

from pipeline.boxes import normalise
from pipeline.config import CropSettings
from pipeline.crops import crop_id, extract_crops, plan, precheck, square_region
from pipeline.image_files import open_reduced
from pipeline.records import rejects_frame

REPO = Path(__file__).resolve().parents[1]
SETTINGS = CropSettings(margin=0.1, min_box_side=32)
CROP_SIZE = 128
EXPERIMENT = "bench"
# boxes per image: 1, 2 or 3 (mean 1.26, as ~378 boxes on 300 images)
BOX_COUNTS, BOX_COUNT_P = [1, 2, 3], [0.78, 0.18, 0.04]
GOALS = {"1600x1200": (6.0, 4.0), "640x480": (3.0, 3.0)}  # job vs naive: goal, floor
DECODE_GOAL = 1.5  # the stage's own time at most this many times decoding alone


# --- the corpus ---------------------------------------------------------------------------------


def _smooth(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int], channels: int):
    """Random values on a coarse grid, bicubic-upsampled to h x w: gradients or texture."""
    small = rng.random((max(cells[0], 2), max(cells[1], 2), channels)).astype(np.float32)
    planes = [
        np.asarray(Image.fromarray(small[..., c], mode="F").resize((w, h), Image.BICUBIC))
        for c in range(channels)
    ]
    return np.stack(planes, axis=2)


def photo(width: int, height: int, rng: np.random.Generator, objects: list[tuple]) -> Image.Image:
    """A photo-like image: smooth colour gradients, textured soft-edged blobs (one filling each
    box in `objects`, as x0, y0, x1, y1), mid and fine texture and per-pixel grain."""
    img = _smooth(rng, height, width, (3, 4), 3) * 200 + 20
    texture = _smooth(rng, height, width, (height // 12, width // 12), 1) - 0.5
    fine = _smooth(rng, height, width, (height // 3, width // 3), 1) - 0.5
    img = img * (1 + 0.5 * texture) + 40 * fine
    shapes = []
    for _ in range(rng.integers(4, 10)):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        shapes.append((cx - rx, cy - ry, cx + rx, cy + ry))
    for x0, y0, x1, y1 in [*shapes, *objects]:
        # composite inside the shape's bounds only (blur margin included)
        bx0, by0 = max(int(x0) - 4, 0), max(int(y0) - 4, 0)
        bx1, by1 = min(int(math.ceil(x1)) + 4, width), min(int(math.ceil(y1)) + 4, height)
        if bx1 <= bx0 or by1 <= by0:
            continue
        mask = Image.new("L", (bx1 - bx0, by1 - by0), 0)
        ImageDraw.Draw(mask).ellipse([x0 - bx0, y0 - by0, x1 - bx0, y1 - by0], fill=255)
        m = np.asarray(mask.filter(ImageFilter.GaussianBlur(2)), dtype=np.float32)[..., None] / 255
        colour = rng.uniform(20, 235, 3).astype(np.float32)
        part = img[by0:by1, bx0:bx1]
        shade = colour * (1 + 0.6 * texture[by0:by1, bx0:bx1])
        img[by0:by1, bx0:bx1] = part * (1 - m) + shade * m
    img += rng.normal(0, 4.0, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def sample_boxes(rng: np.random.Generator, width: int, height: int) -> list[tuple]:
    """COCO-like boxes that pass min_box_side: sides 0.1 to 0.7 of the shorter image side (log-
    uniform, so smaller ones are more common), aspect 0.6 to 1.65."""
    boxes = []
    short = min(width, height)
    for _ in range(rng.choice(BOX_COUNTS, p=BOX_COUNT_P)):
        side = short * math.exp(rng.uniform(math.log(0.1), math.log(0.7)))
        aspect = math.exp(rng.uniform(-0.5, 0.5))
        w, h = min(side * math.sqrt(aspect), width - 2), min(side / math.sqrt(aspect), height - 2)
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        boxes.append((x0, y0, x0 + w, y0 + h))
    return boxes


def _make_image(task: tuple) -> list[dict]:
    path, index, width, height, seed = task
    rng = np.random.default_rng([seed, index, width])
    boxes = sample_boxes(rng, width, height)
    photo(width, height, rng, boxes).save(path, quality=90)
    return [
        {
            "box_id": f"bench:{index}:{j}",
            "source": "bench",
            "image_id": str(index),
            "image_path": str(path),
            "image_width": width,
            "image_height": height,
            "category": "thing",
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "split": "train",
        }
        for j, (x0, y0, x1, y1) in enumerate(boxes)
    ]


def make_corpus(
    root: Path, count: int, width: int, height: int, seed: int = 0, workers: int = 2
) -> pd.DataFrame:
    """`count` photo-like JPEGs in `root/images` and their boxes table `root/boxes.parquet`;
    reused when `root` already holds them (same count, size and seed)."""
    table = root / "boxes.parquet"
    if table.exists():
        return pd.read_parquet(table)
    shutil.rmtree(root, ignore_errors=True)
    (root / "images").mkdir(parents=True)
    tasks = [(root / "images" / f"{i:05d}.jpg", i, width, height, seed) for i in range(count)]
    with ProcessPoolExecutor(workers) as pool:
        rows = [row for rows in pool.map(_make_image, tasks, chunksize=4) for row in rows]
    boxes = normalise(rows)
    boxes.to_parquet(table)
    return boxes


def corpus_dir(base: Path, count: int, width: int, height: int, seed: int) -> Path:
    return base / f"photos-{width}x{height}-n{count}-seed{seed}"


def describe(boxes: pd.DataFrame) -> str:
    """Images, boxes, bits per pixel of the JPEGs, and box sizes (COCO's area classes)."""
    images = boxes.drop_duplicates("image_path")
    size = sum(Path(p).stat().st_size for p in images["image_path"])
    pixels = int((images["image_width"] * images["image_height"]).sum())
    area = (boxes["x1"] - boxes["x0"]) * (boxes["y1"] - boxes["y0"])
    short = (boxes[["image_width", "image_height"]].min(axis=1)).to_numpy()
    side = np.sqrt(area.to_numpy()) / short
    classes = [
        (area < 32**2).mean(),
        ((area >= 32**2) & (area < 96**2)).mean(),
        (area >= 96**2).mean(),
    ]
    return (
        f"{len(images)} images, {len(boxes)} boxes ({len(boxes) / len(images):.2f}/image), "
        f"JPEG q90 {size * 8 / pixels:.2f} bits/pixel, {size / len(images) / 1e3:.0f} kB/image; "
        f"box side / image side: median {np.median(side):.2f} (range {side.min():.2f}-{side.max():.2f}); "
        f"COCO area classes small/medium/large {classes[0]:.0%}/{classes[1]:.0%}/{classes[2]:.0%}"
    )


# --- the naive loop and the decode-only limit ---------------------------------------------------


def naive_boxes(task: tuple[list[dict], str, CropSettings, int]) -> int:
    """Per box: open, decode fully, cut the square (padded), Lanczos resize, save a PNG."""
    boxes, out, s, size = task
    done = 0
    for box in boxes:
        if precheck(box, s, size):
            continue
        region = square_region(box["x0"], box["y0"], box["x1"], box["y1"], s)
        with Image.open(box["image_path"]) as opened:
            image = opened.convert("RGB")
        square = image.crop(
            (
                round(region.x0),
                round(region.y0),
                round(region.x0 + region.side),
                round(region.y0 + region.side),
            )
        )
        square.resize((size, size), Image.LANCZOS).save(Path(out) / f"{crop_id(box['box_id'])}.png")
        done += 1
    return done


def naive(boxes: pd.DataFrame, out: Path, s: CropSettings, size: int, workers: int) -> int:
    """The naive loop in one process, or the boxes split by image over `workers` processes."""
    out.mkdir(parents=True, exist_ok=True)
    records = boxes.to_dict("records")
    if workers <= 1:
        return naive_boxes((records, str(out), s, size))
    images = sorted({r["image_path"] for r in records})
    part = {p: i % workers for i, p in enumerate(images)}
    chunks = [[r for r in records if part[r["image_path"]] == w] for w in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(naive_boxes, [(c, str(out), s, size) for c in chunks]))


def decode_tasks(
    boxes: pd.DataFrame, s: CropSettings, size: int, draft: bool
) -> list[tuple[str, int, int, float, bool]]:
    """One task per image with a crop: its path, size, and the scale its largest crop needs."""
    by_image, _ = plan(boxes, s, size)
    tasks = []
    for (path, width, height, _), group in sorted(by_image.items()):
        regions = [square_region(b["x0"], b["y0"], b["x1"], b["y1"], s) for b in group]
        tasks.append((path, width, height, max(size / r.side for r in regions), draft))
    return tasks


def decode_one(task: tuple[str, int, int, float, bool]) -> int:
    """Decode as the crop stage does (its own `open_reduced`: reduced scale when the crops allow,
    RGB); nothing else."""
    path, width, height, scale, draft = task
    rgb = open_reduced(Path(path), width=width, height=height, scale=scale, draft=draft).image
    return rgb.width * rgb.height


def decode_only(tasks: list, workers: int) -> int:
    if workers <= 1:
        return len(list(map(decode_one, tasks)))
    chunk = max(1, min(16, len(tasks) // (workers * 8) or 1))
    with ProcessPoolExecutor(workers) as pool:
        return len(list(pool.map(decode_one, tasks, chunksize=chunk)))


# --- the Snakemake job --------------------------------------------------------------------------


def write_workdir(workdir: Path, boxes: pd.DataFrame, experiment: dict | None = None) -> None:
    """A workflow folder: the repository's config plus experiment `bench`, whose boxes table and
    (empty) record rejects table are already there, as boxes_merge would have left them."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["experiments"][EXPERIMENT] = experiment or {
        "sources": ["synthetic"],
        "categories": ["thing"],
        "image_size": CROP_SIZE,
        "crops": {"margin": SETTINGS.margin, "min_box_side": SETTINGS.min_box_side},
    }
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    results = workdir / "results" / EXPERIMENT
    results.mkdir(parents=True, exist_ok=True)
    boxes.to_parquet(results / "boxes.parquet", index=False)
    rejects_frame([]).to_parquet(results / "record_rejects.parquet", index=False)


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?rule (\w+) (.*)$")


def stage_seconds(log: Path, rule: str) -> float:
    """The stage's own time: from the runner's 'rule X {wildcards}' line to 'rule X done in'."""
    start = end = None
    for line in log.read_text().splitlines():
        match = STAMP.match(line)
        if not match or match[2] != rule:
            continue
        when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if match[3].startswith("done in"):
            end = when
        elif start is None:
            start = when
    if start is None or end is None:
        raise ValueError(f"{log}: no start and end lines of rule {rule}")
    return end - start


def run_job(workdir: Path, rule: str, target: str, cores: int, env: dict | None = None) -> dict:
    """Run one job of `rule` (its outputs removed first) and time it three ways."""
    log = workdir / "logs" / rule / f"{EXPERIMENT}.log"
    bench = workdir / "logs" / rule / f"{EXPERIMENT}.benchmark.tsv"
    for path in (log, bench):
        path.unlink(missing_ok=True)
    cmd = snakemake_cmd(
        workdir, target, "--cores", str(cores), "--allowed-rules", rule, "--forcerun", rule,
    )  # fmt: skip
    start = time.perf_counter()
    env = {**{k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}, **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    job = float(pd.read_csv(bench, sep="\t")["s"].iloc[0])
    return {"wall": wall, "job": job, "stage": stage_seconds(log, rule)}


def median_job(
    workdir: Path, rule: str, target: str, cores: int, repeat: int, env: dict | None = None
) -> dict:
    """`run_job` `repeat` times: the median of each of its times."""
    runs = [run_job(workdir, rule, target, cores, env) for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# --- timing and the table -----------------------------------------------------------------------


def timed(fn: Callable[[], object], repeat: int, reset: Callable[[], None] | None = None):
    """Median seconds of `repeat` runs of fn (reset before each), and fn's last result."""
    times, result = [], None
    for _ in range(repeat):
        if reset:
            reset()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


class Table:
    def __init__(self, boxes: int, naive_s: float):
        self.boxes, self.naive_s = boxes, naive_s
        print(f"{'line':<48} {'seconds':>8} {'crops/s':>9} {'vs naive 1p':>12}")

    def line(self, name: str, seconds: float) -> None:
        rate = self.boxes / seconds
        print(f"{name:<48} {seconds:8.2f} {rate:9.1f} {self.naive_s / seconds:11.2f}x")


def ratio(name: str, value: float, note: str = "") -> None:
    print(f"  {name:<62} {value:7.2f}x  {note}")


def bench_size(args, label: str, width: int, height: int, base: Path, work: Path) -> None:
    start = time.perf_counter()
    boxes = make_corpus(corpus_dir(base, args.images, width, height, args.seed), args.images,
                        width, height, args.seed, args.workers)  # fmt: skip
    made = time.perf_counter() - start
    n, s = args.workers, SETTINGS
    accepted = sum(1 for b in boxes.to_dict("records") if not precheck(b, s, CROP_SIZE))
    print(f"\n== {label}: {describe(boxes)}  (corpus ready in {made:.1f} s)")
    print(f"   crops of {CROP_SIZE} px, {s}, {accepted} crops, N = {n} processes, "
          f"median of {args.repeat}")  # fmt: skip
    boxes_path = work / "boxes.parquet"
    boxes.to_parquet(boxes_path)

    def clean(*names: str) -> Callable[[], None]:
        return lambda: [shutil.rmtree(work / p, ignore_errors=True) for p in names]

    def ours(workers: int, draft: bool) -> Callable[[], object]:
        settings = dataclasses.replace(s, jpeg_draft=draft)
        return lambda: extract_crops(boxes_path, crops_dir=work / "crops", crops_table=work / "crops.parquet",
                                     rejects_table=work / "rejects.parquet", settings=settings, image_size=CROP_SIZE, workers=workers)  # fmt: skip

    # warm the page cache, so the first line pays no more disk reads than the others
    decode_only(decode_tasks(boxes, s, CROP_SIZE, draft=True), 1)
    t_naive, count = timed(lambda: naive(boxes, work / "naive", s, CROP_SIZE, 1), args.repeat,
                           clean("naive"))  # fmt: skip
    assert count == accepted, (count, accepted)
    table = Table(accepted, t_naive)
    table.line("naive loop, 1 process", t_naive)
    t_naive_n, _ = timed(lambda: naive(boxes, work / "naive", s, CROP_SIZE, n), args.repeat,
                         clean("naive"))  # fmt: skip
    table.line(f"naive loop, {n} processes", t_naive_n)
    t = {}
    for workers in sorted({1, n}):
        for draft in (False, True):
            t[workers, draft], (crops, _) = timed(ours(workers, draft), args.repeat, clean("crops"))
            assert len(crops) == accepted, (len(crops), accepted)
            on = "on " if draft else "off"
            table.line(f"extract_crops, {workers} proc, reduced decoding {on}", t[workers, draft])
    workdir = work / "workflow"
    write_workdir(workdir, boxes)
    target = f"results/{EXPERIMENT}/crops.parquet"
    jobs = {}
    for cores in sorted({1, n}):
        jobs[cores] = median_job(workdir, "crops_extract", target, cores, args.repeat)
        j = jobs[cores]
        table.line(f"snakemake crop job, --cores {cores}: whole call", j["wall"])
        table.line("  the job (Snakemake's benchmark file)", j["job"])
        table.line("  the stage alone (the job's log)", j["stage"])
    images = len(decode_tasks(boxes, s, CROP_SIZE, True))
    dec = {}
    for workers in sorted({1, n}):
        for draft in (False, True):
            tasks = decode_tasks(boxes, s, CROP_SIZE, draft)
            dec[workers, draft], _ = timed(lambda: decode_only(tasks, workers), args.repeat)  # noqa: B023
            kind = "as the stage (draft)" if draft else "full size"
            table.line(f"decode only, {workers} proc, {kind}", dec[workers, draft])
    print(f"  ({images} images decoded; crops/s counts the {accepted} crops they hold)")

    goal, floor = GOALS.get(label, (None, None))
    jn = jobs[n]
    print("ratios (time of the first / time of the second; > 1: the second is faster)")
    ratio(f"naive 1 proc / snakemake job --cores {n}, whole call", t_naive / jn["wall"],
          f"goal >= {goal}x, floor {floor}x" if goal else "")  # fmt: skip
    ratio("naive 1 proc / snakemake job --cores 1, whole call", t_naive / jobs[1]["wall"])
    ratio(f"naive {n} procs / snakemake job --cores {n}, whole call", t_naive_n / jn["wall"])
    ratio("naive 1 proc / extract_crops 1 proc, draft off", t_naive / t[1, False])
    ratio("naive 1 proc / extract_crops 1 proc, draft on", t_naive / t[1, True])
    ratio(f"naive {n} procs / extract_crops {n} procs, draft on", t_naive_n / t[n, True])
    ratio("extract_crops 1 proc: draft off / draft on", t[1, False] / t[1, True])
    ratio(f"extract_crops {n} procs: draft off / draft on", t[n, False] / t[n, True])
    ratio(f"extract_crops {n} procs / 1 proc (draft on): speed-up", t[1, True] / t[n, True])
    print("against the decode-only limit (time of the stage / time of decoding alone)")
    ratio(f"stage in the job (--cores {n}) / decode only {n} procs", jn["stage"] / dec[n, True],
          f"goal <= {DECODE_GOAL}x")  # fmt: skip
    ratio("extract_crops 1 proc / decode only 1 proc (draft on)", t[1, True] / dec[1, True])
    ratio(f"extract_crops {n} procs / decode only {n} procs (draft on)", t[n, True] / dec[n, True])
    ratio("extract_crops 1 proc, draft off / decode only 1 proc, full", t[1, False] / dec[1, False])
    print("start-up and overheads of the job")
    print(f"  job start-up (job - stage), --cores {n}: {jn['job'] - jn['stage']:.2f} s; "
          f"Snakemake around the job (whole call - job): {jn['wall'] - jn['job']:.2f} s")  # fmt: skip


def profile(args, base: Path, work: Path) -> None:
    """cProfile of extract_crops in one process on the first of --sizes: the top entries by
    cumulative and by own time."""
    label = args.sizes.split(",")[0]
    width, height = (int(v) for v in label.split("x"))
    boxes = make_corpus(corpus_dir(base, args.images, width, height, args.seed), args.images,
                        width, height, args.seed, args.workers)  # fmt: skip
    boxes.to_parquet(work / "boxes.parquet")
    profiler = cProfile.Profile()
    profiler.enable()
    extract_crops(work / "boxes.parquet", crops_dir=work / "crops", crops_table=work / "crops.parquet",
                  rejects_table=work / "rejects.parquet", settings=SETTINGS, image_size=CROP_SIZE, workers=1)  # fmt: skip
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(12)
    stats.sort_stats("tottime").print_stats(12)
    print(f"{label}: {describe(boxes)}")
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="images per size")
    parser.add_argument("--sizes", default="1600x1200,640x480")
    parser.add_argument("--workers", type=int, default=2, help="N of the N-process lines")
    parser.add_argument("--quick", action="store_true", help="40 images per size")
    parser.add_argument("--repeat", type=int, default=1, help="median of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--corpus", type=Path, default=Path(tempfile.gettempdir()) / "gan-crops-bench"
    )
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.images = 40
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; Pillow {Image.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            profile(args, args.corpus, Path(tmp))
            return
        for label in args.sizes.split(","):
            width, height = (int(v) for v in label.split("x"))
            work = Path(tmp) / label
            work.mkdir()
            bench_size(args, label, width, height, args.corpus, work)


if __name__ == "__main__":
    main()
