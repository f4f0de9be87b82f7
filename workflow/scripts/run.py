"""Script of every rule: hand the job to pipeline/runner.py, which runs the rule's adapter
(pipeline/adapters/) and so its stage function in pipeline/."""

from pipeline.runner import run_rule

run_rule(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
