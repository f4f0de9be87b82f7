"""DCGAN (Radford et al. 2016) for 16 to 256 px, in the spirit of pytorch/examples.

The generator maps a latent (nz, 1, 1) to a 4x4 map, then doubles the resolution with strided
transposed convolutions until `image_size`, halving the width each time; the discriminator mirrors
it. Kernels are 4x4 (pytorch/examples) or 5x5 (the DCGAN paper's TensorFlow code).

`upsample: resize` doubles the resolution by nearest-neighbour resizing followed by a 3x3
convolution instead (Odena et al. 2016, "Deconvolution and checkerboard artifacts"): a strided
transposed convolution adds overlapping kernels unevenly, which draws a periodic lattice over the
samples that training has to unlearn; resizing spreads every input pixel evenly.

Conditional variant (`n_classes` > 0): G appends a learned class embedding to the latent; D is a
projection discriminator (Miyato & Koyama 2018): logit = psi(phi(x)) + <embed(y), phi(x)>, with
phi(x) the last feature map summed over space.

A checkpoint stores the constructor arguments (`model_config`), so sampling needs no training
config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from pipeline.schema import EXPERIMENT, schema_defaults


@dataclass(frozen=True)
@schema_defaults(
    f"{EXPERIMENT}/train", code_only=("image_size", "channels", "n_classes"), partial=True
)
class ModelConfig:
    """The networks' shape; the fields that are train settings default as the config does."""

    image_size: int = 64
    nz: int
    ngf: int
    ndf: int
    channels: int = 3
    d_norm: str  # batch, spectral (SN-GAN: no batch norm) or none (for WGAN-GP)
    minibatch_std: bool  # D sees the batch's spread (Karras et al. 2018): fights collapse
    kernel: int  # 4 (pytorch/examples) or 5 (the paper's code)
    upsample: str  # transposed (DCGAN) or resize (nearest-neighbour, then a 3x3 convolution)
    n_classes: int = 0  # > 0: conditional G and projection D

    @property
    def n_up(self) -> int:
        """Number of resolution doublings from 4x4 to image_size."""
        n = math.log2(self.image_size) - 2
        if self.image_size < 16 or n != int(n):
            raise ValueError(f"image_size must be a power of two >= 16, got {self.image_size}")
        return int(n)

    def up(self, c_in: int, c_out: int) -> nn.Module:
        """A layer that doubles the resolution: a transposed convolution, or resize + convolve."""
        if self.upsample == "resize":
            return nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
            )
        if self.upsample != "transposed":
            raise ValueError(f"upsample must be transposed or resize, got {self.upsample!r}")
        if self.kernel == 4:
            return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
        if self.kernel == 5:
            return nn.ConvTranspose2d(c_in, c_out, 5, 2, 2, output_padding=1, bias=False)
        raise ValueError(f"kernel must be 4 or 5, got {self.kernel}")

    def down(self, c_in: int, c_out: int) -> nn.Conv2d:
        """A strided convolution that halves the resolution."""
        if self.kernel not in (4, 5):
            raise ValueError(f"kernel must be 4 or 5, got {self.kernel}")
        return nn.Conv2d(c_in, c_out, self.kernel, 2, (self.kernel - 1) // 2, bias=False)

    def to_dict(self) -> dict:
        return asdict(self)


def init_weights(module: nn.Module) -> None:
    """DCGAN init: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Shapes per image, with n = n_up (64 px: n = 4, so the first width is ngf * 8 as in
        # pytorch/examples) and s = image_size. Batch norm and ReLU keep the shape.
        width = cfg.ngf * 2 ** (cfg.n_up - 1)
        self.embed = nn.Embedding(cfg.n_classes, cfg.nz) if cfg.n_classes else None
        z_dim = cfg.nz * (2 if cfg.n_classes else 1)
        layers: list[nn.Module] = [
            # input is Z and, if conditional, the class embedding: (z_dim) x 1 x 1
            nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False),
            # state size. (ngf * 2^(n-1)) x 4 x 4
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(cfg.n_up - 1):  # the k-th pass, k = 1 .. n-1
            layers += [
                cfg.up(width, width // 2),
                # state size. (ngf * 2^(n-1-k)) x (4 * 2^k) x (4 * 2^k)
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        # state size. (ngf) x (s/2) x (s/2)
        layers += [
            cfg.up(width, cfg.channels),
            # state size. (nc) x s x s
            nn.Tanh(),
            # output in [-1, 1]: (nc) x s x s
        ]
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.view(z.shape[0], self.cfg.nz)  # (batch, nz), from (batch, nz) or (batch, nz, 1, 1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: pass class labels")
            z = torch.cat([z, self.embed(labels)], dim=1)  # (batch, 2 * nz)
        return self.main(z[:, :, None, None])  # (batch, z_dim, 1, 1) -> (batch, nc, s, s)


class MinibatchStd(nn.Module):
    """Appends one feature map: the standard deviation over groups of images, averaged."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group, n)
        if n % g:
            g = 1
        std = (
            x.view(g, n // g, c, h, w).std(dim=0, unbiased=False)
            if g > 1
            else torch.zeros_like(x[:1])
        )
        feature = std.mean(dim=(1, 2, 3), keepdim=True)  # (n // g, 1, 1, 1)
        feature = feature.repeat(g, 1, h, w) if g > 1 else feature.expand(n, 1, h, w)
        return torch.cat([x, feature], dim=1)


class Discriminator(nn.Module):
    """Returns one logit per image. `d_norm`: batch norm (DCGAN), spectral norm on every
    convolution and no batch norm (SN-GAN), or neither (what a gradient penalty needs)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.d_norm not in ("batch", "spectral", "none"):
            raise ValueError(f"d_norm must be batch, spectral or none, got {cfg.d_norm!r}")
        sn = nn.utils.parametrizations.spectral_norm if cfg.d_norm == "spectral" else (lambda m: m)
        # Shapes per image, with n = n_up and s = image_size (64 px: n = 4, ndf * 8 x 4 x 4 at
        # the end, as in pytorch/examples). Batch norm and LeakyReLU keep the shape.
        width = cfg.ndf
        layers: list[nn.Module] = [
            # input is (nc) x s x s
            sn(cfg.down(cfg.channels, width)),
            # state size. (ndf) x (s/2) x (s/2)
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(cfg.n_up - 1):  # the k-th pass, k = 1 .. n-1
            layers.append(sn(cfg.down(width, width * 2)))
            # state size. (ndf * 2^k) x (s / 2^(k+1)) x (s / 2^(k+1))
            if cfg.d_norm == "batch":
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width *= 2
        # state size. (ndf * 2^(n-1)) x 4 x 4
        if cfg.minibatch_std:
            layers.append(MinibatchStd())
            # state size. (ndf * 2^(n-1) + 1) x 4 x 4
            width += 1
        self.features = nn.Sequential(*layers)
        self.head = sn(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        # state size. 1 x 1 x 1: one logit per image
        self.embed = sn(nn.Embedding(cfg.n_classes, width)) if cfg.n_classes else None
        # class embedding: (width), the channels of the last feature map
        if cfg.d_norm != "spectral":
            self.apply(init_weights)
            if self.embed is not None:
                nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)  # (batch, width, 4, 4)
        logit = self.head(h).flatten()  # (batch, 1, 1, 1) -> (batch,)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            # projection: <embed(y), phi(x)>, both (batch, width), phi summed over the 4 x 4 map
            logit = logit + (self.embed(labels) * h.sum(dim=(2, 3))).sum(dim=1)
        return logit


def grid_labels(n_classes: int, count: int, per_row: int = 8) -> torch.Tensor | None:
    """Labels for a sample grid: one class per row, classes in turn (None if unconditional)."""
    if not n_classes:
        return None
    return (torch.arange(count) // per_row) % n_classes


def load_generator(path, device: str | torch.device = "cpu") -> tuple[Generator, dict]:
    """A generator from a checkpoint or final model file, in eval mode, and the file's state."""
    state = torch.load(path, map_location=device, weights_only=True)
    generator = Generator(ModelConfig(**state["model_config"])).to(device)
    generator.load_state_dict(state["generator"])
    return generator.eval(), state
