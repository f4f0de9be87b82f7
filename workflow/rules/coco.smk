# COCO 2017: the annotations archive (shared), then per experiment only the images that hold
# its categories (shared too: an image fetched once is never fetched again).


rule coco_annotations:
    output:
        expand(
            f"{source_root('coco')}/annotations/instances_{{split}}.json",
            split=source_config("coco")["splits"],
        ),
    log:
        "logs/coco_annotations.log",
    benchmark:
        "benchmarks/coco_annotations.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        downloads=1,
    params:
        settings=source_config("coco"),
        archive=f"{source_root('coco')}/annotations_trainval2017.zip",
    script:
        RUN_SCRIPT


rule coco_boxes:
    input:
        rules.coco_annotations.output,
    output:
        boxes="results/{exp}/sources/coco.parquet",
        failures="results/{exp}/sources/coco.failures.tsv",
    log:
        "logs/coco_boxes/{exp}.log",
    benchmark:
        "benchmarks/coco_boxes/{exp}.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        downloads=1,
    params:
        settings=source_config("coco"),
        categories=exp_setting("categories"),
    script:
        RUN_SCRIPT
