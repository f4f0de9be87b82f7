"""What every rule's script does around its stage: `with job_context(snakemake) as smk:`.

Each rule names its own script (`script: "../scripts/<rule>.py"` in workflow/rules/): the script
turns the job's params, inputs and outputs into the stage function's typed arguments and calls
it inside this context, which sends logging to the rule's log file (and, under SLURM, to the
attempt's own copy), times the stage and records the provenance of the result beside its first
output (pipeline/provenance.py). A script imports only its own stage: a crop job never loads
torch.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.provenance import write_provenance

log = logging.getLogger("pipeline")


def setup_logging(log_path: str | None) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(fmt)
    root.addHandler(console)
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        for path, mode in ((Path(log_path), "w"), (attempt_log(Path(log_path)), "a")):
            if path is not None:
                handler = logging.FileHandler(path, mode=mode)
                handler.setFormatter(fmt)
                root.addHandler(handler)
    logging.captureWarnings(True)


def attempt_log(log_path: Path) -> Path | None:
    """Under SLURM, this attempt's own copy of the rule's log, beside it:
    `{name}.slurm-{job id}[-restart{n}].log`. Snakemake deletes a rule's log before it runs the
    rule again, and SLURM reruns a requeued job under the same id: each attempt keeps its own."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    restart = os.environ.get("SLURM_RESTART_COUNT", "0")
    suffix = f"slurm-{job}" + (f"-restart{restart}" if restart not in ("", "0") else "")
    return log_path.with_name(f"{log_path.stem}.{suffix}.log")


@contextmanager
def job_context(smk: Any) -> Iterator[Any]:
    """Around the stage of rule `smk.rule`: its log, its timing, its provenance once it succeeded."""
    setup_logging(smk.log[0] if len(smk.log) else None)
    started = time.time()
    log.info("rule %s %s", smk.rule, dict(smk.wildcards))
    try:
        yield smk
    except Exception:
        log.exception("rule %s failed", smk.rule)
        raise
    write_provenance(smk, started)
    log.info("rule %s done in %.1f s", smk.rule, time.time() - started)
