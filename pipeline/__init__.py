"""From public detection and face datasets to a trained GAN for one category.

Each stage of the Snakemake workflow is one function of this package; the rules only name
inputs, outputs, params and a script (see workflow/rules/, workflow/scripts/ and
pipeline/job_context.py).
"""

import os

# torch's CPU threads (its OpenMP team) sleep while they wait for each other instead of spinning.
# Spinning is ~20% faster on an idle machine, but when another process holds a core every one of
# the hundreds of small operations of a training step waits for a descheduled thread: measured
# 20-90x slower on 2 shared cores, where passive waiting loses about what the load takes. Read
# when torch loads, so it is set here, before any stage imports torch; OMP_WAIT_POLICY=ACTIVE in
# the environment keeps spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
