"""sweep_compare (rules/sweep.smk): rank a sweep's runs, keep the best one's samples and metrics
as the experiment's, and write the comparison page."""

from pathlib import Path

from pipeline import report, sweep
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    runs = list(smk.params.runs)

    def by_run(paths):
        return dict(zip(runs, (Path(p) for p in paths), strict=True))

    out = smk.output
    winner = sweep.compare(
        by_run(smk.input.metrics),
        samples_paths=by_run(smk.input.samples),
        evals_paths=by_run(smk.input.evals),
        metric=smk.params.metric,
        out_csv=Path(out.csv),
        out_png=Path(out.png),
        out_samples=Path(out.samples),
        out_metrics=Path(out.metrics),
    )
    report.sweep_report(
        smk.wildcards.exp,
        table_csv=Path(out.csv),
        plot_png=Path(out.png),
        samples_png=Path(out.samples),
        winner=winner,
        out=Path(out.report),
    )
