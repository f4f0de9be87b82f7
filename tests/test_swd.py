"""Sliced Wasserstein distance on Laplacian-pyramid patches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.metrics.swd import (
    SWDSettings,
    laplacian_pyramid,
    pyr_down,
    reconstruct,
    sliced_wasserstein,
)

FAST = SWDSettings(patches_per_image=32, projections=128)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small tensor ops: one thread is as fast, and far faster when other jobs share the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smooth_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 NCHW images of smooth random colour patterns (noise upsampled 8x)."""
    rng = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 8, size // 8, generator=rng) * 255
    up = F.interpolate(low, size=size, mode="bicubic", align_corners=False)
    return up.round().clamp(0, 255).to(torch.uint8)


def noisy(images: torch.Tensor, sigma: float) -> torch.Tensor:
    rng = torch.Generator().manual_seed(1)
    noise = torch.randn(images.shape, generator=rng) * sigma
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def halves() -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint sets of 512 images from one distribution."""
    images = smooth_images(1024)
    return images[:512], images[512:]


def test_identical_sets_are_at_distance_zero():
    images = smooth_images(128)
    result = sliced_wasserstein(images, images.clone(), FAST)
    assert set(result) == {"swd_32", "swd_16", "swd_mean"}
    assert all(value < 1e-6 for value in result.values())


def test_a_shuffled_set_is_at_distance_zero(halves):
    real, _ = halves
    shuffled = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(3))]
    assert sliced_wasserstein(real, shuffled, FAST)["swd_mean"] < 1e-3


def test_distance_grows_with_noise_above_the_real_vs_real_floor(halves):
    real, other = halves
    settings = SWDSettings(patches_per_image=64, projections=128)
    floor = sliced_wasserstein(real, other, settings)
    noised = [sliced_wasserstein(real, noisy(other, s), settings) for s in (5, 20, 60)]
    for key in ("swd_mean", "swd_32"):  # the 16 px low-pass residual barely sees the noise
        values = [floor[key]] + [result[key] for result in noised]
        assert values == sorted(values), (key, values)
    assert 0 < floor["swd_mean"] < 0.3 * noised[-1]["swd_mean"]
    assert floor["swd_32"] < 0.15 * noised[-1]["swd_32"]


def test_deterministic_for_a_seed_and_varies_with_it():
    a, b = smooth_images(64, seed=0), smooth_images(64, seed=1)
    first = sliced_wasserstein(a, b, FAST)
    assert sliced_wasserstein(a, b, FAST) == first
    other_seed = sliced_wasserstein(
        a, b, SWDSettings(patches_per_image=32, projections=128, seed=1)
    )
    assert other_seed != first
    assert other_seed["swd_mean"] == pytest.approx(first["swd_mean"], rel=0.5)


def test_symmetric():
    a, b = smooth_images(64, seed=0), noisy(smooth_images(64, seed=1), 20)
    ab, ba = sliced_wasserstein(a, b, FAST), sliced_wasserstein(b, a, FAST)
    for key in ab:
        assert ab[key] == pytest.approx(ba[key], rel=1e-5)


def test_unequal_set_sizes_are_subsampled_independently_of_order(halves):
    real, other = halves
    result = sliced_wasserstein(real, other[:200], FAST)
    assert sliced_wasserstein(other[:200], real, FAST) == pytest.approx(result, rel=1e-5)
    reordered = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(5))]
    assert sliced_wasserstein(reordered, other[:200], FAST) == pytest.approx(result, rel=1e-5)
    assert result["swd_mean"] < 0.5 * sliced_wasserstein(real, noisy(other, 60), FAST)["swd_mean"]


def test_numpy_nhwc_input_matches_torch_nchw():
    a, b = smooth_images(32, seed=0), smooth_images(32, seed=1)
    nhwc = sliced_wasserstein(a.permute(0, 2, 3, 1).numpy(), b.permute(0, 2, 3, 1).numpy(), FAST)
    assert nhwc == sliced_wasserstein(a, b, FAST)


def test_float_input_matches_uint8():
    a, b = smooth_images(32, seed=0), smooth_images(32, seed=1)
    assert sliced_wasserstein(a.float(), b.double(), FAST) == sliced_wasserstein(a, b, FAST)
    assert sliced_wasserstein(a, a.float(), FAST)["swd_mean"] < 1e-6


def test_levels_follow_the_resolution():
    a, b = smooth_images(8, size=64, seed=0), smooth_images(8, size=64, seed=1)
    assert set(sliced_wasserstein(a, b, FAST)) == {"swd_64", "swd_32", "swd_16", "swd_mean"}
    small = SWDSettings(patches_per_image=8, projections=16, min_resolution=32)
    assert set(sliced_wasserstein(a, b, small)) == {"swd_64", "swd_32", "swd_mean"}
    gray = smooth_images(8, size=16)[:, :1]
    assert set(sliced_wasserstein(gray, gray, FAST)) == {"swd_16", "swd_mean"}


def test_pyramid_shapes_and_reconstruction():
    images = smooth_images(4, size=32).float()
    assert [level.shape for level in laplacian_pyramid(images, 2)] == [
        (4, 3, 32, 32),
        (4, 3, 16, 16),
    ]
    noise = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    pyramid = laplacian_pyramid(noise, 3)
    assert [level.shape[-1] for level in pyramid] == [64, 32, 16]
    assert torch.allclose(reconstruct(pyramid), noise, rtol=0, atol=1e-4)
    # the band-pass levels of a constant image vanish, the residual keeps its value
    flat = torch.full((1, 1, 32, 32), 7.0)
    bands = laplacian_pyramid(flat, 2)
    assert bands[0].abs().max() < 1e-5 and torch.allclose(bands[1], torch.full((1, 1, 16, 16), 7.0))
    assert torch.allclose(pyr_down(flat), bands[1])


def test_odd_sizes_reconstruct():
    images = torch.rand(1, 3, 33, 35, generator=torch.Generator().manual_seed(0)) * 255
    pyramid = laplacian_pyramid(images, 3)
    assert [tuple(level.shape[-2:]) for level in pyramid] == [(33, 35), (17, 18), (9, 9)]
    assert torch.allclose(reconstruct(pyramid), images, rtol=0, atol=1e-4)
    assert set(sliced_wasserstein(images.to(torch.uint8), images.to(torch.uint8), FAST)) == {
        "swd_33x35",
        "swd_17x18",
        "swd_mean",
    }


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="differ"):
        sliced_wasserstein(smooth_images(4, 32), smooth_images(4, 64), FAST)
    with pytest.raises(ValueError, match="differ"):
        sliced_wasserstein(smooth_images(4), smooth_images(4)[:, :1], FAST)
    with pytest.raises(ValueError, match="non-empty"):
        sliced_wasserstein(smooth_images(4)[:0], smooth_images(4), FAST)
    with pytest.raises(ValueError, match="min_resolution"):
        sliced_wasserstein(smooth_images(4, 8), smooth_images(4, 8), FAST)
    with pytest.raises(ValueError, match="NHWC"):  # a NHWC tensor passed as NCHW
        nhwc = smooth_images(4).permute(0, 2, 3, 1)
        sliced_wasserstein(nhwc, nhwc, FAST)
    with pytest.raises(ValueError, match="min_resolution"):
        SWDSettings(min_resolution=4)
    with pytest.raises(ValueError, match="seed"):
        SWDSettings(seed=-1)
