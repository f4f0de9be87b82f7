"""Curation with FiftyOne: the crops as a dataset, the App to review them, tags back as exclusions.

The dataset holds every crop with its source, box, scores and the filters' decision (`accepted`,
`reason`), so a user can sort by sharpness or filter by reason in the App. A crop tagged `reject`
there (the tag is configurable) is written by `export_exclusions` to the experiment's exclusion
list, `resources/exclusions/{exp}.txt`: a plain file to read, diff and commit; the shard stage
leaves those crops out, and nothing before it reruns.

FiftyOne is optional: without it every other stage works, and these functions say how to get it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from pipeline.io import atomic_path, write_json
from pipeline.shards import read_exclusions

log = logging.getLogger(__name__)
INSTALL = "pip install -e '.[curate]'  (FiftyOne and, on Linux x86-64, its bundled database)"
FIELDS = [
    "crop_id",
    "box_id",
    "source",
    "category",
    "image_id",
    "image_width",
    "image_height",
    "is_group",
    "is_depiction",
    "is_truncated",
    "is_occluded",
    "accepted",
    "reason",
    "detail",
    "sharpness",
    "contrast",
    "colourfulness",
    "scale",
    "crop_side",
]


def fiftyone():
    """Import FiftyOne with this project's settings (local database folder, no telemetry)."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(Path(".fiftyone/db").resolve()))
    try:
        import fiftyone as fo
    except ImportError as err:
        raise RuntimeError(f"curation needs FiftyOne, which is not installed: {INSTALL}") from err
    return fo


def _value(v):
    if isinstance(v, float) and v != v:  # NaN
        return None
    return v.item() if hasattr(v, "item") else v


def build_dataset(
    decisions_table: Path,
    *,
    crops_dir: Path,
    name: str,
    exclusions: Path | None,
    tag: str,
    record: Path,
) -> int:
    """(Re)build dataset `name` from the filter decisions; keep the tags a user already set."""
    fo = fiftyone()
    decisions = pd.read_parquet(decisions_table).sort_values("crop_id")
    kept_tags: dict[str, list[str]] = {}
    if fo.dataset_exists(name):
        old = fo.load_dataset(name)
        kept_tags = dict(zip(old.values("crop_id"), old.values("tags"), strict=True))
    excluded = read_exclusions(exclusions)
    samples = []
    for row in decisions.to_dict("records"):
        tags = set(kept_tags.get(row["crop_id"], [])) | (
            {tag} if row["crop_id"] in excluded else set()
        )
        fields = {k: _value(row[k]) for k in FIELDS if k in row}
        fields["box"] = [float(row[k]) for k in ("x0", "y0", "x1", "y1")]
        samples.append(
            fo.Sample(
                filepath=str((crops_dir / row["path"]).resolve()), tags=sorted(tags), **fields
            )
        )
    dataset = fo.Dataset(name, persistent=True, overwrite=True)
    for field in ("reason", "detail"):  # declared, so they exist even when no crop was rejected
        dataset.add_sample_field(field, fo.StringField)
    for field in (
        "is_group",
        "is_depiction",
        "is_truncated",
        "is_occluded",
    ):  # None: source has no such flag
        dataset.add_sample_field(field, fo.BooleanField)
    dataset.add_samples(samples, progress=False)
    write_json(
        {
            "dataset": name,
            "samples": len(dataset),
            "tag": tag,
            "tagged": int(sum(1 for s in samples if tag in s.tags)),
        },
        record,
    )
    log.info("FiftyOne dataset %r: %d crops (%d tagged %r)", name, len(dataset), len(excluded), tag)
    return len(dataset)


def export_exclusions(name: str, *, tag: str, exclusions: Path, record: Path) -> list[str]:
    """Write the crop ids tagged `tag` in dataset `name` to the exclusion list (if they changed)."""
    fo = fiftyone()
    if not fo.dataset_exists(name):
        raise RuntimeError(f"no FiftyOne dataset {name!r}: build it first (rule curate_dataset)")
    dataset = fo.load_dataset(name)
    ids = sorted(dataset.match_tags(tag).values("crop_id"))
    text = f"# crops tagged {tag!r} in FiftyOne dataset {name!r}; one crop_id a line\n" + "".join(
        f"{i}\n" for i in ids
    )
    if not exclusions.exists() or read_exclusions(exclusions) != set(ids):
        with atomic_path(exclusions) as tmp:
            tmp.write_text(text)
        log.info("%s: %d crops excluded", exclusions, len(ids))
    else:
        log.info("%s: unchanged (%d crops)", exclusions, len(ids))
    write_json({"dataset": name, "tag": tag, "excluded": ids}, record)
    return ids


def launch_app(name: str, port: int = 5151, address: str = "127.0.0.1") -> None:
    """Serve the App on `address:port` until interrupted."""
    fo = fiftyone()
    if not fo.dataset_exists(name):
        raise SystemExit(
            f"no FiftyOne dataset {name!r}: run snakemake results/<exp>/curate/dataset.json first"
        )
    session = fo.launch_app(fo.load_dataset(name), port=port, address=address, remote=True)
    print(f"FiftyOne App: http://{address}:{port}/  (Ctrl-C to stop)")
    session.wait(-1)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.curate", description="Review crops in the FiftyOne App."
    )
    parser.add_argument(
        "dataset",
        help="the dataset name, e.g. gan-crops-demo (see results/<exp>/curate/dataset.json)",
    )
    parser.add_argument("--port", type=int, default=5151)
    parser.add_argument(
        "--address", default="127.0.0.1", help="bind address (default: this machine only)"
    )
    args = parser.parse_args(argv)
    launch_app(args.dataset, args.port, args.address)


if __name__ == "__main__":
    main()
