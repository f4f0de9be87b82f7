"""synthetic_dataset (rules/sources/synthetic.smk): generate a synthetic dataset in COCO format."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.job_context import job_context
from pipeline.sources import synthetic

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    synthetic.generate(
        from_dict(synthetic.SyntheticSettings, smk.params.settings),
        images_dir=Path(smk.params.images_dir),
        annotations=Path(smk.output.annotations),
    )
