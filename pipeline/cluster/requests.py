"""Each planned job as the SLURM executor plugin submits it, from Snakemake's jobs or a dry run.

The plugin (snakemake-executor-plugin-slurm) turns a job's resources into sbatch options:
`slurm_partition` -> `-p`, `runtime` (minutes) -> `-t`, `mem_mb` -> `--mem` (or `mem_mb_per_cpu`
-> `--mem-per-cpu`), `cpus_per_task` or the job's threads -> `--cpus-per-task`, `gpu` ->
`--gpus`, `nodes` -> `--nodes`. Local rules run where Snakemake runs (the login node).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOGIN_NODE = "login node"


@dataclass(frozen=True)
class JobRequest:
    rule: str
    local: bool
    partition: str | None  # None: the cluster's default partition
    cpus: int
    mem_mb: int | None  # for the whole job; None: the cluster's default
    runtime_min: int | None
    gpus: int
    nodes: int | None

    @property
    def where(self) -> str:
        return LOGIN_NODE if self.local else "job"


def _int(value) -> int | None:
    if value is None or value == "" or str(value).startswith("<TBD"):
        return None
    return int(float(value))


def from_resources(*, rule: str, local: bool, threads: int, resources: dict) -> JobRequest:
    """The request of one job from its threads and evaluated resources (as the plugin reads them)."""
    cpus = _int(resources.get("cpus_per_task")) or threads
    per_cpu = _int(resources.get("mem_mb_per_cpu"))
    mem = per_cpu * cpus if per_cpu else _int(resources.get("mem_mb"))
    partition = resources.get("slurm_partition")
    return JobRequest(
        rule=rule,
        local=local,
        partition=str(partition) if partition else None,
        cpus=max(cpus, 1),
        mem_mb=mem,
        runtime_min=_int(resources.get("runtime")),
        gpus=_int(resources.get("gpu")) or 0,
        nodes=_int(resources.get("nodes")),
    )


def from_jobs(jobs) -> list[JobRequest]:
    """Requests of Snakemake `Job`s (the DAG's, in `onstart`)."""
    return [
        from_resources(
            rule=job.rule.name,
            local=bool(job.is_local),
            threads=int(job.threads),
            resources=dict(job.resources.items()),
        )
        for job in jobs
    ]


JOB_HEAD = re.compile(r"^(local)?rule (\w+):$")
FIELD = re.compile(r"^\s+(threads|resources): (.*)$")


def from_dry_run(text: str, *, local_downloads: bool = False) -> list[JobRequest]:
    """Requests of the jobs a dry run printed (`snakemake -n --cores <many>`: with few cores a
    dry run shows threads capped at them). A dry run runs every job locally, so it does not say
    which would run on the login node: with `local_downloads`, the jobs that take the `downloads`
    resource (the workflow makes exactly those local rules)."""
    jobs, current = [], None
    for line in text.splitlines():
        head = JOB_HEAD.match(line)
        if head:
            current = {"rule": head[2], "local": False, "threads": 1, "resources": {}}
            jobs.append(current)
            continue
        field = FIELD.match(line)
        if current is None or field is None:
            continue
        if field[1] == "threads":
            current["threads"] = int(field[2])
        else:
            pairs = (item.split("=", 1) for item in field[2].split(", ") if "=" in item)
            current["resources"] = dict(pairs)
            current["local"] = local_downloads and "downloads" in current["resources"]
    return [from_resources(**job) for job in jobs if job["rule"] != "all"]
