"""Devices: which one a stage runs on, where the training crops live, and which GPUs a job owns.

`select_device` turns a `device` setting into a torch device; `place_data` puts the training
crops on the GPU when they fit. This module imports no pipeline stage.

Each training job gets its own GPUs when Snakemake runs several on one machine:
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

import torch

log = logging.getLogger(__name__)

LOCK_DIR = Path(tempfile.gettempdir()) / "gan-crops-gpu-locks"


def use_cpu_threads(requested: int) -> int:
    """Set torch's intra-op threads to `requested`, at most the CPUs this process may run on
    (a cluster job's or container's share, not the machine's), and return the count. More
    threads than CPUs leave OpenMP's team waiting on a descheduled thread at every operation."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, min(requested, allowed or 1))
    torch.set_num_threads(threads)
    return threads


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def place_data(images: torch.Tensor, device: torch.device, share: float = 0.5) -> torch.Tensor:
    """The training crops on the GPU when they take at most `share` of its free memory (batches
    are then gathered on the device: no host work per step), else in pinned host memory."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    if fits_on_device(images.nbytes, free, share):
        return images.to(device)
    log.warning(
        "the %.1f GB of training crops do not fit in half of the GPU's %.1f GB free: they stay "
        "in host memory and each batch is copied over",
        images.nbytes / 1e9,
        free / 1e9,
    )
    return images.pin_memory()


def fits_on_device(nbytes: int, free: int, share: float = 0.5) -> bool:
    return nbytes <= share * free


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
