"""Where the FID Inception weights live (no torch import: the workflow reads this at plan time).

The weights are torch-fidelity's port of the TensorFlow FID graph. They are never downloaded by
the pipeline: a user puts the file in the torch hub cache (where torch-fidelity would download it)
or names it in `evaluate.inception_weights`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
WEIGHTS_NAME = WEIGHTS_URL.rsplit("/", 1)[1]
WEIGHTS_SHA256_PREFIX = "6726825d"  # torch hub's convention: the name ends in the SHA-256's start


def cached_weights_path() -> Path:
    """Where torch hub keeps the file: $TORCH_HOME/hub/checkpoints, as `torch.hub.get_dir()`."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints" / WEIGHTS_NAME


def weights_path(configured: str | None) -> Path:
    return Path(configured) if configured else cached_weights_path()


def find_weights(configured: str | None) -> Path | None:
    """The Inception weights file to use, or None when there is none."""
    path = weights_path(configured)
    return path if path.is_file() else None


def missing_weights_message(configured: str | None) -> str:
    return (
        f"FID and KID skipped: no Inception weights at {weights_path(configured)}. Download "
        f"{WEIGHTS_URL} (91 MB) and put it at {cached_weights_path()}, or set "
        "evaluate.inception_weights to its path; precision/recall and the memorisation check "
        "use pixel features meanwhile."
    )


def check_weights(path: Path) -> bool:
    """True for the standard FID weights (SHA-256 verified); False, with a warning, for other
    weights, whose FIDs are not comparable with published ones. Raises on a damaged file."""
    if path.name != WEIGHTS_NAME:
        log.warning(
            "%s is not %s: FID/KID from these weights are not comparable with published numbers",
            path,
            WEIGHTS_NAME,
        )
        return False
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise ValueError(
            f"{path}: SHA-256 {digest[:16]}... does not start with {WEIGHTS_SHA256_PREFIX}: "
            f"the file is damaged; fetch {WEIGHTS_URL} again"
        )
    return True
