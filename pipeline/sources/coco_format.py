"""A user's own dataset in COCO format, named in the config and listed like a built-in source.

    sources:
      my_zoo:
        format: coco
        annotations: /data/zoo/labels.json   # one file, or a list of files
        images: /data/zoo/data               # optional: default, each annotation file's folder

Exports of FiftyOne (`labels.json` + `data/`), CVAT (`annotations/instances_default.json` +
`images/`), Roboflow (`_annotations.coco.json` beside the images) and Label Studio (`result.json`
+ `images/`) all read this way. Nothing is downloaded and nothing in the user's folders is
written: they are inputs only, so file names may be absolute (FiftyOne's labels-only export) or
leave the folder (`../../media/upload/...`, Label Studio). An entry without width and height gets
them from the image's header. Boxes refer to the image as displayed (`exif: apply`, the default).
An image missing from the folder becomes a `missing_image` reject of the crop stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.boxes import normalise
from pipeline.records import BadRecordSettings, RecordRejects
from pipeline.schema import schema_defaults
from pipeline.sources.coco import read_boxes
from pipeline.sources.coco_records import user_dataset
from pipeline.user_paths import annotation_list


@dataclass(frozen=True)
@schema_defaults("#/$defs/coco_format", code_only=("format", "annotations"))
class CocoFormatSettings:
    format: str = "coco"
    annotations: tuple[str, ...] | str = ()
    images: str | None
    split: str
    exif: str  # boxes refer to the image as displayed (apply) or stored
    sizes: str  # or images: always read each image's size from its header


def annotation_files(settings: CocoFormatSettings) -> list[Path]:
    """The dataset's annotation files, in the order the config lists them."""
    return [Path(f) for f in annotation_list(settings.annotations)]


def coco_format_boxes(
    name: str,
    *,
    settings: CocoFormatSettings,
    categories: tuple[str, ...],
    bad_records: BadRecordSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The boxes of the categories in every annotation file of dataset `name`, and its rejects.

    Box ids are `{name}:{image_id}:{annotation_id}`; with several files, whose ids may repeat,
    `{name}:{k}:{image_id}:{annotation_id}` with k the file's place in the list.
    """
    files = annotation_files(settings)
    rejects = RecordRejects(name)
    parts = []
    for k, path in enumerate(files):
        images = Path(settings.images) if settings.images else path.parent
        prefix = f"{name}:{k}:" if len(files) > 1 else f"{name}:"
        parts.append(
            read_boxes(
                path,
                image_dir=images,
                categories=categories,
                source=name,
                split=settings.split,
                rejects=rejects,
                bad_records=bad_records,
                box_prefix=prefix,
                rules=user_dataset(settings.exif, settings.sizes),
            )
        )
    return normalise(pd.concat(parts, ignore_index=True)), rejects.frame()
