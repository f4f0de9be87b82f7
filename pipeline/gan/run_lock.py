"""One trainer per run: a lock file in the run's working folder names the trainer that holds it.

Two trainers on one run (a job still running on a cluster after Snakemake was killed and rerun,
a double submission) would interleave checkpoints and logs. The first trainer creates
`trainer.lock` (exclusively) with its host, pid and SLURM job id, and touches it every minute;
a second refuses, naming the holder. A lock whose holder is gone is taken over with a warning:
on the same host when its pid no longer runs, for a SLURM job when `squeue` no longer lists it
as pending or running, else when it has not been touched for `STALE_AFTER_S`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
LOCK_NAME = "trainer.lock"
BEAT_S = 60.0  # the holder touches the lock this often
STALE_AFTER_S = 600.0  # a lock untouched this long, whose holder cannot be asked, is stale
SLURM_ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"}


class TrainerLockError(RuntimeError):
    """Another trainer holds the run; the message names it."""


def this_holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "started": time.time(),
    }


def describe(holder: dict) -> str:
    job = f", SLURM job {holder['slurm_job_id']}" if holder.get("slurm_job_id") else ""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')}{job}, since {when}"


def _slurm_job_alive(job_id: str) -> bool | None:
    """Whether SLURM lists the job as pending or running; None when squeue cannot say."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", str(job_id), "-o", "%T"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # squeue refuses ids it no longer knows
        return False if "Invalid job id" in out.stderr else None
    return bool(set(out.stdout.split()) & SLURM_ALIVE)


def _process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from /proc; None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime


def _pid_alive(pid: int, started: float) -> bool:
    """Whether the process that wrote the lock at `started` still runs (not a later process
    that got its pid again)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    began = _process_started(pid)
    return began is None or began <= started + 2.0  # /proc's start time is in clock ticks


def holder_alive(holder: dict, touched: float) -> bool:
    """Whether the trainer that wrote `holder` may still run (`touched`: the lock's mtime)."""
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return _pid_alive(holder["pid"], float(holder.get("started", 0)))
    if holder.get("slurm_job_id"):
        alive = _slurm_job_alive(holder["slurm_job_id"])
        if alive is not None:
            return alive
    return time.time() - touched < STALE_AFTER_S


def _create(path: Path, holder: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(holder, handle)
    return True


def _read(path: Path) -> tuple[dict, float] | None:
    """The holder and the lock's mtime; None if the lock vanished meanwhile."""
    try:
        touched = path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text), touched
    except json.JSONDecodeError:  # a holder killed while writing it
        return {}, touched


def acquire(folder: Path) -> Path:
    """Take the run's lock in `folder`, or raise TrainerLockError naming the live holder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    me = this_holder()
    for _ in range(5):
        if _create(path, me):
            return path
        found = _read(path)
        if found is None:
            continue
        holder, touched = found
        if holder_alive(holder, touched):
            raise TrainerLockError(
                f"{folder}: another trainer runs this run ({describe(holder)}; lock {path}). "
                "Wait for it or stop it (scancel its job, kill its pid); a lock whose trainer "
                "died is taken over by the next run."
            )
        stale = path.with_name(f"{LOCK_NAME}.stale.{me['pid']}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, stale)  # of two trainers taking over, one creates the new lock
            stale.unlink()
            log.warning("taking over the run from a trainer that is gone: %s", describe(holder))
    raise TrainerLockError(f"{path}: could not take the lock (it keeps changing hands)")


def release(path: Path) -> None:
    """Remove the lock if it is still this process's."""
    found = _read(path)
    holder = found[0] if found else {}
    if (holder.get("host"), holder.get("pid")) == (socket.gethostname(), os.getpid()):
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(folder: Path, beat_s: float = BEAT_S) -> Iterator[Path]:
    """Hold the run's lock for the block, touching it every `beat_s` seconds."""
    path = acquire(folder)
    done = threading.Event()

    def beat() -> None:
        while not done.wait(beat_s):
            with contextlib.suppress(FileNotFoundError):
                os.utime(path)

    thread = threading.Thread(target=beat, name="trainer-lock", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        done.set()
        thread.join()
        release(path)
