"""Architecture variants (256 px, 5x5 kernels), the conditional GAN, fp16 loss scaling and the
train rule's GPU resource."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.config import EvalSettings
from pipeline.evaluate import EvalOutputs, evaluate
from pipeline.gan.data import BatchSampler, load_labels, load_split
from pipeline.gan.models import Discriminator, Generator, ModelConfig, grid_labels, load_generator
from pipeline.gan.monitor import lattice
from pipeline.gan.train import train
from pipeline.reference import reference_features
from pipeline.shards import write_arrays
from tests.conftest import dry_run, snakemake, write_config
from tests.test_gan import TINY, make_shards
from tests.test_gan_stabilisers import whole_and_resumed


def two_class_shards(root: Path, per_file: int = 12, files: int = 2, size: int = 32) -> Path:
    """Shards of dark ('cave') and bright ('snow') images in two files, with an index that names
    each crop's category and source as write_shards does."""
    rng = np.random.default_rng(0)
    rows, arrays = [], []
    for f in range(files):
        name = f"train-{f:05d}.npy"
        bright = rng.random(per_file) < 0.5
        base = np.where(bright, 220, 30).astype(np.uint8)[:, None, None, None]
        noise = rng.integers(0, 20, (per_file, size, size, 3), dtype=np.uint8)
        arrays.append(base + noise - 10 * bright[:, None, None, None].astype(np.uint8))
        rows += [
            {
                "crop_id": f"{f}-{i}",
                "split": "train",
                "shard": name,
                "offset": i,
                "source": "coco" if i % 3 else "openimages",
                "category": "snow" if b else "cave",
            }
            for i, b in enumerate(bright)
        ]
    index = pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # order must not matter
    write_arrays(root, splits={"train": arrays}, index=index)
    return root


@pytest.mark.parametrize("kernel", [4, 5])
def test_256_px_models_with_4x4_and_5x5_kernels(kernel):
    cfg = ModelConfig(image_size=256, nz=8, ngf=2, ndf=2, kernel=kernel)
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, 3, 256, 256)
    assert discriminator(images).shape == (2,)
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == 7  # 4x4 map, then six doublings to 256
    assert {m.kernel_size for m in convs[1:]} == {(kernel, kernel)}


def test_kernel_other_than_4_or_5_is_refused():
    with pytest.raises(ValueError, match="kernel must be 4 or 5"):
        Generator(ModelConfig(image_size=32, kernel=3))


@pytest.mark.parametrize("seed", [0, 1])
def test_resize_upsampling_draws_no_lattice_where_transposed_convolutions_do(seed):
    """Untrained generators at 64 px, 64 samples: the transposed one's mean 16 x 16 tile spreads
    by 0.67-0.74 of the images' spread, and its 2 x 2 one (the checkerboard) by 0.42-0.58; the
    resizing one's by 0.05-0.08 and 0.003-0.013 (measured, seeds 0 and 1)."""
    drawn = {}
    for upsample in ("transposed", "resize"):
        torch.manual_seed(seed)
        cfg = ModelConfig(image_size=64, nz=16, ngf=8, ndf=8, upsample=upsample)
        with torch.no_grad():
            images = Generator(cfg)(torch.randn(64, 16))
        drawn[upsample] = lattice(images), lattice(images, period=2)
    assert min(drawn["transposed"]) > 0.3
    assert drawn["resize"][0] < 0.15 and drawn["resize"][1] < 0.03


def test_lattice_sees_a_tiled_motif_and_not_photos_or_noise():
    """A faint 16-pixel motif added to varied images is found; the images alone score near 0."""
    rng = torch.Generator().manual_seed(0)
    scenes = (
        torch.rand(64, 3, 8, 8, generator=rng).repeat_interleave(16, -1).repeat_interleave(16, -2)
    )
    scenes = scenes + 0.1 * torch.rand(64, 3, 128, 128, generator=rng)
    motif = torch.rand(3, 16, 16, generator=rng).repeat(1, 8, 8)
    assert lattice(scenes) < 0.1
    assert lattice(scenes + 0.3 * motif) > 3 * lattice(scenes)
    assert lattice(scenes.roll(5, dims=-1)) < 0.1  # shifted scenes: still no lattice


@pytest.mark.parametrize("size", [16, 32, 128, 256])
def test_resize_upsampling_reaches_every_size_in_range(size):
    cfg = ModelConfig(image_size=size, nz=8, ngf=2, ndf=2, upsample="resize")
    generator = Generator(cfg)
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, 3, size, size)
    assert images.abs().max() <= 1
    upsamplers = [m for m in generator.modules() if isinstance(m, torch.nn.Upsample)]
    assert len(upsamplers) == cfg.n_up  # every doubling after the 4x4 map resizes


def test_upsample_other_than_transposed_or_resize_is_refused():
    with pytest.raises(ValueError, match="upsample must be transposed or resize"):
        Generator(ModelConfig(image_size=32, upsample="bilinear"))


def test_resize_generator_trains_and_loads_from_its_checkpoint(tmp_path):
    shards = make_shards(tmp_path / "shards", size=16, count=16)
    model = tmp_path / "model.pt"
    settings = replace(TINY, steps=2, upsample="resize")
    train(
        shards,
        model_path=model,
        stats_path=tmp_path / "stats.jsonl",
        work_dir=tmp_path / "ckpt",
        settings=settings,
        seed=0,
    )
    generator, _ = load_generator(model)
    assert any(isinstance(m, torch.nn.Upsample) for m in generator.modules())
    assert generator(torch.randn(2, TINY.nz)).shape == (2, 3, 16, 16)


def test_conditional_generator_draws_by_label_and_needs_one():
    cfg = ModelConfig(image_size=32, nz=8, ngf=4, ndf=4, n_classes=3)
    generator = Generator(cfg).eval()
    z = torch.randn(1, 8).repeat(3, 1)
    images = generator(z, torch.tensor([0, 1, 2]))
    scale = images.abs().max()
    assert (images[0] - images[1]).abs().max() > 0.01 * scale
    assert (images[1] - images[2]).abs().max() > 0.01 * scale
    torch.testing.assert_close(generator(z[:1], torch.tensor([1])), images[1:2])
    with pytest.raises(ValueError, match="conditional"):
        generator(z)


def test_projection_discriminator_adds_the_class_embedding_times_the_features():
    cfg = ModelConfig(image_size=32, nz=8, ngf=4, ndf=4, n_classes=2, d_norm="none")
    discriminator = Discriminator(cfg)
    x = torch.randn(4, 3, 32, 32)
    features = discriminator.features(x).sum(dim=(2, 3))
    difference = discriminator(x, torch.ones(4, dtype=torch.long)) - discriminator(
        x, torch.zeros(4, dtype=torch.long)
    )
    embed = discriminator.embed.weight
    torch.testing.assert_close(difference, features @ (embed[1] - embed[0]))


def test_grid_labels_give_one_class_per_row():
    assert grid_labels(0, 16) is None
    assert grid_labels(3, 16, per_row=4).tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [0] * 4


def test_labels_follow_the_order_of_the_pixels(tmp_path):
    shards = two_class_shards(tmp_path / "shards")
    images = load_split(shards, "train")
    labels, names = load_labels(shards, "train", "category")
    assert names == ["cave", "snow"] and len(labels) == len(images) == 24
    bright = images.float().mean(dim=(1, 2, 3)) > 128
    assert torch.equal(bright, labels == 1)
    sources, source_names = load_labels(shards, "train", "source")
    assert source_names == ["coco", "openimages"] and sources.tolist().count(1) == 8
    real, drawn = BatchSampler(images, 16, seed=0, hflip=True, labels=labels).draw()
    assert torch.equal(real.mean(dim=(1, 2, 3)) > 0, drawn == 1)  # flips keep the pairing


def test_conditional_run_trains_samples_one_class_per_row_and_evaluates(tmp_path):
    shards = two_class_shards(tmp_path / "shards", per_file=20)
    out = tmp_path / "run"
    settings = replace(TINY, steps=4, condition="category", replay=0.5, replay_size=16)
    trainer = train(
        shards,
        model_path=out / "m.pt",
        stats_path=out / "s.jsonl",
        work_dir=out / "w",
        settings=settings,
        seed=0,
    )
    assert trainer.classes == ["cave", "snow"] and trainer.class_counts() == [
        int((trainer.sampler.labels == k).sum()) for k in (0, 1)
    ]
    assert len(trainer.replay_labels) == 16  # old fakes keep their labels
    model = torch.load(out / "m.pt", weights_only=True)
    assert model["classes"] == ["cave", "snow"] and model["model_config"]["n_classes"] == 2
    s = EvalSettings(num_samples=20, grid_size=4, inception_weights=str(tmp_path / "none"))
    reference_features(shards, out_path=out / "ref.pt", settings=s, seed=0)
    figures = ("interpolation", "nearest", "distances", "curve")
    outputs = EvalOutputs(
        out / "samples.png",
        out / "metrics.json",
        out / "losses.png",
        *(out / f"{name}.png" for name in figures),
    )
    metrics = evaluate(
        out / "m.pt",
        shards_dir=shards,
        stats_path=out / "s.jsonl",
        reference_path=out / "ref.pt",
        evals_path=out / "evals.jsonl",
        out=outputs,
        settings=s,
        seed=0,
    )
    assert metrics["classes"] == ["cave", "snow"] and metrics["swd"] is not None
    assert Image.open(out / "samples.png").size[0] > 4 * 32
    assert json.loads((out / "metrics.json").read_text())["classes"] == ["cave", "snow"]


def test_fp16_trains_with_a_loss_scaler_and_resumes_exactly(tmp_path):
    settings = replace(TINY, amp="fp16")
    whole, resumed = whole_and_resumed(tmp_path, settings, seed=4)
    assert whole.amp_dtype == torch.float16 and whole.scaler_d.is_enabled()
    for a, b in zip(whole.G.state_dict().values(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert resumed.scaler_d.get_scale() == whole.scaler_d.get_scale()
    stats = [json.loads(ln) for ln in (tmp_path / "a/s").read_text().splitlines()]
    assert all(np.isfinite(s["loss_d"]) and s["skipped"] == 0 for s in stats)


def test_a_scaler_overflow_skips_the_step_and_is_logged(tmp_path):
    shards = make_shards(tmp_path / "shards")
    settings = replace(TINY, steps=1, amp="fp16")
    trainer = train(
        shards,
        model_path=tmp_path / "m.pt",
        stats_path=tmp_path / "s",
        work_dir=tmp_path / "w",
        settings=settings,
        seed=0,
    )
    before = [p.detach().clone() for p in trainer.D.parameters()]
    trainer.scaler_d.update(new_scale=2.0**40)  # fp16 gradients overflow at this scale
    stats = trainer.train_step()
    assert float(stats["skipped"]) == 1.0 and float(stats["grad_d"]) == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.D.parameters(), strict=True))
    assert trainer.scaler_d.get_scale() == 2.0**39  # halved for the next step


def test_train_rule_asks_for_the_configured_gpus(tmp_path):
    def train_job(gpus: int) -> str:
        write_config(tmp_path, {"experiments": {"demo": {"train": {"gpus": gpus}}}})
        proc = snakemake(tmp_path, "-n", "results/demo/train/model.pt")
        return proc.stdout.split("rule train_experiment:", 1)[1].split("\n\n", 1)[0]

    def mem_mb(job: str) -> int:
        return int(re.search(r"\bmem_mb=(\d+)", job).group(1))

    two, none = train_job(2), train_job(0)
    # one node (torchrun's processes share it; the SLURM plugin passes --nodes=1), and the
    # memory of one training process per GPU (pipeline/cluster/memory.py)
    assert "gpu=2, nodes=1" in two and "gpu=0, nodes=1" in none
    assert mem_mb(two) == 2 * mem_mb(none) >= 2000
    assert dry_run(tmp_path, "results/demo/train/model.pt")["train_experiment"] == 1


def test_condition_without_an_index_names_the_file(tmp_path):
    shards = make_shards(tmp_path / "shards")
    (shards / "index.parquet").unlink()  # a shard set written without its index
    with pytest.raises(ValueError, match=r"index\.parquet: cannot read the source of each crop"):
        train(
            shards,
            model_path=tmp_path / "m",
            stats_path=tmp_path / "s",
            work_dir=tmp_path / "w",
            settings=replace(TINY, condition="source"),
            seed=0,
        )


def test_training_data_stays_on_the_host_when_it_would_not_fit_the_gpu():
    from pipeline.gan.devices import fits_on_device

    assert fits_on_device(3 * 10**9, free=8 * 10**9)  # 3 GB of crops on an 8 GB-free GPU
    assert not fits_on_device(5 * 10**9, free=8 * 10**9)  # over half: kept pinned on the host
