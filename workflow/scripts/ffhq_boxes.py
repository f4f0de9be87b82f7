"""ffhq_boxes (rules/sources/ffhq.smk): FFHQ's faces (one box an image), from its files or a folder the
user holds."""

from pathlib import Path

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.io import write_parquet
from pipeline.job_context import job_context
from pipeline.sources import ffhq

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    boxes, rejects = ffhq.ffhq_boxes(
        from_dict(ffhq.FFHQSettings, smk.params.settings),
        download=from_dict(DownloadSettings, smk.config["download"]),
        folder=Path(smk.params.folder),
        failures=Path(smk.params.failures),
        mismatch=smk.params.mismatch,
    )
    write_parquet(boxes, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)
