# Sample grid from fixed latents, SWD against held-out crops (and the real-vs-real floor), loss plot.


rule evaluate_run:
    input:
        model=rules.train_gan.output.model,
        stats=rules.train_gan.output.stats,
        shards=rules.shards_write.output.shards,
    output:
        samples="results/{exp}/samples.png",
        metrics="results/{exp}/metrics.json",
        losses="results/{exp}/losses.png",
    log:
        "logs/evaluate_run/{exp}.log",
    benchmark:
        "benchmarks/evaluate_run/{exp}.tsv"
    conda:
        ENV
    threads: MAX_THREADS
    resources:
        mem_mb=4000,
    params:
        evaluate=exp_setting("evaluate"),
        seed=exp_setting("seed"),
    script:
        RUN_SCRIPT
