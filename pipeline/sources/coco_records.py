"""The checks of a COCO-format instances file: whole-file defects stop, bad records are skipped.

`load_instances` parses the file (msgspec, skipping `segmentation` and every field the boxes do
not need: a quarter of `json.load`'s time and memory on COCO train2017) and stops with the file
named on whole-file defects. `check_records` checks every image entry and annotation on its own;
a bad one becomes a reject naming the file and the record (index and id).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from pipeline.archive import UnsafePathError, safe_join
from pipeline.boxes import canonical_category
from pipeline.image_files import DECODE_ERRORS, header_size
from pipeline.records import RecordRejects

log = logging.getLogger(__name__)


class _Annotation(msgspec.Struct):
    """The fields of an annotation the boxes need; any type, so bad values reach the checks."""

    id: Any = None
    image_id: Any = None
    category_id: Any = None
    bbox: Any = None
    iscrowd: Any = 0


class _Instances(msgspec.Struct):
    images: Any = None
    annotations: list[_Annotation | int | float | str | bool | None | list] | None = None
    categories: Any = None


_DECODER = msgspec.json.Decoder(_Instances)


def _parse(path: Path) -> dict:
    """The file as a dict; annotations slimmed to their box fields. Files msgspec refuses (NaN
    literals, a top level that is no object, odd shapes) take Python's json module."""
    data = Path(path).read_bytes()
    try:
        parsed = _DECODER.decode(data)
    except msgspec.MsgspecError:
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CocoFormatError(f"{path}: not valid JSON: {err}") from err
    annotations = parsed.annotations
    if annotations is not None:
        to_dict = msgspec.structs.asdict
        annotations = [to_dict(a) if isinstance(a, _Annotation) else a for a in annotations]
    return {"images": parsed.images, "annotations": annotations, "categories": parsed.categories}


class CocoFormatError(ValueError):
    """An instances JSON whose whole file is unusable; the message names the file and part."""


def _require(ok: bool, path: Path, record: str, message: str) -> None:
    if not ok:
        raise CocoFormatError(f"{path}: {record}: {message}")


# exact types (bool is an int subclass, and is no number or id here); checked for each of
# COCO's 860k annotations, so kept to a type lookup
_NUMBER_TYPES = frozenset({int, float})
_ID_TYPES = frozenset({int, str})


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBER_TYPES and math.isfinite(value)


def _is_id(value: Any) -> bool:
    return type(value) in _ID_TYPES


def _as_id(value: Any) -> int | str | None:
    """`value` if it can be an id (a list or object in its place cannot: None)."""
    return value if _is_id(value) else None


def _record_id(record: Any) -> Any:
    return record.get("id", "?") if isinstance(record, dict) else "?"


def load_instances(path: Path) -> dict:
    """Parse an instances JSON and check what makes the whole file unusable.

    Not JSON, not an object, `images`/`annotations`/`categories` missing or not lists, duplicate
    image or annotation ids, a category without id and name: CocoFormatError naming the file.
    Single bad image entries and annotations are left to `check_records`.
    """
    data = _parse(path)
    _require(isinstance(data, dict), path, "top level", "must be an object")
    for key in ("images", "annotations", "categories"):
        _require(isinstance(data.get(key), list), path, key, "missing or not a list")
    for key in ("images", "annotations"):
        seen: set = set()
        for i, record in enumerate(data[key]):
            rid = record.get("id") if isinstance(record, dict) else None
            if _is_id(rid):
                _require(
                    rid not in seen, path, f"{key}[{i}] (id={rid})", f"duplicate {key[:-1]} id"
                )
                seen.add(rid)
    for i, cat in enumerate(data["categories"]):
        _require(
            isinstance(cat, dict) and _is_id(cat.get("id")) and isinstance(cat.get("name"), str),
            path,
            f"categories[{i}]",
            "needs id and name",
        )
    return data


@dataclass(frozen=True)
class ImageRules:
    """How an instances file may name and size its images.

    A downloaded source's file names decide where files are written: they must stay inside the
    images folder (`confined`). A user's dataset is only read: its names may be absolute or
    leave the folder (`..`), and an entry without width and height gets them from the image's
    header, as the boxes see it (`exif`)."""

    confined: bool = True
    read_sizes: str = "never"  # from the image's header: never, missing (when absent), always
    exif: str = "apply"


DOWNLOADED = ImageRules()
SIZES = {"annotations": "missing", "images": "always"}  # a named dataset's `sizes` setting


def user_dataset(exif: str, sizes: str) -> ImageRules:
    """The rules of a dataset the user points at (read only): `sizes` says where image sizes
    come from (annotations: the entries', read from the image when absent; images: always read
    from the image)."""
    return ImageRules(confined=False, read_sizes=SIZES[sizes], exif=exif)


@dataclass
class ImageEntry:
    """A usable image entry: its record (with its size) and where its file is."""

    record: dict
    path: Path


def _image_path(image_dir: Path, name: str, rules: ImageRules) -> Path:
    """Where the file of `name` is: inside `image_dir` only for a confined source; else an
    absolute name as it is and a relative one from `image_dir` (`..` allowed)."""
    if rules.confined:
        return safe_join(image_dir, name)
    if "\x00" in name:
        raise UnsafePathError(f"invalid file name {name!r}")
    named = Path(name.replace("\\", "/")).expanduser()
    return named if named.is_absolute() else image_dir / named


def _size(image: dict, path: Path, rules: ImageRules) -> tuple[str, str] | dict:
    """The entry with a usable width and height, or (reason, message) when it has none."""
    absent = image.get("width") is None and image.get("height") is None
    if rules.read_sizes == "always" or (rules.read_sizes == "missing" and absent):
        try:
            width, height = header_size(path, rules.exif)
        except FileNotFoundError:
            return "missing_image", f"{path}: not found (its size is read from the image)"
        except DECODE_ERRORS as err:
            return "unreadable_image", f"{path}: {type(err).__name__}: {err}"
        return {**image, "width": width, "height": height}
    for key in ("width", "height"):
        value = image.get(key)
        if not (_is_number(value) and value > 0 and float(value).is_integer()):
            return "bad_image_record", f"{key} must be a positive integer, got {value!r}"
    return image


def _image_entry(image: Any, image_dir: Path, rules: ImageRules) -> tuple[str, str] | ImageEntry:
    """The image entry as an ImageEntry, or (reason, message) when it is unusable."""
    if not isinstance(image, dict):
        return "bad_image_record", "not an object"
    if not _is_id(image.get("id")):
        return "bad_image_record", f"id missing, got {image.get('id')!r}"
    name = image.get("file_name")
    if not isinstance(name, str) or not name:
        return "bad_image_record", f"file_name missing, got {name!r}"
    try:
        path = _image_path(image_dir, name, rules)
    except UnsafePathError as err:
        return "unsafe_file_name", f"{err} (a downloaded source's names must stay in its folder)"
    sized = _size(image, path, rules)
    return ImageEntry(sized, path) if isinstance(sized, dict) else sized


def _box_defect(ann: dict, image: dict) -> tuple[str, str] | None:
    bbox = ann.get("bbox")
    if not (
        type(bbox) is list
        and len(bbox) == 4
        and _is_number(bbox[0])
        and _is_number(bbox[1])
        and _is_number(bbox[2])
        and _is_number(bbox[3])
    ):
        return "bad_bbox", f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}"
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return "empty_box", f"bbox {bbox} has no area"
    if x >= image["width"] or y >= image["height"] or x + w <= 0 or y + h <= 0:
        size = f"{image['width']}x{image['height']}"
        return "box_outside_image", f"bbox {bbox} lies outside the {size} image"
    return None


def _annotation_defect(
    ann: dict, image_id: Any, category_id: Any, images: dict, bad_images: dict, known: set
) -> tuple[str, str, bool] | None:
    """(reason, message, counted) for an unusable annotation, or None. An annotation lost with
    its bad image entry carries the entry's reason and is not counted again."""
    if category_id not in known:
        return "unknown_category", f"unknown category_id {ann.get('category_id')!r}", True
    if image_id in bad_images:
        reason, detail = bad_images[image_id]
        return reason, f"its image entry is unusable: {detail}", False
    if image_id not in images:
        return "unknown_image", f"unknown image_id {ann.get('image_id')!r}", True
    defect = _box_defect(ann, images[image_id].record)
    return (*defect, True) if defect else None


@dataclass
class Checked:
    """The usable records of one instances file."""

    images: dict[Any, ImageEntry]
    annotations: list[dict]


def check_records(
    data: dict,
    *,
    path: Path,
    image_dir: Path,
    wanted: dict[Any, str],
    rejects: RecordRejects,
    box_prefix: str,
    rules: ImageRules = DOWNLOADED,
) -> Checked:
    """Keep the usable image entries and the usable annotations of the `wanted` categories.

    Every record is checked; a bad one is counted in `rejects` and listed there (as a row of the
    rejects table) when it could hold a wanted box: annotations of a wanted or unknown category,
    and the wanted annotations of a bad image entry.
    """
    images: dict[Any, ImageEntry] = {}
    bad_images: dict[Any, tuple[str, str]] = {}
    for i, image in enumerate(data["images"]):
        got = _image_entry(image, image_dir, rules)
        if isinstance(got, ImageEntry):
            images[image["id"]] = got
            continue
        rec = f"{path}: images[{i}] (id={_record_id(image)})"
        reason, detail = got[0], f"{rec}: {got[1]}"
        if isinstance(image, dict) and _is_id(image.get("id")):
            bad_images[image["id"]] = (reason, detail)
        # counted here; listed through the wanted annotations that point at it
        rejects.add(reason, detail, image_id=_record_id(image), listed=False)
    known_categories = {c["id"] for c in data["categories"]}
    kept = []
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not _is_id(ann.get("id")):
            rejects.add(
                "bad_record",
                f"{path}: annotations[{i}] (id={_record_id(ann)}): not an object with an id",
                box_id=f"{box_prefix}annotations[{i}]",
            )
            continue
        image_id, category_id = _as_id(ann.get("image_id")), _as_id(ann.get("category_id"))
        defect = _annotation_defect(
            ann, image_id, category_id, images, bad_images, known_categories
        )
        if defect:  # the record named only for the few bad ones (860k in COCO train)
            reason, detail, counted = defect
            rejects.add(
                reason,
                f"{path}: annotations[{i}] (id={ann['id']}): {detail}",
                f"{box_prefix}{image_id}:{ann['id']}",
                image_id,
                wanted.get(category_id, ""),
                listed=category_id in wanted or category_id not in known_categories,
                counted=counted,
            )
        elif category_id in wanted:
            kept.append(ann)
    return Checked(images, kept)


def wanted_categories(data: dict, names: tuple[str, ...], path: Path) -> dict[Any, str]:
    """Category id -> the experiment's category (canonical form), matched case-insensitively.

    A name the file lacks is a warning (another source of the experiment may have it); none at
    all is an error listing the names the file has.
    """
    canon = {canonical_category(n) for n in names}
    found = {
        c["id"]: canonical_category(c["name"])
        for c in data["categories"]
        if canonical_category(c["name"]) in canon
    }
    available = sorted({canonical_category(c["name"]) for c in data["categories"]})
    missing = sorted(canon - set(found.values()))
    if not found:
        raise CocoFormatError(f"{path}: no category named {missing}; it has {available}")
    if missing:
        log.warning("%s: no category named %s; it has %s", path, missing, available)
    return found
