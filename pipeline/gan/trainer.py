"""The networks, optimisers and data of one run, and one training step.

A step trains D `n_critic` times on real crops against fakes (some swapped for old ones from the
replay buffer), with the configured loss (`bce`, `hinge`, `lsgan` or `wgan-gp`), label smoothing
and noise, DiffAugment and gradient penalties (WGAN-GP, R1); then G once against D, Adam for
both, mixed precision with loss scaling where enabled, and the EMA of G's weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.nn.parallel import DistributedDataParallel

from pipeline.config import TrainSettings
from pipeline.gan import distributed
from pipeline.gan.augment import diff_augment
from pipeline.gan.data import BatchSampler
from pipeline.gan.devices import place_data
from pipeline.gan.distributed import SINGLE, Ranks
from pipeline.gan.ema import EMA
from pipeline.gan.grids import to_uint8
from pipeline.gan.losses import d_loss, g_loss, gradient_penalty, r1_penalty
from pipeline.gan.models import Discriminator, Generator, ModelConfig, grid_labels
from pipeline.seeds import Stream, stream


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
        settings: TrainSettings,
        *,
        images: torch.Tensor,
        image_size: int,
        seed: int,
        device,
        ranks: Ranks = SINGLE,
        labels: torch.Tensor | None = None,
        classes: list[str] | None = None,
    ):
        if settings.loss == "wgan-gp" and settings.d_norm == "batch":
            raise ValueError(
                "loss wgan-gp needs train.d_norm spectral or none: its penalty is per image, batch norm mixes them"
            )
        # The order of these calls is the order of the random draws (weights, then latents):
        # a change here changes every run.
        torch.manual_seed(seed)
        self.settings, self.device = settings, device
        self.classes = list(classes or [])
        self._build_networks(image_size)
        self._set_precision()
        self.ema = EMA(self.G, settings.ema_decay) if settings.ema_decay > 0 else None
        self.ranks, self.seed = ranks, seed
        self.replay_buffer: torch.Tensor | None = None
        self.replay_labels: torch.Tensor | None = None
        self.penalised = settings.loss == "wgan-gp" or settings.r1_gamma > 0
        self._wrap_networks()
        self._set_data(images, labels)
        self.step = 0

    def _build_networks(self, image_size: int) -> None:
        """G and D (their initial weights drawn from the global RNG) and their optimisers."""
        settings = self.settings
        self.model_config = ModelConfig(
            image_size=image_size,
            nz=settings.nz,
            ngf=settings.ngf,
            ndf=settings.ndf,
            d_norm=settings.d_norm,
            minibatch_std=settings.minibatch_std,
            kernel=settings.kernel,
            upsample=settings.upsample,
            n_classes=len(self.classes),
        )
        self.G = Generator(self.model_config).to(self.device)
        self.D = Discriminator(self.model_config).to(self.device)
        self.opt_g = torch.optim.Adam(
            self.G.parameters(), lr=settings.lr_g, betas=(settings.beta1, settings.beta2)
        )
        self.opt_d = torch.optim.Adam(
            self.D.parameters(), lr=settings.lr_d, betas=(settings.beta1, settings.beta2)
        )

    def _set_precision(self) -> None:
        """Mixed precision, loss scaling and memory format."""
        settings, device = self.settings, self.device
        self.amp_dtype = amp_dtype(settings.amp, device)
        # fp16 needs loss scaling, bf16 has fp32's range and does not. The scale starts at 2^10,
        # not 2^16: DCGAN gradients overflow fp16 at 2^16, so the first steps would be skipped.
        fp16 = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(device.type, 2.0**10, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(device.type, 2.0**10, enabled=fp16)
        if settings.channels_last == "on" or (
            settings.channels_last == "auto" and device.type == "cuda"
        ):
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)

    def _wrap_networks(self) -> None:
        """What the step calls: compiled and/or DDP-wrapped networks. Gradient penalties need a
        double backward through D, which DDP does not support: D's gradients are then averaged
        over the ranks by hand after backward (as StyleGAN2-ADA does)."""
        ranks, device = self.ranks, self.device
        self.g_net, self.d_net = self.G, self.D
        if self.settings.compile:
            self.g_net, self.d_net = torch.compile(self.G), torch.compile(self.D)
        self.sync_d_by_hand = ranks.world > 1 and self.penalised
        if ranks.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_net = DistributedDataParallel(self.g_net, device_ids=ids)
            if self.sync_d_by_hand:
                distributed.broadcast_parameters(self.D)
            else:
                self.d_net = DistributedDataParallel(self.d_net, device_ids=ids)
            torch.manual_seed(stream(self.seed, Stream.TRAINING, rank=ranks.rank))  # its latents

    def _set_data(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        """The batch sampler (its own seeded generator) and the fixed latents of sample grids."""
        settings, device, seed = self.settings, self.device, self.seed
        self.sampler = BatchSampler(
            place_data(images, device),
            settings.batch_size,
            stream(seed, Stream.TRAINING, rank=self.ranks.rank),
            settings.hflip,
            labels,
            device=device,
        )
        self.fixed_z = torch.randn(
            64,
            settings.nz,
            generator=torch.Generator().manual_seed(stream(seed, Stream.FIXED_LATENTS)),
        ).to(device)
        self._class_counts = (
            torch.bincount(labels, minlength=len(self.classes)).tolist()
            if labels is not None
            else []
        )
        self.fixed_labels = grid_labels(len(self.classes), 64)
        if self.fixed_labels is not None:
            self.fixed_labels = self.fixed_labels.to(device)

    def critic(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's logits on (augmented) images."""
        if self.settings.diffaugment:
            images = diff_augment(images, self.settings.diffaugment)
        return self.d_net(images, labels)

    def penalty(self, real: torch.Tensor, fake: torch.Tensor, labels) -> torch.Tensor:
        """The configured gradient penalties, in fp32 (a half-precision input gradient
        underflows), through the bare D."""
        settings = self.settings
        total = torch.zeros((), device=self.device)
        with torch.autocast(self.device.type, enabled=False):
            real, fake = real.float(), fake.float()

            def critic(x):
                return self.D(x, labels)

            if settings.loss == "wgan-gp":
                total = total + settings.gp_weight * gradient_penalty(critic, real, fake)
            if settings.r1_gamma > 0:
                total = total + settings.r1_gamma / 2 * r1_penalty(critic, real)
        return total

    def autocast(self):
        """Mixed precision where enabled (see `amp_dtype`)."""
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=bool(self.amp_dtype)
        )

    def replayed(self, fake: torch.Tensor, labels: torch.Tensor | None):
        """Experience replay: a `replay` fraction of the batch swapped for old fakes (and their
        labels), which the buffer then takes in place of random old ones."""
        if self.settings.replay <= 0:
            return fake, labels
        k = int(round(self.settings.replay * len(fake)))
        out, out_labels = fake, labels
        if self.replay_buffer is not None and k:
            pick = torch.randint(len(self.replay_buffer), (k,), device=fake.device)
            out = torch.cat([self.replay_buffer[pick].to(fake.dtype), fake[k:]])
            if labels is not None:
                out_labels = torch.cat([self.replay_labels[pick], labels[k:]])
        self._remember(fake.float(), labels)
        return out, out_labels

    def _remember(self, fake: torch.Tensor, labels: torch.Tensor | None) -> None:
        if self.replay_buffer is None or len(self.replay_buffer) < self.settings.replay_size:
            keep = self.settings.replay_size
            self.replay_buffer = _append(self.replay_buffer, fake, keep)
            self.replay_labels = _append(self.replay_labels, labels, keep)
            return
        slots = torch.randint(len(self.replay_buffer), (len(fake),), device=fake.device)
        self.replay_buffer[slots] = fake
        if labels is not None:
            self.replay_labels[slots] = labels

    def train_step(self) -> dict[str, torch.Tensor]:
        """One step, as pytorch/examples' dcgan reads: (1) update D (`n_critic` times), (2)
        update G through D as it now is, (3) follow G with its EMA."""
        settings = self.settings
        for _ in range(settings.n_critic):
            # (1) Update D: its loss on real crops and on G's (detached) fakes, plus penalties
            real, labels = self.sampler.draw()
            with self.autocast():
                z = torch.randn(real.shape[0], settings.nz, device=self.device)
                fake = self.g_net(z, labels)
                old, old_labels = self.replayed(fake.detach(), labels)
                logits_real, logits_fake = self.critic(real, labels), self.critic(old, old_labels)
                loss_d = d_loss(
                    settings.loss,
                    logits_real,
                    logits_fake,
                    settings.label_smoothing,
                    settings.label_noise,
                )
            if self.penalised:
                loss_d = loss_d + self.penalty(real, fake, labels)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(loss_d).backward()
            if self.sync_d_by_hand:  # before unscaling: every rank sees the same inf
                distributed.average_gradients(self.D)
            self.scaler_d.unscale_(self.opt_d)
            grad_d = grad_norm(self.D)  # inf or nan: the scaler skips this step
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()

        # (2) Update G: its loss on the last fakes, through the updated D
        with self.autocast():
            loss_g = g_loss(settings.loss, self.critic(fake, labels))
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.unscale_(self.opt_g)
        grad_g = grad_norm(self.G)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()

        # (3) The EMA of G's weights, which samples and metrics use
        if self.ema is not None:
            self.ema.update(self.G)
        self.step += 1
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(logits_real.detach().float()).mean(),
            "d_fake": torch.sigmoid(logits_fake.detach().float()).mean(),
            "acc_real": (logits_real.detach() > 0).float().mean(),
            "acc_fake": (logits_fake.detach() < 0).float().mean(),
            "grad_d": torch.nan_to_num(grad_d, nan=0.0, posinf=0.0),
            "grad_g": torch.nan_to_num(grad_g, nan=0.0, posinf=0.0),
            "skipped": (~torch.isfinite(grad_d) | ~torch.isfinite(grad_g)).float(),
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
            self.sampler.generator.manual_seed(
                stream(self.seed, Stream.TRAINING, rank=self.ranks.rank) + self.step
            )
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    @contextlib.contextmanager
    def sampling(self) -> Iterator[torch.nn.Module]:
        """The sampling generator (EMA or G) in eval mode, back in its mode afterwards."""
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        try:
            yield generator
        finally:
            generator.train(was_training)

    @torch.no_grad()
    def samples(self) -> torch.Tensor:
        """uint8 images of the sampling generator from the fixed latents (and grid labels)."""
        with self.sampling() as generator:
            return to_uint8(generator(self.fixed_z, self.fixed_labels))


def _append(buffer: torch.Tensor | None, new: torch.Tensor | None, keep: int):
    if new is None:
        return None
    return new.clone()[:keep] if buffer is None else torch.cat([buffer, new])[:keep]
