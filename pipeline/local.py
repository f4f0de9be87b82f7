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


def problem(
    path: Path, md5: str | None, on_mismatch: str, size: int | None = None
) -> tuple[str, str] | None:
    """Why `path` may not be used, as (reason, message): `missing_image`, or `checksum_mismatch`
    when it differs and mismatches are refused; None when it may (a used mismatch is logged)."""
    if on_mismatch not in MISMATCH_CHOICES:
        raise ValueError(f"local_checksum_mismatch must be one of {MISMATCH_CHOICES}")
    if not path.is_file():
        return "missing_image", f"{path}: file not found in local_dir"
    differs = mismatch(path, md5, size)
    if differs and on_mismatch == "refuse":
        return "checksum_mismatch", differs
    if differs:
        log.warning("%s; used anyway (local_checksum_mismatch: use)", differs)
    return None


def local_file(
    path: Path, md5: str | None, on_mismatch: str, label: str, size: int | None = None
) -> Path:
    """`path` if it is there and matches (or a mismatch is to be used); else LocalFileError."""
    found = problem(path, md5, on_mismatch, size)
    if found is None:
        return path
    reason, message = found
    hint = (
        ". The file was left as it is. If it is a good copy (another mirror, re-packed), set "
        "local_checksum_mismatch: use in the config."
        if reason == "checksum_mismatch"
        else ""
    )
    raise LocalFileError(f"{label}: {message}{hint}")
