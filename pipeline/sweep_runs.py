"""The runs of a sweep, from the config alone: names and train settings (no pandas, no plots:
the workflow reads this while it loads, on every Snakemake call)."""

from __future__ import annotations

import itertools
import re

from pipeline.config import TrainSettings, from_dict


def _format(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "+".join(_format(v) for v in value) or "none"
    return str(value)


def run_name(overrides: dict) -> str:
    """A readable, path-safe name for the settings a run changes: `loss-hinge_lr_d-5e-05`."""
    if not overrides:
        return "base"
    name = "_".join(f"{key}-{_format(overrides[key])}" for key in sorted(overrides))
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", name)


def runs_of(sweep: dict | None) -> dict[str, dict]:
    """Run name -> the train settings that run overrides, for the grid and the listed points."""
    if not sweep:
        return {}
    grid = sweep.get("grid") or {}
    keys = sorted(grid)
    combos = [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]
    runs: dict[str, dict] = {}
    for overrides in (combos if keys else []) + list(sweep.get("points") or []):
        name = run_name(overrides)
        if name in runs:
            raise ValueError(f"sweep: two points are both {overrides}")
        runs[name] = dict(overrides)
    return runs


def run_train_settings(experiment: dict, run: str) -> dict:
    """The train settings of one run: the experiment's, with the run's overrides. Unknown keys
    raise here, when the workflow loads, naming the run."""
    overrides = runs_of(experiment.get("sweep")).get(run)
    if overrides is None:
        raise ValueError(f"no sweep run {run!r}; runs: {sorted(runs_of(experiment.get('sweep')))}")
    merged = {**experiment["train"], **overrides}
    try:
        from_dict(TrainSettings, merged)
    except (TypeError, ValueError) as err:
        raise ValueError(f"sweep run {run!r}: {err}") from err
    return merged
