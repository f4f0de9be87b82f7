"""report_experiment (rules/evaluate.smk; its sweep twin report_sweep_run): one self-contained HTML
page of an experiment's result."""

from pathlib import Path

from pipeline import report
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    report.experiment_report(
        smk.wildcards.exp,
        metrics_path=Path(smk.input.metrics),
        figures={k: Path(v) for k, v in smk.input.items() if k != "metrics"},
        settings=dict(smk.params.settings),
        out=Path(smk.output.report),
    )
