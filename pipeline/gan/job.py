"""One training run as every entry point describes it: the train rule's script, the command line
(`python -m pipeline.gan`) and the torchrun processes `distributed.launch` starts all build a
`TrainJob` and hand it to `pipeline.gan.train.train_job`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.config import TrainSettings

PATHS = (
    "shards_dir", "model_path", "stats_path", "work_dir", "evals_path", "best_path", "progress_path",
)  # fmt: skip


@dataclass(frozen=True)
class TrainJob:
    """Shards in; final model, training log, SWD log, best model and checkpoints out."""

    shards_dir: Path
    model_path: Path  # the final (EMA) generator and what evaluation needs
    stats_path: Path  # the training log, one JSON line per `log_every` steps
    work_dir: Path  # checkpoint.pt, running logs, samples/, best.pt while training
    settings: TrainSettings
    seed: int = 0
    threads: int = 1
    evals_path: Path | None = None  # SWD during training; default evals.jsonl beside the stats
    best_path: Path | None = None  # lowest SWD so far; default best.pt beside the model
    progress_path: Path | None = None  # the sample grids as a GIF; default beside the model

    def __post_init__(self) -> None:
        defaults = {
            "evals_path": Path(self.stats_path).with_name("evals.jsonl"),
            "best_path": Path(self.model_path).with_name("best.pt"),
            "progress_path": Path(self.model_path).with_name("progress.gif"),
        }
        for name in PATHS:
            value = getattr(self, name)
            object.__setattr__(self, name, Path(value) if value is not None else defaults[name])

    # What the run keeps in `work_dir` while it trains: the final files are copied from these.
    @property
    def checkpoint_path(self) -> Path:
        return self.work_dir / "checkpoint.pt"

    @property
    def running_stats(self) -> Path:
        return self.work_dir / "stats.jsonl"

    @property
    def running_evals(self) -> Path:
        return self.work_dir / "evals.jsonl"

    @property
    def running_best(self) -> Path:
        return self.work_dir / "best.pt"

    @property
    def samples_dir(self) -> Path:
        return self.work_dir / "samples"

    def write_settings(self, path: Path) -> Path:
        """The settings as JSON, what `--settings` of the command line reads."""
        path.write_text(json.dumps(asdict(self.settings), indent=1))
        return path

    def cli_args(self, settings_file: Path) -> list[str]:
        """The `python -m pipeline.gan` arguments of this job, its settings in `settings_file`."""
        return [
            "--shards", str(self.shards_dir), "--model", str(self.model_path),
            "--stats", str(self.stats_path), "--evals", str(self.evals_path),
            "--best", str(self.best_path), "--progress", str(self.progress_path),
            "--work-dir", str(self.work_dir),
            "--settings", str(settings_file),
            "--seed", str(self.seed),
            "--threads", str(self.threads),
        ]  # fmt: skip
