"""FID and KID through the workflow: with an Inception weights file (random weights saved in the
standard file's format: the real file cannot be fetched here; such numbers are flagged as not
comparable with papers), a sweep's runs get fid, kid and their real-vs-real floors in
metrics.json, the reports show them, and the sweep ranks its runs by fid."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import REPO, TINY_DEMO, snakemake, write_config

pytestmark = pytest.mark.slow
RUNS = ("lr_d-0.0002", "lr_d-5e-05")


def test_a_sweep_ranked_by_fid_with_floors_in_every_metrics_file(demo_copy, random_inception):
    fid_sweep = {
        "experiments": {
            "demo": {
                # held-out crops enough for the real-vs-real floors (at least 16)
                "shards": {"holdout_fraction": 0.3},
                # 32 samples and 32 reference crops: Inception on CPU is most of the test's time
                "evaluate": {
                    "inception_weights": str(random_inception),
                    "num_samples": 32,
                    "reference_images": 32,
                },
                "sweep": {"grid": {"lr_d": [2e-4, 5e-5]}, "metric": "fid"},
            }
        }
    }
    write_config(demo_copy, TINY_DEMO, fid_sweep)
    for name in ("samples.png", "metrics.json", "report.html"):  # the plain run's results
        (demo_copy / "results/demo" / name).unlink()
    snakemake(demo_copy, "--cores", "2", "results/demo/report.html")
    results = demo_copy / "results/demo"
    runs = {r: json.loads((results / f"runs/{r}/metrics.json").read_text()) for r in RUNS}
    for run, m in runs.items():
        assert m["features"] == "inception" and m["standard_weights"] is False, run
        assert m["fid"] > 0 and m["kid"] is not None, run
        assert m["fid_real_floor"] > 0 and m["kid_real_floor"] is not None, run
        assert m["fid"] > m["fid_real_floor"], run  # 30 steps: far from the data
    table = pd.read_csv(results / "runs/comparison.csv", index_col="run")
    best = min(RUNS, key=lambda r: runs[r]["fid"])
    assert table.loc[best, "rank"] == 1 and list(table["fid"]) == sorted(table["fid"])
    assert json.loads((results / "metrics.json").read_text())["run"] == best
    artifacts = REPO / "test-artifacts"  # kept for a look: the numbers this run produced
    artifacts.mkdir(exist_ok=True)
    (artifacts / "fid_metrics.json").write_text((results / "metrics.json").read_text())
    page = (results / f"runs/{best}/report.html").read_text()
    assert "FID floor" in page and f"<td>{runs[best]['fid']:.4g}</td>" in page
    assert f"<td>{runs[best]['fid_real_floor']:.4g}</td>" in page
    assert "not comparable with papers" in page and "FID and KID skipped" not in page
