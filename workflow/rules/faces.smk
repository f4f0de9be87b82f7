# Face sources: CelebA (aligned images, centre crop) and FFHQ (aligned thumbnails, whole image).
# Each downloads its shared files into downloads_dir, or reads them from local_dir (inputs only:
# checked, never written, moved or deleted), and writes the experiment's boxes.


rule celeba_boxes:
    input:
        local_files("celeba", list(source_config("celeba")["files"])),
    output:
        boxes="results/{exp}/sources/celeba.parquet",
        rejects=source_rejects("celeba"),
    log:
        "logs/celeba_boxes/{exp}.log",
    benchmark:
        "benchmarks/celeba_boxes/{exp}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("celeba"),
        folder=downloaded("celeba"),
        image_root=f"{downloaded('celeba')}/images",
        mismatch=config["local_checksum_mismatch"],
    script:
        RUN_SCRIPT


rule ffhq_boxes:
    input:
        local_files("ffhq", ["ffhq-dataset-v2.json"]),
    output:
        boxes="results/{exp}/sources/ffhq.parquet",
        rejects=source_rejects("ffhq"),
    log:
        "logs/ffhq_boxes/{exp}.log",
    benchmark:
        "benchmarks/ffhq_boxes/{exp}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("ffhq"),
        folder=downloaded("ffhq"),
        mismatch=config["local_checksum_mismatch"],
        failures=failures_list("ffhq_boxes"),
    script:
        RUN_SCRIPT
