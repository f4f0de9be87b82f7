"""synthetic_boxes (rules/sources/synthetic.smk): the boxes of a generated dataset (the built-in
synthetic, or a dataset named with format: synthetic), read as COCO."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.io import write_parquet
from pipeline.job_context import job_context
from pipeline.records import BadRecordSettings, RecordRejects
from pipeline.sources import coco

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    rejects = RecordRejects(smk.wildcards.synth)
    boxes = coco.read_boxes(
        Path(smk.input.annotations),
        image_dir=Path(smk.params.images_dir),
        categories=tuple(smk.params.categories),
        source=smk.wildcards.synth,
        split="train",
        rejects=rejects,
        bad_records=from_dict(BadRecordSettings, smk.params.bad_records),
    )
    write_parquet(boxes, smk.output.boxes)
    write_parquet(rejects.frame(), smk.output.rejects)
