"""coco_annotations (rules/sources/coco.smk): download COCO's annotation archive and keep its splits' files."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.job_context import job_context
from pipeline.sources import coco

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    settings = from_dict(coco.CocoSettings, smk.params.settings)
    coco.download_annotations(
        settings,
        download=from_dict(DownloadSettings, smk.config["download"]),
        archive=Path(smk.params.archive),
        outputs=dict(zip(settings.splits, map(Path, smk.output), strict=True)),
    )
