"""visual_genome_metadata (rules/sources/visual_genome.smk): download Visual Genome's image data and objects."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.job_context import job_context
from pipeline.sources import visual_genome

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    visual_genome.download_metadata(
        from_dict(visual_genome.VisualGenomeSettings, smk.params.settings),
        download=from_dict(DownloadSettings, smk.config["download"]),
        image_data=Path(smk.output.image_data),
        objects=Path(smk.output.objects),
    )
