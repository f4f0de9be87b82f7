"""The user's own files and folders that the config names, checked when the workflow loads.

A user's data is read, never written. Snakemake deletes and rewrites the outputs of any job it
reruns (`--forceall`, a changed setting), so a user folder must share nothing with a folder the
workflow writes: `check_user_paths` compares every `local_dir`, and every named dataset's
`annotations` and `images`, with `downloads_dir`, `results/`, `logs/`, `.snakemake/` and the
exclusion lists' folder (resolved, symbolic links followed; one inside the other, either way, or
the same) and stops naming both paths and what to do. It also refuses annotation "files" that
are folders and the same annotation file named twice for one experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Folders the workflow writes, relative to its working directory (besides downloads_dir).
WRITTEN = {
    "results/": "results",
    "logs/": "logs",
    ".snakemake/": ".snakemake",
    "resources/exclusions/ (curation's exclusion lists)": "resources/exclusions",
}


class UserPathError(ValueError):
    """A user's path that the workflow could write to, or that cannot be what the key says."""


@dataclass(frozen=True)
class UserPath:
    """A path the config names as the user's data: `setting` says where (sources.x.local_dir)."""

    setting: str
    path: Path
    folder: bool  # a folder (local_dir, images) or a file (annotations)


def annotation_list(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """A named dataset's `annotations:` (one file, or a list of them) as a list."""
    return [value] if isinstance(value, str) else list(value)


def user_paths(sources: dict) -> list[UserPath]:
    """Every local_dir, and every named COCO-format dataset's annotation files and images folder
    (by default the folder of each annotation file), as the config names them."""
    found = []
    for name, block in sources.items():
        if block.get("local_dir"):
            found.append(UserPath(f"sources.{name}.local_dir", Path(block["local_dir"]), True))
        if block.get("format") != "coco":
            continue
        files = annotation_list(block["annotations"])
        for i, file in enumerate(files):
            key = "annotations" if len(files) == 1 else f"annotations[{i}]"
            found.append(UserPath(f"sources.{name}.{key}", Path(file), False))
            if not block.get("images"):
                setting = f"sources.{name}.images (unset: the folder of {key})"
                found.append(UserPath(setting, Path(file).parent, True))
        if block.get("images"):
            found.append(UserPath(f"sources.{name}.images", Path(block["images"]), True))
    return found


def written_folders(downloads_dir: str, workdir: Path) -> dict[str, Path]:
    """The folders the workflow writes, by what the user knows them as."""
    folders = {f"downloads_dir ({downloads_dir})": Path(downloads_dir)}
    folders.update({label: Path(rel) for label, rel in WRITTEN.items()})
    return {label: _resolved(path, workdir) for label, path in folders.items()}


def _resolved(path: Path, workdir: Path) -> Path:
    return (workdir / path.expanduser()).resolve()


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def overlaps(user: UserPath, written: dict[str, Path], workdir: Path) -> list[str]:
    """Why `user` may be written by the workflow ([] when it may not be): the written folder it
    lies in, or those it contains."""
    mine = _resolved(user.path, workdir)
    named = f"{user.setting} = {user.path} ({mine})"
    for label, folder in written.items():
        if _inside(mine, folder):
            where = "is" if mine == folder else "lies inside"
            return [f"{named} {where} {label} = {folder}"]
    held = [f"{label} = {folder}" for label, folder in written.items() if _inside(folder, mine)]
    return [f"{named} contains {', '.join(held)}"] if user.folder and held else []


def _not_a_file(user: UserPath, workdir: Path) -> str | None:
    path = _resolved(user.path, workdir)
    if user.folder or not path.is_dir():
        return None
    found = sorted(p.name for p in path.glob("*.json"))[:5]
    inside = f"; JSON files in it: {', '.join(found)}" if found else "; it holds no JSON file"
    return f"{user.setting} = {user.path} is a folder: name the annotation file itself{inside}"


def _repeated(sources: dict, experiments: dict, workdir: Path) -> list[str]:
    """Annotation files that one experiment would read twice (every box twice)."""
    lines = []
    for exp, block in experiments.items():
        seen: dict[Path, str] = {}
        for name in block["sources"]:
            source = sources.get(name, {})
            if source.get("format") != "coco":
                continue
            for file in annotation_list(source["annotations"]):
                path = _resolved(Path(file), workdir)
                if path in seen:
                    lines.append(
                        f"experiment {exp!r}: {file} is named twice ({seen[path]} and "
                        f"sources.{name}.annotations): its boxes would all be cropped twice"
                    )
                seen[path] = f"sources.{name}.annotations"
    return lines


FIX = (
    "The workflow writes, and on a rerun deletes, files in those folders; your files must lie "
    "elsewhere. Move your data out of them (or set downloads_dir to another folder); if your "
    "files are in the workflow's own download layout under downloads_dir, drop the local_dir "
    "setting instead and the workflow uses them as its downloads (and may replace them)."
)


def check_user_paths(config: dict, workdir: Path) -> None:
    """Stop, naming every problem at once, when a user path overlaps a written folder, an
    annotation file is a folder, or an experiment names one annotation file twice."""
    written = written_folders(config["downloads_dir"], workdir)
    found = user_paths(config["sources"])
    shared = [line for user in found for line in overlaps(user, written, workdir)]
    other = [msg for user in found if (msg := _not_a_file(user, workdir))]
    other += _repeated(config["sources"], config["experiments"], workdir)
    lines = []
    if shared:
        lines = ["Your data and the workflow's outputs may not share folders:", *shared, FIX]
    if lines or other:
        raise UserPathError("\n".join([*lines, *other]))
