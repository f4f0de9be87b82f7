"""Adapter of every rule: hand the job to its stage function in pipeline/ (see pipeline/runner.py)."""

from pipeline.runner import run_rule

run_rule(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
