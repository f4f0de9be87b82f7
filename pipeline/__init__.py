"""From public detection and face datasets to a trained GAN for one category.

Each stage of the Snakemake workflow is one function of this package; the rules only name
inputs, outputs and params (see workflow/rules/ and pipeline/runner.py).
"""

__version__ = "0.1.0"
