"""Safe paths: archive members and file names from annotation files stay inside their folder."""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from pipeline.io import atomic_path


class UnsafePathError(ValueError):
    """A path that would read or write outside its root folder."""


class UnsafeArchiveError(UnsafePathError):
    """An archive member that would be written outside the extraction folder."""


def safe_join(root: Path | str, relative: str) -> Path:
    """`root / relative`, refusing absolute paths, drive letters and `..` that leave `root`."""
    if not relative or "\x00" in relative:
        raise UnsafePathError(f"empty or invalid file name {relative!r}")
    if (
        PurePosixPath(relative).is_absolute()
        or PureWindowsPath(relative).drive
        or relative.startswith("\\")
    ):
        raise UnsafePathError(f"absolute file name {relative!r} (must be relative to {root})")
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafePathError(f"file name {relative!r} leaves its folder {root}")
    if not parts:
        raise UnsafePathError(f"file name {relative!r} names the folder {root} itself")
    return Path(root).joinpath(*parts)


def safe_extract(
    zip_path: Path, dest_dir: Path, members: Iterable[str] | None = None
) -> list[Path]:
    """Extract `members` (default all files) of a zip into `dest_dir`; returns the file paths.

    Members with absolute or escaping names, and symbolic links, are refused before anything is
    written. Each file goes to a temporary name and is renamed; a member already extracted with the
    same size is kept.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{zip_path}: not a readable zip archive: {err}") from err
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        wanted = list(infos) if members is None else list(members)
        missing = [m for m in wanted if m not in infos]
        if missing:
            raise ValueError(f"{zip_path}: has no member(s) {missing}")
        plan = [(infos[name], _member_target(zip_path, dest_dir, infos[name])) for name in wanted]
        written = []
        for info, target in plan:
            if target is None:
                continue
            if not (target.is_file() and target.stat().st_size == info.file_size):
                _extract_one(archive, info, target, zip_path)
            written.append(target)
    return written


def _member_target(zip_path: Path, dest_dir: Path, info: zipfile.ZipInfo) -> Path | None:
    """Where a member goes (None for folders); UnsafeArchiveError for links and escapes."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchiveError(f"{zip_path}: member {name!r} is a symbolic link")
    if info.is_dir() and not PurePosixPath(name.replace("\\", "/")).parts:
        return None  # "./": the folder itself
    try:
        target = safe_join(dest_dir, name)
    except UnsafePathError as err:
        raise UnsafeArchiveError(f"{zip_path}: member {name!r}: {err}") from err
    return None if info.is_dir() else target


def _extract_one(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, zip_path: Path
) -> None:
    try:
        with atomic_path(target) as tmp, archive.open(info) as source, open(tmp, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{zip_path}: member {info.filename!r} is damaged: {err}") from err
