"""Evaluate a trained generator: sample grid, sliced Wasserstein distance, loss plot.

The SWD between generated crops and held-out real crops is reported beside the SWD between
the held-out crops and as many training crops: the floor a perfect generator would reach.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from pipeline.config import EvalSettings
from pipeline.gan.models import grid_labels, load_generator
from pipeline.io import write_json
from pipeline.metrics.swd import sliced_wasserstein
from pipeline.report import plot_losses, read_stats, save_grid, to_uint8
from pipeline.shards import load_split

log = logging.getLogger(__name__)
MIN_REAL = 16


def class_labels(state: dict, count: int, seed: int) -> torch.Tensor | None:
    """Labels for a conditional generator, drawn as often as each class is in the training set
    (None for an unconditional one)."""
    counts = state.get("class_counts") or []
    if not counts:
        return None
    rng = torch.Generator().manual_seed(seed + 2)
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


def real_sets(shards_dir: Path, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out crops and as many training crops (random, seeded), at most `count` each."""
    holdout, train = load_split(shards_dir, "holdout"), load_split(shards_dir, "train")
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


def swd_metrics(generator, state: dict, shards_dir: Path, count: int, seed: int) -> dict:
    held_out, train = real_sets(shards_dir, count, seed)
    if len(held_out) < MIN_REAL:
        note = f"{len(held_out)} real crops per set are too few for SWD (need {MIN_REAL}): not computed"
        log.warning(note)
        return {"num_images": len(held_out), "swd": None, "swd_real_floor": None, "note": note}
    fake = generate(
        generator, len(held_out), seed + 1, class_labels(state, len(held_out), seed + 1)
    )
    swd_fake, swd_floor = sliced_wasserstein(held_out, fake), sliced_wasserstein(held_out, train)
    log.info(
        "SWD x1e3: generated %.2f, real-vs-real floor %.2f (%d images)",
        swd_fake["swd_mean"],
        swd_floor["swd_mean"],
        len(held_out),
    )
    return {
        "num_images": len(held_out),
        "swd": swd_fake["swd_mean"],
        "swd_real_floor": swd_floor["swd_mean"],
        "swd_levels": swd_fake,
        "swd_real_floor_levels": swd_floor,
    }


def evaluate(
    model_path: Path,
    shards_dir: Path,
    stats_path: Path,
    samples_png: Path,
    metrics_json: Path,
    losses_png: Path,
    s: EvalSettings,
    seed: int,
    threads: int = 1,
) -> dict:
    torch.set_num_threads(max(1, threads))
    generator, state = load_generator(model_path)
    labels = grid_labels(generator.cfg.n_classes, s.grid_size**2, per_row=s.grid_size)
    grid = generate(generator, s.grid_size**2, seed, labels)
    save_grid(grid, samples_png, nrow=s.grid_size)
    metrics = {
        "step": int(state["step"]),
        **swd_metrics(generator, state, shards_dir, s.num_samples, seed),
    }
    if state.get("classes"):
        metrics["classes"] = state["classes"]  # samples.png: one class per row, in this order
    write_json(metrics, metrics_json)
    plot_losses(
        read_stats(stats_path),
        losses_png,
        title=f"{model_path.parent.parent.name}: {metrics['step']} steps",
    )
    return metrics
