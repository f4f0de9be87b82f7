"""Give each training job its own GPUs when Snakemake runs several on one machine.

`snakemake --resources gpu=2` lets two jobs that each declare `gpu=1` run at once but does not
say which GPU is whose. Unless the scheduler already decided (SLURM and Kubernetes set
`CUDA_VISIBLE_DEVICES`), a job claims free GPUs with an exclusive lock file per GPU and sets
`CUDA_VISIBLE_DEVICES` to them before CUDA starts; the locks go with the process, so a killed job
frees its GPUs. GPUs are counted with `nvidia-smi`, which does not start CUDA in this process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR = Path(tempfile.gettempdir()) / "gan-crops-gpu-locks"


def gpu_count() -> int:
    """GPUs on this machine according to nvidia-smi (0 without it)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def try_claim(n: int, total: int, lock_dir: Path = LOCK_DIR) -> tuple[list[int], list]:
    """Lock up to `n` free GPUs of `total`; ([ids], [open lock files]) or ([], []) if fewer free."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    ids, handles = [], []
    for index in range(total):
        handle = open(lock_dir / f"gpu{index}.lock", "a")  # noqa: SIM115 (held while training)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        ids.append(index)
        handles.append(handle)
        if len(ids) == n:
            return ids, handles
    for handle in handles:
        handle.close()
    return [], []


@contextmanager
def own_gpus(n: int, total: int | None = None, lock_dir: Path = LOCK_DIR, wait_s: float = 5.0):
    """Within the block, CUDA_VISIBLE_DEVICES names `n` GPUs no other job of ours holds. Does
    nothing when it is already set, when n is 0, or on a machine without GPUs."""
    total = gpu_count() if total is None else total
    if n <= 0 or total == 0 or "CUDA_VISIBLE_DEVICES" in os.environ:
        yield None
        return
    if n > total:
        raise RuntimeError(f"train.gpus is {n} but this machine has {total} GPUs")
    while True:
        ids, handles = try_claim(n, total, lock_dir)
        if ids:
            break
        log.info("waiting for %d free GPUs (all %d held by other jobs)", n, total)
        time.sleep(wait_s)
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
    log.info("this job uses GPUs %s (CUDA_VISIBLE_DEVICES)", os.environ["CUDA_VISIBLE_DEVICES"])
    try:
        yield ids
    finally:
        del os.environ["CUDA_VISIBLE_DEVICES"]
        for handle in handles:
            handle.close()
