"""Multi-process training with `torchrun` (DDP): one process per GPU, or gloo on CPU.

Run as `torchrun --nproc_per_node=N -m pipeline.gan ...` (or let `launch` start it for a job with
`gpus` > 1); a single process needs nothing of this.
Each rank draws its own batches and latents; gradients are averaged by DDP, so the weights stay
identical on every rank (checked at the end of training).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist

from pipeline.gan.job import TrainJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> tuple[Ranks, torch.device | None]:
    """Join the process group torchrun describes in the environment; (Ranks(), None) alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(), None
    use_cuda = device != "cpu" and torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    where = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(where)
    return Ranks(dist.get_rank(), dist.get_world_size(), local), where


def max_difference(model: torch.nn.Module) -> float:
    """Largest absolute difference between this rank's weights and rank 0's, over all ranks."""
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, 0)
    gap = (flat - reference).abs().max()
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return float(gap)


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Rank 0's weights and buffers on every rank (what DDP does when it wraps a model)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, 0)


def average_gradients(model: torch.nn.Module) -> None:
    """Average the gradients over the ranks in one all-reduce, for a model DDP does not wrap
    (one trained with a gradient penalty: DDP cannot take the double backward)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
        p.grad.copy_(g.view_as(p.grad))


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


SINGLE = Ranks()  # one process


def launch(job: TrainJob) -> None:
    """Run `job` under torchrun, one process per GPU (`settings.gpus`), each of which runs
    `python -m pipeline.gan` with the job's arguments (its threads shared out among them), and
    copy their output into this process's log. On a machine without CUDA the processes use gloo
    on the CPU. Raises when torchrun fails."""
    settings = job.settings
    n = settings.gpus
    cuda = torch.cuda.is_available() and settings.device != "cpu"
    if cuda and torch.cuda.device_count() < n:
        raise RuntimeError(
            f"train.gpus is {n} but only {torch.cuda.device_count()} CUDA devices are visible"
        )
    if settings.device == "cuda" and not cuda:
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    job.work_dir.mkdir(parents=True, exist_ok=True)
    settings_file = job.write_settings(job.work_dir / "train_settings.json")
    per_rank = replace(job, threads=max(1, job.threads // n))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
        "-m", "pipeline.gan", *per_rank.cli_args(settings_file),
    ]  # fmt: skip
    log.info("%d %s processes: %s", n, "GPU" if cuda else "CPU (gloo)", " ".join(command))
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            log.info("torchrun: %s", line.rstrip())
    if proc.returncode:
        raise RuntimeError(
            f"torchrun exited with status {proc.returncode}; its output is in the log above"
        )
