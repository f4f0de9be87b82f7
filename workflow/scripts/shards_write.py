"""shards_write (rules/shards.smk): the accepted crops, less the user's exclusions, packed into
shards."""

from pathlib import Path

from pipeline import shards
from pipeline.config import ShardSettings, from_dict
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    exclusions = list(smk.input.exclusions)  # an optional input: none or one file
    shards.make_shards(
        Path(smk.input.decisions),
        rejects_table=Path(smk.input.rejects),
        exclusions=Path(exclusions[0]) if exclusions else None,
        crops_dir=Path(smk.input.crops_dir),
        out_dir=Path(smk.output.shards),
        settings=from_dict(ShardSettings, smk.params.shards),
        image_size=smk.params.image_size,
        seed=smk.params.seed,
    )
