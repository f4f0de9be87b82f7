"""Sweeps: several training runs of one experiment on the same shards, and the pick of the best.

An experiment's `sweep:` block declares a `grid` (every combination of the listed values) and/or
a list of `points` (each a dict of train settings). Each point is one run, named after the
settings it changes (`loss-hinge_lr_d-5e-05`), under `results/{exp}/runs/{run}/`. Runs share the
experiment's shards and reference features; adding a point adds one run and leaves the others.
`compare` ranks the runs by the sweep's metric and copies the winner's samples and metrics next
to the experiment.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd

from pipeline.io import atomic_path, write_json
from pipeline.plots import pyplot, read_stats, save_figure

log = logging.getLogger(__name__)

METRICS = ("swd", "fid", "kid")  # lower is better for each


def ranking(metrics: dict[str, dict], metric: str) -> pd.DataFrame:
    """One row per run: its metrics, ranked by `metric` (lower is better; runs without it last)."""
    rows = []
    for run, m in metrics.items():
        memo = m.get("memorisation") or {}
        rows.append(
            {
                "run": run,
                "step": m.get("step"),
                **{k: m.get(k) for k in (*METRICS, "swd_real_floor", "precision", "recall")},
                "copy_fraction": memo.get("copy_fraction"),
            }
        )
    table = pd.DataFrame(rows).set_index("run")
    table = table.sort_values(metric, na_position="last", kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def compare(
    metrics_paths: dict[str, Path],
    *,
    samples_paths: dict[str, Path],
    evals_paths: dict[str, Path],
    metric: str,
    out_csv: Path,
    out_png: Path,
    out_samples: Path,
    out_metrics: Path,
) -> str:
    """Rank the runs, write the table and plot, copy the winner's samples and metrics; returns
    the winner's name."""
    metrics = {run: json.loads(Path(p).read_text()) for run, p in metrics_paths.items()}
    if all(m.get(metric) is None for m in metrics.values()) and metric != "swd":
        log.warning("no run has %s (see fid_note in its metrics.json): ranking by swd", metric)
        metric = "swd"
    table = ranking(metrics, metric)
    winner = str(table.index[0])
    log.info("sweep ranked by %s: best run %s\n%s", metric, winner, table.to_string())
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp)
    plot_sweep(table, metric, {r: read_stats(p) for r, p in evals_paths.items()}, out_png)
    with atomic_path(out_samples) as tmp:
        shutil.copyfile(samples_paths[winner], tmp)
    write_json({**metrics[winner], "run": winner, "ranked_by": metric}, out_metrics)
    return winner


def plot_sweep(table: pd.DataFrame, metric: str, curves: dict[str, list[dict]], path: Path):
    """The final metric of every run (best first), and each run's SWD during training."""
    plt = pyplot()
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(12, 4))
    values = table[metric].astype(float)
    bars.barh(list(table.index)[::-1], list(values)[::-1], color="tab:blue")
    bars.set_xlabel(f"{metric} (lower is better)")
    bars.set_title(f"runs ranked by {metric}; best: {table.index[0]}")
    for run, evals in curves.items():
        if evals:
            lines.plot([e["step"] for e in evals], [e["swd"] for e in evals], label=run)
    lines.set_xlabel("step")
    lines.set_ylabel("SWD x1e3 during training")
    lines.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
