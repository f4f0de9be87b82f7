"""filters_apply (rules/filters.smk): which crops the filters keep, and their contact sheets."""

from pathlib import Path

from pipeline import filters
from pipeline.config import from_dict
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    filters.apply_filters(
        Path(smk.input.crops),
        boxes_table=Path(smk.input.boxes),
        crops_dir=Path(smk.input.crops_dir),
        decisions_out=Path(smk.output.decisions),
        sheets_dir=Path(smk.output.sheets),
        settings=from_dict(filters.FilterSettings, smk.params.filters),
    )
