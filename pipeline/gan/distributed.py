"""Multi-process training with `torchrun` (DDP): one process per GPU, or gloo on CPU.

Run as `torchrun --nproc_per_node=N -m pipeline.gan ...`; a single process needs nothing of this.
Each rank draws its own batches and latents; gradients are averaged by DDP, so the weights stay
identical on every rank (checked at the end of training).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


SINGLE = Ranks()  # one process
