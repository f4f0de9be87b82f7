"""curate_export (rules/curate.smk): the crops tagged in FiftyOne, written as the exclusion list."""

from pathlib import Path

from pipeline import curate
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    curate.export_exclusions(
        smk.params.name,
        tag=smk.params.tag,
        exclusions=Path(smk.params.exclusions),
        record=Path(smk.output.record),
    )
