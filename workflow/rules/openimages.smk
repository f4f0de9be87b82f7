# OpenImages V7: class names, box and image CSVs (shared), then per experiment the boxes of its
# categories, streamed, and only their images (shared too).


rule openimages_metadata:
    output:
        openimages_metadata_files(),
    log:
        "logs/openimages_metadata.log",
    benchmark:
        "benchmarks/openimages_metadata.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        downloads=1,
    params:
        settings=source_config("openimages"),
    script:
        RUN_SCRIPT


rule openimages_boxes:
    input:
        rules.openimages_metadata.output,
    output:
        boxes="results/{exp}/sources/openimages.parquet",
        failures="results/{exp}/sources/openimages.failures.tsv",
    log:
        "logs/openimages_boxes/{exp}.log",
    benchmark:
        "benchmarks/openimages_boxes/{exp}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("openimages"),
        categories=exp_setting("categories"),
        image_root=f"{source_root('openimages')}/images",
    script:
        RUN_SCRIPT
