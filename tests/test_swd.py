"""Sliced Wasserstein distance on Laplacian-pyramid patches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.metrics.swd import SWDSettings, laplacian_pyramid, reconstruct, sliced_wasserstein

FAST = SWDSettings(patches_per_image=32, projections=128)


def smooth_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 4, size // 4, generator=rng) * 255
    return (
        F.interpolate(low, size=size, mode="bilinear", align_corners=False).round().to(torch.uint8)
    )


def noisy(images: torch.Tensor, sigma: float) -> torch.Tensor:
    rng = torch.Generator().manual_seed(1)
    return (
        (images.float() + torch.randn(images.shape, generator=rng) * sigma)
        .clamp(0, 255)
        .to(torch.uint8)
    )


def test_identical_sets_are_at_distance_zero():
    images = smooth_images(128)
    result = sliced_wasserstein(images, images, FAST)
    assert set(result) == {"swd_32", "swd_16", "swd_mean"}
    assert result["swd_mean"] == pytest.approx(0.0, abs=1e-6)


def test_distance_grows_with_noise_from_the_real_vs_real_floor():
    images = smooth_images(512)
    real, other = images[:256], images[256:]  # two halves of one distribution: the floor
    distances = [
        sliced_wasserstein(real, noisy(other, s), FAST)["swd_mean"] for s in (0, 5, 20, 60)
    ]
    assert distances == sorted(distances)
    assert distances[0] > 0 and distances[-1] > 2 * distances[0]


def test_deterministic_and_symmetric():
    a, b = smooth_images(64, seed=0), smooth_images(64, seed=1)
    assert sliced_wasserstein(a, b, FAST) == sliced_wasserstein(a, b, FAST)
    assert sliced_wasserstein(a, b, FAST)["swd_mean"] == pytest.approx(
        sliced_wasserstein(b, a, FAST)["swd_mean"], rel=1e-5
    )


def test_numpy_nhwc_input_matches_torch_nchw():
    a, b = smooth_images(32, seed=0), smooth_images(32, seed=1)
    nhwc = sliced_wasserstein(a.permute(0, 2, 3, 1).numpy(), b.permute(0, 2, 3, 1).numpy(), FAST)
    assert nhwc == sliced_wasserstein(a, b, FAST)


def test_pyramid_levels_and_reconstruction():
    images = smooth_images(4, size=64).float()
    pyramid = laplacian_pyramid(images, 3)
    assert [level.shape[-1] for level in pyramid] == [64, 32, 16]
    assert torch.allclose(reconstruct(pyramid), images, atol=1e-3)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="differ"):
        sliced_wasserstein(smooth_images(4, 32), smooth_images(4, 64), FAST)
    with pytest.raises(ValueError, match="non-empty"):
        sliced_wasserstein(smooth_images(4)[:0], smooth_images(4), FAST)
    with pytest.raises(ValueError, match="min_resolution"):
        sliced_wasserstein(smooth_images(4, 8), smooth_images(4, 8), FAST)
