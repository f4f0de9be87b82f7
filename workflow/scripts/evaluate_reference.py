"""evaluate_reference (rules/evaluate.smk): the real crops' Inception features, once per experiment."""

from pathlib import Path

from pipeline import reference
from pipeline.config import EvalSettings, from_dict
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    reference.reference_features(
        Path(smk.input.shards),
        out_path=Path(smk.output.features),
        settings=from_dict(EvalSettings, smk.params.evaluate),
        seed=smk.params.seed,
        threads=smk.threads,
    )
