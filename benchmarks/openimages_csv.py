"""Peak memory and rows/s of the OpenImages box CSV stream, against reading the CSV whole.

Generates box CSVs of growing size (1% of rows of the wanted label), then in a fresh process for
each: ours (`pipeline.sources.openimages.stream_boxes`, chunked, needed columns only) and the
baseline (`pandas.read_csv` of the whole file, then filter). Peak memory is the process's max RSS.

    .venv/bin/python benchmarks/openimages_csv.py [--rows 1000000 3000000] [--chunk-rows 250000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w") as handle:
        handle.write(HEADER + "\n")
        for start in range(0, rows, 500_000):
            n = min(500_000, rows - start)
            ids = rng.integers(0, 16**12, n)
            labels = np.where(rng.random(n) < 0.01, "/m/03bk1", "/m/0898b")
            x = np.sort(rng.random((n, 2)), axis=1)
            y = np.sort(rng.random((n, 2)), axis=1)
            lines = [
                f"{i:016x},xclick,{lab},1,{a:.6f},{b:.6f},{c:.6f},{d:.6f},0,1,0,0,0\n"
                for i, lab, a, b, c, d in zip(
                    ids, labels, x[:, 0], x[:, 1], y[:, 0], y[:, 1], strict=True
                )
            ]
            handle.writelines(lines)


def measure(mode: str, path: str, chunk_rows: int) -> None:
    """Run inside a fresh process: print rows kept, seconds and peak RSS (MB)."""
    import pandas as pd

    from pipeline.sources.openimages import stream_boxes

    start = time.perf_counter()
    if mode == "ours":
        kept = stream_boxes(Path(path), {"/m/03bk1": "giraffe"}, chunk_rows)
    else:
        frame = pd.read_csv(path)
        kept = frame[frame["LabelName"] == "/m/03bk1"]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(kept)} {seconds:.3f} {peak:.1f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    args = parser.parse_args()
    print(
        f"{'rows':>10} {'MB':>7} | {'ours: rows/s':>14} {'peak MB':>8} | {'read whole: rows/s':>18} {'peak MB':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = Path(tmp) / f"boxes-{rows}.csv"
            make_csv(path, rows)
            results = {}
            for mode in ("ours", "whole"):
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", mode, str(path), str(args.chunk_rows)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                results[mode] = (int(out[0]), float(out[1]), float(out[2]))
            assert results["ours"][0] == results["whole"][0], "both must keep the same rows"
            ours, whole = results["ours"], results["whole"]
            print(
                f"{rows:>10} {path.stat().st_size / 1e6:>7.0f} | {rows / ours[1]:>14,.0f} {ours[2]:>8.0f} | "
                f"{rows / whole[1]:>18,.0f} {whole[2]:>8.0f}"
            )
            path.unlink()


if __name__ == "__main__":
    main()
