# Train the DCGAN. Checkpoints live in results/{exp}/train/checkpoints (not an output, so they
# survive an interrupted job); a rerun resumes from the last one. `gpu` is train.gpus: with more
# than one, the job runs torchrun with one DDP process per GPU, all on one node (multi-node
# training is not supported). best.pt is the model with the
# lowest SWD measured during training (model selection), model.pt the last.


rule train_experiment:
    input:
        shards=rules.shards_write.output.shards,
    output:
        **train_outputs("results/{exp}"),
    log:
        "logs/train_experiment/{exp}.log",
    benchmark:
        "logs/train_experiment/{exp}.benchmark.tsv"
    conda:
        ENV
    threads: MAX_THREADS
    resources:
        mem_mb=measured_mem_mb("train", processes=train_gpus),
        gpu=train_gpus,
        # torchrun starts one process per GPU on one machine: never spread over nodes
        nodes=1,
    params:
        train=train_settings,
        seed=exp_setting("seed"),
    script:
        "../scripts/train_experiment.py"
