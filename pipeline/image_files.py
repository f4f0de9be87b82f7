"""Image files as the boxes see them: EXIF orientation, pixel modes, size limits.

Boxes refer to an image either as stored or as displayed (its EXIF orientation applied, as
browsers, annotation tools and `PIL.ImageOps.exif_transpose` show it); each source says which
with its `exif` setting (`apply` / `ignore`; docs/sources.md). `open_reduced` decodes an image
that way, at reduced scale where the crops allow; `header_size` reads the size the same way
from the file's header alone.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ORIENTATION = 0x0112  # the EXIF orientation tag
# The transpose that shows a stored image as displayed, for each EXIF orientation (2 to 8), as
# PIL.ImageOps.exif_transpose and browsers do; 5 to 8 swap width and height.
EXIF_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SIDE_SWAPS = {5, 6, 7, 8}
EXIF_CHOICES = ("apply", "ignore")
MAX_IMAGE_PIXELS = 178_956_970  # Pillow's own limit (2 x its MAX_IMAGE_PIXELS): crops setting
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}  # greyscale; older Pillow reads PNG as I
ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
WHITE = (255, 255, 255, 255)


class ImageTooLargeError(ValueError):
    """More pixels than crops.max_image_pixels (Pillow's decompression-bomb guard, as a setting)."""


# what decoding a broken or hostile file raises (Image.open turns unknown formats into OSError)
DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,  # raised only where warnings are errors
    ImageTooLargeError,
)


def orientation(image: Image.Image) -> int:
    """The image's EXIF orientation (1, upright as stored, when absent or not 1 to 8)."""
    value = image.getexif().get(ORIENTATION)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def turn_for(image: Image.Image, exif: str) -> int:
    """The EXIF orientation the boxes see `image` under: its own (apply) or none (ignore)."""
    return orientation(image) if exif == "apply" else 1


def displayed_size(size: tuple[int, int], turn: int) -> tuple[int, int]:
    """The size of an image stored at `size` as shown under EXIF orientation `turn`."""
    return (size[1], size[0]) if turn in SIDE_SWAPS else size


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB image of `image`'s pixels (itself, loaded, when it is RGB already), whatever
    mode the file holds.

    16-bit greyscale is scaled by 1/257 (Pillow's own conversion clips all above 255 to white).
    Transparent pixels (alpha channel, transparent palette entry or colour key) are composited
    over white: the colour stored under them is arbitrary (often black), and white, the usual
    page background, keeps crops deterministic. CMYK is converted without its ICC profile."""
    if image.mode in SIXTEEN_BIT:
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64) / 257), 0, 255)
        return Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    if image.mode == "RGB":  # most photos: decoded as they are, no copy
        image.load()
        return image
    return image.convert("RGB")


@dataclass(frozen=True)
class Decoded:
    """An image decoded for cropping: its pixels (maybe reduced) as the boxes see them, its full
    size as the boxes see it, its stored size, its EXIF orientation and the one applied (1: none)."""

    image: Image.Image
    size: tuple[int, int]
    stored: tuple[int, int]
    orientation: int
    turn: int


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    """Image.open with the pixel limit of the crop settings in place of Pillow's global one."""
    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # checked below, naming the setting
    try:
        image = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    if max_pixels is not None and image.width * image.height > max_pixels:
        image.close()
        raise ImageTooLargeError(
            f"{image.width}x{image.height} = {image.width * image.height} pixels, more than "
            f"crops.max_image_pixels ({max_pixels}); raise it to crop this image"
        )
    return image


def open_reduced(
    path: Path,
    *,
    width: int,
    height: int,
    scale: float,
    draft: bool,
    exif: str = "apply",
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Decoded:
    """Decode an image as RGB, as displayed (`exif: apply`: its EXIF orientation applied, every
    orientation 2 to 8) or as stored (`exif: ignore`).

    JPEGs are decoded at reduced scale when `scale` < 0.5 allows it: `width` x `height` is the
    size the boxes refer to, and libjpeg reduces the stored pixels, so the target is turned back
    to the stored orientation first."""
    if exif not in EXIF_CHOICES:
        raise ValueError(f"exif must be one of {EXIF_CHOICES}, got {exif!r}")
    with _open(path, max_pixels) as image:
        found, turn = orientation(image), turn_for(image, exif)
        stored = image.size
        if draft and image.format == "JPEG" and scale < 0.5:
            w, h = displayed_size((width, height), turn)
            image.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
        rgb = to_rgb(image)
    shown = rgb if turn == 1 else rgb.transpose(EXIF_TURNS[turn])
    return Decoded(shown, displayed_size(stored, turn), stored, found, turn)


def header_size(path: Path, exif: str) -> tuple[int, int]:
    """The size of the image at `path` as the boxes see it, from its header (no decoding)."""
    with _open(path, None) as image:
        return displayed_size(image.size, turn_for(image, exif))
