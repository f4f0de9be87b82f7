"""The one entry point of every rule: `run_rule(snakemake)` from workflow/scripts/run.py.

It looks up the stage function for the rule, sets up logging to the rule's log file, records the
provenance of the result (resolved settings, the experiment's config, seed, versions, git commit)
beside its first output, and turns the rule's params into typed settings.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import (
    boxes,
    crops,
    curate,
    evaluate,
    filters,
    html_report,
    reference,
    shards,
    sweep,
)
from pipeline.config import (
    CropSettings,
    EvalSettings,
    ShardSettings,
    TrainSettings,
    from_dict,
)
from pipeline.download import DownloadSettings
from pipeline.gan import devices, train
from pipeline.io import write_json, write_parquet
from pipeline.records import BadRecordSettings, RecordRejects, rejects_frame
from pipeline.sources import (
    celeba,
    coco,
    coco_format,
    ffhq,
    openimages,
    synthetic,
    visual_genome,
)

log = logging.getLogger("pipeline")
PACKAGES = [
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "pyarrow",
    "pillow",
    "pycocotools",
    "snakemake",
    "requests",
]


def download_settings(config: dict) -> DownloadSettings:
    return from_dict(DownloadSettings, config.get("download", {}))


def _synthetic_dataset(smk) -> None:
    settings = from_dict(synthetic.SyntheticSettings, smk.params.settings)
    synthetic.generate(settings, Path(smk.params.images_dir), Path(smk.output.annotations))


def _write_source(smk, frame: pd.DataFrame, rejects: pd.DataFrame) -> None:
    write_parquet(frame, smk.output.boxes)
    write_parquet(rejects, smk.output.rejects)


def _bad_records(smk) -> BadRecordSettings:
    return from_dict(BadRecordSettings, smk.params.bad_records)


def _synthetic_boxes(smk) -> None:
    rejects = RecordRejects("synthetic")
    frame = coco.read_boxes(
        Path(smk.input.annotations),
        Path(smk.params.images_dir),
        tuple(smk.params.categories),
        "synthetic",
        "train",
        rejects=rejects,
        bad_records=_bad_records(smk),
    )
    _write_source(smk, frame, rejects.frame())


def _coco_annotations(smk) -> None:
    settings = from_dict(coco.CocoSettings, smk.params.settings)
    outputs = dict(zip(settings.splits, map(Path, smk.output), strict=True))
    coco.download_annotations(
        settings, download_settings(smk.config), Path(smk.params.archive), outputs
    )


def _coco_boxes(smk) -> None:
    settings = from_dict(coco.CocoSettings, smk.params.settings)
    frame, rejects = coco.coco_boxes(
        settings,
        dict(zip(settings.splits, map(Path, smk.input), strict=True)),
        Path(smk.params.image_root),
        tuple(smk.params.categories),
        download_settings(smk.config),
        Path(smk.params.failures),
        _bad_records(smk),
    )
    _write_source(smk, frame, rejects)


def _coco_format_boxes(smk) -> None:
    frame, rejects = coco_format.coco_format_boxes(
        smk.wildcards.dataset,
        from_dict(coco_format.CocoFormatSettings, smk.params.settings),
        tuple(smk.params.categories),
        _bad_records(smk),
    )
    _write_source(smk, frame, rejects)


def _visual_genome_metadata(smk) -> None:
    settings = from_dict(visual_genome.VisualGenomeSettings, smk.params.settings)
    visual_genome.download_metadata(
        settings,
        download_settings(smk.config),
        Path(smk.output.image_data),
        Path(smk.output.objects),
    )


def _visual_genome_boxes(smk) -> None:
    settings = from_dict(visual_genome.VisualGenomeSettings, smk.params.settings)
    frame = visual_genome.visual_genome_boxes(
        settings,
        Path(smk.input.image_data),
        Path(smk.input.objects),
        Path(smk.params.image_root),
        tuple(smk.params.categories),
        smk.params.drop_coco_images,
        download_settings(smk.config),
        Path(smk.params.failures),
    )
    _write_source(smk, frame, rejects_frame([]))


def _openimages_files(settings, paths) -> dict[str, Path]:
    return dict(zip(openimages.metadata_relpaths(settings), map(Path, paths), strict=True))


def _openimages_metadata(smk) -> None:
    settings = from_dict(openimages.OpenImagesSettings, smk.params.settings)
    openimages.download_metadata(
        settings, download_settings(smk.config), _openimages_files(settings, smk.output)
    )


def _openimages_boxes(smk) -> None:
    settings = from_dict(openimages.OpenImagesSettings, smk.params.settings)
    frame, rejects = openimages.openimages_boxes(
        settings,
        _openimages_files(settings, smk.input),
        Path(smk.params.image_root),
        tuple(smk.params.categories),
        download_settings(smk.config),
        Path(smk.params.failures),
    )
    _write_source(smk, frame, rejects)


def _celeba_boxes(smk) -> None:
    settings = from_dict(celeba.CelebASettings, smk.params.settings)
    frame = celeba.celeba_boxes(
        settings,
        download_settings(smk.config),
        Path(smk.params.folder),
        Path(smk.params.image_root),
        smk.params.mismatch,
    )
    _write_source(smk, frame, rejects_frame([]))


def _ffhq_boxes(smk) -> None:
    settings = from_dict(ffhq.FFHQSettings, smk.params.settings)
    frame, rejects = ffhq.ffhq_boxes(
        settings,
        download_settings(smk.config),
        Path(smk.params.folder),
        Path(smk.params.failures),
        smk.params.mismatch,
    )
    _write_source(smk, frame, rejects)


def _boxes_merge(smk) -> None:
    boxes.merge_boxes([Path(p) for p in smk.input.boxes], Path(smk.output.boxes))
    boxes.merge_rejects([Path(p) for p in smk.input.rejects], Path(smk.output.rejects))


def _crops_extract(smk) -> None:
    crops.extract_crops(
        Path(smk.input.boxes),
        Path(smk.output.crops_dir),
        Path(smk.output.crops),
        Path(smk.output.rejects),
        from_dict(CropSettings, smk.params.crops),
        smk.params.image_size,
        workers=smk.threads,
        record_rejects=Path(smk.input.record_rejects),
    )


def _filters_apply(smk) -> None:
    filters.apply_filters(
        Path(smk.input.crops),
        Path(smk.input.boxes),
        Path(smk.input.crops_dir).parent,
        Path(smk.output.decisions),
        Path(smk.output.sheets),
        from_dict(filters.FilterSettings, smk.params.filters),
    )


def _curate_dataset(smk) -> None:
    exclusions = list(smk.input.exclusions)
    curate.build_dataset(
        Path(smk.input.decisions),
        Path(smk.input.crops_dir).parent,
        smk.params.name,
        Path(exclusions[0]) if exclusions else None,
        smk.params.tag,
        Path(smk.output.record),
    )


def _curate_export(smk) -> None:
    curate.export_exclusions(
        smk.params.name, smk.params.tag, Path(smk.params.exclusions), Path(smk.output.record)
    )


def _shards_write(smk) -> None:
    exclusions = list(smk.input.exclusions)
    shards.shards_stage(
        Path(smk.input.decisions),
        Path(smk.input.rejects),
        Path(exclusions[0]) if exclusions else None,
        Path(smk.input.crops_dir).parent,
        Path(smk.output.shards),
        from_dict(ShardSettings, smk.params.shards),
        smk.params.image_size,
        smk.params.seed,
    )


def _train_gan(smk) -> None:
    settings = from_dict(TrainSettings, smk.params.train)
    with devices.own_gpus(settings.gpus if settings.device != "cpu" else 0):
        train.train(
            Path(smk.input.shards),
            Path(smk.output.model),
            Path(smk.output.stats),
            Path(smk.params.work_dir),
            settings,
            smk.params.image_size,
            smk.params.seed,
            smk.threads,
            evals_path=Path(smk.output.evals),
            best_path=Path(smk.output.best),
        )


def _evaluate_reference(smk) -> None:
    reference.reference_features(
        Path(smk.input.shards),
        Path(smk.output.features),
        from_dict(EvalSettings, smk.params.evaluate),
        smk.params.seed,
        smk.threads,
    )


def _evaluate_run(smk) -> None:
    out = smk.output
    evaluate.evaluate(
        Path(smk.input.model),
        Path(smk.input.shards),
        Path(smk.input.stats),
        Path(smk.input.reference),
        Path(smk.input.evals),
        evaluate.EvalOutputs(
            *(Path(p) for p in (out.samples, out.metrics, out.losses, out.interpolation)),
            *(Path(p) for p in (out.nearest, out.distances, out.curve)),
        ),
        from_dict(EvalSettings, smk.params.evaluate),
        smk.params.seed,
        smk.threads,
    )


def _report_experiment(smk) -> None:
    figures = {k: Path(v) for k, v in smk.input.items() if k != "metrics"}
    html_report.experiment_report(
        smk.wildcards.exp,
        Path(smk.input.metrics),
        figures,
        dict(smk.params.settings),
        Path(smk.output.report),
    )


def _sweep_compare(smk) -> None:
    runs = list(smk.params.runs)

    def by_run(paths):
        return dict(zip(runs, (Path(p) for p in paths), strict=True))

    out = smk.output
    winner = sweep.compare(
        by_run(smk.input.metrics),
        by_run(smk.input.samples),
        by_run(smk.input.evals),
        smk.params.metric,
        *(Path(p) for p in (out.csv, out.png, out.samples, out.metrics)),
    )
    html_report.sweep_report(
        smk.wildcards.exp, Path(out.csv), Path(out.png), Path(out.samples), winner, Path(out.report)
    )


def _report_index(smk) -> None:
    html_report.experiments_index(
        [Path(p) for p in smk.input.metrics], Path(smk.output.html), Path(smk.output.csv)
    )


STAGES: dict[str, Callable[[Any], None]] = {
    "synthetic_dataset": _synthetic_dataset,
    "synthetic_boxes": _synthetic_boxes,
    "coco_annotations": _coco_annotations,
    "coco_boxes": _coco_boxes,
    "coco_format_boxes": _coco_format_boxes,
    "visual_genome_metadata": _visual_genome_metadata,
    "visual_genome_boxes": _visual_genome_boxes,
    "openimages_metadata": _openimages_metadata,
    "openimages_boxes": _openimages_boxes,
    "celeba_boxes": _celeba_boxes,
    "ffhq_boxes": _ffhq_boxes,
    "boxes_merge": _boxes_merge,
    "crops_extract": _crops_extract,
    "filters_apply": _filters_apply,
    "shards_write": _shards_write,
    "curate_dataset": _curate_dataset,
    "curate_export": _curate_export,
    "train_gan": _train_gan,
    "evaluate_reference": _evaluate_reference,
    "evaluate_run": _evaluate_run,
    "report_experiment": _report_experiment,
    "report_index": _report_index,
    "train_run": _train_gan,
    "evaluate_sweep_run": _evaluate_run,
    "report_run": _report_experiment,
    "sweep_compare": _sweep_compare,
}


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return (
            out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(smk, started: float) -> dict:
    exp = dict(smk.wildcards).get("exp")
    return {
        "rule": smk.rule,
        "wildcards": dict(smk.wildcards),
        "params": {k: v for k, v in smk.params.items()},
        "experiment_config": smk.config.get("experiments", {}).get(exp) if exp else None,
        "seed": smk.params.get("seed"),
        "inputs": [str(p) for p in smk.input],
        "outputs": [str(p) for p in smk.output],
        "versions": versions(),
        "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 2),
    }


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
        handler = logging.FileHandler(log_path, mode="w")
        handler.setFormatter(fmt)
        root.addHandler(handler)
    logging.captureWarnings(True)


def run_rule(smk) -> None:
    """Run the stage of rule `smk.rule` with the job's inputs, outputs and params."""
    setup_logging(smk.log[0] if len(smk.log) else None)
    stage = STAGES.get(smk.rule)
    if stage is None:
        raise KeyError(f"no stage function for rule {smk.rule!r}; known: {sorted(STAGES)}")
    started = time.time()
    log.info("rule %s %s", smk.rule, dict(smk.wildcards))
    try:
        stage(smk)
    except Exception:
        log.exception("rule %s failed", smk.rule)
        raise
    record = Path(str(smk.output[0])).parent / f"{smk.rule}.provenance.json"
    write_json(provenance(smk, started), record)
    log.info("rule %s done in %.1f s", smk.rule, time.time() - started)
