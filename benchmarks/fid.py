"""Seconds per FID at 2048 dimensions: ours (SVD / eigh, exact) against torch-fidelity's
`fid_statistics_to_metric` (scipy `sqrtm`), on the same random features, same process.

    .venv/bin/python benchmarks/fid.py [--n 2048 10000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from pipeline.metrics.fid import frechet_distance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2048, 10000])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for n in args.n:
        x = rng.normal(size=(n, 2048)).astype(np.float32)
        y = (rng.normal(size=(n, 2048)) * 1.1 + 0.05).astype(np.float32)
        start = time.perf_counter()
        ours = frechet_distance(x, y)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        stats = [fid_features_to_statistics(torch.from_numpy(f)) for f in (x, y)]
        theirs = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
        t_theirs = time.perf_counter() - start
        print(
            f"n={n:6d}: ours {t_ours:7.2f} s (FID {ours:.4f}), torch-fidelity {t_theirs:7.2f} s "
            f"(FID {theirs:.4f}): {t_theirs / t_ours:6.1f}x"
        )


if __name__ == "__main__":
    main()
