"""Adapters of the model rules (workflow/rules/{train,evaluate,sweep}.smk): train the GAN, measure
it, and rank the runs of a sweep. The same adapter serves a rule and its sweep twin (train_gan and
train_run, evaluate_run and evaluate_sweep_run); the report rules have pipeline/adapters/report.py."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from pipeline import evaluate, reference, report, sweep
from pipeline.config import EvalSettings, TrainSettings, from_dict
from pipeline.gan import devices, train
from pipeline.gan.job import TrainJob


def train_gan(smk) -> None:
    job = TrainJob(
        shards_dir=Path(smk.input.shards),
        model_path=Path(smk.output.model),
        stats_path=Path(smk.output.stats),
        work_dir=Path(smk.params.work_dir),
        settings=from_dict(TrainSettings, smk.params.train),
        image_size=smk.params.image_size,
        seed=smk.params.seed,
        threads=smk.threads,
        evals_path=Path(smk.output.evals),
        best_path=Path(smk.output.best),
    )
    with devices.own_gpus(job.settings.gpus if job.settings.device != "cpu" else 0):
        train.train_job(job)


def evaluate_reference(smk) -> None:
    reference.reference_features(
        Path(smk.input.shards),
        Path(smk.output.features),
        from_dict(EvalSettings, smk.params.evaluate),
        smk.params.seed,
        smk.threads,
    )


def evaluate_run(smk) -> None:
    # The rule's outputs are named as the fields of EvalOutputs.
    out = {f.name: Path(getattr(smk.output, f.name)) for f in fields(evaluate.EvalOutputs)}
    evaluate.evaluate(
        Path(smk.input.model),
        Path(smk.input.shards),
        Path(smk.input.stats),
        Path(smk.input.reference),
        Path(smk.input.evals),
        evaluate.EvalOutputs(**out),
        from_dict(EvalSettings, smk.params.evaluate),
        smk.params.seed,
        smk.threads,
    )


def sweep_compare(smk) -> None:
    runs = list(smk.params.runs)

    def by_run(paths):
        return dict(zip(runs, (Path(p) for p in paths), strict=True))

    out = smk.output
    winner = sweep.compare(
        by_run(smk.input.metrics),
        by_run(smk.input.samples),
        by_run(smk.input.evals),
        smk.params.metric,
        *(Path(p) for p in (out.csv, out.png, out.samples, out.metrics)),
    )
    report.sweep_report(
        smk.wildcards.exp, Path(out.csv), Path(out.png), Path(out.samples), winner, Path(out.report)
    )
