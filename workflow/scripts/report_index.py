"""report_index (rules/evaluate.smk): the page and table that compare the experiments."""

from pathlib import Path

from pipeline import report
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    report.experiments_index(
        [Path(p) for p in smk.input.metrics],
        out_html=Path(smk.output.html),
        out_csv=Path(smk.output.csv),
    )
