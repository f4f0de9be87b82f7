# One boxes table per experiment: the rows of every source it names.


rule boxes_merge:
    input:
        lambda wildcards: expand(
            "results/{{exp}}/sources/{source}.parquet",
            source=experiment(wildcards)["sources"],
        ),
    output:
        boxes="results/{exp}/boxes.parquet",
    log:
        "logs/boxes_merge/{exp}.log",
    benchmark:
        "benchmarks/boxes_merge/{exp}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    script:
        RUN_SCRIPT
