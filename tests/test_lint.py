"""Lint and format checks, run by the test command so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BIN = Path(sys.executable).parent
SMK = sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow" / "rules").glob("*.smk")) + [
    "Snakefile"
]


@pytest.mark.parametrize(
    "cmd",
    [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "snakefmt"), "--check", *SMK],
        [sys.executable, "-m", "snakemake", "--lint", "--snakefile", "Snakefile"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt", "snakemake-lint"],
)
def test_clean(cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "--lint" in cmd:
        assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
