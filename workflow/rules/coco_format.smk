# Datasets of the user's own in COCO format, named under `sources:` (FiftyOne, CVAT, Roboflow
# exports ...). Their files are inputs only: nothing is downloaded and nothing there is written.


rule coco_format_boxes:
    input:
        dataset_annotations,
    output:
        boxes="results/{exp}/sources/{dataset}.parquet",
        rejects="results/{exp}/sources/{dataset}.rejects.parquet",
    log:
        "logs/coco_format_boxes/{exp}.{dataset}.log",
    benchmark:
        "logs/coco_format_boxes/{exp}.{dataset}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        settings=lambda wildcards: source_config(wildcards.dataset),
        categories=exp_setting("categories"),
        bad_records=config["bad_records"],
    script:
        "../scripts/coco_format_boxes.py"
