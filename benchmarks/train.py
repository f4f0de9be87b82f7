"""Images per second of our training step against pytorch/examples' DCGAN step, same process.

Both train the same DCGAN (64 px, ngf = ndf = 64, batch 128, Adam 2e-4 / 0.5). Baseline: the loop
of pytorch/examples/dcgan/main.py (Sigmoid + BCELoss, real batch from a DataLoader over image
files with ToTensor + Normalize, 2 workers). Ours: `pipeline.gan.trainer.Trainer.train_step` (data
held as one uint8 tensor on the device, bf16 autocast (fp16 + loss scaling on GPUs without bf16)
and channels-last on CUDA, logits + BCE).

    .venv/bin/python benchmarks/train.py [--steps 10] [--device auto] [--amp fp16] [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from pipeline.config import TrainSettings
from pipeline.gan.devices import select_device
from pipeline.gan.models import Discriminator, Generator, ModelConfig
from pipeline.gan.trainer import Trainer

SIZE, BATCH = 64, 128


class Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        pixels = np.array(Image.open(self.paths[i]).convert("RGB"))
        return torch.from_numpy(pixels).permute(2, 0, 1).float().div(127.5).sub(1)


def examples_step(netG, netD, opt_g, opt_d, real, device, nz=100):
    """One iteration of pytorch/examples' DCGAN loop."""
    criterion = nn.BCELoss()
    real = real.to(device)
    b = real.size(0)
    netD.zero_grad()
    output = torch.sigmoid(netD(real))
    err_real = criterion(output, torch.full((b,), 1.0, device=device))
    err_real.backward()
    fake = netG(torch.randn(b, nz, 1, 1, device=device))
    output = torch.sigmoid(netD(fake.detach()))
    err_fake = criterion(output, torch.full((b,), 0.0, device=device))
    err_fake.backward()
    opt_d.step()
    netG.zero_grad()
    output = torch.sigmoid(netD(fake))
    err_g = criterion(output, torch.full((b,), 1.0, device=device))
    err_g.backward()
    opt_g.step()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"])
    parser.add_argument("--compile", action="store_true", help="torch.compile our networks")
    args = parser.parse_args()
    device = select_device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, SIZE, SIZE, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, pixels in enumerate(images):
            paths.append(Path(tmp) / f"{i:05d}.png")
            Image.fromarray(pixels).save(paths[-1], compress_level=1)
        loader = torch.utils.data.DataLoader(
            Files(paths),
            batch_size=BATCH,
            shuffle=True,
            num_workers=2,
            drop_last=True,
            persistent_workers=True,
        )
        cfg = ModelConfig(image_size=SIZE, nz=100, ngf=64, ndf=64)
        torch.manual_seed(0)
        netG, netD = Generator(cfg).to(device), Discriminator(cfg).to(device)
        opt_g = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        batches = iter(loader)

        def baseline_step():
            nonlocal batches
            try:
                real = next(batches)
            except StopIteration:
                batches = iter(loader)
                real = next(batches)
            examples_step(netG, netD, opt_g, opt_d, real, device)

        data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        trainer = Trainer(
            TrainSettings(
                batch_size=BATCH, nz=100, ngf=64, ndf=64, amp=args.amp, compile=args.compile
            ),
            images=data,
            image_size=SIZE,
            seed=0,
            device=device,
        )
        results = {}
        for name, step in (("pytorch/examples", baseline_step), ("ours", trainer.train_step)):
            for _ in range(2):  # warm-up
                step()
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync(device)
            results[name] = args.steps * BATCH / (time.perf_counter() - start)
    name = (
        torch.cuda.get_device_name()
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"DCGAN 64 px, batch {BATCH}, {args.steps} steps on {name}; ours: {trainer.amp_dtype or 'fp32'}"
    )
    for key, value in results.items():
        print(f"{key:18s}: {value:10.1f} images/s")
    print(
        f"ratio             : {results['ours'] / results['pytorch/examples']:10.2f}x  (goal on a GPU >= 3x)"
    )


if __name__ == "__main__":
    main()
