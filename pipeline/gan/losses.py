"""GAN losses on discriminator logits, and the gradient penalties.

Each loss is a pair of plain functions (discriminator, generator). `label_smoothing` is one-sided
(real targets 1 - s, as in Salimans et al. 2016) and applies to the BCE loss only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.schema import EXPERIMENT, check_choices

LOSSES = ("bce", "hinge", "lsgan", "wgan-gp")
check_choices(f"{EXPERIMENT}/train", "loss", LOSSES)  # the config offers exactly these


def d_loss(
    kind: str,
    real: torch.Tensor,
    fake: torch.Tensor,
    label_smoothing: float = 0.0,
    label_noise: float = 0.0,
) -> torch.Tensor:
    """Discriminator loss from its logits on real and on generated images. For bce,
    `label_noise` is the fraction of labels flipped at random (real called fake and back)."""
    if kind == "bce":
        real_target = torch.full_like(real, 1.0 - label_smoothing)
        fake_target = torch.zeros_like(fake)
        if label_noise > 0:
            real_target = torch.where(torch.rand_like(real) < label_noise, 0.0, real_target)
            fake_target = torch.where(torch.rand_like(fake) < label_noise, 1.0, fake_target)
        return F.binary_cross_entropy_with_logits(
            real, real_target
        ) + F.binary_cross_entropy_with_logits(fake, fake_target)
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1.0).pow(2).mean() + fake.pow(2).mean())
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown loss {kind!r}; known: {LOSSES}")


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss from the discriminator's logits on generated images (non-saturating BCE)."""
    if kind == "bce":
        return F.softplus(-fake).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1.0).pow(2).mean()
    raise ValueError(f"unknown loss {kind!r}; known: {LOSSES}")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad critic(x_hat)|| - 1)^2 on random interpolates."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()


def r1_penalty(critic, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D on real images."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()
