"""Train a DCGAN on the shards: non-saturating BCE loss, Adam, checkpoints, resume.

Checkpoints (models, optimisers, RNG and sampler states, step) are written atomically every
`checkpoint_every` steps to `{work_dir}/checkpoint.pt`. A rerun with the same data and settings
continues from there; changing anything but the step counts starts again from step 0.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from pipeline.config import TrainSettings, fingerprint
from pipeline.gan import distributed
from pipeline.gan.augment import diff_augment
from pipeline.gan.distributed import SINGLE, Ranks
from pipeline.gan.ema import EMA
from pipeline.gan.losses import d_loss, g_loss, gradient_penalty, r1_penalty
from pipeline.gan.models import Discriminator, Generator, ModelConfig, grid_labels
from pipeline.io import atomic_path
from pipeline.metrics.swd import sliced_wasserstein
from pipeline.progress import progress
from pipeline.report import save_grid, to_uint8
from pipeline.shards import BatchSampler, load_labels, load_split, read_manifest

log = logging.getLogger(__name__)


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def run_fingerprint(s: TrainSettings, manifest: dict, seed: int) -> str:
    """What a checkpoint must share with this run to be resumed (step counts excluded)."""
    same = replace(
        s,
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


def place_data(images: torch.Tensor, device: torch.device, share: float = 0.5) -> torch.Tensor:
    """The training crops on the GPU when they take at most `share` of its free memory (batches
    are then gathered on the device: no host work per step), else in pinned host memory."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    if fits_on_device(images.nbytes, free, share):
        return images.to(device)
    log.warning(
        "the %.1f GB of training crops do not fit in half of the GPU's %.1f GB free: they stay "
        "in host memory and each batch is copied over",
        images.nbytes / 1e9,
        free / 1e9,
    )
    return images.pin_memory()


def fits_on_device(nbytes: int, free: int, share: float = 0.5) -> bool:
    return nbytes <= share * free


def grad_norm(model: torch.nn.Module) -> torch.Tensor:
    """The L2 norm of all gradients of `model`, as a tensor (no host sync)."""
    norms = [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU has it, fp16 (with loss scaling) on older GPUs."""
    if setting == "bf16":
        return torch.bfloat16
    if setting == "fp16":
        return torch.float16
    if setting == "auto" and device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


class Trainer:
    """The models, optimisers and data of one run, and one training step.

    `labels` (class index per training image) and `classes` make the GAN conditional.
    """

    def __init__(
        self,
        s: TrainSettings,
        images: torch.Tensor,
        image_size: int,
        seed: int,
        device,
        ranks: Ranks = SINGLE,
        labels: torch.Tensor | None = None,
        classes: list[str] | None = None,
    ):
        if s.loss == "wgan-gp" and s.d_norm == "batch":
            raise ValueError(
                "loss wgan-gp needs train.d_norm spectral or none: its penalty is per image, batch norm mixes them"
            )
        torch.manual_seed(seed)
        self.s, self.device = s, device
        self.classes = list(classes or [])
        self.model_config = ModelConfig(
            image_size=image_size,
            nz=s.nz,
            ngf=s.ngf,
            ndf=s.ndf,
            d_norm=s.d_norm,
            minibatch_std=s.minibatch_std,
            kernel=s.kernel,
            n_classes=len(self.classes),
        )
        self.G = Generator(self.model_config).to(device)
        self.D = Discriminator(self.model_config).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=s.lr_g, betas=(s.beta1, s.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=s.lr_d, betas=(s.beta1, s.beta2))
        self.amp_dtype = amp_dtype(s.amp, device)
        # fp16 needs loss scaling, bf16 has fp32's range and does not. The scale starts at 2^10,
        # not 2^16: DCGAN gradients overflow fp16 at 2^16, so the first steps would be skipped.
        fp16 = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(device.type, 2.0**10, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(device.type, 2.0**10, enabled=fp16)
        if s.channels_last == "on" or (s.channels_last == "auto" and device.type == "cuda"):
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.ema = EMA(self.G, s.ema_decay) if s.ema_decay > 0 else None
        self.ranks, self.seed = ranks, seed
        self.replay_buffer: torch.Tensor | None = None
        self.replay_labels: torch.Tensor | None = None
        self.penalised = s.loss == "wgan-gp" or s.r1_gamma > 0
        # What the step calls: compiled and/or DDP-wrapped networks. Gradient penalties need a
        # double backward through D, which DDP does not support: D's gradients are then averaged
        # over the ranks by hand after backward (as StyleGAN2-ADA does).
        self.g_net, self.d_net = self.G, self.D
        if s.compile:
            self.g_net, self.d_net = torch.compile(self.G), torch.compile(self.D)
        self.sync_d_by_hand = ranks.world > 1 and self.penalised
        if ranks.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_net = DistributedDataParallel(self.g_net, device_ids=ids)
            if self.sync_d_by_hand:
                distributed.broadcast_parameters(self.D)
            else:
                self.d_net = DistributedDataParallel(self.d_net, device_ids=ids)
            torch.manual_seed(seed + 7919 * ranks.rank)  # each rank its own latents
        self.sampler = BatchSampler(
            place_data(images, device),
            s.batch_size,
            seed + 7919 * ranks.rank,
            s.hflip,
            labels,
            device=device,
        )
        self.fixed_z = torch.randn(64, s.nz, generator=torch.Generator().manual_seed(seed + 1)).to(
            device
        )
        self._class_counts = (
            torch.bincount(labels, minlength=len(self.classes)).tolist()
            if labels is not None
            else []
        )
        self.fixed_labels = grid_labels(len(self.classes), 64)
        if self.fixed_labels is not None:
            self.fixed_labels = self.fixed_labels.to(device)
        self.step = 0

    def critic(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's logits on (augmented) images."""
        if self.s.diffaugment:
            images = diff_augment(images, self.s.diffaugment)
        return self.d_net(images, labels)

    def penalty(self, real: torch.Tensor, fake: torch.Tensor, labels) -> torch.Tensor:
        """The configured gradient penalties, in fp32 (a half-precision input gradient
        underflows), through the bare D."""
        s = self.s
        total = torch.zeros((), device=self.device)
        with torch.autocast(self.device.type, enabled=False):
            real, fake = real.float(), fake.float()

            def critic(x):
                return self.D(x, labels)

            if s.loss == "wgan-gp":
                total = total + s.gp_weight * gradient_penalty(critic, real, fake)
            if s.r1_gamma > 0:
                total = total + s.r1_gamma / 2 * r1_penalty(critic, real)
        return total

    def d_step(self) -> tuple[torch.Tensor, ...]:
        s = self.s
        real, labels = self.sampler.draw()
        with self.autocast():
            fake = self.g_net(torch.randn(real.shape[0], s.nz, device=self.device), labels)
            old, old_labels = self.replayed(fake.detach(), labels)
            logits_real, logits_fake = self.critic(real, labels), self.critic(old, old_labels)
            loss_d = d_loss(s.loss, logits_real, logits_fake, s.label_smoothing, s.label_noise)
        if self.penalised:
            loss_d = loss_d + self.penalty(real, fake, labels)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss_d).backward()
        if self.sync_d_by_hand:
            distributed.average_gradients(self.D)  # before unscaling: every rank sees the same inf
        self.scaler_d.unscale_(self.opt_d)
        self.grad_d = grad_norm(self.D)  # inf or nan: the scaler skips this step
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return fake, labels, loss_d, logits_real.detach(), logits_fake.detach()

    def autocast(self):
        """Mixed precision where enabled (see `amp_dtype`)."""
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=bool(self.amp_dtype)
        )

    def replayed(self, fake: torch.Tensor, labels: torch.Tensor | None):
        """Experience replay: a `replay` fraction of the batch swapped for old fakes (and their
        labels), which the buffer then takes in place of random old ones."""
        if self.s.replay <= 0:
            return fake, labels
        k = int(round(self.s.replay * len(fake)))
        out, out_labels = fake, labels
        if self.replay_buffer is not None and k:
            pick = torch.randint(len(self.replay_buffer), (k,), device=fake.device)
            out = torch.cat([self.replay_buffer[pick].to(fake.dtype), fake[k:]])
            if labels is not None:
                out_labels = torch.cat([self.replay_labels[pick], labels[k:]])
        self._remember(fake.float(), labels)
        return out, out_labels

    def _remember(self, fake: torch.Tensor, labels: torch.Tensor | None) -> None:
        if self.replay_buffer is None or len(self.replay_buffer) < self.s.replay_size:
            keep = self.s.replay_size
            self.replay_buffer = _append(self.replay_buffer, fake, keep)
            self.replay_labels = _append(self.replay_labels, labels, keep)
            return
        slots = torch.randint(len(self.replay_buffer), (len(fake),), device=fake.device)
        self.replay_buffer[slots] = fake
        if labels is not None:
            self.replay_labels[slots] = labels

    def train_step(self) -> dict[str, torch.Tensor]:
        for _ in range(self.s.n_critic):
            fake, labels, loss_d, logits_real, logits_fake = self.d_step()
        with self.autocast():
            loss_g = g_loss(self.s.loss, self.critic(fake, labels))
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.unscale_(self.opt_g)
        grad_g = grad_norm(self.G)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if self.ema is not None:
            self.ema.update(self.G)
        self.step += 1
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(logits_real.float()).mean(),
            "d_fake": torch.sigmoid(logits_fake.float()).mean(),
            "acc_real": (logits_real > 0).float().mean(),
            "acc_fake": (logits_fake < 0).float().mean(),
            "grad_d": torch.nan_to_num(self.grad_d, nan=0.0, posinf=0.0),
            "grad_g": torch.nan_to_num(grad_g, nan=0.0, posinf=0.0),
            "skipped": (~torch.isfinite(self.grad_d) | ~torch.isfinite(grad_g)).float(),
        }

    @property
    def sampling_generator(self):
        """The EMA generator when there is one: samples and metrics use it."""
        return self.ema.model if self.ema is not None else self.G

    def class_counts(self) -> list[int]:
        """Training crops per class (empty when unconditional)."""
        return self._class_counts

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "model_config": self.model_config.to_dict(),
            "classes": self.classes,
            "class_counts": self.class_counts(),
            "generator": self.G.state_dict(),
            "generator_ema": self.ema.model.state_dict() if self.ema is not None else None,
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "sampler": self.sampler.state_dict(),
            "replay_buffer": self.replay_buffer,
            "replay_labels": self.replay_labels,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.G.load_state_dict(state["generator"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["generator_ema"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.sampler.load_state_dict(state["sampler"])
        self.replay_buffer = state.get("replay_buffer")
        self.replay_labels = state.get("replay_labels")
        if self.ranks.rank > 0:  # the checkpoint holds rank 0's data stream: draw another
            self.sampler.generator.manual_seed(self.seed + 7919 * self.ranks.rank + self.step)
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    @torch.no_grad()
    def samples(self) -> torch.Tensor:
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        images = generator(self.fixed_z, self.fixed_labels)
        generator.train(was_training)
        return to_uint8(images)


def _append(buffer: torch.Tensor | None, new: torch.Tensor | None, keep: int):
    if new is None:
        return None
    return new.clone()[:keep] if buffer is None else torch.cat([buffer, new])[:keep]


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


def _keep_stats_until(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    lines = [
        ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(ln + "\n" for ln in lines))


def train(
    shards_dir: Path,
    model_path: Path,
    stats_path: Path,
    work_dir: Path,
    s: TrainSettings,
    image_size: int,
    seed: int,
    threads: int = 1,
    evals_path: Path | None = None,
    best_path: Path | None = None,
) -> Trainer | None:
    """The train stage: shards in; final model, loss log, checkpoints and sample grids out.

    With `s.gpus` > 1 and not already under torchrun, it starts torchrun with one process per
    GPU running this same function, waits for it and returns None. Every `s.eval_every` steps the
    SWD of generated against held-out crops goes to `evals_path` (default: beside the stats), and
    the model with the lowest SWD so far is kept as `best_path` (default: best.pt beside the
    model) besides the final `model_path`."""
    evals_path = evals_path or stats_path.with_name("evals.jsonl")
    if s.gpus > 1 and "WORLD_SIZE" not in os.environ:
        args = dict(model=model_path, stats=stats_path, work_dir=work_dir, image_size=image_size)
        args["evals"] = evals_path
        distributed.launch(s, shards_dir, seed=seed, threads=threads, **args)
        return None
    torch.set_num_threads(max(1, threads))
    ranks, ddp_device = distributed.setup(s.device)
    device = ddp_device or select_device(s.device)
    manifest = read_manifest(shards_dir)
    if manifest["image_size"] != image_size:
        raise ValueError(
            f"{shards_dir}: shards are {manifest['image_size']} px, run wants {image_size}"
        )
    images = load_split(shards_dir, "train")
    labels, classes = None, None
    if s.condition != "none":
        labels, classes = load_labels(shards_dir, "train", s.condition)
        log.info("conditional on %s: %d classes %s", s.condition, len(classes), classes)
        if len(classes) < 2:
            log.warning(
                "condition %s has one class only (%s): the condition adds nothing",
                s.condition,
                classes,
            )
    log.info("training on %d crops of %d px on %s: %s", len(images), image_size, device, asdict(s))
    trainer = Trainer(s, images, image_size, seed, device, ranks, labels, classes)
    run_id = run_fingerprint(s, manifest, seed)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint, running_stats = work_dir / "checkpoint.pt", work_dir / "stats.jsonl"
    running_evals = work_dir / "evals.jsonl"
    resumed = try_resume(trainer, checkpoint, run_id)
    for path in (running_stats, running_evals):
        if ranks.main and not resumed:  # rank 0 alone owns the files of the run
            path.unlink(missing_ok=True)
        if ranks.main:
            _keep_stats_until(path, trainer.step)
    probe = None
    if ranks.main and s.eval_every:
        probe = QualityProbe(load_split(shards_dir, "holdout"), images, s, seed)
    keeper = BestKeeper(work_dir / "best.pt", run_id, resumed) if ranks.main else None
    _loop(trainer, s, work_dir, running_stats, checkpoint, run_id, probe, keeper)
    if ranks.world > 1:
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
        if not ranks.main:
            return trainer
    save_model(trainer, model_path, run_id)
    with atomic_path(best_path or model_path.with_name("best.pt")) as tmp:
        if keeper.kept:
            shutil.copyfile(keeper.path, tmp)
        else:  # nothing measured (eval_every 0, too few held-out crops): the last is the best
            log.info("no SWD measured during training: best.pt is the final model")
            shutil.copyfile(model_path, tmp)
    for final_path, running in ((stats_path, running_stats), (evals_path, running_evals)):
        with atomic_path(final_path) as tmp:
            tmp.write_text(running.read_text() if running.exists() else "")
    progress_strip(work_dir / "samples", model_path.parent / "progress.gif")
    return trainer


def save_model(trainer: Trainer, path: Path, run_id: str, **extra) -> None:
    """What evaluation needs of a run: the (EMA) generator, its config and classes, the step."""
    state = trainer.state_dict()
    keep = ("step", "model_config", "classes", "class_counts", "discriminator")
    model = {k: state[k] for k in keep}
    model["generator"] = trainer.sampling_generator.state_dict()  # what evaluation samples from
    model["generator_raw"] = state["generator"]
    model.update(fingerprint=run_id, seed=trainer.seed, ema_decay=trainer.s.ema_decay, **extra)
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


def diversity(images: torch.Tensor) -> float:
    """Mean over pixels of the standard deviation across images (uint8 scale)."""
    return float(images[:64].float().std(dim=0).mean())


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


def progress_strip(samples_dir: Path, out: Path, frame_ms: int = 400) -> None:
    """An animated GIF of the sample grids saved during training, in step order."""
    from PIL import Image

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


class QualityProbe:
    """SWD of generated against held-out crops during training, on a fixed budget: the same
    held-out crops and the same latents each time, so the curve moves only with the generator."""

    def __init__(self, holdout: torch.Tensor, train: torch.Tensor, s: TrainSettings, seed: int):
        from pipeline.evaluate import real_sets

        self.real, _ = real_sets(holdout, train, s.eval_images, seed)
        self.seed = seed

    def __call__(self, trainer: Trainer) -> dict | None:
        from pipeline.evaluate import class_labels, generate

        if len(self.real) < MIN_EVAL_IMAGES:
            return None
        generator = trainer.sampling_generator
        was_training = generator.training
        generator.eval()
        state = {"class_counts": trainer.class_counts()}
        n = len(self.real)
        fake = generate(generator, n, self.seed + 1, class_labels(state, n, self.seed + 1))
        generator.train(was_training)
        swd = sliced_wasserstein(self.real, fake)["swd_mean"]
        return {"step": trainer.step, "swd": round(swd, 4), "images": n}


MIN_EVAL_IMAGES = 16


def _loop(
    trainer: Trainer,
    s: TrainSettings,
    work_dir: Path,
    stats: Path,
    checkpoint: Path,
    run_id: str,
    probe: QualityProbe | None = None,
    keeper: BestKeeper | None = None,
):
    main = trainer.ranks.main
    bar = progress(total=s.steps, initial=trainer.step, desc="train", unit="step", disable=not main)
    window: dict[str, torch.Tensor] = {}
    count, started = 0, time.perf_counter()
    alarm = DiscriminatorAlarm(s.alarm_accuracy, s.alarm_steps)
    with open(stats if main else os.devnull, "a") as log_file:
        while trainer.step < s.steps:
            for key, value in trainer.train_step().items():
                window[key] = window.get(key, 0) + value
            count += 1
            bar.update(1)
            step = trainer.step
            if step % s.log_every == 0 or step == s.steps:
                elapsed = time.perf_counter() - started
                line = {k: round(float(v) / count, 5) for k, v in window.items()}
                line.update(step=step, images_per_s=round(count * s.batch_size / elapsed, 1))
                log_file.write(json.dumps(line, sort_keys=True) + "\n")
                log_file.flush()
                bar.set_postfix(
                    D=line["loss_d"], G=line["loss_g"], img_s=line["images_per_s"], refresh=False
                )
                log.info(
                    "step %d  loss_d %.4f  loss_g %.4f  D(x) %.3f  D(G(z)) %.3f  "
                    "D right on real %.3f fake %.3f  %.0f img/s",
                    step,
                    line["loss_d"],
                    line["loss_g"],
                    line["d_real"],
                    line["d_fake"],
                    line["acc_real"],
                    line["acc_fake"],
                    line["images_per_s"],
                )
                alarm.update(step, count, line["acc_real"], line["acc_fake"])
                window, count, started = {}, 0, time.perf_counter()
            if main and (step % s.sample_every == 0 or step == s.steps):
                samples = trainer.samples()
                save_grid(samples, work_dir / "samples" / f"step_{step:07d}.png", nrow=8)
                if step >= s.steps // 5:  # an untrained G is not collapsed, just untrained
                    check_diversity(step, samples, trainer.sampler.images)
            if probe is not None and (step % s.eval_every == 0 or step == s.steps):
                measured = probe(trainer)
                if measured is not None:
                    with open(work_dir / "evals.jsonl", "a") as evals:
                        evals.write(json.dumps(measured) + "\n")
                    log.info(
                        "step %d: SWD x1e3 %.2f (%d images)",
                        step,
                        measured["swd"],
                        measured["images"],
                    )
                    if keeper is not None:
                        keeper.update(trainer, measured["swd"])
            if main and (step % s.checkpoint_every == 0 or step == s.steps):
                save_checkpoint(trainer, checkpoint, run_id)
    bar.close()
