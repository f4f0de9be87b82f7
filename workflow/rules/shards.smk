# Pack accepted crops into uint8 NumPy shards with a manifest (see pipeline/shards.py).


rule shards_write:
    input:
        crops=rules.crops_extract.output.crops,
        crops_dir=rules.crops_extract.output.crops_dir,
    output:
        shards=directory("results/{exp}/shards"),
    log:
        "logs/shards_write/{exp}.log",
    benchmark:
        "benchmarks/shards_write/{exp}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        shards=exp_setting("shards"),
        image_size=exp_setting("image_size"),
        seed=exp_setting("seed"),
    script:
        RUN_SCRIPT
