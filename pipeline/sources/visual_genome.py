"""Visual Genome 1.4: objects matched by synset or name, only the images that hold them fetched.

`objects.json` is large (hundreds of MB): it is read once, streaming (ijson), keeping only the
matching objects. VG boxes one object several times under different ids: same-category boxes that
overlap more than `dedupe_iou` are kept once. Images that are also COCO images (`coco_id`) are
dropped when the experiment takes COCO too and `coco_wins` is set.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import ijson
import pandas as pd

from pipeline.archive import safe_extract, safe_join
from pipeline.boxes import canonical_category, normalise
from pipeline.download import DownloadJob, DownloadSettings, fetch, fetch_unless_local, hosts_of
from pipeline.records import rejects_frame
from pipeline.schema import SOURCES, schema_defaults

log = logging.getLogger(__name__)


@dataclass(frozen=True)
@schema_defaults(f"{SOURCES}/visual_genome")
class VisualGenomeSettings:
    base_url: str
    objects_file: str
    image_data_file: str
    image_url_prefix: str
    image_base_url: str
    local_dir: str | None
    coco_wins: bool
    dedupe_iou: float
    exif: str  # boxes refer to the image as displayed (apply) or stored


class VisualGenomeFormatError(ValueError):
    """A VG file that breaks the format; the message names the file and record."""


def download_metadata(
    settings: VisualGenomeSettings, *, download: DownloadSettings, image_data: Path, objects: Path
) -> None:
    """Fetch the two zips beside `image_data` and extract their JSON to `image_data` and `objects`."""
    download = replace(download, allowed_hosts=hosts_of(settings.base_url))
    for name, target in ((settings.image_data_file, image_data), (settings.objects_file, objects)):
        archive = target.parent / name
        result = fetch(DownloadJob(f"{settings.base_url.rstrip('/')}/{name}", archive), download)
        if not result.ok:
            raise RuntimeError(f"Visual Genome {result.job.url}: {result.reason}")
        members = [m for m in _zip_names(archive) if m.endswith(".json")]
        if len(members) != 1:
            raise VisualGenomeFormatError(f"{archive}: expected one .json member, found {members}")
        (path,) = safe_extract(archive, target.parent / "extracted", members)
        path.replace(target)


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path}: not a readable zip archive: {err}") from err


def name_forms(category: str) -> set[str]:
    """The ways VG writes a category name: 'giraffe' -> {'giraffe', 'giraffes', 'giraffees'}."""
    c = canonical_category(category)
    forms = {c, c + "s", c + "es"}
    if c.endswith("y"):
        forms.add(c[:-1] + "ies")
    return forms


def matches(obj: dict, category: str, forms: set[str]) -> bool:
    """By synset (giraffe.n.01, traffic_light.n.01) or by name (lower case, trimmed, plural).

    A one-word category's synset settles it: a 'giraffe' named object whose synset is spot.n.01
    is a spot. Multi-word categories match by name whatever the synset, since WordNet names many
    of them otherwise ('teddy bear' objects carry teddy.n.01, 'cell phone' cellular_telephone).
    """
    synsets = obj.get("synsets") or []
    if any(str(s).split(".")[0].replace("_", " ") == category for s in synsets):
        return True
    if synsets and " " not in category:
        return False
    names = obj.get("names") or [obj.get("name", "")]
    return any(canonical_category(n) in forms for n in names)


def read_image_data(path: Path) -> dict[int, dict]:
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise VisualGenomeFormatError(f"{path}: not valid JSON: {err}") from err
    images = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or not all(k in rec for k in ("url", "width", "height")):
            raise VisualGenomeFormatError(
                f"{path}: record {i}: needs url, width and height, got {rec!r:.200}"
            )
        image_id = rec.get("image_id", rec.get("id"))
        if not isinstance(image_id, int) or not (rec["width"] > 0 and rec["height"] > 0):
            raise VisualGenomeFormatError(f"{path}: record {i}: bad image_id or size")
        images[image_id] = rec
    return images


def iter_objects(path: Path, categories: tuple[str, ...]):
    """(image_id, category, object) for each matching object, streaming through objects.json."""
    wanted = [(canonical_category(c), name_forms(c)) for c in categories]
    with open(path, "rb") as handle:
        try:
            for i, entry in enumerate(ijson.items(handle, "item", use_float=True)):
                image_id = entry.get("image_id", entry.get("id"))
                for obj in entry.get("objects", []):
                    for category, forms in wanted:
                        if matches(obj, category, forms):
                            yield i, image_id, category, obj
                            break
        except ijson.JSONError as err:
            raise VisualGenomeFormatError(f"{path}: not valid JSON: {err}") from err


def _iou(a: tuple, b: tuple) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def dedupe(rows: list[dict], threshold: float) -> list[dict]:
    """Keep the first of same-image, same-category boxes overlapping more than `threshold`."""
    kept: list[dict] = []
    for row in sorted(rows, key=lambda r: (r["image_id"], int(r["box_id"].rsplit(":", 1)[1]))):
        coords = (row["x0"], row["y0"], row["x1"], row["y1"])
        if not any(
            k["image_id"] == row["image_id"]
            and k["category"] == row["category"]
            and _iou(coords, (k["x0"], k["y0"], k["x1"], k["y1"])) > threshold
            for k in kept[-50:]
        ):
            kept.append(row)
    return kept


def image_location(
    settings: VisualGenomeSettings, image_id, url: str, image_root: Path
) -> tuple[str, str]:
    """Where an image is stored and fetched from: under `image_root` as the part of its URL after
    `image_url_prefix`, fetched from `image_base_url` (any other URL as it is, stored in other/)."""
    if not url.startswith(settings.image_url_prefix):
        return str(safe_join(image_root, f"other/{image_id}.jpg")), url
    relative = url.removeprefix(settings.image_url_prefix.rstrip("/") + "/")
    return str(safe_join(image_root, relative)), f"{settings.image_base_url.rstrip('/')}/{relative}"


def read_boxes(
    settings: VisualGenomeSettings,
    *,
    image_data: Path,
    objects: Path,
    image_root: Path,
    categories: tuple[str, ...],
    drop_coco_images: bool,
) -> pd.DataFrame:
    images = read_image_data(image_data)
    rows, shared = [], 0
    for i, image_id, category, obj in iter_objects(objects, categories):
        image = images.get(image_id)
        if image is None:
            raise VisualGenomeFormatError(
                f"{objects}: entry {i}: image_id {image_id!r} not in {image_data}"
            )
        if drop_coco_images and image.get("coco_id"):
            shared += 1
            continue
        try:
            x, y, w, h = (float(obj[k]) for k in ("x", "y", "w", "h"))
        except (KeyError, TypeError, ValueError) as err:
            raise VisualGenomeFormatError(
                f"{objects}: entry {i}, object {obj.get('object_id')}: bad box ({err})"
            ) from err
        width, height = int(image["width"]), int(image["height"])
        image_path, image_url = image_location(settings, image_id, str(image["url"]), image_root)
        rows.append(
            {
                "box_id": f"visual_genome:{image_id}:{obj.get('object_id')}",
                "source": "visual_genome",
                "image_id": str(image_id),
                "image_path": image_path,
                "image_url": image_url,
                "image_width": width,
                "image_height": height,
                "category": category,
                "x0": min(max(x, 0.0), width),
                "y0": min(max(y, 0.0), height),
                "x1": min(max(x + w, 0.0), width),
                "y1": min(max(y + h, 0.0), height),
                "split": "train",
            }
        )
    kept = dedupe(rows, settings.dedupe_iou)
    log.info(
        "Visual Genome: %d objects of %s, %d kept after dedupe, %d dropped as COCO images",
        len(rows),
        list(categories),
        len(kept),
        shared,
    )
    return normalise(kept)


def visual_genome_boxes(
    settings: VisualGenomeSettings,
    *,
    image_data: Path,
    objects: Path,
    image_root: Path,
    categories: tuple[str, ...],
    drop_coco_images: bool,
    download: DownloadSettings,
    failures: Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The boxes of the categories with their images, and (as every source) its bad records."""
    boxes = read_boxes(
        settings,
        image_data=image_data,
        objects=objects,
        image_root=image_root,
        categories=categories,
        drop_coco_images=drop_coco_images,
    )
    boxes = fetch_unless_local(
        boxes,
        source=settings,
        download=download,
        failures=failures,
        desc="Visual Genome images",
    )
    return boxes, rejects_frame([])  # a malformed record stops the reader: no bad records kept
