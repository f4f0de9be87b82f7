"""Drawing from a generator, seeded: latents, class labels and the real crops to compare with.

Shared by the training probe (`pipeline.gan.monitor`) and evaluation (`pipeline.evaluate`), so
that training never imports evaluation. The same seed gives the same images.
"""

from __future__ import annotations

import logging

import torch

from pipeline.gan.grids import to_uint8
from pipeline.seeds import Stream, stream

log = logging.getLogger(__name__)
MIN_REAL = 16  # fewer real crops in a set than this: no metric is worth computing


def class_labels(counts: list[int] | None, count: int, seed: int) -> torch.Tensor | None:
    """Labels for a conditional generator, drawn as often as each class is in the training set
    (`counts`, per class; None or empty for an unconditional one)."""
    if not counts:
        return None
    rng = torch.Generator().manual_seed(stream(seed, Stream.CLASS_LABELS))
    weights = torch.tensor(counts, dtype=torch.float)
    return torch.multinomial(weights, count, replacement=True, generator=rng)


@torch.no_grad()
def generate(
    generator, count: int, seed: int, labels: torch.Tensor | None = None, batch: int = 256
) -> torch.Tensor:
    """`count` uint8 images from latents drawn with `seed` (the same seed, the same images)."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(count, generator.cfg.nz, generator=rng)
    device = next(generator.parameters()).device
    out = []
    for i in range(0, count, batch):
        y = labels[i : i + batch].to(device) if labels is not None else None
        out.append(to_uint8(generator(z[i : i + batch].to(device), y)))
    return torch.cat(out)


def real_sets(
    holdout: torch.Tensor, train: torch.Tensor, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out crops and as many training crops (random, seeded), at most `count` each."""
    rng = torch.Generator().manual_seed(seed)
    if len(holdout) < MIN_REAL:
        log.warning(
            "only %d held-out crops: comparing against two halves of the training crops",
            len(holdout),
        )
        train = train[torch.randperm(len(train), generator=rng)]
        holdout, train = train[: len(train) // 2], train[len(train) // 2 :]
    n = min(count, len(holdout), len(train))
    pick = torch.randperm(len(holdout), generator=rng)[:n]
    return holdout[pick], train[torch.randperm(len(train), generator=rng)[:n]]
