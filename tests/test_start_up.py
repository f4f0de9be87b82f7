"""Start-up: a job that neither trains nor evaluates imports no torch, torchvision or matplotlib,
and the workflow reads without them (each costs seconds on every job and every dry run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, SCRIPTS, script_imports

HEAVY = ("torch", "torchvision", "matplotlib")
# jobs that train or measure a model, or draw plots of it: the ones that may import them
MODEL_RULES = {"train_experiment", "evaluate_reference", "evaluate_experiment", "sweep_compare"}


def heavy_imports(code: str) -> list[str]:
    """The heavy modules a fresh Python process has loaded after running `code`."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


DATA_RULES = sorted({p.stem for p in SCRIPTS.glob("*.py")} - MODEL_RULES)


def test_the_data_rules_are_most_of_the_workflow():
    assert len(DATA_RULES) >= 15 and {"crops_extract", "coco_boxes", "shards_write"} <= set(
        DATA_RULES
    )


@pytest.mark.parametrize("rule", DATA_RULES)
def test_a_data_job_imports_no_torch_nor_matplotlib(rule):
    assert "from pipeline" in script_imports(rule)
    assert heavy_imports(script_imports(rule)) == []


def test_the_check_sees_torch_where_it_is_imported():
    assert heavy_imports(script_imports("train_experiment")) != []


def test_what_the_workflow_imports_while_it_loads_needs_none_of_them():
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    imports = "\n".join(
        line for line in text.splitlines() if line.startswith(("from pipeline", "import pipeline"))
    )
    assert "pipeline" in imports
    assert heavy_imports(imports) == []
