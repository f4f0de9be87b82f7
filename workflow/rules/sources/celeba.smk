# CelebA: aligned face images, each cropped at its centre. Its files are downloaded once into
# downloads_dir, or read from local_dir (inputs only: checked, never written, moved or deleted);
# then the experiment's boxes are written.


rule celeba_boxes:
    input:
        local_files("celeba", list(source_config("celeba")["files"])),
    output:
        boxes="results/{exp}/sources/celeba.parquet",
        rejects=source_rejects("celeba"),
    log:
        "logs/celeba_boxes/{exp}.log",
    benchmark:
        "logs/celeba_boxes/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("celeba"),
        # where its files are: local_dir (read in place) or downloads_dir (fetched there)
        folder=lambda wildcards: source_root("celeba"),
        image_root=f"{downloaded('celeba')}/images",
        mismatch=config["local_checksum_mismatch"],
    script:
        "../../scripts/celeba_boxes.py"
