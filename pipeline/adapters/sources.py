"""Adapters of the source rules (workflow/rules/{synthetic,coco,coco_format,visual_genome,
openimages,celeba,ffhq}.smk): each writes one experiment's boxes and bad records of a source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import from_dict
from pipeline.download import DownloadSettings
from pipeline.io import write_parquet
from pipeline.records import BadRecordSettings, RecordRejects, rejects_frame
from pipeline.sources import (
    celeba,
    coco,
    coco_format,
    ffhq,
    openimages,
    synthetic,
    visual_genome,
)


def _download(smk) -> DownloadSettings:
    return from_dict(DownloadSettings, smk.params.download)


def _bad_records(smk) -> BadRecordSettings:
    return from_dict(BadRecordSettings, smk.params.bad_records)


def _write_source(smk, frame: pd.DataFrame, rejects: pd.DataFrame) -> None:
    write_parquet(frame, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)


def synthetic_dataset(smk) -> None:
    settings = from_dict(synthetic.SyntheticSettings, smk.params.settings)
    synthetic.generate(settings, Path(smk.params.images_dir), Path(smk.output.annotations))


def synthetic_boxes(smk) -> None:
    name = smk.wildcards.synth  # the built-in synthetic, or a dataset named with format: synthetic
    rejects = RecordRejects(name)
    frame = coco.read_boxes(
        Path(smk.input.annotations),
        Path(smk.params.images_dir),
        tuple(smk.params.categories),
        name,
        "train",
        rejects=rejects,
        bad_records=_bad_records(smk),
    )
    _write_source(smk, frame, rejects.frame())


def coco_annotations(smk) -> None:
    settings = from_dict(coco.CocoSettings, smk.params.settings)
    outputs = dict(zip(settings.splits, map(Path, smk.output), strict=True))
    coco.download_annotations(settings, _download(smk), Path(smk.params.archive), outputs)


def coco_boxes(smk) -> None:
    settings = from_dict(coco.CocoSettings, smk.params.settings)
    frame, rejects = coco.coco_boxes(
        settings,
        dict(zip(settings.splits, map(Path, smk.input), strict=True)),
        Path(smk.params.image_root),
        tuple(smk.params.categories),
        _download(smk),
        Path(smk.params.failures),
        _bad_records(smk),
        Path(smk.params.tables),
    )
    _write_source(smk, frame, rejects)


def coco_format_boxes(smk) -> None:
    frame, rejects = coco_format.coco_format_boxes(
        smk.wildcards.dataset,
        from_dict(coco_format.CocoFormatSettings, smk.params.settings),
        tuple(smk.params.categories),
        _bad_records(smk),
    )
    _write_source(smk, frame, rejects)


def visual_genome_metadata(smk) -> None:
    settings = from_dict(visual_genome.VisualGenomeSettings, smk.params.settings)
    visual_genome.download_metadata(
        settings,
        _download(smk),
        Path(smk.output.image_data),
        Path(smk.output.objects),
    )


def visual_genome_boxes(smk) -> None:
    settings = from_dict(visual_genome.VisualGenomeSettings, smk.params.settings)
    frame = visual_genome.visual_genome_boxes(
        settings,
        Path(smk.input.image_data),
        Path(smk.input.objects),
        Path(smk.params.image_root),
        tuple(smk.params.categories),
        smk.params.drop_coco_images,
        _download(smk),
        Path(smk.params.failures),
    )
    _write_source(smk, frame, rejects_frame([]))


def _openimages_files(settings, paths) -> dict[str, Path]:
    return dict(zip(openimages.metadata_relpaths(settings), map(Path, paths), strict=True))


def openimages_metadata(smk) -> None:
    settings = from_dict(openimages.OpenImagesSettings, smk.params.settings)
    openimages.download_metadata(settings, _download(smk), _openimages_files(settings, smk.output))


def openimages_boxes(smk) -> None:
    settings = from_dict(openimages.OpenImagesSettings, smk.params.settings)
    frame, rejects = openimages.openimages_boxes(
        settings,
        _openimages_files(settings, smk.input),
        Path(smk.params.image_root),
        tuple(smk.params.categories),
        _download(smk),
        Path(smk.params.failures),
    )
    _write_source(smk, frame, rejects)


def celeba_boxes(smk) -> None:
    settings = from_dict(celeba.CelebASettings, smk.params.settings)
    frame = celeba.celeba_boxes(
        settings,
        _download(smk),
        Path(smk.params.folder),
        Path(smk.params.image_root),
        smk.params.mismatch,
    )
    _write_source(smk, frame, rejects_frame([]))


def ffhq_boxes(smk) -> None:
    settings = from_dict(ffhq.FFHQSettings, smk.params.settings)
    frame, rejects = ffhq.ffhq_boxes(
        settings,
        _download(smk),
        Path(smk.params.folder),
        Path(smk.params.failures),
        smk.params.mismatch,
    )
    _write_source(smk, frame, rejects)
