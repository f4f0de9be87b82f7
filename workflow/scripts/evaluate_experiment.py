"""evaluate_experiment (rules/evaluate.smk; its sweep twin evaluate_sweep_run): samples, metrics and figures
of a trained model."""

from pathlib import Path

from pipeline import evaluate
from pipeline.config import EvalSettings, from_dict
from pipeline.job_context import job_context
from pipeline.layout import EVAL_FILES

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    outputs = {name: Path(smk.output[name]) for name in EVAL_FILES}  # EvalOutputs' fields
    evaluate.evaluate(
        Path(smk.input.model),
        shards_dir=Path(smk.input.shards),
        stats_path=Path(smk.input.stats),
        reference_path=Path(smk.input.reference),
        evals_path=Path(smk.input.evals),
        out=evaluate.EvalOutputs(**outputs),
        settings=from_dict(EvalSettings, smk.params.evaluate),
        seed=smk.params.seed,
        threads=smk.threads,
    )
