# Face sources: CelebA (aligned images, centre crop) and FFHQ (aligned thumbnails, whole image).
# Each downloads its shared files (or reads them from local_dir) and writes the experiment's boxes.


rule celeba_boxes:
    output:
        boxes="results/{exp}/sources/celeba.parquet",
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
        folder=f"{DOWNLOADS}/celeba",
        image_root=f"{DOWNLOADS}/celeba/images",
    script:
        RUN_SCRIPT


rule ffhq_boxes:
    output:
        boxes="results/{exp}/sources/ffhq.parquet",
        failures="results/{exp}/sources/ffhq.failures.tsv",
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
        folder=f"{DOWNLOADS}/ffhq",
    script:
        RUN_SCRIPT
