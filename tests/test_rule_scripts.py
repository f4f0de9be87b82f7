"""Every rule of the workflow resolves to code when it loads (pipeline/rule_scripts.py): its
script exists, and what the script takes from pipeline/ exists, checked before any download."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline.rule_scripts import RuleCode, problems
from tests.conftest import copy_of_workflow, snakemake_command

SCRIPT = """from pathlib import Path

from pipeline import crops
from pipeline.config import CropSettings, from_dict
from pipeline.sources import coco

with job_context(snakemake) as smk:
    crops.extract_crops(Path("a"), settings=from_dict(CropSettings, {}))
    coco.read_boxes(Path("b"))
"""


def check(tmp_path: Path, text: str) -> list[str]:
    script = tmp_path / "crops_extract.py"
    script.write_text(text)
    return problems([RuleCode(name="crops_extract", writes=True, script=script)])


def test_a_script_that_takes_what_exists_passes(tmp_path):
    assert check(tmp_path, SCRIPT) == []


@pytest.mark.parametrize(
    ("wrong", "right", "said"),
    [
        ("crops.extract_crops(", "crops.extract_crop(", "uses pipeline.crops.extract_crop"),
        ("coco.read_boxes(", "coco.read_box(", "uses pipeline.sources.coco.read_box"),
        ("import CropSettings,", "import CropSetting,", "imports CropSetting from pipeline.config"),
        ("from pipeline import crops", "from pipeline import cropz", "imports cropz from pipeline"),
        ("from pipeline.sources", "from pipeline.source", "imports pipeline.source,"),
    ],
)
def test_a_name_that_does_not_exist_is_named_with_its_rule(tmp_path, wrong, right, said):
    (found,) = check(tmp_path, SCRIPT.replace(wrong, right))
    assert found.startswith("rule crops_extract: ") and said in found


def test_a_rule_without_script_or_with_a_missing_one_is_named(tmp_path):
    rules = [
        RuleCode(name="all", writes=False, script=None),  # a target: nothing to run
        RuleCode(name="crops_extract", writes=True, script=None),
        RuleCode(name="filters_apply", writes=True, script=tmp_path / "filters_apply.py"),
    ]
    assert problems(rules) == [
        "rule crops_extract: no script",
        f"rule filters_apply: its script {tmp_path / 'filters_apply.py'} does not exist",
    ]


def test_the_workflow_stops_at_load_on_a_rule_without_code(tmp_path):
    """Every rule of the workflow (the sources, the sweep twins, curation: all are declared
    whatever the config) loads; a missing script stops the dry run naming its rule."""
    copy = copy_of_workflow(tmp_path)
    command = snakemake_command(copy, "-n", "results/demo/report.html")
    command[command.index("--snakefile") + 1] = str(copy / "Snakefile")
    ok = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-3000:]
    (copy / "workflow/scripts/ffhq_boxes.py").unlink()  # a source the demo does not use
    broken = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=300)
    assert broken.returncode != 0
    assert "rule ffhq_boxes: its script" in broken.stdout + broken.stderr
