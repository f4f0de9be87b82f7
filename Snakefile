# From public detection and face datasets to a trained GAN for one category.
# Data flows one way: sources -> boxes -> crops -> shards -> train -> evaluate.
# Run the offline demo:  snakemake --cores 2 results/demo/report.html


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


# the built-in sources: every rule file in workflow/rules/sources/
for _source in BUILTIN_SOURCES:

    include: f"workflow/rules/sources/{_source}.smk"


include: "workflow/rules/coco_format.smk"
include: "workflow/rules/boxes.smk"
include: "workflow/rules/crops.smk"
include: "workflow/rules/filters.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/curate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/sweep.smk"


# Every rule's script exists and what it imports from pipeline/ does: stop at load, not after
# the downloads (pipeline/rule_scripts.py).
check_rule_scripts(workflow)


# On a cluster, compute nodes often have no internet: with local_downloads (profiles/slurm sets
# it) the rules that download run where Snakemake runs, and the `downloads` resource caps them.
if config["local_downloads"]:
    # the rules that declare the `downloads` resource: what the `localrules` directive does
    workflow.localrules(*download_rules(workflow))


# With the SLURM executor: the jobs the cluster can never start stop the run before the first
# submission, with a table (python -m pipeline.cluster prints it without running anything).
onstart:
    check_before_submit(workflow, enabled=config["preflight"])


rule all:
    default_target: True
    input:
        "results/demo/samples.png",
        "results/demo/report.html",
