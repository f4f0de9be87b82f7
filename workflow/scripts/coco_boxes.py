"""coco_boxes (rules/sources/coco.smk): COCO's boxes of the experiment's categories, their images fetched."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.io import write_parquet
from pipeline.job_context import job_context
from pipeline.records import BadRecordSettings
from pipeline.sources import coco

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    settings = from_dict(coco.CocoSettings, smk.params.settings)
    boxes, rejects = coco.coco_boxes(
        settings,
        instances=dict(zip(settings.splits, map(Path, smk.input), strict=True)),
        image_root=Path(smk.params.image_root),
        categories=tuple(smk.params.categories),
        download=from_dict(DownloadSettings, smk.config["download"]),
        failures=Path(smk.params.failures),
        bad_records=from_dict(BadRecordSettings, smk.params.bad_records),
        tables=Path(smk.params.tables),
    )
    write_parquet(boxes, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)
