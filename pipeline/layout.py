"""What an experiment's training and evaluation write and its report shows, named once.

The rules' outputs and inputs (workflow/rules/evaluate.smk, sweep.smk), the evaluation stage
(`EvalOutputs`, whose fields are these names) and the report (`FIGURES`) all read this module,
so a renamed or added figure cannot drop out of one of them. No torch: the workflow reads it as
it loads.
"""

from __future__ import annotations

# what train_experiment writes, relative to the experiment's (or a sweep run's) folder
TRAIN_FILES = {
    "model": "train/model.pt",
    "stats": "train/stats.jsonl",
    "evals": "train/evals.jsonl",
    "progress": "train/progress.gif",
    "best": "train/best.pt",
}
# what evaluate_experiment writes, relative to the experiment's (or a sweep run's) folder
EVAL_FILES = {
    "samples": "samples.png",
    "metrics": "metrics.json",
    "losses": "losses.png",
    "interpolation": "figures/interpolation.png",
    "nearest": "figures/nearest.png",
    "distances": "figures/distances.png",
    "curve": "figures/metric_curve.png",
}
# The report's pictures in order: (key, title, caption); `progress` comes from training, the
# others from EVAL_FILES.
FIGURES = [
    ("samples", "Samples", "EMA generator, fixed latents (conditional: one class per row)."),
    ("interpolation", "Latent interpolation", "Each row walks between two random latents."),
    ("progress", "Training progress", "Fixed-latent samples through training."),
    ("losses", "Losses and discriminator", "D and G losses, D's mean output, D's accuracy."),
    ("curve", "Metric during training", "SWD to held-out crops at each measurement."),
    ("nearest", "Nearest training crops", "The samples closest to a training crop, beside it."),
    ("distances", "Copy check", "Distance to the nearest training crop, generated vs held-out."),
]
FIGURE_KEYS = [key for key, _, _ in FIGURES]


def _under(folder: str, files: dict[str, str]) -> dict[str, str]:
    return {name: f"{folder}/{path}" for name, path in files.items()}


def train_outputs(folder: str) -> dict[str, str]:
    """The training's outputs under `folder` (with wildcards), by name."""
    return _under(folder, TRAIN_FILES)


def eval_outputs(folder: str) -> dict[str, str]:
    """The evaluation's outputs under `folder` (with wildcards), by name."""
    return _under(folder, EVAL_FILES)


def report_inputs(evaluation, training) -> dict:
    """The report's inputs from the evaluation's and training's rule outputs: metrics and each
    figure, by name."""
    return {"metrics": evaluation.metrics} | {
        key: evaluation[key] if key in EVAL_FILES else training[key] for key in FIGURE_KEYS
    }
