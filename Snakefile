# From public detection and face datasets to a trained GAN for one category.
# Data flows one way: sources -> boxes -> crops -> shards -> train -> evaluate.
# Run the offline demo:  snakemake --cores 2 results/demo/report.html


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/coco.smk"
include: "workflow/rules/coco_format.smk"
include: "workflow/rules/visual_genome.smk"
include: "workflow/rules/openimages.smk"
include: "workflow/rules/celeba.smk"
include: "workflow/rules/ffhq.smk"
include: "workflow/rules/boxes.smk"
include: "workflow/rules/crops.smk"
include: "workflow/rules/filters.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/curate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/sweep.smk"


rule all:
    default_target: True
    input:
        "results/demo/samples.png",
        "results/demo/report.html",
