"""Plots of training and evaluation (matplotlib, headless): losses, metric curves, distances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.io import atomic_path


def read_stats(path: Path | str) -> list[dict]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    pyplot().close(fig)


def plot_losses(stats: list[dict], path: Path | str, title: str = "") -> None:
    """Loss curves of D and G, D's mean output, and how often D is right, on real and fake."""
    plt = pyplot()
    steps = np.array([s["step"] for s in stats])
    fig, (top, bottom, accuracy) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for key, label in (("loss_d", "D loss"), ("loss_g", "G loss")):
        top.plot(steps, [s[key] for s in stats], label=label)
    top.set_ylabel("loss")
    top.legend()
    top.set_title(title)
    for key, label in (("d_real", "D(x) real"), ("d_fake", "D(G(z)) fake")):
        bottom.plot(steps, [s[key] for s in stats], label=label)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("mean D output")
    bottom.legend()
    for key, label in (("acc_real", "D right on real"), ("acc_fake", "D right on fake")):
        if stats and key in stats[0]:
            accuracy.plot(steps, [s[key] for s in stats], label=label)
    accuracy.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    accuracy.set_ylim(0, 1.02)
    accuracy.set_xlabel("step")
    accuracy.set_ylabel("D accuracy")
    accuracy.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_metric_curve(evals: list[dict], path: Path | str, title: str = "") -> None:
    """SWD of generated against held-out crops over training steps (lower is better)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if evals:
        ax.plot([e["step"] for e in evals], [e["swd"] for e in evals], marker="o")
    else:
        ax.text(0.5, 0.5, "no measurement during training (train.eval_every: 0)", ha="center")
    ax.set_xlabel("step")
    ax.set_ylabel("SWD x1e3 (lower is better)")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_distances(
    generated, *, held_out, threshold: float | None, path: Path | str, title: str = ""
) -> None:
    """Histograms of distances to the nearest training crop: generated vs held-out real crops."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    bins = np.histogram_bin_edges(np.concatenate([generated, held_out]), bins=40)
    if len(held_out):
        ax.hist(held_out, bins=bins, alpha=0.6, density=True, label="held-out real crops")
    ax.hist(generated, bins=bins, alpha=0.6, density=True, label="generated")
    if threshold is not None:
        ax.axvline(threshold, color="red", linestyle="--", linewidth=1, label="copy threshold")
    ax.set_xlabel("distance to the nearest training crop (feature space)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
