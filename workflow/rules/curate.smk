# Curation with FiftyOne (optional: pip install -e '.[curate]'). Not part of the main DAG:
#   snakemake --cores 1 results/demo/curate/dataset.json          build or refresh the dataset
#   python -m pipeline.curate gan-crops-demo                      review in the App, tag `reject`
#   snakemake --cores 1 --forcerun curate_export results/demo/curate/exported.json
# The export writes resources/exclusions/{exp}.txt; the next run redoes only shards and after.


rule curate_dataset:
    input:
        decisions=rules.filters_apply.output.decisions,
        crops_dir=rules.crops_extract.output.crops_dir,
        exclusions=exclusions_file,
    output:
        record="results/{exp}/curate/dataset.json",
    log:
        "logs/curate_dataset/{exp}.log",
    benchmark:
        "logs/curate_dataset/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        name=lambda wildcards: f"{config['curate']['dataset_prefix']}-{wildcards.exp}",
        tag=config["curate"]["tag"],
    script:
        "../scripts/curate_dataset.py"


rule curate_export:
    input:
        record=rules.curate_dataset.output.record,
    output:
        record="results/{exp}/curate/exported.json",
    log:
        "logs/curate_export/{exp}.log",
    benchmark:
        "logs/curate_export/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
    params:
        name=lambda wildcards: f"{config['curate']['dataset_prefix']}-{wildcards.exp}",
        tag=config["curate"]["tag"],
        exclusions=lambda wildcards: f"resources/exclusions/{wildcards.exp}.txt",
    script:
        "../scripts/curate_export.py"
