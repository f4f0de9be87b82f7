"""The names of what evaluation writes and the report shows live in pipeline/layout.py: the
rules, the evaluation stage and the report all take them from there."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.evaluate import EvalOutputs
from pipeline.io import write_json
from pipeline.layout import EVAL_FILES, FIGURE_KEYS, TRAIN_FILES, eval_outputs, train_outputs
from pipeline.report import experiment_report
from tests.conftest import snakemake, write_config


def test_evaluation_writes_what_the_layout_names():
    assert [f.name for f in dataclasses.fields(EvalOutputs)] == list(EVAL_FILES)
    assert set(FIGURE_KEYS) - set(EVAL_FILES) == {"progress"}  # the one figure training writes
    assert "progress" in TRAIN_FILES


def test_the_rules_plan_every_file_of_the_layout(tmp_path):
    write_config(tmp_path)
    planned = snakemake(tmp_path, "-n", "results/demo/report.html").stdout
    for path in [*eval_outputs("results/demo").values(), *train_outputs("results/demo").values()]:
        assert path in planned


@pytest.mark.parametrize("change", ["rename", "drop"])
def test_the_report_refuses_a_figure_it_does_not_know_or_lacks(tmp_path, change):
    figures = {key: tmp_path / f"{key}.png" for key in FIGURE_KEYS}
    if change == "rename":
        figures["curves"] = figures.pop("curve")
    else:
        del figures["nearest"]
    write_json({"step": 1}, tmp_path / "metrics.json")
    with pytest.raises(ValueError, match="missing \\['curve'\\]|missing \\['nearest'\\]"):
        experiment_report(
            "demo", metrics_path=tmp_path / "metrics.json", figures=figures, settings={},
            out=tmp_path / "report.html",
        )  # fmt: skip
