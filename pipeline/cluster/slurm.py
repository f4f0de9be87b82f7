"""What a SLURM cluster offers, read from `scontrol show partition|node --oneliner`."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

TOKEN = re.compile(r"(?:^|\s)([A-Za-z][\w/:.]*)=(\S*)")
UNLIMITED = {"UNLIMITED", "INFINITE", "NONE", "N/A", "(null)", ""}


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    mem_mb: int  # RealMemory less MemSpecLimit: what jobs may have
    gpus: int
    partitions: tuple[str, ...]
    state: str


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    state: str
    max_time_min: int | None  # None: unlimited
    max_cpus_per_node: int | None
    max_mem_per_node: int | None
    max_mem_per_cpu: int | None
    max_nodes: int | None


@dataclass(frozen=True)
class Cluster:
    partitions: dict[str, Partition]
    nodes: tuple[Node, ...]

    def nodes_of(self, partition: str) -> list[Node]:
        return [node for node in self.nodes if partition in node.partitions]

    @property
    def default_partition(self) -> str | None:
        return next((p.name for p in self.partitions.values() if p.default), None)


def fields(line: str) -> dict[str, str]:
    """`Key=value` pairs of one `--oneliner` record (values with spaces, like OS=, are cut)."""
    return {key: value for key, value in TOKEN.findall(line)}


def minutes(text: str) -> int | None:
    """SLURM's time (`minutes`, `minutes:seconds`, `hours:minutes:seconds`, `days-hours`,
    `days-hours:minutes`, `days-hours:minutes:seconds`) in whole minutes rounded down; None for
    UNLIMITED/INFINITE."""
    if text.upper() in UNLIMITED:
        return None
    days, dash, clock = text.partition("-")
    if not dash:
        days, clock = "0", text
    parts = [int(p) for p in clock.split(":")]
    if dash:  # after days: hours first
        hours, mins, secs = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, mins, secs = parts
    else:
        hours, mins, secs = 0, parts[0], (parts + [0])[1]
    return (int(days) * 24 + hours) * 60 + mins + secs // 60


def _limit(text: str | None) -> int | None:
    if text is None or text.upper() in UNLIMITED:
        return None
    return int(re.match(r"\d+", text)[0])


def gpu_count(gres: str) -> int:
    """GPUs in a node's `Gres=` (gpu:2, gpu:a100:4(S:0-1), gpu:a:2,gpu:b:1, (null))."""
    total = 0
    for item in re.split(r",(?![^()]*\))", gres):
        parts = re.sub(r"\(.*\)", "", item).split(":")
        if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def parse_partition(line: str) -> Partition:
    f = fields(line)
    return Partition(
        name=f["PartitionName"],
        default=f.get("Default") == "YES",
        state=f.get("State", "UP"),
        max_time_min=minutes(f.get("MaxTime", "UNLIMITED")),
        max_cpus_per_node=_limit(f.get("MaxCPUsPerNode")),
        max_mem_per_node=_limit(f.get("MaxMemPerNode")),
        max_mem_per_cpu=_limit(f.get("MaxMemPerCPU")),
        max_nodes=_limit(f.get("MaxNodes")),
    )


def parse_node(line: str) -> Node:
    f = fields(line)
    spec = _limit(f.get("MemSpecLimit")) or 0
    return Node(
        name=f["NodeName"],
        cpus=int(f.get("CPUTot", f.get("CPUEfctv", "0"))),
        mem_mb=int(f.get("RealMemory", "0")) - spec,
        gpus=gpu_count(f.get("Gres", "")),
        partitions=tuple(p for p in f.get("Partitions", "").split(",") if p),
        state=f.get("State", ""),
    )


def parse(partitions_text: str, nodes_text: str) -> Cluster:
    partitions = [parse_partition(x) for x in partitions_text.splitlines() if "PartitionName=" in x]
    nodes = tuple(parse_node(x) for x in nodes_text.splitlines() if "NodeName=" in x)
    return Cluster(partitions={p.name: p for p in partitions}, nodes=nodes)


class Unreachable(RuntimeError):
    """`scontrol` is missing or cannot reach the cluster's controller."""


def read_cluster() -> Cluster:
    """The cluster this machine submits to (SLURM_CONF, or SLURM's own default)."""
    if shutil.which("scontrol") is None:
        raise Unreachable("scontrol is not installed here")
    texts = []
    for kind in ("partition", "node"):
        proc = subprocess.run(
            ["scontrol", "show", "--oneliner", kind], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise Unreachable(f"scontrol show {kind}: {proc.stderr.strip() or proc.stdout.strip()}")
        texts.append(proc.stdout)
    return parse(*texts)
