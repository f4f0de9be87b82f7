# Pack the accepted crops, less the user's exclusions (resources/exclusions/{exp}.txt, written by
# hand or by the curation rules), into uint8 NumPy shards with a manifest and a summary table.


rule shards_write:
    input:
        decisions=rules.filters_apply.output.decisions,
        rejects=rules.crops_extract.output.rejects,
        crops_dir=rules.crops_extract.output.crops_dir,
        exclusions=exclusions_file,
    output:
        shards=directory("results/{exp}/shards"),
    log:
        "logs/shards_write/{exp}.log",
    benchmark:
        "logs/shards_write/{exp}.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        shards=exp_setting("shards"),
        image_size=exp_setting("image_size"),
        seed=exp_setting("seed"),
    script:
        "../scripts/shards_write.py"
