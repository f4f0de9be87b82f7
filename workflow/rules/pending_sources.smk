# Sources declared but not built yet (issue 3): planned in the DAG, they stop with a clear error.


rule pending_source_boxes:
    output:
        boxes="results/{exp}/sources/{source}.parquet",
    log:
        "logs/pending_source_boxes/{exp}_{source}.log",
    benchmark:
        "benchmarks/pending_source_boxes/{exp}_{source}.tsv"
    wildcard_constraints:
        source="visual_genome|openimages|celeba|ffhq",
    conda:
        ENV
    resources:
        mem_mb=1000,
    params:
        settings=lambda wildcards: source_config(wildcards.source),
        categories=exp_setting("categories"),
    script:
        RUN_SCRIPT
