"""One trainer per run: a second trainer refuses while the first runs and takes over once it died."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.gan.run_lock import LOCK_NAME, STALE_AFTER_S, TrainerLockError, acquire, run_lock
from pipeline.gan.train import train
from tests.test_gan import TINY, make_shards

HOLD = """
import sys, time
from pathlib import Path
from pipeline.gan.run_lock import run_lock
with run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def first_trainer(folder: Path) -> subprocess.Popen:
    """A process that holds the run's lock until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_trainer_refuses_while_the_first_runs_and_takes_over_after_it_died(
    tmp_path, caplog
):
    shards = make_shards(tmp_path / "shards")
    work = tmp_path / "run/checkpoints"
    first = first_trainer(work)
    try:
        with pytest.raises(TrainerLockError) as refused:
            train(
                shards,
                model_path=tmp_path / "run/model.pt",
                stats_path=tmp_path / "run/stats.jsonl",
                work_dir=work,
                settings=TINY,
                seed=0,
            )
        assert f"another trainer runs this run (pid {first.pid} on " in str(refused.value)
        assert not (work / "checkpoint.pt").exists()  # it wrote nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with caplog.at_level("WARNING", logger="pipeline.gan.run_lock"):
        trainer = train(
            shards,
            model_path=tmp_path / "run/model.pt",
            stats_path=tmp_path / "run/stats.jsonl",
            work_dir=work,
            settings=TINY,
            seed=0,
        )
    assert trainer.step == TINY.steps
    assert f"taking over the run from a trainer that is gone: pid {first.pid}" in caplog.text
    assert not (work / LOCK_NAME).exists()  # released at the end


def foreign_lock(folder: Path, **holder) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    record = {"host": "node042", "pid": 4242, "slurm_job_id": None, "started": time.time()}
    path.write_text(json.dumps({**record, **holder}))
    return path


def test_a_lock_from_another_host_is_stale_only_once_it_stopped_beating(tmp_path):
    path = foreign_lock(tmp_path)
    with pytest.raises(TrainerLockError, match="pid 4242 on node042"):
        acquire(tmp_path)
    old = time.time() - STALE_AFTER_S - 5
    os.utime(path, (old, old))
    assert acquire(tmp_path) == path
    assert json.loads(path.read_text())["pid"] == os.getpid()


def test_a_pid_that_now_belongs_to_a_later_process_is_no_holder(tmp_path):
    # the lock says this very pid, but written before this process started: another process
    # had the pid then, and it is gone
    foreign_lock(tmp_path, host=socket.gethostname(), pid=os.getpid(), started=time.time() - 3600)
    acquire(tmp_path)
    path = foreign_lock(tmp_path, host=socket.gethostname(), pid=os.getpid())  # started now
    with pytest.raises(TrainerLockError, match=f"pid {os.getpid()} on"):
        acquire(tmp_path)
    assert path.exists()


def fake_squeue(bin_dir: Path, state: str) -> None:
    """An `squeue` that lists job 77 in `state` (nothing: SLURM no longer knows it)."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "squeue"
    script.write_text(f"#!/bin/sh\necho '{state}'\n")
    script.chmod(0o755)


@pytest.mark.parametrize(("state", "refused"), [("RUNNING", True), ("PENDING", True), ("", False)])
def test_a_slurm_job_holds_the_run_while_squeue_lists_it(tmp_path, monkeypatch, state, refused):
    fake_squeue(tmp_path / "bin", state)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    foreign_lock(tmp_path / "run", slurm_job_id="77")
    if refused:
        with pytest.raises(TrainerLockError, match="SLURM job 77"):
            acquire(tmp_path / "run")
    else:  # fresh, but its job is gone: taken over without waiting for it to go stale
        acquire(tmp_path / "run")


def test_the_lock_is_touched_while_held_and_removed_after(tmp_path):
    with run_lock(tmp_path, beat_s=0.05) as path:
        first = path.stat().st_mtime_ns
        deadline = time.monotonic() + 30  # generous on a loaded machine; ends at the first beat
        while path.stat().st_mtime_ns == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_mtime_ns > first
    assert not path.exists()
