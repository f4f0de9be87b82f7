# Visual Genome 1.4: object and image metadata (shared), then per experiment the matching objects
# and only their images (shared too).


rule visual_genome_metadata:
    output:
        image_data=f"{source_root('visual_genome')}/image_data.json",
        objects=f"{source_root('visual_genome')}/objects.json",
    log:
        "logs/visual_genome_metadata.log",
    benchmark:
        "benchmarks/visual_genome_metadata.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        downloads=1,
    params:
        settings=source_config("visual_genome"),
    script:
        RUN_SCRIPT


rule visual_genome_boxes:
    input:
        image_data=rules.visual_genome_metadata.output.image_data,
        objects=rules.visual_genome_metadata.output.objects,
    output:
        boxes="results/{exp}/sources/visual_genome.parquet",
        failures="results/{exp}/sources/visual_genome.failures.tsv",
    log:
        "logs/visual_genome_boxes/{exp}.log",
    benchmark:
        "benchmarks/visual_genome_boxes/{exp}.tsv"
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
    script:
        RUN_SCRIPT
