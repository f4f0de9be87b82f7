"""visual_genome_boxes (rules/sources/visual_genome.smk): Visual Genome's boxes of the experiment's
categories, their images fetched."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.io import write_parquet
from pipeline.job_context import job_context
from pipeline.sources import visual_genome

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    boxes, rejects = visual_genome.visual_genome_boxes(
        from_dict(visual_genome.VisualGenomeSettings, smk.params.settings),
        image_data=Path(smk.input.image_data),
        objects=Path(smk.input.objects),
        image_root=Path(smk.params.image_root),
        categories=tuple(smk.params.categories),
        drop_coco_images=smk.params.drop_coco_images,
        download=from_dict(DownloadSettings, smk.config["download"]),
        failures=Path(smk.params.failures),
    )
    write_parquet(boxes, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)
