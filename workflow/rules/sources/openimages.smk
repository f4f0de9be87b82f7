# OpenImages V7: class names, box and image CSVs (shared), then per experiment the boxes of its
# categories, streamed, and only their images (shared too). With local_dir the files are read
# where they are.


rule openimages_metadata:
    output:
        openimages_metadata_files(downloaded("openimages")),
    log:
        "logs/openimages_metadata.log",
    benchmark:
        "logs/openimages_metadata.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        downloads=1,
    params:
        settings=source_config("openimages"),
    script:
        "../../scripts/openimages_metadata.py"


rule openimages_boxes:
    input:
        openimages_metadata_files(source_root("openimages")),
    output:
        boxes="results/{exp}/sources/openimages.parquet",
        rejects=source_rejects("openimages"),
    log:
        "logs/openimages_boxes/{exp}.log",
    benchmark:
        "logs/openimages_boxes/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("openimages"),
        categories=exp_setting("categories"),
        image_root=f"{source_root('openimages')}/images",
        failures=failures_list("openimages_boxes"),
    script:
        "../../scripts/openimages_boxes.py"
