"""curate_dataset (rules/curate.smk): the accepted crops as a FiftyOne dataset, to look at and tag."""

from pathlib import Path

from pipeline import curate
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    exclusions = list(smk.input.exclusions)  # an optional input: none or one file
    curate.build_dataset(
        Path(smk.input.decisions),
        crops_dir=Path(smk.input.crops_dir),
        name=smk.params.name,
        exclusions=Path(exclusions[0]) if exclusions else None,
        tag=smk.params.tag,
        record=Path(smk.output.record),
    )
