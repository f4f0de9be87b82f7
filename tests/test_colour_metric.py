"""The colour and layout distances see what SWD's per-channel normalisation hides."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.metrics.colour import colour_distance, colour_metrics, layout_distance
from pipeline.metrics.swd import sliced_wasserstein


def scenes(count: int, seed: int) -> torch.Tensor:
    """Sky over grass with a warm disc somewhere: colours and layout that mean something."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    images = np.zeros((count, 32, 32, 3))
    for image in images:
        sky = np.array([90, 150, 230]) + rng.normal(0, 15, 3)
        grass = np.array([60, 140, 50]) + rng.normal(0, 15, 3)
        horizon = rng.integers(12, 20)
        image[:] = np.where((yy < horizon)[..., None], sky, grass)
        cx, cy, r = rng.integers(6, 26), rng.integers(6, 26), rng.integers(3, 7)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = [220, 120, 40] + rng.normal(0, 20, 3)
        image += rng.normal(0, 6, image.shape)
    out = np.clip(images, 0, 255).astype(np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def test_washed_out_inverted_and_bgr_copies_are_far_though_swd_is_blind_to_them():
    real, other = scenes(128, 0), scenes(128, 1)
    floor = colour_distance(real, other)
    swd_floor = sliced_wasserstein(real, other)["swd_mean"]
    copies = {
        "washed out": (other.float() * 0.5 + 64).to(torch.uint8),
        "inverted": 255 - other,
        "bgr": other.flip(1),
    }
    for name, copy in copies.items():
        assert colour_distance(real, copy) > 5 * floor, name
    # what the companion is for: SWD scores the washed-out copy like the real crops
    assert sliced_wasserstein(real, copies["washed out"])["swd_mean"] < 1.2 * swd_floor


def test_an_upside_down_set_is_far_in_layout_not_in_colour():
    real, other = scenes(128, 0), scenes(128, 1)
    flipped = other.flip(2)
    assert layout_distance(real, flipped) > 5 * layout_distance(real, other)
    assert colour_distance(real, flipped) < 1.5 * colour_distance(real, other) + 0.5


def test_identical_and_reordered_sets_are_at_zero_and_floats_read_as_minus_one_to_one():
    real = scenes(64, 0)
    metrics = colour_metrics(real, real.flip(0))
    assert metrics == {"colour": 0.0, "layout": 0.0}
    as_floats = real.float() / 127.5 - 1
    assert colour_distance(real, as_floats) < 1e-3 and layout_distance(real, as_floats) < 1e-3
