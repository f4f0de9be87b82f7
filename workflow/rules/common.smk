# Config validation (once, defaults from the schema) and the helpers rules use to read it.
from pathlib import Path

from snakemake.utils import min_version, validate

import re

from pipeline.cluster.memory import ask_mb, crops_mb
from pipeline.cluster.preflight import check_before_submit
from pipeline.config import from_dict, on_cpu
from pipeline.layout import eval_outputs, report_inputs, train_outputs
from pipeline.rule_scripts import check_rule_scripts
from pipeline.sweep_runs import runs_of, run_train_settings
from pipeline.metrics.weights import find_weights
from pipeline.user_paths import annotation_list, check_user_paths
from pipeline.sources.openimages_files import OpenImagesSettings, metadata_files

min_version("9.0")


validate(config, "../../config/schema.yaml")
# A user's folders and files are inputs only: none may overlap a folder the workflow writes.
check_user_paths(config, Path.cwd())

# Sources: the built-in ones, and named datasets (pipeline/sources/): the user's own in COCO
# format (DATASETS), and generated ones (SYNTHETIC: the built-in synthetic and format: synthetic).
# A built-in source is a rule file in workflow/rules/sources/ (its rules write
# results/{exp}/sources/{source}.parquet and .rejects.parquet), a module in pipeline/sources/, its
# rules' scripts and its block in config/schema.yaml.
SOURCE_RULES = Path(workflow.basedir) / "workflow" / "rules" / "sources"
BUILTIN_SOURCES = sorted(path.stem for path in SOURCE_RULES.glob("*.smk"))
NAMED = sorted(name for name in config["sources"] if name not in BUILTIN_SOURCES)
SYNTHETIC = ["synthetic"] + [
    n for n in NAMED if config["sources"][n].get("format") == "synthetic"
]
DATASETS = [n for n in NAMED if n not in SYNTHETIC]
for _name, _exp in config["experiments"].items():
    _unknown = sorted(set(_exp["sources"]) - set(BUILTIN_SOURCES) - set(NAMED))
    if _unknown:
        raise ValueError(
            f"experiment {_name!r}: unknown source(s) {_unknown}; built-in: {BUILTIN_SOURCES}, "
            f"named datasets under sources: {NAMED or 'none'}"
        )

EXPERIMENTS = sorted(config["experiments"])
# Sweeps: experiment -> run name -> the train settings the run overrides (pipeline/sweep.py).
SWEEP_RUNS = {
    name: runs_of(exp.get("sweep")) for name, exp in config["experiments"].items()
}
SWEPT = sorted(name for name, runs in SWEEP_RUNS.items() if runs)
PLAIN = sorted(name for name in EXPERIMENTS if name not in SWEPT)


def download_rules(workflow):
    """The rules that declare the `downloads` resource (the ones that need the internet)."""
    return sorted(rule.name for rule in workflow.rules if "downloads" in rule.resources)


def one_of(names):
    """A wildcard regex matching exactly these names (none: matches nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


DOWNLOADS = config["downloads_dir"]
ENV = str(Path(workflow.basedir) / "environment.yml")  # rule files sit at two depths
# Per-job threads; Snakemake caps them at --cores.
MAX_THREADS = 8


wildcard_constraints:
    exp=one_of(EXPERIMENTS),
    source="[a-z_]+",
    dataset=one_of(DATASETS),
    synth=one_of(SYNTHETIC),
    run="[A-Za-z0-9][A-Za-z0-9_.+-]*",


def experiment(wildcards):
    return config["experiments"][wildcards.exp]


def exp_setting(key):
    """A param function: the experiment's value for `key` (a whole settings block or a scalar)."""
    return lambda wildcards: experiment(wildcards)[key]


def train_settings(wildcards):
    """The train block of an experiment, or of one sweep run (the experiment's plus the run's)."""
    if "run" in wildcards.keys():
        settings = run_train_settings(experiment(wildcards), wildcards.run)
    else:
        settings = experiment(wildcards)["train"]
    return on_cpu(settings) if config["cpu_only"] else settings


def report_settings(wildcards):
    """What a report shows as settings: the experiment's, with a sweep run's own train block."""
    settings = {k: v for k, v in experiment(wildcards).items() if k != "sweep"}
    settings["train"] = train_settings(wildcards)
    return settings


def train_gpus(wildcards):
    """GPUs one training run asks for: Snakemake's standard `gpu` resource."""
    return train_settings(wildcards)["gpus"]


def measured_mem_mb(kind, processes=lambda wildcards: 1):
    """A resource function: the memory `kind` measured at the experiment's image size plus the
    crops it holds, for each of its processes (training: one per GPU; pipeline/cluster/memory.py).
    """
    return lambda wildcards, input: ask_mb(
        kind,
        image_size=experiment(wildcards)["image_size"],
        processes=processes(wildcards),
        data_mb=crops_mb(input.shards),
    )


def run_dir(wildcards):
    if "run" in wildcards.keys():
        return f"results/{wildcards.exp}/runs/{wildcards.run}"
    return f"results/{wildcards.exp}"


def evaluated_model(wildcards):
    """The model evaluation uses: the best by the training-time metric, or the last."""
    name = (
        "best" if experiment(wildcards)["evaluate"]["checkpoint"] == "best" else "model"
    )
    return f"{run_dir(wildcards)}/train/{name}.pt"


def sweep_files(name):
    """An input function: `name` of every run of the experiment's sweep, in run order."""
    return lambda wildcards: [
        f"results/{wildcards.exp}/runs/{run}/{name}"
        for run in SWEEP_RUNS[wildcards.exp]
    ]


def sweep_runs(wildcards):
    return list(SWEEP_RUNS[wildcards.exp])


def sweep_metric(wildcards):
    return experiment(wildcards)["sweep"].get("metric", "swd")


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


def source_exif(wildcards):
    """Each source of the experiment: do its boxes refer to the image as displayed (apply) or
    as stored (ignore)."""
    return {
        name: source_config(name)["exif"] for name in experiment(wildcards)["sources"]
    }


def exclusions_file(wildcards):
    """The experiment's exclusion list if there is one: creating or editing it reruns the shards."""
    path = Path("resources") / "exclusions" / f"{wildcards.exp}.txt"
    return [str(path)] if path.exists() else []


def source_root(name):
    """Where a source's files are read from: the config's local_dir if set (read only: no rule
    has an output there), else the shared downloads, where its download rule writes."""
    return source_config(name).get("local_dir") or downloaded(name)


def coco_instances(root):
    """COCO's instances file of every configured split, under `root`."""
    return expand(
        f"{root}/annotations/instances_{{split}}.json",
        split=source_config("coco")["splits"],
    )


def downloaded(name):
    """Where a source's downloads go (always under downloads_dir, never in a local_dir)."""
    return f"{DOWNLOADS}/{name}"


def synthetic_images(wildcards):
    """Where a generated dataset's images are written, and read from."""
    return f"{downloaded(wildcards.synth)}/images"


def local_files(name, relpaths):
    """The files of a source's local_dir, as inputs (changing one reruns the source), or none."""
    root = source_config(name).get("local_dir")
    return [f"{root}/{rel}" for rel in relpaths] if root else []


def source_rejects(name):
    """A source's bad records of one experiment (rows of the rejects table)."""
    return f"results/{{exp}}/sources/{name}.rejects.parquet"


def failures_list(rule_name):
    """Where a source lists its failed downloads: under logs/, so a failed job keeps it."""
    return f"logs/{rule_name}/{{exp}}.failures.tsv"


def openimages_metadata_files(root):
    settings = from_dict(OpenImagesSettings, source_config("openimages"))
    return list(metadata_files(settings, Path(root) / "metadata").values())


def dataset_annotations(wildcards):
    """The annotation files of a named COCO-format dataset (inputs only, never outputs)."""
    return annotation_list(source_config(wildcards.dataset)["annotations"])
