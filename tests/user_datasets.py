"""Datasets as users bring them: real photographs, boxed by hand, exported in COCO format.

The photographs are scikit-image's (`skimage.data`, shipped with the package: nothing is
downloaded), resized to 400 px wide and saved as JPEG. Three exporters' layouts:

- `fiftyone_coco`: FiftyOne's own COCODetectionDataset exporter (`labels.json` + `data/`),
- `cvat_coco`: CVAT's "COCO 1.0" export (`annotations/instances_default.json` + `images/`),
- `roboflow_coco`: Roboflow's COCO export (`train/_annotations.coco.json` with the images beside
  it, likewise `valid/`).

Each builder returns a `UserDataset`: where it lies, what to configure, and the boxes it holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

WIDTH = 400  # the photographs are resized to this width (height keeps the aspect ratio)
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Box:
    """A box as the user drew it: category and pixel corners on the 400-px-wide photograph."""

    category: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def xywh(self) -> list[float]:
        """COCO's `bbox`: [x, y, width, height] in pixels."""
        return [self.x0, self.y0, self.x1 - self.x0, self.y1 - self.y0]

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


# Hand-chosen on the photographs once resized to WIDTH (astronaut 400 x 400, the others 400 x 266 or 267).
# Every box grown to a square around its centre (the crop stage's `square: pad`, margin 0)
# stays inside its photograph, so the crop can be checked against the photograph itself.
PHOTO_BOXES: dict[str, list[Box]] = {
    "astronaut": [
        Box("face", 122, 30, 232, 145),
        Box("flag", 0, 0, 72, 72),
        Box("rocket", 278, 60, 355, 195),  # the shuttle model on the shelf
        Box("patch", 102, 270, 165, 332),  # mission patch on the suit
    ],
    "chelsea": [
        Box("cat", 80, 10, 330, 250),
        Box("eye", 118, 75, 186, 130),
        Box("eye", 258, 95, 305, 147),
    ],
    "coffee": [
        Box("cup", 112, 12, 275, 200),
        Box("spoon", 212, 45, 275, 218),
    ],
    "rocket": [
        Box("rocket", 188, 78, 215, 252),
        Box("lamp", 80, 222, 108, 250),
        Box("lamp", 117, 242, 124, 249),  # 7 x 7: below min_box_side 8
    ],
}


def photo(name: str) -> Image.Image:
    """A scikit-image sample photograph (astronaut, chelsea, coffee, rocket), WIDTH px wide."""
    import skimage.data

    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    height = round(image.height * WIDTH / image.width)
    return image.resize((WIDTH, height), Image.LANCZOS)


def save_photo(name: str, path: Path) -> tuple[int, int]:
    """Write the photograph `name` as a JPEG at `path`; return its (width, height)."""
    image = photo(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=JPEG_QUALITY)
    return image.size


@dataclass
class UserDataset:
    """A dataset lying in the user's folder `root` (which the pipeline must leave untouched)."""

    root: Path
    annotations: list[Path]  # the annotation files, in the order to configure them
    images: Path | None  # `images:` to configure; None: the folder of each annotations file
    boxes: dict[str, list[Box]] = field(default_factory=dict)  # image file name -> its boxes
    paths: dict[str, Path] = field(default_factory=dict)  # image file name -> the image file

    def source(self, **extra) -> dict:
        """The block that names this dataset under the configuration's `sources:`."""
        block: dict = {
            "format": "coco",
            "annotations": (
                str(self.annotations[0])
                if len(self.annotations) == 1
                else [str(p) for p in self.annotations]
            ),
        }
        if self.images is not None:
            block["images"] = str(self.images)
        return {**block, **extra}


# --------------------------------------------------------------------------------------------
# FiftyOne: its own exporter, run in a fresh interpreter so that FiftyOne's database (and the
# mongod it starts) belong to a throw-away folder, whatever the test process imported before.

FIFTYONE_PHOTOS = ("astronaut", "chelsea", "coffee")

_FIFTYONE_EXPORT = """
import json, sys
import fiftyone as fo

spec = json.loads(sys.argv[1])
dataset = fo.Dataset(spec["name"])
try:
    samples = []
    for item in spec["samples"]:
        w, h = item["width"], item["height"]
        detections = [
            fo.Detection(label=c, bounding_box=[x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h])
            for c, x0, y0, x1, y1 in item["boxes"]
        ]
        samples.append(
            fo.Sample(filepath=item["filepath"], ground_truth=fo.Detections(detections=detections))
        )
    dataset.add_samples(samples)
    dataset.export(
        export_dir=spec["export_dir"],
        dataset_type=fo.types.COCODetectionDataset,
        label_field="ground_truth",
    )
finally:
    dataset.delete()
print("exported", len(samples))
"""


def fiftyone_coco(root: Path, scratch: Path | None = None) -> UserDataset:
    """`root/labels.json` + `root/data/*.jpg`, written by FiftyOne's COCODetectionDataset exporter.

    The photographs FiftyOne reads, and its database, go to `scratch` (beside `root` unless given).
    """
    scratch = scratch or root.parent / f"{root.name}-fiftyone"
    originals = scratch / "photos"
    samples = []
    for name in FIFTYONE_PHOTOS:
        path = originals / f"{name}.jpg"
        width, height = save_photo(name, path)
        samples.append(
            {
                "filepath": str(path.resolve()),
                "width": width,
                "height": height,
                "boxes": [[b.category, b.x0, b.y0, b.x1, b.y1] for b in PHOTO_BOXES[name]],
            }
        )
    spec = {
        "name": f"user-datasets-{uuid.uuid4().hex[:8]}",
        "export_dir": str(root),
        "samples": samples,
    }
    env = {
        **os.environ,
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "FIFTYONE_DATABASE_DIR": str((scratch / "db").resolve()),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _FIFTYONE_EXPORT, json.dumps(spec)],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"FiftyOne export failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    files = {f"{name}.jpg": name for name in FIFTYONE_PHOTOS}
    return UserDataset(
        root=root,
        annotations=[root / "labels.json"],
        images=root / "data",
        boxes={f: list(PHOTO_BOXES[name]) for f, name in files.items()},
        paths={f: root / "data" / f for f in files},
    )


# --------------------------------------------------------------------------------------------
# CVAT "COCO 1.0": annotations/instances_default.json and images/ (as a task export with images).

CVAT_PHOTOS = ("astronaut", "coffee", "rocket")


def cvat_coco(root: Path) -> UserDataset:
    """`root/annotations/instances_default.json` + `root/images/`, as CVAT exports "COCO 1.0"."""
    images_dir = root / "images"
    categories: list[str] = []
    for name in CVAT_PHOTOS:
        for box in PHOTO_BOXES[name]:
            if box.category not in categories:
                categories.append(box.category)
    images, annotations = [], []
    for image_id, name in enumerate(CVAT_PHOTOS, start=1):
        file_name = f"{name}.jpg"
        width, height = save_photo(name, images_dir / file_name)
        images.append(
            {
                "id": image_id,
                "width": width,
                "height": height,
                "file_name": file_name,
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            }
        )
        for box in PHOTO_BOXES[name]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": categories.index(box.category) + 1,
                    "segmentation": [],
                    "area": box.area,
                    "bbox": box.xywh,
                    "iscrowd": 0,
                    "attributes": {"occluded": False, "rotation": 0.0},
                }
            )
    document = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        },
        "categories": [
            {"id": i, "name": c, "supercategory": ""} for i, c in enumerate(categories, start=1)
        ],
        "images": images,
        "annotations": annotations,
    }
    path = root / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return UserDataset(
        root=root,
        annotations=[path],
        images=images_dir,
        boxes={f"{name}.jpg": list(PHOTO_BOXES[name]) for name in CVAT_PHOTOS},
        paths={f"{name}.jpg": images_dir / f"{name}.jpg" for name in CVAT_PHOTOS},
    )


# --------------------------------------------------------------------------------------------
# Roboflow COCO: one folder per split, `_annotations.coco.json` beside its images, whose names
# carry Roboflow's `.rf.<hash>`; category 0 is the project's super-name and holds no boxes.

ROBOFLOW_SPLITS = {"train": ("chelsea", "astronaut"), "valid": ("coffee", "rocket")}
ROBOFLOW_PROJECT = "household"


def roboflow_coco(root: Path) -> UserDataset:
    """`root/{train,valid}/_annotations.coco.json` with their images, as Roboflow exports COCO."""
    categories = [ROBOFLOW_PROJECT]  # id 0
    for names in ROBOFLOW_SPLITS.values():
        for name in names:
            for box in PHOTO_BOXES[name]:
                if box.category not in categories:
                    categories.append(box.category)
    result = UserDataset(root=root, annotations=[], images=None)
    for split, names in ROBOFLOW_SPLITS.items():
        folder = root / split
        images, annotations = [], []
        for image_id, name in enumerate(names):  # Roboflow counts from 0, in each split
            staged = folder / f"{name}.jpg"
            width, height = save_photo(name, staged)
            digest = hashlib.md5(staged.read_bytes()).hexdigest()
            file_name = f"{name}_jpg.rf.{digest}.jpg"
            staged.rename(folder / file_name)
            images.append(
                {
                    "id": image_id,
                    "license": 1,
                    "file_name": file_name,
                    "height": height,
                    "width": width,
                    "date_captured": "2024-05-14T09:12:31+00:00",
                }
            )
            for box in PHOTO_BOXES[name]:
                annotations.append(
                    {
                        "id": len(annotations),
                        "image_id": image_id,
                        "category_id": categories.index(box.category),
                        "bbox": box.xywh,
                        "area": box.area,
                        "segmentation": [],
                        "iscrowd": 0,
                    }
                )
            result.boxes[file_name] = list(PHOTO_BOXES[name])
            result.paths[file_name] = folder / file_name
        document = {
            "info": {
                "year": "2024",
                "version": "3",
                "description": "Exported from roboflow.com",
                "contributor": "",
                "url": f"https://public.roboflow.com/object-detection/{ROBOFLOW_PROJECT}",
                "date_created": "2024-05-14T09:12:31+00:00",
            },
            "licenses": [
                {
                    "id": 1,
                    "url": "https://creativecommons.org/licenses/by/4.0/",
                    "name": "CC BY 4.0",
                }
            ],
            "categories": [
                {"id": 0, "name": ROBOFLOW_PROJECT, "supercategory": "none"},
                *(
                    {"id": i, "name": c, "supercategory": ROBOFLOW_PROJECT}
                    for i, c in enumerate(categories)
                    if i > 0
                ),
            ],
            "images": images,
            "annotations": annotations,
        }
        path = folder / "_annotations.coco.json"
        path.write_text(json.dumps(document))
        result.annotations.append(path)
    (root / "README.roboflow.txt").write_text(
        f"\n{ROBOFLOW_PROJECT} - v3\n==============================\n\n"
        "This dataset was exported via roboflow.com\n"
    )
    (root / "README.dataset.txt").write_text(f"# {ROBOFLOW_PROJECT} > v3\n\nLicense: CC BY 4.0\n")
    return result
