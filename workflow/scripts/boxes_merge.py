"""boxes_merge (rules/boxes.smk): the experiment's sources' boxes and bad records, one table each."""

from pathlib import Path

from pipeline import boxes
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    boxes.merge_boxes([Path(p) for p in smk.input.boxes], output=Path(smk.output.boxes))
    boxes.merge_rejects([Path(p) for p in smk.input.rejects], output=Path(smk.output.rejects))
