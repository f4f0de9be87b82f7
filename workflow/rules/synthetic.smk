# The synthetic source: a COCO-format dataset generated offline from a seed, read like COCO.


rule synthetic_dataset:
    output:
        annotations=f"{DOWNLOADS}/synthetic/instances.json",
    log:
        "logs/synthetic_dataset.log",
    benchmark:
        "logs/synthetic_dataset.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
    params:
        settings=source_config("synthetic"),
        images_dir=f"{DOWNLOADS}/synthetic/images",
    script:
        RUN_SCRIPT


rule synthetic_boxes:
    input:
        annotations=rules.synthetic_dataset.output.annotations,
    output:
        boxes="results/{exp}/sources/synthetic.parquet",
        rejects=source_rejects("synthetic"),
    log:
        "logs/synthetic_boxes/{exp}.log",
    benchmark:
        "logs/synthetic_boxes/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
    params:
        categories=exp_setting("categories"),
        images_dir=f"{DOWNLOADS}/synthetic/images",
        bad_records=config["bad_records"],
    script:
        RUN_SCRIPT
