# Config validation (once, defaults from the schema) and the helpers rules use to read it.
from pathlib import Path

from snakemake.utils import min_version, validate

from pipeline.config import from_dict
from pipeline.metrics.weights import find_weights
from pipeline.sources.openimages import OpenImagesSettings, metadata_files

min_version("9.0")


validate(config, "../../config/schema.yaml")

EXPERIMENTS = sorted(config["experiments"])
DOWNLOADS = config["downloads_dir"]
RUN_SCRIPT = "../scripts/run.py"
ENV = "../../environment.yml"
# Per-job threads; Snakemake caps them at --cores.
MAX_THREADS = 8


wildcard_constraints:
    exp="|".join(EXPERIMENTS),
    source="[a-z_]+",


def experiment(wildcards):
    return config["experiments"][wildcards.exp]


def exp_setting(key):
    """A param function: the experiment's value for `key` (a whole settings block or a scalar)."""
    return lambda wildcards: experiment(wildcards)[key]


def train_gpus(wildcards):
    """GPUs one training run asks for: Snakemake's standard `gpu` resource."""
    return experiment(wildcards)["train"]["gpus"]


def inception_weights_file(wildcards):
    """The FID Inception weights if present: placing them later reruns the reference features."""
    path = find_weights(experiment(wildcards)["evaluate"]["inception_weights"])
    return [str(path)] if path else []


def evaluated_experiments(wildcards):
    """metrics.json of every experiment evaluated so far (the index compares those)."""
    return sorted(
        f"results/{name}/metrics.json"
        for name in EXPERIMENTS
        if Path(f"results/{name}/metrics.json").exists()
    )


def source_config(name):
    return config["sources"][name]


def exclusions_file(wildcards):
    """The experiment's exclusion list if there is one: creating or editing it reruns the shards."""
    path = Path("resources") / "exclusions" / f"{wildcards.exp}.txt"
    return [str(path)] if path.exists() else []


def source_root(name):
    """Where a source's files live: the config's local_dir if set, else the shared downloads."""
    return source_config(name).get("local_dir") or f"{DOWNLOADS}/{name}"


def openimages_metadata_files():
    settings = from_dict(OpenImagesSettings, source_config("openimages"))
    return list(
        metadata_files(settings, Path(source_root("openimages")) / "metadata").values()
    )
