"""Curation: FiftyOne dataset of the demo crops, tags back as exclusions, the App in a browser."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SCRIPTS, dry_run, headless, script_imports, snakemake

pytest.importorskip("fiftyone", reason="curation needs FiftyOne: pip install -e '.[curate]'")
DATASET = "gan-crops-demo"
# the tests build the same FiftyOne dataset name: on one pytest-xdist worker, one at a time
pytestmark = pytest.mark.xdist_group("fiftyone")
ENV = {**os.environ, "FIFTYONE_DO_NOT_TRACK": "true", "FIFTYONE_DATABASE_VALIDATION": "false"}


def in_workdir(workdir: Path, code: str) -> str:
    """Run Python in `workdir` (where the workflow's FiftyOne database lives); return stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


TAG_THREE = f"""
import json
from pipeline.curate import fiftyone
fo = fiftyone()
dataset = fo.load_dataset({DATASET!r})
view = dataset.match({{"accepted": True}}).sort_by("crop_id").limit(3)
view.tag_samples("reject")
print(json.dumps(sorted(view.values("crop_id"))))
"""


def test_tags_set_in_fiftyone_become_exclusions_and_rerun_only_shards_and_after(demo_copy):
    snakemake(demo_copy, "--cores", "1", "results/demo/curate/dataset.json")
    record = json.loads((demo_copy / "results/demo/curate/dataset.json").read_text())
    decisions = pd.read_parquet(demo_copy / "results/demo/filters.parquet")
    assert record["samples"] == len(decisions) and record["tagged"] == 0
    fields = in_workdir(
        demo_copy,
        f"from pipeline.curate import fiftyone; fo = fiftyone(); "
        f"print(sorted(fo.load_dataset({DATASET!r}).get_field_schema()))",
    )
    for field in ("accepted", "reason", "sharpness", "source", "box", "is_truncated"):
        assert f"'{field}'" in fields

    tagged = json.loads(in_workdir(demo_copy, TAG_THREE))
    snakemake(
        demo_copy,
        "--cores",
        "1",
        "--forcerun",
        "curate_export",
        "results/demo/curate/exported.json",
    )
    exclusions = demo_copy / "resources/exclusions/demo.txt"
    assert [ln for ln in exclusions.read_text().splitlines() if not ln.startswith("#")] == tagged

    assert set(dry_run(demo_copy, "results/demo/samples.png")) == {
        "shards_write",
        "train_experiment",
        "evaluate_reference",
        "evaluate_experiment",
    }
    snakemake(demo_copy, "--cores", "2", "results/demo/shards")  # the rest: planned above
    index = pd.read_parquet(demo_copy / "results/demo/shards/index.parquet")
    assert not set(tagged) & set(index["crop_id"])

    snakemake(demo_copy, "--cores", "1", "results/demo/curate/dataset.json")  # rebuilt: tags kept
    assert json.loads((demo_copy / "results/demo/curate/dataset.json").read_text())["tagged"] == 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def test_app_shows_the_dataset_in_a_browser(demo_copy, chromium):
    snakemake(demo_copy, "--cores", "1", "results/demo/curate/dataset.json")
    port = free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "pipeline.curate", DATASET, "--port", str(port)],
        cwd=demo_copy,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    try:
        wait_for_port(port, 120)
        browser = headless(chromium, demo_copy / "chromium")
        url = f"http://127.0.0.1:{port}/datasets/{DATASET}"
        shot = artifacts / "fiftyone_app.png"
        subprocess.run(
            [*browser, f"--screenshot={shot}", url], capture_output=True, timeout=180, check=True
        )
        dom = subprocess.run(
            [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=180
        ).stdout
        (artifacts / "fiftyone_app.html").write_text(dom)
    finally:
        os.killpg(app.pid, 15)
        app.wait(60)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert DATASET in dom


def test_without_fiftyone_curation_says_how_to_install_it(tmp_path):
    every_script_import = "\n".join(script_imports(p.stem) for p in sorted(SCRIPTS.glob("*.py")))
    code = (
        "import sys; sys.modules['fiftyone'] = None\n"
        f"{every_script_import}  # every rule's script imports without FiftyOne\n"
        "from pipeline.curate import fiftyone\n"
        "try:\n    fiftyone()\nexcept RuntimeError as err:\n    print(err)\n"
    )
    assert "pip install -e '.[curate]'" in in_workdir(tmp_path, code)
