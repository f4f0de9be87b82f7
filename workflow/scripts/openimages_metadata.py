"""openimages_metadata (rules/sources/openimages.smk): download OpenImages' box and class tables."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.job_context import job_context
from pipeline.sources import openimages

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    settings = from_dict(openimages.OpenImagesSettings, smk.params.settings)
    openimages.download_metadata(
        settings,
        download=from_dict(DownloadSettings, smk.config["download"]),
        paths=dict(zip(openimages.metadata_relpaths(settings), map(Path, smk.output), strict=True)),
    )
