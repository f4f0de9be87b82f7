# FFHQ: aligned face thumbnails, each image a whole face. Its files are downloaded once into
# downloads_dir, or read from local_dir (inputs only: checked, never written, moved or deleted);
# then the experiment's boxes are written.


rule ffhq_boxes:
    input:
        local_files("ffhq", ["ffhq-dataset-v2.json"]),
    output:
        boxes="results/{exp}/sources/ffhq.parquet",
        rejects=source_rejects("ffhq"),
    log:
        "logs/ffhq_boxes/{exp}.log",
    benchmark:
        "logs/ffhq_boxes/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("ffhq"),
        # where its files are: local_dir (read in place) or downloads_dir (fetched there)
        folder=lambda wildcards: source_root("ffhq"),
        mismatch=config["local_checksum_mismatch"],
        failures=failures_list("ffhq_boxes"),
    script:
        "../../scripts/ffhq_boxes.py"
