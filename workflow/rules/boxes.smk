# One boxes table per experiment: the rows of every source it names; and one table of the
# sources' bad records (skipped image entries and annotations, with reason and detail).


rule boxes_merge:
    input:
        boxes=lambda wildcards: expand(
            "results/{{exp}}/sources/{source}.parquet",
            source=experiment(wildcards)["sources"],
        ),
        rejects=lambda wildcards: expand(
            "results/{{exp}}/sources/{source}.rejects.parquet",
            source=experiment(wildcards)["sources"],
        ),
    output:
        boxes="results/{exp}/boxes.parquet",
        rejects="results/{exp}/record_rejects.parquet",
    log:
        "logs/boxes_merge/{exp}.log",
    benchmark:
        "logs/boxes_merge/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        # measured peak 157 MB on 2986 boxes (benchmarks/memory.py)
        mem_mb=1000,
    script:
        "../scripts/boxes_merge.py"
