# Evaluation: reference features of the real crops (once per shard set), then pictures and
# metrics of the trained generator, then one self-contained HTML report per experiment and an
# index comparing the experiments that have been evaluated.


rule evaluate_reference:
    input:
        shards=rules.shards_write.output.shards,
        weights=inception_weights_file,
    output:
        features="results/{exp}/reference/features.pt",
    log:
        "logs/evaluate_reference/{exp}.log",
    benchmark:
        "logs/evaluate_reference/{exp}.benchmark.tsv"
    conda:
        ENV
    threads: MAX_THREADS
    resources:
        mem_mb=measured_mem_mb("evaluate_reference"),
    params:
        evaluate=exp_setting("evaluate"),
        seed=exp_setting("seed"),
    script:
        "../scripts/evaluate_reference.py"


rule evaluate_experiment:
    input:
        model=evaluated_model,
        stats=rules.train_experiment.output.stats,
        evals=rules.train_experiment.output.evals,
        shards=rules.shards_write.output.shards,
        reference=rules.evaluate_reference.output.features,
    output:
        **eval_outputs("results/{exp}"),
    log:
        "logs/evaluate_experiment/{exp}.log",
    benchmark:
        "logs/evaluate_experiment/{exp}.benchmark.tsv"
    wildcard_constraints:
        exp=one_of(PLAIN),
    conda:
        ENV
    threads: MAX_THREADS
    resources:
        mem_mb=measured_mem_mb("evaluate_experiment"),
    params:
        evaluate=exp_setting("evaluate"),
        seed=exp_setting("seed"),
    script:
        "../scripts/evaluate_experiment.py"


rule report_experiment:
    input:
        # metrics and each figure of the report, by name (pipeline/layout.py)
        **report_inputs(rules.evaluate_experiment.output, rules.train_experiment.output),
    output:
        report="results/{exp}/report.html",
    log:
        "logs/report_experiment/{exp}.log",
    benchmark:
        "logs/report_experiment/{exp}.benchmark.tsv"
    wildcard_constraints:
        exp=one_of(PLAIN),
    conda:
        ENV
    resources:
        mem_mb=1000,
    params:
        settings=report_settings,
    script:
        "../scripts/report_experiment.py"


rule report_index:
    input:
        metrics=evaluated_experiments,
    output:
        html="results/index.html",
        csv="results/experiments.csv",
    log:
        "logs/report_index.log",
    benchmark:
        "logs/report_index.benchmark.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
    script:
        "../scripts/report_index.py"
