"""Adapters of the report rules (workflow/rules/evaluate.smk): one self-contained HTML page per
experiment (and per sweep run), and the index comparing experiments. No torch, no matplotlib."""

from __future__ import annotations

from pathlib import Path

from pipeline import report


def report_experiment(smk) -> None:
    figures = {k: Path(v) for k, v in smk.input.items() if k != "metrics"}
    report.experiment_report(
        smk.wildcards.exp,
        Path(smk.input.metrics),
        figures,
        dict(smk.params.settings),
        Path(smk.output.report),
    )


def report_index(smk) -> None:
    report.experiments_index(
        [Path(p) for p in smk.input.metrics], Path(smk.output.html), Path(smk.output.csv)
    )
