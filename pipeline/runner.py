"""The one entry point of every rule: `run_rule(snakemake)` from workflow/scripts/run.py.

It looks up the rule's adapter (pipeline/adapters/: turns the job's params, inputs and outputs
into typed arguments of a stage function), sets up logging to the rule's log file, runs it, and
records the provenance of the result beside its first output (pipeline/provenance.py).

An adapter's module is imported only when one of its rules runs: a crop job never loads torch.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.provenance import write_provenance

log = logging.getLogger("pipeline")

# Rule -> "module:function" of its adapter, by stage.
ADAPTERS: dict[str, str] = {
    **{
        rule: f"pipeline.adapters.sources:{rule}"
        for rule in (
            "synthetic_dataset",
            "synthetic_boxes",
            "coco_annotations",
            "coco_boxes",
            "coco_format_boxes",
            "visual_genome_metadata",
            "visual_genome_boxes",
            "openimages_metadata",
            "openimages_boxes",
            "celeba_boxes",
            "ffhq_boxes",
        )
    },
    **{
        rule: f"pipeline.adapters.data:{rule}"
        for rule in ("boxes_merge", "crops_extract", "filters_apply")
    },
    **{
        rule: f"pipeline.adapters.dataset:{rule}"
        for rule in ("shards_write", "curate_dataset", "curate_export")
    },
    **{
        rule: f"pipeline.adapters.model:{rule}"
        for rule in (
            "train_gan",
            "evaluate_reference",
            "evaluate_run",
            "sweep_compare",
        )
    },
    **{rule: f"pipeline.adapters.report:{rule}" for rule in ("report_experiment", "report_index")},
    # A sweep's runs: the same adapters as the rules they are declared from (`use rule`).
    "train_run": "pipeline.adapters.model:train_gan",
    "evaluate_sweep_run": "pipeline.adapters.model:evaluate_run",
    "report_run": "pipeline.adapters.report:report_experiment",
}


def adapter(rule: str) -> Callable[[Any], None]:
    """The adapter function of `rule`, importing its module now."""
    target = ADAPTERS.get(rule)
    if target is None:
        raise KeyError(f"no stage function for rule {rule!r}; known: {sorted(ADAPTERS)}")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


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


def run_rule(smk) -> None:
    """Run the stage of rule `smk.rule` with the job's inputs, outputs and params."""
    setup_logging(smk.log[0] if len(smk.log) else None)
    try:
        stage = adapter(smk.rule)  # imported before the clock starts, as when imports were eager
    except Exception:
        log.exception("rule %s: no adapter", smk.rule)
        raise
    started = time.time()
    log.info("rule %s %s", smk.rule, dict(smk.wildcards))
    try:
        stage(smk)
    except Exception:
        log.exception("rule %s failed", smk.rule)
        raise
    write_provenance(smk, started)
    log.info("rule %s done in %.1f s", smk.rule, time.time() - started)
