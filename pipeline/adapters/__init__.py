"""Rule adapters: each turns one Snakemake job (`smk`: its params, inputs, outputs, wildcards,
threads) into typed arguments for a stage function, grouped by stage. pipeline/runner.py imports
a module only when one of its rules runs, so a crop job never loads torch."""
