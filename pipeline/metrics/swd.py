"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, progressive GAN).

A plain-torch port of `metrics/sliced_wasserstein.py` from the progressive-GAN code. For each
Laplacian-pyramid level from the full resolution down to `min_resolution`:

1. take `patches_per_image` random `patch_size` x `patch_size` patches (all channels) of every
   image as descriptors of length c * p * p;
2. normalise each set's descriptors per channel (subtract the mean, divide by the standard
   deviation over all of that set's descriptors at that level, as the reference does);
3. if the sets differ in size, subsample the larger set's descriptors to the smaller count;
4. project both sets on the same `projections` random unit directions, sort each projection and
   take the mean absolute difference of the sorted values: the level's distance, reported x1e3.

`swd_mean` is the mean over the levels. The result is deterministic for a given `seed`, and a
function of the two sets, not of the order of their images: the random directions come from a
seeded `torch.Generator`, and each image's patch positions (and the choice of descriptors kept
when subsampling) from a hash of the seed, the level and the image's own pixels. So identical or
merely reordered sets are at distance 0, while different images still get independent random
patches, as in the reference (duplicates of one image, though, share their patches). Needs no
pretrained weights; runs on whatever device the images are on (sorting uses NumPy on the CPU,
several times faster there than `torch.sort`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
_IMAGE_CHUNK = 128  # images converted to float and decomposed at a time
_PROJECTION_CHUNK = 128  # directions projected and sorted at a time (the reference's repeat size)


@dataclass(frozen=True)
class SWDSettings:
    patches_per_image: int = 128
    patch_size: int = 7
    projections: int = 512  # total random directions per level (the paper: 4 repeats x 128)
    min_resolution: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.patches_per_image < 1 or self.projections < 1 or self.patch_size < 1:
            raise ValueError("patches_per_image, patch_size and projections must be positive")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.min_resolution < max(self.patch_size, 3):
            raise ValueError(
                f"min_resolution {self.min_resolution} must be at least the patch size "
                f"{self.patch_size} (and 3)"
            )


# ----------------------------------------------------------------------------------------------
# Laplacian pyramid (matches cv2.pyrDown / cv2.pyrUp with reflect-101 borders, like the reference)


def _along(x: torch.Tensor, dim: int, start: int, stop: int | None, step: int = 1):
    index = [slice(None)] * x.ndim
    index[dim] = slice(start, stop, step)
    return x[tuple(index)]


def _down_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Binomial blur along `dim` (2 or 3), reflect-padded, keeping every other sample."""
    out = (x.shape[dim] + 1) // 2
    padded = F.pad(x, (2, 2, 0, 0) if dim == 3 else (0, 0, 2, 2), mode="reflect")
    result = None
    for k, tap in enumerate(_BINOMIAL):
        term = _along(padded, dim, k, k + 2 * out - 1, 2) * (tap / 16)
        result = term if result is None else result + term
    return result


def _up_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero insertion then binomial blur (gain 2) along `dim`, done polyphase.

    Equal to padding the zero-inserted signal reflect-wise and convolving: that puts x[1] before
    the first sample and repeats the last one after the end.
    """
    padded = torch.cat(
        [_along(x, dim, 1, 2), x, _along(x, dim, -1, None)], dim=dim
    )  # x[1], x[0..n-1], x[n-1]
    left, mid, right = (_along(padded, dim, k, padded.shape[dim] - 2 + k) for k in range(3))
    even = (left + 6 * mid + right) / 8
    odd = (mid + right) / 2
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur with the 5-tap binomial [1, 4, 6, 4, 1] / 16 filter in both directions (reflect
    padding, like cv2.pyrDown) and drop every other row and column:
    (n, c, h, w) -> (n, c, ceil(h / 2), ceil(w / 2))."""
    return _down_axis(_down_axis(x, 3), 2)


def pyr_up(x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Zero-insertion upsampling and binomial blur with gain 4 (like cv2.pyrUp):
    (n, c, h, w) -> (n, c, 2h, 2w), cropped to `size` (for odd sizes) if given."""
    up = _up_axis(_up_axis(x, 3), 2)
    if size is not None:
        up = up[:, :, : size[0], : size[1]]
    return up


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of float NCHW `images`: `levels` tensors, finest first.

    Every level but the last is a band-pass (the level minus the upsampled next-coarser one); the
    last is the low-pass residual. `reconstruct` inverts it.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"expected float images (n, c, h, w), got {images.dtype} {images.shape}")
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    pyramid, current = [], images
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 3:
            raise ValueError(f"images too small for {levels} pyramid levels")
        down = pyr_down(current)
        pyramid.append(current - pyr_up(down, current.shape[-2:]))
        current = down
    pyramid.append(current)
    return pyramid


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Invert `laplacian_pyramid`: upsample the coarsest level and add the band-passes back."""
    image = pyramid[-1]
    for level in reversed(pyramid[:-1]):
        image = pyr_up(image, level.shape[-2:]) + level
    return image


# ----------------------------------------------------------------------------------------------
# Sliced Wasserstein distance


def _generator(seed: int, *salt: int) -> torch.Generator:
    """A CPU generator seeded from `seed` and a purpose-specific salt."""
    words = np.random.SeedSequence([seed, *salt]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(words[0]) << 31 ^ int(words[1]))


def _as_nchw(images) -> torch.Tensor:
    """Torch NCHW tensors as they are; NumPy arrays are taken as NHWC and viewed as NCHW."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"expected NumPy images (n, h, w, c), got shape {images.shape}")
        images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    elif not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"expected images (n, c, h, w), got shape {tuple(images.shape)}")
    if images.shape[1] > 4:
        raise ValueError(
            f"images of shape {tuple(images.shape)} have {images.shape[1]} channels: torch "
            "tensors must be NCHW and NumPy arrays NHWC"
        )
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"expected uint8 (or float) images, got {images.dtype}")
    return images


def _level_sizes(h: int, w: int, levels: int) -> list[tuple[int, int]]:
    sizes = [(h, w)]
    for _ in range(levels - 1):
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


def _level_name(size: tuple[int, int]) -> str:
    return f"swd_{size[0]}" if size[0] == size[1] else f"swd_{size[0]}x{size[1]}"


def _image_keys(images: torch.Tensor, seed: int) -> np.ndarray:
    """A 64-bit content hash per image: equal images get equal keys (collisions are harmless).

    The pixels as float32 (so a uint8 image and its float copy agree), reduced to their top 16
    bits (sign, exponent, 7 mantissa bits: exact for 0..255), dotted with random integer weights
    in float64 small enough that every partial sum is an exact integer, so the key cannot depend
    on summation order or on where the image sits in the batch.
    """
    n, c, h, w = images.shape
    elements = c * h * w
    weight_bits = max(1, min(30, 52 - 16 - elements.bit_length()))
    rng = _generator(seed, 4, c, h, w)
    weights = torch.randint(0, 2**weight_bits, (elements,), generator=rng).to(torch.float64)
    on = images.device if images.device.type in ("cpu", "cuda") else torch.device("cpu")
    weights = weights.to(on)
    keys = []
    for start in range(0, n, _IMAGE_CHUNK):
        chunk = images[start : start + _IMAGE_CHUNK].reshape(-1, elements).to(on)
        bits = (chunk.to(torch.float32).view(torch.int32) >> 16) & 0xFFFF
        keys.append((bits.to(torch.float64) @ weights).cpu())
    return torch.cat(keys).numpy().astype(np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _patch_corners(
    keys: np.ndarray, settings: SWDSettings, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random top-left corners (n, patches), flat within a channel of a level of `size`, and a
    random priority per patch (n, patches) for subsampling.

    Drawn from each image's content key, the seed and the level, so the result does not depend
    on the order of the images and equal images (in either set) are sampled at equal places.
    """
    lh, lw = size
    p = settings.patch_size
    salt = _mix(_mix(np.uint64(settings.seed % 2**64)) ^ np.uint64(lh << 20 | lw))
    j = np.arange(settings.patches_per_image, dtype=np.uint64)
    with np.errstate(over="ignore"):
        base = _mix(keys[:, None] ^ salt) + j * np.uint64(3)
        ys = _mix(base) % np.uint64(lh - p + 1)
        xs = _mix(base + np.uint64(1)) % np.uint64(lw - p + 1)
        priority = _mix(base + np.uint64(2)) >> np.uint64(1)  # fits int64
    corners = torch.from_numpy((ys * np.uint64(lw) + xs).astype(np.int64))
    return corners, torch.from_numpy(priority.astype(np.int64))


def _descriptors(
    images: torch.Tensor, levels: int, settings: SWDSettings
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per level: normalised patch descriptors of one image set, (n * patches, c * p * p), and
    each descriptor's subsampling priority, (n * patches,).

    Images are decomposed in chunks, so only the input and the descriptors are held whole.
    """
    n, c, h, w = images.shape
    p, device = settings.patch_size, images.device
    sizes = _level_sizes(h, w, levels)
    keys = _image_keys(images, settings.seed)
    offsets, corners, priorities = [], [], []  # offsets: of a patch's pixels in one image
    for lh, lw in sizes:
        ch = torch.arange(c)[:, None, None] * (lh * lw)
        offsets.append((ch + torch.arange(p)[None, :, None] * lw + torch.arange(p)).to(device))
        corner, priority = _patch_corners(keys, settings, (lh, lw))
        corners.append(corner.to(device))
        priorities.append(priority.reshape(-1))
    found: list[list[torch.Tensor]] = [[] for _ in sizes]
    for start in range(0, n, _IMAGE_CHUNK):
        chunk = images[start : start + _IMAGE_CHUNK].to(torch.float32)
        for lod, level in enumerate(laplacian_pyramid(chunk, levels)):
            lh, lw = sizes[lod]
            image_base = torch.arange(len(chunk), device=device)[:, None] * (c * lh * lw)
            corner = image_base + corners[lod][start : start + len(chunk)]  # (b, k)
            index = corner.reshape(-1, 1, 1, 1) + offsets[lod]  # (b * k, c, p, p)
            found[lod].append(torch.take(level.contiguous(), index))
    # per-channel statistics over all of the set's descriptors at a level, summed in float64
    # so that they do not depend on the order of the images (MPS has no float64)
    wide = torch.float32 if device.type == "mps" else torch.float64
    result = []
    for parts, priority in zip(found, priorities, strict=True):
        total = sum(part.sum(dim=(0, 2, 3), dtype=wide) for part in parts)
        squares = sum(part.square().sum(dim=(0, 2, 3), dtype=wide) for part in parts)
        count = sum(len(part) for part in parts) * p * p
        mean = total / count
        std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-8)
        desc = torch.cat(parts)  # (n * k, c, p, p)
        desc = (desc - mean.to(desc.dtype)[:, None, None]) / std.to(desc.dtype)[:, None, None]
        result.append((desc.reshape(len(desc), -1), priority))
    return result


def _sorted_projections(desc: torch.Tensor, dirs: torch.Tensor):
    projected = dirs.T @ desc.T  # (directions, descriptors), rows contiguous
    if projected.device.type == "cpu":
        return np.sort(projected.numpy(), axis=1)
    return torch.sort(projected, dim=1).values


def _sliced(a: torch.Tensor, b: torch.Tensor, projections: int, rng: torch.Generator) -> float:
    """Mean |sorted(a @ d) - sorted(b @ d)| over `projections` random unit directions d."""
    total = 0.0
    for start in range(0, projections, _PROJECTION_CHUNK):
        count = min(_PROJECTION_CHUNK, projections - start)
        dirs = torch.randn(a.shape[1], count, generator=rng)
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(a.device)
        diff = _sorted_projections(a, dirs) - _sorted_projections(b, dirs)
        mean = np.abs(diff).mean() if isinstance(diff, np.ndarray) else diff.abs().mean().item()
        total += float(mean) * count
    return total / projections


def sliced_wasserstein(real, fake, settings: SWDSettings = SWDSettings()) -> dict[str, float]:
    """Sliced Wasserstein distance (x1e3) between two image sets, per Laplacian-pyramid level.

    `real` and `fake` are uint8 image batches of one resolution (at least `min_resolution`): torch
    tensors in NCHW layout, or NumPy arrays in NHWC layout (as images load). Float batches are
    accepted too and used as they are (0..255 scale, like the uint8 ones). The sets may differ in
    size; the larger set's descriptors are subsampled to the smaller count.

    Returns `{"swd_<res>": ..., ..., "swd_mean": ...}`, one key per level from the full resolution
    down to `min_resolution` (e.g. swd_64, swd_32, swd_16 for 64 px images), plus their mean.
    Raises ValueError for empty sets, mismatched image shapes or too small images.
    """
    a, b = _as_nchw(real), _as_nchw(fake)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(
            f"sliced_wasserstein needs two non-empty image sets, got {len(a)}, {len(b)}"
        )
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"image sets differ in shape (c, h, w): {tuple(a.shape[1:])} vs {tuple(b.shape[1:])}"
        )
    if a.device != b.device:
        b = b.to(a.device)
    h, w = a.shape[-2:]
    if min(h, w) < settings.min_resolution:
        raise ValueError(
            f"images of {h}x{w} px are smaller than min_resolution {settings.min_resolution}"
        )
    levels = 1
    while min(h, w) // 2**levels >= settings.min_resolution:
        levels += 1
    sizes = _level_sizes(h, w, levels)
    da, db = _descriptors(a, levels, settings), _descriptors(b, levels, settings)
    result = {}
    for size, (desc_a, keep_a), (desc_b, keep_b) in zip(sizes, da, db, strict=True):
        count = min(len(desc_a), len(desc_b))
        if len(desc_a) > count:  # keep the descriptors of lowest (random) priority
            desc_a = desc_a[torch.argsort(keep_a, stable=True)[:count].to(a.device)]
        if len(desc_b) > count:
            desc_b = desc_b[torch.argsort(keep_b, stable=True)[:count].to(a.device)]
        dirs = _generator(settings.seed, 3, *size)
        result[_level_name(size)] = _sliced(desc_a, desc_b, settings.projections, dirs) * 1e3
    result["swd_mean"] = float(np.mean(list(result.values())))
    return result
