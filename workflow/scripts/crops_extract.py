"""crops_extract (rules/crops.smk): cut, pad and resize the crops of the merged boxes."""

from pathlib import Path

from pipeline import crops
from pipeline.config import CropSettings, from_dict
from pipeline.image_checks import BadImageSettings
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    crops.extract_crops(
        Path(smk.input.boxes),
        crops_dir=Path(smk.output.crops_dir),
        crops_table=Path(smk.output.crops),
        rejects_table=Path(smk.output.rejects),
        settings=from_dict(CropSettings, smk.params.crops),
        image_size=smk.params.image_size,
        workers=smk.threads,
        record_rejects=Path(smk.input.record_rejects),
        exif=dict(smk.params.exif),
        bad_images=from_dict(BadImageSettings, smk.params.bad_images),
    )
