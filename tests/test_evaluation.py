"""Evaluation: FID/KID, precision/recall and the memorisation check (against torch-fidelity where
it has the same metric), the Inception weights' absence and damage, and the HTML report."""

from __future__ import annotations

import base64
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from pipeline.config import EvalSettings
from pipeline.evaluate import memorisation_check
from pipeline.gan.data import load_split
from pipeline.metrics.features import pixel_features
from pipeline.metrics.fid import frechet_distance, kernel_inception_distance
from pipeline.metrics.memorisation import memorisation, nearest
from pipeline.metrics.prc import precision_recall
from pipeline.metrics.weights import WEIGHTS_NAME
from pipeline.reference import Extractor, reference_features
from pipeline.shards import write_arrays
from tests.conftest import REPO, headless

RNG = np.random.default_rng(0)


def gaussian(n: int, d: int = 64, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return RNG.normal(size=(n, d)) * scale + shift


def discs(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """uint8 images (n, 3, size, size): a disc of random colour, place and radius on a background
    of another colour, as a stand-in for a real category."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(8, size - 8, 2).tolist() + [rng.uniform(5, 10)]
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        out[i] = np.where(inside[..., None], rng.integers(0, 256, 3), rng.integers(0, 256, 3))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def shards_of(root: Path, train: torch.Tensor, holdout: torch.Tensor) -> Path:
    splits = {"train": train, "holdout": holdout}
    write_arrays(root, splits={k: v.permute(0, 2, 3, 1).numpy() for k, v in splits.items()})
    return root


# --- FID and KID -------------------------------------------------------------------------------


def test_fid_is_zero_for_a_set_against_itself_and_grows_with_noise():
    x = gaussian(400)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    fids = [frechet_distance(x, x + RNG.normal(size=x.shape) * s) for s in (0.1, 0.5, 1.0)]
    assert 0 < fids[0] < fids[1] < fids[2]


@pytest.mark.parametrize("n1,n2,d", [(300, 200, 64), (40, 30, 2048)])
def test_fid_matches_torch_fidelity(n1, n2, d):
    x, y = gaussian(n1, d), gaussian(n2, d, shift=0.2, scale=1.3)
    stats = [fid_features_to_statistics(torch.from_numpy(f)) for f in (x, y)]
    reference = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert frechet_distance(x, y) == pytest.approx(reference, rel=1e-6)


def test_kid_matches_torch_fidelity_and_is_unbiased_near_zero():
    x, y = gaussian(100), gaussian(100, shift=0.3)
    ours, _ = kernel_inception_distance(x, y, subsets=1, subset_size=100)
    theirs = kid_features_to_metric(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=1, kid_subset_size=100
    )["kernel_inception_distance_mean"]
    assert ours == pytest.approx(theirs, rel=1e-9) and ours > 0.05
    same_distribution, _ = kernel_inception_distance(gaussian(300), gaussian(300), subsets=20)
    assert abs(same_distribution) < 0.02


# --- precision and recall --------------------------------------------------------------------


def test_precision_recall_of_identical_sets_is_one_and_of_far_sets_zero():
    real = torch.from_numpy(gaussian(200))
    assert precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0}
    far = precision_recall(real, real + 100)
    assert far == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_match_torch_fidelity_and_separate_the_two_failures():
    real = torch.from_numpy(gaussian(300))
    collapsed = real[:30].repeat(10, 1) + torch.randn(300, 64) * 0.01  # realistic, few modes
    ours = precision_recall(real, collapsed)
    theirs = calculate_precision_recall_full(collapsed.double(), real.double(), 3)
    assert (ours["precision"], ours["recall"]) == pytest.approx(theirs, abs=1e-6)  # fp32 mean
    assert ours["precision"] > 0.9 and ours["recall"] < 0.3


# --- memorisation ----------------------------------------------------------------------------


def test_memorisation_flags_a_generator_that_returns_training_crops():
    train, held_out, fresh = discs(400, 1), discs(100, 2), discs(128, 3)
    f_train = pixel_features(train)
    reference = nearest(pixel_features(held_out), f_train)
    copier = nearest(pixel_features(train[torch.randperm(400)[:128]]), f_train)
    honest = nearest(pixel_features(fresh), f_train)
    copied, fair = memorisation(copier, reference), memorisation(honest, reference)
    assert copied["copies_training_data"] and copied["copy_fraction"] == 1.0
    assert not fair["copies_training_data"] and fair["copy_fraction"] < 0.15


def test_nearest_sheet_shows_the_copied_training_crop(tmp_path):
    train, held_out = discs(60, 4), discs(30, 5)
    shards = shards_of(tmp_path / "shards", train, held_out)
    s = EvalSettings(inception_weights=str(tmp_path / "none.pth"), nearest_count=4)
    ref = reference_features(shards, out_path=tmp_path / "ref.pt", settings=s, seed=0)
    assert ref.kind == "pixels" and "none.pth" in ref.note
    fake = train[[5, 17, 33, 40]]
    stored = load_split(shards, "train")
    result = memorisation_check(
        fake,
        fake_features=pixel_features(fake),
        ref=ref,
        train=stored,
        settings=s,
        sheet_png=tmp_path / "n.png",
        distances_png=tmp_path / "d.png",
    )
    assert result["copies_training_data"]
    sheet = np.asarray(Image.open(tmp_path / "n.png").convert("RGB"))
    tile, header = 96, 28
    for column in range(4):  # each pair: the sample and its nearest crop, identical pixels
        x = 6 + column * (2 * tile + 12)
        left = sheet[header : header + tile, x : x + tile]
        right = sheet[header : header + tile, x + tile + 2 : x + 2 * tile + 2]
        assert np.array_equal(left, right)
    assert Image.open(tmp_path / "d.png").size[0] > 400


# --- Inception weights -----------------------------------------------------------------------


def test_inception_fid_of_a_set_is_zero_against_itself_and_grows_with_noise(random_inception):
    extractor = Extractor.from_settings(EvalSettings(inception_weights=str(random_inception)))
    assert extractor.kind == "inception" and extractor.standard is False
    images = discs(12, 6)
    clean = extractor(images).numpy()
    assert clean.shape == (12, 2048) and clean.std() > 0
    noisy = []
    for sigma in (25, 80):
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(sigma)) * sigma
        noisy.append(extractor((images.float() + noise).clamp(0, 255).to(torch.uint8)).numpy())
    fids = [frechet_distance(clean, clean), *(frechet_distance(clean, n) for n in noisy)]
    assert fids[0] == pytest.approx(0.0, abs=1e-6 * fids[2])
    assert fids[0] < fids[1] < fids[2]


def test_missing_weights_skip_fid_with_a_message_naming_the_file(tmp_path, caplog):
    extractor = Extractor.from_settings(EvalSettings(inception_weights=str(tmp_path / "w.pth")))
    assert extractor.kind == "pixels"
    assert str(tmp_path / "w.pth") in extractor.note and WEIGHTS_NAME in extractor.note
    assert "FID and KID skipped" in caplog.text


def test_damaged_standard_weights_are_refused_naming_the_file(tmp_path):
    damaged = tmp_path / WEIGHTS_NAME
    damaged.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match=f"{WEIGHTS_NAME}: SHA-256 .* damaged"):
        Extractor.from_settings(EvalSettings(inception_weights=str(damaged)))


def test_demo_evaluation_without_weights_still_reports_everything_else(demo_run):
    import json

    metrics = json.loads((demo_run / "results/demo/metrics.json").read_text())
    assert metrics["fid"] is None and "Inception weights" in metrics["fid_note"]
    assert metrics["features"] == "pixels"
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    assert metrics["swd"] > 0
    # the tiny demo holds out 5 crops: the copy check says it cannot judge instead of guessing
    assert "too few to judge copying" in metrics["memorisation"]["note"]
    evals = [json.loads(ln) for ln in (demo_run / "results/demo/train/evals.jsonl").open()]
    assert [e["step"] for e in evals] == [0, 15, 30]  # from the untrained generator on
    assert evals[-1]["swd"] == pytest.approx(metrics["swd"])  # same crops, same latents
    # what SWD cannot see, beside it, with its real-vs-real floor
    assert metrics["colour"] > 0 and metrics["colour_real_floor"] > 0
    assert metrics["layout"] > 0 and metrics["layout_real_floor"] > 0
    assert all({"colour", "layout"} <= set(e) for e in evals)


def test_placing_inception_weights_reruns_only_the_evaluation(demo_copy, random_inception):
    from tests.conftest import TINY_DEMO, dry_run, write_config

    settings = {"evaluate": {"inception_weights": str(random_inception)}}
    write_config(demo_copy, TINY_DEMO, {"experiments": {"demo": settings}})
    assert set(dry_run(demo_copy, "results/demo/samples.png")) == {
        "evaluate_reference",
        "evaluate_experiment",
    }


# --- report ----------------------------------------------------------------------------------


def test_report_opens_in_chromium_and_shows_every_figure(demo_run, chromium, tmp_path):
    report = demo_run / "results/demo/report.html"
    page = report.read_text()
    figures = re.findall(r'<figure id="(\w+)">.*?src="data:image/(\w+);base64,([^"]+)"', page)
    assert {f[0] for f in figures} == {
        "samples",
        "interpolation",
        "progress",
        "losses",
        "curve",
        "nearest",
        "distances",
    }
    for _, kind, data in figures:  # every embedded picture decodes
        assert Image.open(io.BytesIO(base64.b64decode(data))).format.lower() == kind
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "report.png"
    browser = headless(chromium, tmp_path / "profile", 1200, 5000)
    subprocess.run([*browser, f"--screenshot={shot}", report.as_uri()], timeout=180, check=True)

    def dom_of(path: Path) -> str:
        command = [*browser, "--dump-dom", path.as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=180).stdout

    dom = dom_of(report)
    assert dom.count("<figure") == 7 and "FID and KID skipped" in dom
    assert 'class="broken"' not in dom  # every picture decoded in the browser
    damaged = tmp_path / "damaged.html"  # the same check sees a picture that does not decode
    damaged.write_text(page.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1))
    assert dom_of(damaged).count('class="broken"') == 1
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    saturated = (pixels.max(axis=2) - pixels.min(axis=2) > 60).sum()
    assert saturated > 2000  # the plots' coloured curves and bars, not just text


def test_index_compares_the_evaluated_experiments(demo_run):
    import pandas as pd

    table = pd.read_csv(demo_run / "results/experiments.csv", index_col="experiment")
    assert list(table.index) == ["demo"] and table.loc["demo", "step"] == 30
    assert 'href="demo/report.html"' in (demo_run / "results/index.html").read_text()
