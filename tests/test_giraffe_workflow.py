"""giraffe128's DAG (COCO + Visual Genome + OpenImages) end to end on fixtures served on 127.0.0.1."""

from __future__ import annotations

import json

import pandas as pd
from PIL import Image

from tests.conftest import TINY_DEMO, dry_run, snakemake, write_config
from tests.test_coco_source import serve_coco
from tests.test_coco_source import settings as coco_settings
from tests.test_more_sources import serve_openimages, serve_vg


def test_giraffe128_end_to_end_on_fixtures(http_server, tmp_path):
    coco = coco_settings(serve_coco(http_server))
    vg = serve_vg(http_server)
    oi = serve_openimages(http_server)
    config = {
        "sources": {
            "coco": {
                "annotations_url": coco.annotations_url,
                "annotations_sha256": coco.annotations_sha256,
                "image_base_url": coco.image_base_url,
            },
            "visual_genome": {
                "base_url": vg.base_url,
                "image_url_prefix": vg.image_url_prefix,
                "image_base_url": vg.image_base_url,
            },
            "openimages": {
                "base_url": oi.base_url,
                "classes_file": oi.classes_file,
                "boxes_files": oi.boxes_files,
                "images_files": oi.images_files,
                "splits": list(oi.splits),
                "image_base_url": oi.image_base_url,
            },
        },
        "experiments": {
            "giraffe128": {
                "crops": {"min_box_side": 16, "max_upscale": 8},
                "train": TINY_DEMO["experiments"]["demo"]["train"],
                "evaluate": {"num_samples": 16, "grid_size": 2},
            }
        },
    }
    write_config(tmp_path, config)
    snakemake(tmp_path, "--cores", "2", "results/giraffe128/samples.png")
    results = tmp_path / "results/giraffe128"
    boxes = pd.read_parquet(results / "boxes.parquet")
    assert boxes.groupby("source").size().to_dict() == {
        "coco": 4,
        "openimages": 2,
        "visual_genome": 2,
    }
    assert set(boxes["category"]) == {"giraffe"}
    # VG image 2 is COCO image 139: COCO's box is kept, VG's dropped
    assert "visual_genome:2:21" not in set(boxes["box_id"]) and "coco:139:1" in set(boxes["box_id"])
    crops = pd.read_parquet(results / "crops.parquet")
    rejects = pd.read_parquet(results / "rejects.parquet")
    assert len(crops) == 7
    assert rejects.set_index("box_id")["reason"].to_dict() == {"coco:632:4": "crowd"}
    decisions = pd.read_parquet(results / "filters.parquet").set_index("box_id")
    assert decisions.loc["openimages:bbbb000000000002:train:4", "reason"] == "group"
    assert Image.open(results / "crops" / crops["path"][0]).size == (128, 128)
    assert json.loads((results / "metrics.json").read_text())["step"] == 30
    assert Image.open(results / "samples.png").size[0] >= 2 * 128
    # how files are fetched is not what they hold: tuning downloads reruns nothing
    write_config(tmp_path, config, {"download": {"workers": 2, "retries": 1, "timeout": 9}})
    assert dry_run(tmp_path, "results/giraffe128/samples.png") == {}
