"""The train stage: a DCGAN trained on the shards of one `TrainJob`, and the training loop.

Every entry point goes through `train_job`: the train rule's script, `python -m pipeline.gan`,
and the torchrun processes that `distributed.launch` starts when `gpus` > 1. `train(...)` is the
same with the job's fields as arguments.

Per step (`pipeline.gan.trainer`): D `n_critic` times, then G, with the configured loss (`bce`,
the non-saturating BCE of DCGAN, or `hinge`, `lsgan`, `wgan-gp`), label smoothing and noise,
gradient penalties (WGAN-GP, R1), DiffAugment, experience replay, Adam, mixed precision, and an
EMA of G. Every `log_every` steps a stats line, every `sample_every` a sample grid, every
`eval_every` the SWD against held-out crops (the best model so far kept), every
`checkpoint_every` a checkpoint from which a rerun resumes (`pipeline.gan.checkpoint`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pipeline.config import TrainSettings
from pipeline.gan import distributed
from pipeline.gan.checkpoint import (
    BestKeeper,
    keep_stats_until,
    run_fingerprint,
    save_checkpoint,
    save_model,
    try_resume,
)
from pipeline.gan.data import load_labels, load_split
from pipeline.gan.devices import select_device, use_cpu_threads
from pipeline.gan.distributed import Ranks
from pipeline.gan.job import TrainJob
from pipeline.gan.monitor import (
    DiscriminatorAlarm,
    QualityProbe,
    StatsWindow,
    log_line,
    progress_strip,
    save_samples,
)
from pipeline.gan.run_lock import run_lock
from pipeline.gan.trainer import Trainer
from pipeline.io import atomic_path
from pipeline.progress import progress
from pipeline.shards import read_manifest

log = logging.getLogger(__name__)


def train(
    shards_dir: Path,
    *,
    model_path: Path,
    stats_path: Path,
    work_dir: Path,
    settings: TrainSettings,
    seed: int,
    threads: int = 1,
    evals_path: Path | None = None,
    best_path: Path | None = None,
) -> Trainer | None:
    """`train_job` of the `TrainJob` these arguments describe."""
    job = TrainJob(
        shards_dir=shards_dir, model_path=model_path, stats_path=stats_path, work_dir=work_dir,
        settings=settings, seed=seed, threads=threads, evals_path=evals_path, best_path=best_path,
    )  # fmt: skip
    return train_job(job)


def train_job(job: TrainJob) -> Trainer | None:
    """The train stage: shards in; final model, loss log, checkpoints and sample grids out.

    With `gpus` > 1 and not already under torchrun, it starts torchrun with one process per GPU
    running this same function on the same job, waits for it and returns None. Every
    `eval_every` steps the SWD of generated against held-out crops goes to `job.evals_path`, and
    the model with the lowest SWD so far is kept as `job.best_path` besides the final
    `job.model_path`. Returns the trainer (of this rank, under torchrun). A second trainer of
    the same run (the same `work_dir`) refuses while this one runs (`run_lock`)."""
    settings = job.settings
    if settings.gpus > 1 and "WORLD_SIZE" not in os.environ:
        distributed.launch(job)
        return None
    use_cpu_threads(job.threads)
    ranks, ddp_device = distributed.setup(settings.device)
    # one trainer per run: rank 0 holds the run's lock (a second trainer refuses, naming it)
    with run_lock(job.work_dir) if ranks.main else contextlib.nullcontext():
        return _train(job, ranks, ddp_device)


def _train(job: TrainJob, ranks: Ranks, ddp_device) -> Trainer:
    settings = job.settings
    device = ddp_device or select_device(settings.device)
    data = load_data(job)
    log.info(
        "training on %d crops of %d px on %s: %s",
        len(data.images),
        data.image_size,
        device,
        asdict(settings),
    )
    trainer = Trainer(
        settings,
        images=data.images,
        image_size=data.image_size,
        seed=job.seed,
        device=device,
        ranks=ranks,
        labels=data.labels,
        classes=data.classes,
    )
    run_id = run_fingerprint(settings, data.manifest, job.seed)
    resumed = resume(trainer, job, run_id)
    probe = None
    if ranks.main and settings.eval_every:
        holdout = load_split(job.shards_dir, "holdout")
        probe = QualityProbe(holdout, data.images, settings, job.seed)
    keeper = BestKeeper(job.running_best, run_id, resumed) if ranks.main else None
    _loop(trainer, job, run_id, probe, keeper)
    if ranks.world > 1:
        check_ranks_agree(trainer)
        if not ranks.main:
            return trainer
    write_outputs(trainer, job, run_id, keeper)
    return trainer


@dataclass(frozen=True)
class TrainingData:
    """What a run trains on: the shards' manifest, the training crops, and their class labels
    and names (None when the run is unconditional)."""

    manifest: dict
    images: torch.Tensor
    labels: torch.Tensor | None = None
    classes: list[str] | None = None

    @property
    def image_size(self) -> int:
        """The side of the crops, as the shards were written: the networks are built for it."""
        return int(self.manifest["image_size"])


def load_data(job: TrainJob) -> TrainingData:
    settings, shards_dir = job.settings, job.shards_dir
    manifest = read_manifest(shards_dir)
    images = load_split(shards_dir, "train")
    labels, classes = None, None
    if settings.condition != "none":
        labels, classes = load_labels(shards_dir, "train", settings.condition)
        log.info("conditional on %s: %d classes %s", settings.condition, len(classes), classes)
        if len(classes) < 2:
            log.warning(
                "condition %s has one class only (%s): the condition adds nothing",
                settings.condition,
                classes,
            )
    return TrainingData(manifest, images, labels, classes)


def resume(trainer: Trainer, job: TrainJob, run_id: str) -> bool:
    """Go on from the run's checkpoint if there is one of this run, its logs cut to its step;
    else start the logs afresh. Whether it resumed."""
    job.work_dir.mkdir(parents=True, exist_ok=True)
    resumed = try_resume(trainer, job.checkpoint_path, run_id)
    if not trainer.ranks.main:  # rank 0 alone owns the files of the run
        return resumed
    for path in (job.running_stats, job.running_evals):
        if resumed:
            keep_stats_until(path, trainer.step)
        else:
            path.unlink(missing_ok=True)
    return resumed


def check_ranks_agree(trainer: Trainer) -> None:
    """Leave the process group, after checking that every rank holds rank 0's weights."""
    ranks = trainer.ranks
    gap = max(distributed.max_difference(trainer.G), distributed.max_difference(trainer.D))
    log.info(
        "rank %d: G and D weights on %d ranks differ by at most %g",
        ranks.rank,
        ranks.world,
        gap,
    )
    distributed.teardown()
    if gap > 1e-6:
        raise RuntimeError(f"DDP ranks diverged: weights differ by {gap}")


def write_outputs(trainer: Trainer, job: TrainJob, run_id: str, keeper: BestKeeper) -> None:
    """The final model, the best one, the logs and the progress strip, where the job says."""
    save_model(trainer, job.model_path, run_id)
    with atomic_path(job.best_path) as tmp:
        if keeper.kept:
            shutil.copyfile(keeper.path, tmp)
        else:  # nothing measured (eval_every 0, too few held-out crops): the last is the best
            log.info("no SWD measured during training: best.pt is the final model")
            shutil.copyfile(job.model_path, tmp)
    for final_path, running in (
        (job.stats_path, job.running_stats),
        (job.evals_path, job.running_evals),
    ):
        with atomic_path(final_path) as tmp:
            tmp.write_text(running.read_text() if running.exists() else "")
    progress_strip(job.samples_dir, job.progress_path)


def measure(trainer: Trainer, probe: QualityProbe, keeper: BestKeeper | None, evals: Path) -> None:
    """The probe's SWD, appended to `evals`; the model kept when it is the best so far."""
    measured = probe(trainer)
    if measured is None:
        return
    with open(evals, "a") as handle:
        handle.write(json.dumps(measured) + "\n")
    log.info(
        "step %d: SWD x1e3 %.2f, colour %.2f, layout %.2f (%d images)",
        trainer.step,
        measured["swd"],
        measured["colour"],
        measured["layout"],
        measured["images"],
    )
    if keeper is not None and trainer.step > 0:
        keeper.update(trainer, measured["swd"])


def _loop(
    trainer: Trainer,
    job: TrainJob,
    run_id: str,
    probe: QualityProbe | None = None,
    keeper: BestKeeper | None = None,
):
    settings, main = job.settings, trainer.ranks.main
    bar = progress(
        total=settings.steps, initial=trainer.step, desc="train", unit="step", disable=not main
    )
    window = StatsWindow(settings.batch_size)
    alarm = DiscriminatorAlarm(settings.alarm_accuracy, settings.alarm_steps)
    if probe is not None and trainer.step == 0:  # the untrained generator: where the curve starts
        measure(trainer, probe, keeper, job.running_evals)
    with open(job.running_stats if main else os.devnull, "a") as log_file:
        while trainer.step < settings.steps:
            window.add(trainer.train_step())
            bar.update(1)
            step = trainer.step
            if step % settings.log_every == 0 or step == settings.steps:
                line = window.line(step)
                log_file.write(json.dumps(line, sort_keys=True) + "\n")
                log_file.flush()
                bar.set_postfix(
                    D=line["loss_d"], G=line["loss_g"], img_s=line["images_per_s"], refresh=False
                )
                log_line(line)
                alarm.update(step, window.count, line["acc_real"], line["acc_fake"])
                window.reset()
            if main and (step % settings.sample_every == 0 or step == settings.steps):
                save_samples(trainer, job.samples_dir, settings.steps)
            if probe is not None and (step % settings.eval_every == 0 or step == settings.steps):
                measure(trainer, probe, keeper, job.running_evals)
            if main and (step % settings.checkpoint_every == 0 or step == settings.steps):
                save_checkpoint(trainer, job.checkpoint_path, run_id)
    bar.close()
