"""Memory a training or evaluation job asks: what the stages measured, by image size.

Peak RSS from Snakemake's benchmark files (`benchmarks/memory.py`: the proxy experiments, 2986
creature crops, the schema's networks: 64 wide, batch 64, on CPU), in MB:

| rule | 64 px | 128 px |
|---|---|---|
| train_experiment (one process) | 1188 | 2209 |
| evaluate_reference | 1096 | 1894 |
| evaluate_experiment | 1475 | 1775 |

Between and beyond the measured sizes the peak is taken as linear in the pixels of one image (the
networks' activations grow with them); a job asks 1.5 times it, rounded up to 500 MB, and a
training job that much per process (one per GPU). Each of these jobs also holds every crop of the
shards in memory (3 bytes a pixel: 12 KB a crop at 64 px, 49 KB at 128 px; 150 MB of the measured
128 px peak, but 3.4 GB for FFHQ's 70 000 faces at 128 px): once the shards exist (Snakemake
evaluates resources again when it submits a job) that is added, per process, from their
manifest. Before then (a dry run, the preflight) the figure shown is without it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

MEASURED_MB = {  # rule -> (peak at 64 px, peak at 128 px)
    "train": (1188, 2209),
    "evaluate_reference": (1096, 1894),
    "evaluate_experiment": (1475, 1775),
}
MARGIN = 1.5
STEP_MB = 500


def peak_mb(kind: str, image_size: int) -> float:
    """The measured peak of `kind`, linear in pixels through the two measured sizes."""
    at64, at128 = MEASURED_MB[kind]
    slope = (at128 - at64) / (128**2 - 64**2)
    return at64 + slope * (image_size**2 - 64**2)


def crops_mb(shards_dir: Path | str) -> float:
    """Every crop of a shard set as the uint8 arrays the jobs load, in MB; 0 before it exists."""
    path = Path(shards_dir) / "manifest.json"  # the shard format (README), read without the stage
    if not path.exists():
        return 0.0
    manifest = json.loads(path.read_text())
    count = sum(info["count"] for info in manifest["files"].values())
    return count * manifest["image_size"] ** 2 * 3 / 1e6


def ask_mb(kind: str, *, image_size: int, processes: int = 1, data_mb: float = 0.0) -> int:
    """The mem_mb a job of `kind` asks at `image_size`, for `processes` processes that each
    hold `data_mb` of crops."""
    peak = MARGIN * (max(peak_mb(kind, image_size), 0) + data_mb)
    one = math.ceil(peak / STEP_MB) * STEP_MB
    return max(one, 1000) * max(processes, 1)
