"""Is a downloaded image whole? Checks for image files that come without a checksum.

A fresh download must decode (`decode_error`); a file already present gets a cheap structural
check (`image_damage`: a JPEG ends with its EOI marker, a PNG with its IEND chunk) so that reruns
over thousands of images stay fast. Damaged bytes are moved aside to `{file}.corrupt`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)
JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
JPEG_PADDING = b"\x00\t\n\r "  # bytes some writers leave after the EOI marker
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk with its CRC
TAIL = 4096  # bytes read from the end of a present image for the structural check


def move_aside(source: Path, dest: Path) -> Path:
    """Move the damaged bytes at `source` to `{dest}.corrupt` (replacing an older one)."""
    corrupt = dest.with_name(dest.name + ".corrupt")
    os.replace(source, corrupt)
    return corrupt


def decode_error(path: Path) -> str:
    """Why `path` does not decode as an image ('' if it does).

    JPEG is decoded at 1/8 scale (`draft`): libjpeg still reads all entropy-coded data, so a
    truncated file fails, at a fraction of the cost of a full decode. Other formats: full load.
    """
    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft(None, (max(image.width // 8, 1), max(image.height // 8, 1)))
            image.load()
    except FileNotFoundError:
        raise
    except Image.DecompressionBombError:
        return ""  # refused by Pillow's size policy, not damaged: fetching it again cannot help
    except Exception as err:  # whatever a decoder raises on bad bytes
        return str(err) or type(err).__name__
    return ""


def structure_error(path: Path) -> str:
    """Why a present image looks damaged ('' if it looks whole), without decoding it: a JPEG
    must end with its EOI marker (padding may follow), a PNG with its IEND chunk; any other
    format gets Pillow's `verify()`."""
    with open(path, "rb") as handle:
        head = handle.read(len(PNG_SIGNATURE))
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(size - TAIL, 0))
        tail = handle.read()
    if head.startswith(JPEG_SOI):
        ok = tail.rstrip(JPEG_PADDING).endswith(JPEG_EOI)
        return "" if ok else "JPEG does not end with its EOI marker (truncated?)"
    if head.startswith(PNG_SIGNATURE):
        ok = tail.endswith(PNG_IEND)
        return "" if ok else "PNG does not end with its IEND chunk (truncated?)"
    try:
        with Image.open(path) as image:
            image.verify()
    except Image.DecompressionBombError:
        return ""
    except Exception as err:
        return f"not a readable image: {str(err) or type(err).__name__}"
    return ""


def image_damage(path: Path) -> str:
    """Why the image at `path` is damaged ('' if it is fine). Only a file that fails the cheap
    structural check is decoded: one that decodes anyway (data after a JPEG's EOI, a PNG
    without IEND) was accepted when it arrived, and must not be fetched again on every run."""
    problem = structure_error(path)
    if problem and not decode_error(path):
        log.debug("%s: %s, but it decodes: kept", path, problem)
        return ""
    return problem
