"""openimages_boxes (rules/sources/openimages.smk): OpenImages' boxes of the experiment's categories,
their images fetched."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.io import write_parquet
from pipeline.job_context import job_context
from pipeline.sources import openimages

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    settings = from_dict(openimages.OpenImagesSettings, smk.params.settings)
    boxes, rejects = openimages.openimages_boxes(
        settings,
        files=dict(zip(openimages.metadata_relpaths(settings), map(Path, smk.input), strict=True)),
        image_root=Path(smk.params.image_root),
        categories=tuple(smk.params.categories),
        download=from_dict(DownloadSettings, smk.config["download"]),
        failures=Path(smk.params.failures),
    )
    write_parquet(boxes, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)
