"""Before anything is submitted: the jobs a SLURM cluster can never start, and why.

With SLURM's defaults (`EnforcePartLimits=NO`) a job over its partition's limits is accepted and
pends for ever (`PartitionTimeLimit`, `PartitionConfig`, `Resources`), and Snakemake waits with
it. `check` compares each planned job with the cluster's partitions and nodes (`scontrol`) and
names, per job that can never start, the limit it passes and the setting that fixes it.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

from pipeline.cluster.requests import JobRequest, from_jobs
from pipeline.cluster.slurm import Cluster, Unreachable, read_cluster

PROFILE = "the profile's per-site block"


class PreflightError(RuntimeError):
    """Jobs that can never start on this cluster (the message holds the table)."""


def _setting(request: JobRequest, resource: str, value="...") -> str:
    return f"set-resources: {request.rule}: {{{resource}: {value}}} in {PROFILE}"


def reasons(request: JobRequest, cluster: Cluster) -> list[str]:
    """Why `request` can never start on `cluster` (empty: it can)."""
    if request.local:
        return []
    name = request.partition or cluster.default_partition
    partition = cluster.partitions.get(name) if name else None
    if partition is None:
        known = ", ".join(cluster.partitions) or "none"
        return [
            f"no partition {name!r} (this cluster has: {known}): {_setting(request, 'slurm_partition')}"
        ]
    found, nodes = [], cluster.nodes_of(partition.name)
    if partition.state not in ("UP",):
        found.append(f"partition {partition.name} is {partition.state}")
    if partition.max_time_min is not None and (request.runtime_min or 0) > partition.max_time_min:
        found.append(
            f"{request.runtime_min} min over {partition.name}'s MaxTime of "
            f"{partition.max_time_min} min: {_setting(request, 'runtime', partition.max_time_min)}"
        )
    found += _limits(request, partition.name, partition, nodes)
    return found


def _limits(request: JobRequest, name: str, partition, nodes) -> list[str]:
    """CPUs, memory and GPUs against the partition's limits and its largest nodes."""
    found = []
    most_cpus = min(max((n.cpus for n in nodes), default=0), partition.max_cpus_per_node or 10**9)
    mem_caps = [partition.max_mem_per_node, (partition.max_mem_per_cpu or 0) * request.cpus or None]
    most_mem = min([max((n.mem_mb for n in nodes), default=0), *(c for c in mem_caps if c)])
    most_gpus = max((n.gpus for n in nodes), default=0)
    if request.cpus > most_cpus:
        found.append(
            f"{request.cpus} CPUs, {name}'s nodes have at most {most_cpus}: max-threads: "
            f"{most_cpus} in {PROFILE}"
        )
    if request.mem_mb and request.mem_mb > most_mem:
        found.append(
            f"{request.mem_mb} MB, {name}'s nodes have at most {most_mem} MB: "
            f"{_setting(request, 'mem_mb', most_mem)} or less"
        )
    if request.gpus > most_gpus:
        found.append(
            f"{request.gpus} GPUs, {name}'s nodes have at most {most_gpus}: cpu_only=True in "
            f"{PROFILE} (a cluster without GPUs), or a partition with GPUs for {request.rule}"
        )
    if request.nodes and partition.max_nodes and request.nodes > partition.max_nodes:
        found.append(f"{request.nodes} nodes, {name} allows {partition.max_nodes}")
    if not found and not any(_fits(request, n) for n in nodes):
        found.append(f"no single node of {name} has the CPUs, memory and GPUs together")
    return found


def _fits(request: JobRequest, node) -> bool:
    return (
        request.cpus <= node.cpus
        and (request.mem_mb or 0) <= node.mem_mb
        and request.gpus <= node.gpus
    )


@dataclass(frozen=True)
class Row:
    request: JobRequest
    jobs: int
    reasons: tuple[str, ...]


def rows(requests: list[JobRequest], cluster: Cluster | None) -> list[Row]:
    """One row per distinct request, with its job count and (with a cluster) its reasons."""
    counts = Counter(requests)
    return [
        Row(request, jobs, tuple(reasons(request, cluster)) if cluster else ())
        for request, jobs in counts.items()
    ]


def table(rows_: list[Row], cluster: Cluster | None) -> str:
    """Where each job goes: rule, jobs, where, partition, CPUs, memory, time, GPUs, verdict."""
    default = cluster.default_partition if cluster else None
    head = ("rule", "jobs", "where", "partition", "cpus", "mem_mb", "time", "gpus", "starts?")
    lines = [head]
    for row in rows_:
        r = row.request
        verdict = "-" if cluster is None else ("yes" if not row.reasons else "NEVER")
        lines.append((
            r.rule, str(row.jobs), r.where,
            "-" if r.local else (r.partition or f"{default or '?'} (default)"),
            str(r.cpus), str(r.mem_mb or "-"),
            "-" if r.local or r.runtime_min is None else f"{r.runtime_min} min",
            str(r.gpus), verdict,
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    for row in rows_:
        text += [f"  {row.request.rule}: {reason}" for reason in row.reasons]
    return "\n".join(text)


def check(requests: list[JobRequest], cluster: Cluster) -> str:
    """The table; raises PreflightError with it when a job can never start."""
    planned = rows(requests, cluster)
    text = table(planned, cluster)
    if any(row.reasons for row in planned):
        raise PreflightError(
            "these jobs can never start on this cluster (SLURM would leave them pending for "
            f"ever):\n{text}\n(preflight: false in the config skips this check)"
        )
    return text


def check_before_submit(workflow, enabled: bool = True) -> None:
    """The workflow's `onstart`: with the SLURM executor, stop before the first submission when
    a planned job can never start; otherwise log where each job goes."""
    plugin = workflow.executor_plugin
    if not enabled or plugin is None or plugin.name != "slurm":
        return
    try:
        cluster = read_cluster()
    except Unreachable as error:
        print(f"preflight: jobs not checked against the cluster ({error})", file=sys.stderr)
        return
    needed = set(workflow.dag.needrun_jobs())
    layers = workflow.dag.toposorted(jobs=needed)  # upstream first, as a dry run lists them
    requests = from_jobs(job for layer in layers for job in sorted(layer, key=str))
    print(f"preflight: where each job goes\n{check(requests, cluster)}", file=sys.stderr)
