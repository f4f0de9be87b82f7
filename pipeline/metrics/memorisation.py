"""Does the generator copy training crops? Nearest training crop of each generated image.

For every generated image, the distance (in feature space) to its nearest training crop; the
same for held-out real crops, which the generator has never seen, as the reference. A generator
that copies puts many samples much closer to a training crop than real held-out crops ever get:
`copy_fraction` is the share of samples nearer than the `quantile` of the held-out distances
(about `quantile` for a generator that does not copy); above `alarm` times `quantile` it warns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Nearest:
    distance: np.ndarray  # per query, to its nearest training crop
    index: np.ndarray  # which training crop


def nearest(queries: torch.Tensor, train: torch.Tensor, chunk: int = 1024) -> Nearest:
    distances, indices = [], []
    train = train.float()
    for part in queries.float().split(chunk):
        d, i = torch.cdist(part, train).min(dim=1)
        distances.append(d)
        indices.append(i)
    return Nearest(torch.cat(distances).numpy(), torch.cat(indices).numpy())


def memorisation(
    fake: Nearest, held_out: Nearest, quantile: float = 0.05, alarm: float = 3.0
) -> dict:
    threshold = float(np.quantile(held_out.distance, quantile))
    copy_fraction = float((fake.distance < threshold).mean())
    copies = copy_fraction > alarm * quantile
    result = {
        "median_distance_generated": float(np.median(fake.distance)),
        "median_distance_held_out": float(np.median(held_out.distance)),
        "copy_threshold": threshold,
        "copy_fraction": copy_fraction,
        "copies_training_data": bool(copies),
    }
    if copies:
        log.warning(
            "the generator may copy training crops: %.0f%% of samples are nearer to a training "
            "crop than %.0f%% of held-out real crops are (see figures/nearest.png)",
            100 * copy_fraction,
            100 * quantile,
        )
    return result
