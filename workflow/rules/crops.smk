# Crop every box: margin, square, resize; rejected boxes are listed with their reason.


rule crops_extract:
    input:
        boxes=rules.boxes_merge.output.boxes,
        record_rejects=rules.boxes_merge.output.rejects,
    output:
        crops_dir=directory("results/{exp}/crops"),
        crops="results/{exp}/crops.parquet",
        rejects="results/{exp}/rejects.parquet",
    log:
        "logs/crops_extract/{exp}.log",
    benchmark:
        "logs/crops_extract/{exp}.benchmark.tsv"
    conda:
        ENV
    threads: MAX_THREADS
    resources:
        # measured peak 387 MB with 2 threads on 2500 pictures of 256-640 px (benchmarks/memory.py)
        mem_mb=2000,
    params:
        crops=exp_setting("crops"),
        image_size=exp_setting("image_size"),
        exif=source_exif,
        bad_images=config["bad_images"],
    script:
        "../scripts/crops_extract.py"
