"""The SLURM preflight on its own: what `scontrol` says, what each job asks, and the verdict.

The `scontrol --oneliner` records below are as SLURM 22.05 prints them (the first partition and
node from the test cluster of tests/slurm/start.sh, with its OS= field holding spaces; the GPU
node as a site's would read). The end-to-end checks on a real cluster are in test_slurm.py.
"""

from __future__ import annotations

import pytest

from pipeline.cluster.memory import ask_mb, crops_mb
from pipeline.cluster.preflight import PreflightError, check, reasons, rows, table
from pipeline.cluster.requests import JobRequest, from_dry_run
from pipeline.cluster.slurm import gpu_count, minutes, parse
from pipeline.io import write_json
from tests.conftest import REPO, TINY_DEMO, snakemake, write_config

PARTITIONS = """\
PartitionName=cpu AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=6000M,node=1,billing=2
PartitionName=gpu AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm,g[1-2] PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=34 TotalNodes=3 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=64000 TRES=cpu=34,mem=262000M,node=3,billing=34,gres/gpu=8
"""
NODES = """\
NodeName=vm Arch=x86_64 CoresPerSocket=2  CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=2.27 AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=127.0.0.1 NodeHostName=vm Version=22.05.8 OS=Linux 6.18.44-fc-v1272 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=6000 AllocMem=0 FreeMem=18727 Sockets=1 Boards=1 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=cpu,gpu  BootTime=2026-12-07T03:31:50 SlurmdStartTime=2026-12-07T07:01:32 CfgTRES=cpu=2,mem=6000M,billing=2 AllocTRES= CapWatts=n/a
NodeName=g1 Arch=x86_64 CoresPerSocket=8 CPUAlloc=0 CPUEfctv=16 CPUTot=16 CPULoad=0.01 Gres=gpu:a100:4(S:0-1) NodeAddr=g1 NodeHostName=g1 Version=22.05.8 OS=Linux 5.15.0 #1 SMP RealMemory=128000 AllocMem=0 FreeMem=120000 MemSpecLimit=8000 Sockets=2 State=IDLE Partitions=gpu
NodeName=g2 Arch=x86_64 CoresPerSocket=8 CPUAlloc=0 CPUEfctv=16 CPUTot=16 CPULoad=0.01 Gres=gpu:a100:4(S:0-1) NodeAddr=g2 NodeHostName=g2 Version=22.05.8 OS=Linux 5.15.0 #1 SMP RealMemory=128000 AllocMem=0 FreeMem=120000 Sockets=2 State=DRAIN Partitions=gpu
"""
CLUSTER = parse(PARTITIONS, NODES)


def job(rule="train_experiment", **asks) -> JobRequest:
    base = dict(local=False, partition="gpu", cpus=8, mem_mb=8000, runtime_min=600, gpus=1, nodes=1)
    return JobRequest(rule=rule, **{**base, **asks})


def test_scontrol_records_are_read_field_by_field():
    assert list(CLUSTER.partitions) == ["cpu", "gpu"] and CLUSTER.default_partition == "cpu"
    cpu, gpu = CLUSTER.partitions["cpu"], CLUSTER.partitions["gpu"]
    assert cpu.max_time_min is None and gpu.max_time_min == 1440
    assert cpu.max_mem_per_node is None and gpu.max_mem_per_node == 64000
    vm, g1, g2 = CLUSTER.nodes
    assert (vm.name, vm.cpus, vm.mem_mb, vm.gpus, vm.partitions) == (
        "vm",
        2,
        6000,
        0,
        ("cpu", "gpu"),
    )
    assert (g1.cpus, g1.mem_mb, g1.gpus) == (16, 120000, 4)  # MemSpecLimit kept for the system
    assert [n.name for n in CLUSTER.nodes_of("gpu")] == ["vm", "g1", "g2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("UNLIMITED", None), ("INFINITE", None), ("1-00:00:00", 1440), ("12:00:00", 720),
     ("30:00", 30), ("45", 45), ("2-12", 3600), ("2-12:30", 3630), ("0:30:59", 30)],
)  # fmt: skip
def test_slurm_time_formats(text, expected):
    assert minutes(text) == expected


@pytest.mark.parametrize(
    ("gres", "count"),
    [("(null)", 0), ("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4), ("gpu:a:2,gpu:b:1", 3),
     ("gpu:tesla:2(S:0),mps:100", 2), ("", 0)],
)  # fmt: skip
def test_gpus_of_a_node(gres, count):
    assert gpu_count(gres) == count


def test_a_job_that_fits_has_no_reason():
    assert reasons(job(), CLUSTER) == []
    assert (
        reasons(job(rule="crops_extract", partition=None, cpus=2, mem_mb=4000, gpus=0), CLUSTER)
        == []
    )


@pytest.mark.parametrize(
    ("asks", "names"),
    [
        ({"runtime_min": 2880}, ["2880 min over gpu's MaxTime of 1440 min", "{runtime: 1440}"]),
        ({"partition": "a100"}, ["no partition 'a100'", "cpu, gpu", "slurm_partition"]),
        ({"cpus": 32}, ["32 CPUs", "at most 16", "max-threads: 16"]),
        ({"mem_mb": 100000}, ["100000 MB", "at most 64000 MB", "{mem_mb: 64000}"]),
        ({"gpus": 8}, ["8 GPUs", "at most 4", "cpu_only=True"]),
        ({"partition": "cpu", "gpus": 1, "cpus": 2, "mem_mb": 1000}, ["1 GPUs", "at most 0"]),
        ({"partition": "cpu", "gpus": 0, "cpus": 2, "mem_mb": 7000}, ["7000 MB", "at most 6000"]),
    ],
)
def test_each_limit_names_the_setting_to_change(asks, names):
    found = " | ".join(reasons(job(**asks), CLUSTER))
    assert found and all(name in found for name in names), found


def test_no_single_node_with_everything_together():
    """vm has the memory of a small job, g1 the GPUs: a job needing both at once never starts
    where the partition's nodes only add up to it."""
    cluster = parse(PARTITIONS, NODES.replace("Gres=gpu:a100:4(S:0-1)", "Gres=(null)", 2).replace(
        "Gres=(null) NodeAddr=127.0.0.1", "Gres=gpu:1 NodeAddr=127.0.0.1"))  # fmt: skip
    found = reasons(job(cpus=16, gpus=1, mem_mb=1000), cluster)
    assert found == ["no single node of gpu has the CPUs, memory and GPUs together"]


def test_login_node_jobs_are_never_checked():
    assert reasons(job(local=True, cpus=999, partition="nowhere"), CLUSTER) == []


def test_the_check_raises_with_the_whole_table():
    planned = [job(rule="crops_extract", partition="cpu", cpus=8, gpus=0, mem_mb=4000)] * 3
    planned += [job(runtime_min=2880), job(local=True, rule="coco_annotations", cpus=1, gpus=0)]
    with pytest.raises(PreflightError) as caught:
        check(planned, CLUSTER)
    text = str(caught.value)
    lines = text.splitlines()
    assert any(line.split()[:2] == ["crops_extract", "3"] and "NEVER" in line for line in lines)
    assert any(line.startswith("coco_annotations") and "login node" in line for line in lines)
    assert "8 CPUs, cpu's nodes have at most 2" in text and "MaxTime of 1440" in text
    assert check([job()], CLUSTER).splitlines()[1].endswith("yes")


def test_the_table_without_a_cluster_has_no_verdict():
    text = table(rows([job()], None), None)
    assert text.splitlines()[1].split() == [
        "train_experiment",
        "1",
        "job",
        "gpu",
        "8",
        "8000",
        "600",
        "min",
        "1",
        "-",
    ]


def test_the_dry_run_of_the_profile_gives_what_the_plugin_submits(tmp_path):
    """The SLURM profile's dry run with many cores: threads as submitted (max-threads caps),
    partitions, memory, time and GPUs of every job; the download rules on the login node."""
    write_config(tmp_path, TINY_DEMO)
    profile = str(REPO / "profiles" / "slurm")
    proc = snakemake(tmp_path, "-n", "--profile", profile, "--max-threads", "2", "--cores",
                     "100000", "results/demo/report.html")  # fmt: skip
    planned = {r.rule: r for r in from_dry_run(proc.stdout + proc.stderr)}
    assert planned["crops_extract"].cpus == 2 and planned["synthetic_boxes"].cpus == 1
    train = planned["train_experiment"]
    assert (train.partition, train.gpus, train.nodes, train.runtime_min) == ("gpu", 1, 1, 1440)
    assert planned["boxes_merge"].partition == "cpu" and planned["boxes_merge"].runtime_min == 120
    assert all(r.mem_mb for r in planned.values()) and not any(r.local for r in planned.values())


def test_jobs_that_hold_the_crops_ask_for_them_once_the_shards_exist(tmp_path):
    """FFHQ's 70 000 faces at 128 px are 3.4 GB in memory: the measured model peak alone would
    have the job killed; once the manifest exists the crops are added, per process."""
    shards = tmp_path / "shards"
    assert crops_mb(shards) == 0  # before the shards are written (dry run, preflight)
    base = ask_mb("train", image_size=128)
    shards.mkdir()
    files = {"train-00000.npy": {"count": 60_000}, "holdout-00000.npy": {"count": 10_000}}
    write_json({"image_size": 128, "files": files}, shards / "manifest.json")
    assert crops_mb(shards) == pytest.approx(70_000 * 128 * 128 * 3 / 1e6)
    held = ask_mb("train", image_size=128, data_mb=crops_mb(shards))
    assert held >= base + crops_mb(shards)
    assert ask_mb("train", image_size=128, processes=2, data_mb=crops_mb(shards)) == 2 * held
    assert ask_mb("train", image_size=64) < base  # smaller images, less memory
