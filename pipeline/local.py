"""Files in a folder the user points at (`local_dir`): read, checked, never written.

Nothing here writes, moves or deletes: a file whose checksum differs from the published one (a
copy from another mirror, a re-zipped archive) is reported with what was expected and found, and
then used or refused as the config's `local_checksum_mismatch` says (`use` / `refuse`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.io import file_digest

log = logging.getLogger(__name__)
MISMATCH_CHOICES = ("refuse", "use")


class LocalFileError(ValueError):
    """A local file that is missing or was refused; the message names it."""


def mismatch(path: Path, md5: str | None = None, size: int | None = None) -> str:
    """Why `path` differs from its published size or MD5 ('' if it does not)."""
    found_size = path.stat().st_size
    if size is not None and found_size != size:
        return f"{path}: size differs: expected {size} bytes, found {found_size}"
    if md5:
        found = file_digest(path, "md5")
        if found.lower() != md5.lower():
            return f"{path}: md5 differs: expected {md5}, found {found}"
    return ""


def local_file(
    path: Path, md5: str | None, on_mismatch: str, label: str, size: int | None = None
) -> Path:
    """`path` if it is there and matches (or a mismatch is to be used); else LocalFileError."""
    if on_mismatch not in MISMATCH_CHOICES:
        raise ValueError(f"local_checksum_mismatch must be one of {MISMATCH_CHOICES}")
    if not path.is_file():
        raise LocalFileError(f"{label}: {path} not found in local_dir")
    differs = mismatch(path, md5, size)
    if differs and on_mismatch == "refuse":
        raise LocalFileError(
            f"{label}: {differs}. The file was left as it is. If it is a good copy (another "
            "mirror, re-packed), set local_checksum_mismatch: use in the config."
        )
    if differs:
        log.warning("%s: %s; used anyway (local_checksum_mismatch: use)", label, differs)
    return path
