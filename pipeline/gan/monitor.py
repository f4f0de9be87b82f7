"""Watching a run: the stats lines, the alarms (D too strong, mode collapse), the SWD probe on
held-out crops, and the pictures (sample grids, the animated progress strip)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from PIL import Image

from pipeline.config import TrainSettings
from pipeline.gan.grids import save_grid
from pipeline.gan.sampling import MIN_REAL, class_labels, generate, real_sets
from pipeline.gan.trainer import Trainer
from pipeline.io import atomic_path
from pipeline.metrics.colour import colour_metrics
from pipeline.metrics.swd import sliced_wasserstein
from pipeline.seeds import Stream, stream

log = logging.getLogger(__name__)


class StatsWindow:
    """The step statistics summed since the last stats line, and that line (means per step)."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.started = 0, time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            self.sums[key] = self.sums.get(key, 0) + value
        self.count += 1

    def line(self, step: int) -> dict:
        """Means over the window (one host sync), the step and the throughput."""
        elapsed = time.perf_counter() - self.started
        line = {k: round(float(v) / self.count, 5) for k, v in self.sums.items()}
        line.update(step=step, images_per_s=round(self.count * self.batch_size / elapsed, 1))
        return line


def log_line(line: dict) -> None:
    log.info(
        "step %d  loss_d %.4f  loss_g %.4f  D(x) %.3f  D(G(z)) %.3f  "
        "D right on real %.3f fake %.3f  %.0f img/s",
        line["step"],
        line["loss_d"],
        line["loss_g"],
        line["d_real"],
        line["d_fake"],
        line["acc_real"],
        line["acc_fake"],
        line["images_per_s"],
    )


class DiscriminatorAlarm:
    """Warns (once per episode) when D is right on both real and fake images more often than
    `accuracy` for `steps` steps in a row: G then gets vanishing gradients and stops learning."""

    def __init__(self, accuracy: float, steps: int):
        self.accuracy, self.steps = accuracy, steps
        self.run, self.warned = 0, False

    def update(self, step: int, window: int, acc_real: float, acc_fake: float) -> bool:
        if acc_real >= self.accuracy and acc_fake >= self.accuracy:
            self.run += window
        else:
            self.run, self.warned = 0, False
        if self.run >= self.steps and not self.warned:
            self.warned = True
            log.warning(
                "step %d: the discriminator has been right on %.1f%% of real and %.1f%% of fake images "
                "for %d steps: the generator gets vanishing gradients. Try loss hinge or lsgan, "
                "label_smoothing 0.1, d_norm spectral, a lower lr_d, or diffaugment.",
                step,
                100 * acc_real,
                100 * acc_fake,
                self.run,
            )
            return True
        return False


def diversity(images: torch.Tensor) -> float:
    """Mean over pixels of the standard deviation across images (uint8 scale)."""
    return float(images[:64].float().std(dim=0).mean())


def lattice(images: torch.Tensor, period: int = 16) -> float:
    """How strongly the images share a pattern tied to pixel positions that repeats every `period`
    pixels (and so every divisor of it): the spread of their mean `period` x `period` tile against
    the images' own spread. Transposed convolutions draw such a lattice (the checkerboard of
    Odena et al. 2016, and at 128 px a motif every 16 pixels); in photos it averages away
    (0.03-0.05 over 64 crops: compare like numbers of images). Each image's mean is removed and
    an eighth of each side left out (padding draws patterns of its own)."""
    border = images.shape[-1] // 8
    x = images[:, :, border:-border, border:-border].float()
    side = x.shape[-1] // period * period
    x = x[:, :, :side, :side]
    x = x - x.mean(dim=(2, 3), keepdim=True)
    n, c = x.shape[:2]
    tile = x.reshape(n, c, side // period, period, side // period, period).mean(dim=(0, 2, 4))
    return float(tile.std(dim=(1, 2)).mean() / x.std())


def check_diversity(
    step: int, samples: torch.Tensor, real: torch.Tensor, floor: float = 0.25
) -> bool:
    """Warn when the fixed-latent samples vary far less than real images do (mode collapse)."""
    fake, ref = diversity(samples), diversity(real)
    if ref > 0 and fake < floor * ref:
        log.warning(
            "step %d: sample diversity collapsed: %.1f against %.1f for real images "
            "(mode collapse); try minibatch_std, diffaugment, or an earlier checkpoint",
            step,
            fake,
            ref,
        )
        return True
    return False


def save_samples(trainer: Trainer, samples_dir: Path, steps: int) -> None:
    """The grid of the fixed latents at this step, checked for collapse once G had time."""
    step, samples = trainer.step, trainer.samples()
    save_grid(samples, samples_dir / f"step_{step:07d}.png", nrow=8)
    if step >= steps // 5:  # an untrained G is not collapsed, just untrained
        check_diversity(step, samples, trainer.sampler.images)


def progress_strip(samples_dir: Path, out: Path, frame_ms: int = 400) -> None:
    """An animated GIF of the sample grids saved during training, in step order."""
    frames = [
        Image.open(p).convert("P", palette=Image.Palette.ADAPTIVE)
        for p in sorted(samples_dir.glob("step_*.png"))
    ]
    if frames:
        with atomic_path(out, suffix=".gif") as tmp:
            frames[0].save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=frames[1:],
                duration=frame_ms,
                loop=0,
            )


class QualityProbe:
    """SWD (and the colour and layout distances SWD cannot see) of generated against held-out
    crops during training, on a fixed budget: the same held-out crops and the same latents each
    time, so the curve moves only with the generator."""

    def __init__(
        self, holdout: torch.Tensor, train: torch.Tensor, settings: TrainSettings, seed: int
    ):
        self.real, _ = real_sets(holdout, train, settings.eval_images, seed)
        self.seed = seed

    def __call__(self, trainer: Trainer) -> dict | None:
        if len(self.real) < MIN_REAL:
            return None
        n = len(self.real)
        fixed = stream(self.seed, Stream.FIXED_LATENTS)
        labels = class_labels(trainer.class_counts(), n, fixed)
        with trainer.sampling() as generator:
            fake = generate(generator, n, fixed, labels)
        swd = sliced_wasserstein(self.real, fake)["swd_mean"]
        colours = colour_metrics(self.real, fake, self.seed)
        return {"step": trainer.step, "swd": round(swd, 4), **colours, "images": n}
