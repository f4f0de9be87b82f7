"""Adapters of the rules that make the training set (workflow/rules/{shards,curate}.smk): the
accepted crops less the user's exclusions packed into shards, and the optional FiftyOne curation
that writes those exclusions."""

from __future__ import annotations

from pathlib import Path

from pipeline import curate, shards
from pipeline.config import ShardSettings, from_dict


def _exclusions(smk) -> Path | None:
    """The experiment's exclusion list: an optional input (none or one file)."""
    exclusions = list(smk.input.exclusions)
    return Path(exclusions[0]) if exclusions else None


def shards_write(smk) -> None:
    shards.make_shards(
        Path(smk.input.decisions),
        Path(smk.input.rejects),
        _exclusions(smk),
        Path(smk.params.crops_root),
        Path(smk.output.shards),
        from_dict(ShardSettings, smk.params.shards),
        smk.params.image_size,
        smk.params.seed,
    )


def curate_dataset(smk) -> None:
    curate.build_dataset(
        Path(smk.input.decisions),
        Path(smk.params.crops_root),
        smk.params.name,
        _exclusions(smk),
        smk.params.tag,
        Path(smk.output.record),
    )


def curate_export(smk) -> None:
    curate.export_exclusions(
        smk.params.name, smk.params.tag, Path(smk.params.exclusions), Path(smk.output.record)
    )
