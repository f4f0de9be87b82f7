# Sweeps: an experiment with a `sweep:` block trains one run per point of the sweep (each with
# the experiment's train settings plus the run's own), evaluates and reports each run like a
# plain experiment, then ranks the runs by the sweep's metric (pipeline/sweep.py).


# One run of a sweep: the same job on the experiment's shards, with the run's train settings.
use rule train_experiment as train_sweep_run with:
    output:
        **train_outputs("results/{exp}/runs/{run}"),
    log:
        "logs/train_sweep_run/{exp}/{run}.log",
    benchmark:
        "logs/train_sweep_run/{exp}/{run}.benchmark.tsv"


use rule evaluate_experiment as evaluate_sweep_run with:
    input:
        model=evaluated_model,
        stats=rules.train_sweep_run.output.stats,
        evals=rules.train_sweep_run.output.evals,
        shards=rules.shards_write.output.shards,
        reference=rules.evaluate_reference.output.features,
    output:
        **eval_outputs("results/{exp}/runs/{run}"),
    log:
        "logs/evaluate_sweep_run/{exp}/{run}.log",
    benchmark:
        "logs/evaluate_sweep_run/{exp}/{run}.benchmark.tsv"
    wildcard_constraints:
        exp=one_of(SWEPT),


use rule report_experiment as report_sweep_run with:
    input:
        **report_inputs(rules.evaluate_sweep_run.output, rules.train_sweep_run.output),
    output:
        report="results/{exp}/runs/{run}/report.html",
    log:
        "logs/report_sweep_run/{exp}/{run}.log",
    benchmark:
        "logs/report_sweep_run/{exp}/{run}.benchmark.tsv"
    wildcard_constraints:
        exp=one_of(SWEPT),


# A sweep's runs ranked by its metric; the best run's samples and metrics become the experiment's.
rule sweep_compare:
    input:
        metrics=sweep_files("metrics.json"),
        samples=sweep_files("samples.png"),
        evals=sweep_files("train/evals.jsonl"),
        reports=sweep_files("report.html"),
    output:
        csv="results/{exp}/runs/comparison.csv",
        png="results/{exp}/runs/comparison.png",
        samples="results/{exp}/samples.png",
        metrics="results/{exp}/metrics.json",
        report="results/{exp}/report.html",
    log:
        "logs/sweep_compare/{exp}.log",
    benchmark:
        "logs/sweep_compare/{exp}.benchmark.tsv"
    wildcard_constraints:
        exp=one_of(SWEPT),
    conda:
        ENV
    resources:
        mem_mb=1000,
    params:
        runs=sweep_runs,
        metric=sweep_metric,
    script:
        "../scripts/sweep_compare.py"
