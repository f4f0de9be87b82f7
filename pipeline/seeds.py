"""The random streams of one run: each a named offset from the experiment's seed, in one table.

One seed in the config gives every random choice of a run; each use draws from its own stream so
that adding a draw to one (more samples, another figure) never moves another. Add a stream here,
at an offset no other uses.
"""

from __future__ import annotations

from enum import IntEnum


class Stream(IntEnum):
    TRAINING = 0  # weights, latents and batches of training (rank r: + RANK_STRIDE * r)
    FIXED_LATENTS = 1  # the progress grid's latents; the probe's and evaluation's SWD samples
    CLASS_LABELS = 2  # a conditional generator's labels: added to the stream they go with
    INTERPOLATION = 3  # the interpolation figure's end points
    PR_SUBSET = 5  # the training crops precision and recall compare with
    SAMPLES = 7  # the sample grid and the images FID and KID measure
    REFERENCE = 11  # the training crops the reference features hold


RANK_STRIDE = 7919  # rank r of a multi-GPU run draws its latents and batches from seed + 7919 * r


def stream(seed: int, which: Stream, *, rank: int = 0) -> int:
    """The seed of stream `which` of a run seeded `seed` (on DDP rank `rank`)."""
    return seed + int(which) + RANK_STRIDE * rank
