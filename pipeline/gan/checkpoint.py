"""What a run writes to disk and reads back: checkpoints (atomic save, resume), the final model
and the best model so far.

A checkpoint (models, optimisers, scalers, RNG and sampler states, replay buffer, step) goes to
`{work_dir}/checkpoint.pt` and carries the run's fingerprint: a rerun with the same data and
settings continues from it; changing anything but the step counts starts again from step 0.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import torch

from pipeline.config import TrainSettings, fingerprint
from pipeline.gan.trainer import Trainer
from pipeline.io import atomic_path

log = logging.getLogger(__name__)


def run_fingerprint(settings: TrainSettings, manifest: dict, seed: int) -> str:
    """What a checkpoint must share with this run to be resumed (step counts excluded)."""
    same = replace(
        settings,
        steps=0,
        checkpoint_every=0,
        sample_every=0,
        log_every=0,
        device="",
        eval_every=0,
        eval_images=0,
    )
    data = {k: manifest[k] for k in ("settings_hash", "files")}
    return fingerprint(same, data, seed)


def save_checkpoint(trainer: Trainer, path: Path, run_id: str) -> None:
    with atomic_path(path) as tmp:
        torch.save({**trainer.state_dict(), "fingerprint": run_id}, tmp)


def try_resume(trainer: Trainer, path: Path, run_id: str) -> bool:
    """Load `path` into the trainer if it belongs to this run; say why not otherwise."""
    if not path.exists():
        return False
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=False)
    except Exception as err:  # a damaged checkpoint must not stop a fresh start
        log.warning("checkpoint %s unreadable (%s): starting from step 0", path, err)
        return False
    if state.get("fingerprint") != run_id:
        log.warning("checkpoint %s is of other data or settings: starting from step 0", path)
        return False
    trainer.load_state_dict(state)
    log.info("resumed from %s at step %d", path, trainer.step)
    return True


def keep_stats_until(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    lines = [
        ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(ln + "\n" for ln in lines))


def save_model(trainer: Trainer, path: Path, run_id: str, **extra) -> None:
    """What evaluation needs of a run: the (EMA) generator, its config and classes, the step."""
    state = trainer.state_dict()
    keep = ("step", "model_config", "classes", "class_counts", "discriminator")
    model = {k: state[k] for k in keep}
    model["generator"] = trainer.sampling_generator.state_dict()  # what evaluation samples from
    model["generator_raw"] = state["generator"]
    model.update(
        fingerprint=run_id, seed=trainer.seed, ema_decay=trainer.settings.ema_decay, **extra
    )
    with atomic_path(path) as tmp:
        torch.save(model, tmp)


class BestKeeper:
    """Keeps the model with the lowest metric seen so far at `path` (model selection: later steps
    are often worse, e.g. after mode collapse). A resumed run goes on from the kept best."""

    def __init__(self, path: Path, run_id: str, resumed: bool):
        self.path, self.run_id, self.best = path, run_id, float("inf")
        if resumed and path.exists():
            kept = torch.load(path, weights_only=True)
            if kept.get("fingerprint") == run_id:
                self.best = kept["metric"]
        elif path.exists():
            path.unlink()

    @property
    def kept(self) -> bool:
        """Whether `path` holds a model of this run."""
        return self.best < float("inf")

    def update(self, trainer: Trainer, value: float) -> bool:
        if not value < self.best:
            return False
        self.best = value
        save_model(trainer, self.path, self.run_id, metric=value)
        log.info("step %d: best so far (SWD %.2f), kept as %s", trainer.step, value, self.path)
        return True
