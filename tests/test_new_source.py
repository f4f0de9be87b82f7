"""Adding a source is one module, one rule file, its rule's script and one schema block: a toy
source added that way to a copy of the project runs through the workflow to shards, and nothing
else is edited (the workflow finds its rule file, its download rules and its name)."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from tests.conftest import copy_of_workflow, snakemake_command

pytestmark = pytest.mark.slow

MODULE = '''"""Toy: a CSV of boxes (image, x0, y0, x1, y1, label) beside its images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from pipeline.boxes import canonical_category, normalise
from pipeline.records import rejects_frame


def toy_boxes(table: Path, *, categories: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for i, row in pd.read_csv(table).iterrows():
        category = canonical_category(row["label"])
        if category not in categories:
            continue
        path = Path(table).parent / row["image"]
        with Image.open(path) as image:
            width, height = image.size
        rows.append({
            "box_id": f"toy:{i}", "source": "toy", "image_id": row["image"],
            "image_path": str(path), "image_url": "", "image_width": width,
            "image_height": height, "category": category, "x0": row["x0"], "y0": row["y0"],
            "x1": row["x1"], "y1": row["y1"], "split": "train",
        })
    return normalise(rows), rejects_frame([])
'''
RULES = """rule toy_boxes:
    input:
        table=config["sources"]["toy"]["table"],
    output:
        boxes="results/{exp}/sources/toy.parquet",
        rejects=source_rejects("toy"),
    log:
        "logs/toy_boxes/{exp}.log",
    benchmark:
        "logs/toy_boxes/{exp}.benchmark.tsv"
    resources:
        mem_mb=1000,
    params:
        categories=exp_setting("categories"),
    script:
        "../../scripts/toy_boxes.py"
"""
SCRIPT = '''"""toy_boxes (rules/sources/toy.smk): the toy source's boxes."""

from pathlib import Path

from pipeline.io import write_parquet
from pipeline.job_context import job_context
from pipeline.sources import toy

with job_context(snakemake) as smk:  # noqa: F821
    boxes, rejects = toy.toy_boxes(Path(smk.input.table), categories=tuple(smk.params.categories))
    write_parquet(boxes, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)
'''
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "table": {"type": "string", "default": ""},
        "exif": {"$ref": "#/$defs/exif", "default": "ignore"},
    },
}


def toy_dataset(folder):
    """Twelve photos-like images (noise and a coloured square), a box each, two labels."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        pixels[20:76, 30:86] = rng.integers(0, 255, 3, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
        rows.append({"image": f"{i}.png", "x0": 30, "y0": 20, "x1": 86, "y1": 76,
                     "label": "Square" if i % 4 else "Other"})  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "boxes.csv", index=False)
    return folder / "boxes.csv"


def test_a_new_source_is_a_module_a_rule_file_a_script_and_a_schema_block(tmp_path):
    copy = copy_of_workflow(tmp_path, package=True)
    (copy / "pipeline/sources/toy.py").write_text(MODULE)
    (copy / "workflow/rules/sources/toy.smk").write_text(RULES)
    (copy / "workflow/scripts/toy_boxes.py").write_text(SCRIPT)
    schema_path = copy / "config/schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    schema["$defs"]["toy"] = SCHEMA
    schema["properties"]["sources"]["properties"]["toy"] = {"$ref": "#/$defs/toy", "default": {}}
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
    # the user's side: a config block for the source and an experiment that uses it
    config = yaml.safe_load((copy / "config/config.yaml").read_text())
    config["sources"]["toy"] = {"table": str(toy_dataset(tmp_path / "toy"))}
    config["experiments"] = {
        "toyexp": {"sources": ["toy"], "categories": ["square"], "image_size": 32,
                   "shards": {"holdout_fraction": 0.0}, "filters": {"duplicate_distance": 0}}
    }  # fmt: skip
    (copy / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    command = snakemake_command(copy, "--cores", "2", "results/toyexp/shards")
    command[command.index("--snakefile") + 1] = str(copy / "Snakefile")
    env = {**os.environ, "PYTHONPATH": str(copy)}
    proc = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    boxes = pd.read_parquet(copy / "results/toyexp/boxes.parquet")
    assert sorted(boxes["box_id"]) == sorted(f"toy:{i}" for i in range(12) if i % 4)
    manifest = yaml.safe_load((copy / "results/toyexp/shards/manifest.json").read_text())
    assert manifest["counts"]["train"] == 9
