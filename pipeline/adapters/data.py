"""Adapters of the data rules that need no torch (workflow/rules/{boxes,crops,filters}.smk): merge
the sources' boxes, cut the crops, decide which crops the filters keep."""

from __future__ import annotations

from pathlib import Path

from pipeline import boxes, crops, filters
from pipeline.config import CropSettings, from_dict
from pipeline.image_checks import BadImageSettings


def boxes_merge(smk) -> None:
    boxes.merge_boxes([Path(p) for p in smk.input.boxes], Path(smk.output.boxes))
    boxes.merge_rejects([Path(p) for p in smk.input.rejects], Path(smk.output.rejects))


def crops_extract(smk) -> None:
    crops.extract_crops(
        Path(smk.input.boxes),
        Path(smk.output.crops_dir),
        Path(smk.output.crops),
        Path(smk.output.rejects),
        from_dict(CropSettings, smk.params.crops),
        smk.params.image_size,
        workers=smk.threads,
        record_rejects=Path(smk.input.record_rejects),
        exif=dict(smk.params.exif),
        bad_images=from_dict(BadImageSettings, smk.params.bad_images),
    )


def filters_apply(smk) -> None:
    filters.apply_filters(
        Path(smk.input.crops),
        Path(smk.input.boxes),
        Path(smk.params.crops_root),
        Path(smk.output.decisions),
        Path(smk.output.sheets),
        from_dict(filters.FilterSettings, smk.params.filters),
    )
