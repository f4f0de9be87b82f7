# COCO: the annotations archive (shared), then per experiment only the images that hold its
# categories (shared too: an image fetched once is never fetched again). With local_dir the
# files are read where they are: no rule has an output there, so nothing there is ever written.


rule coco_annotations:
    output:
        coco_instances(downloaded("coco")),
    log:
        "logs/coco_annotations.log",
    benchmark:
        "logs/coco_annotations.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        downloads=1,
    params:
        settings=source_config("coco"),
        archive=f"{downloaded('coco')}/annotations_trainval2017.zip",
    script:
        "../../scripts/coco_annotations.py"


rule coco_boxes:
    input:
        coco_instances(source_root("coco")),
    output:
        boxes="results/{exp}/sources/coco.parquet",
        rejects=source_rejects("coco"),
    log:
        "logs/coco_boxes/{exp}.log",
    benchmark:
        "logs/coco_boxes/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        downloads=1,
    params:
        settings=source_config("coco"),
        categories=exp_setting("categories"),
        # {root}/annotations/instances_{split}.json -> {root}: images are {root}/{split}/
        image_root=lambda wildcards, input: str(Path(input[0]).parent.parent),
        bad_records=config["bad_records"],
        failures=failures_list("coco_boxes"),
        # each instances file read once: its table of all boxes, for every later experiment
        tables=f"{downloaded('coco')}/tables",
    script:
        "../../scripts/coco_boxes.py"
