# Filters: compare each crop's scores and flags with the experiment's thresholds (cheap: no
# decoding), find near-duplicates, and draw a contact sheet of the rejected crops per reason.


rule filters_apply:
    input:
        crops=rules.crops_extract.output.crops,
        crops_dir=rules.crops_extract.output.crops_dir,
        boxes=rules.boxes_merge.output.boxes,
    output:
        decisions="results/{exp}/filters.parquet",
        sheets=directory("results/{exp}/filters"),
    log:
        "logs/filters_apply/{exp}.log",
    benchmark:
        "logs/filters_apply/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        # measured peak 167 MB on 2986 crops (benchmarks/memory.py)
        mem_mb=1000,
    params:
        filters=exp_setting("filters"),
    script:
        "../scripts/filters_apply.py"
