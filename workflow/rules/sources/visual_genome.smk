# Visual Genome 1.4: object and image metadata (shared), then per experiment the matching objects
# and only their images (shared too). With local_dir the files are read where they are.


rule visual_genome_metadata:
    output:
        image_data=f"{downloaded('visual_genome')}/image_data.json",
        objects=f"{downloaded('visual_genome')}/objects.json",
    log:
        "logs/visual_genome_metadata.log",
    benchmark:
        "logs/visual_genome_metadata.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("visual_genome"),
    script:
        "../../scripts/visual_genome_metadata.py"


rule visual_genome_boxes:
    input:
        image_data=f"{source_root('visual_genome')}/image_data.json",
        objects=f"{source_root('visual_genome')}/objects.json",
    output:
        boxes="results/{exp}/sources/visual_genome.parquet",
        rejects=source_rejects("visual_genome"),
    log:
        "logs/visual_genome_boxes/{exp}.log",
    benchmark:
        "logs/visual_genome_boxes/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        downloads=1,
    params:
        settings=source_config("visual_genome"),
        categories=exp_setting("categories"),
        drop_coco_images=lambda wildcards: "coco" in experiment(wildcards)["sources"]
        and source_config("visual_genome")["coco_wins"],
        # VG's folder: image_data.json, objects.json, VG_100K/, VG_100K_2/
        image_root=lambda wildcards, input: str(Path(input.image_data).parent),
        failures=failures_list("visual_genome_boxes"),
    script:
        "../../scripts/visual_genome_boxes.py"
