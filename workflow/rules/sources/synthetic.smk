# Generated sources: the built-in synthetic one and datasets named with format: synthetic, each a
# COCO-format dataset generated offline from a seed under downloads_dir, read like COCO.


rule synthetic_dataset:
    output:
        annotations=f"{downloaded('{synth}')}/instances.json",
    log:
        "logs/synthetic_dataset/{synth}.log",
    benchmark:
        "logs/synthetic_dataset/{synth}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
    params:
        settings=lambda wildcards: source_config(wildcards.synth),
        images_dir=synthetic_images,
    script:
        "../../scripts/synthetic_dataset.py"


rule synthetic_boxes:
    input:
        annotations=rules.synthetic_dataset.output.annotations,
    output:
        boxes="results/{exp}/sources/{synth}.parquet",
        rejects=source_rejects("{synth}"),
    log:
        "logs/synthetic_boxes/{exp}.{synth}.log",
    benchmark:
        "logs/synthetic_boxes/{exp}.{synth}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
    params:
        categories=exp_setting("categories"),
        images_dir=synthetic_images,
        bad_records=config["bad_records"],
    script:
        "../../scripts/synthetic_boxes.py"
