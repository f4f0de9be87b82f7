"""coco_format_boxes (rules/coco_format.smk): the boxes of a dataset the user holds in COCO format."""

from pipeline.config import from_dict
from pipeline.io import write_parquet
from pipeline.job_context import job_context
from pipeline.records import BadRecordSettings
from pipeline.sources import coco_format

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    boxes, rejects = coco_format.coco_format_boxes(
        smk.wildcards.dataset,
        settings=from_dict(coco_format.CocoFormatSettings, smk.params.settings),
        categories=tuple(smk.params.categories),
        bad_records=from_dict(BadRecordSettings, smk.params.bad_records),
    )
    write_parquet(boxes, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)
