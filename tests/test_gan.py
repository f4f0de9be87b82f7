"""The DCGAN and its training loop on tiny shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import TrainSettings
from pipeline.gan.models import Discriminator, Generator, ModelConfig, load_generator
from pipeline.gan.sampling import generate
from pipeline.gan.train import train
from pipeline.shards import write_arrays

TINY = TrainSettings(
    steps=6, batch_size=8, nz=8, ngf=4, ndf=4, checkpoint_every=3, sample_every=3, log_every=1
)


def make_shards(root: Path, size: int = 32, count: int = 40) -> Path:
    """A minimal shard folder: one train file of random images."""
    rng = np.random.default_rng(0)
    images = (rng.random((count, size, size, 3)) * 255).astype(np.uint8)
    write_arrays(root, splits={"train": images})
    return root


@pytest.mark.parametrize("size", [32, 64, 128])
def test_models_map_latents_to_images_and_images_to_logits(size):
    cfg = ModelConfig(image_size=size, nz=16, ngf=4, ndf=4)
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    images = generator(torch.randn(3, 16))
    assert images.shape == (3, 3, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(images).shape == (3,)


def test_model_rejects_sizes_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power of two"):
        Generator(ModelConfig(image_size=48))


def run(tmp_path: Path, name: str, settings: TrainSettings, shards: Path):
    out = tmp_path / name
    trainer = train(
        shards,
        model_path=out / "model.pt",
        stats_path=out / "stats.jsonl",
        work_dir=out / "ckpt",
        settings=settings,
        seed=3,
    )
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    return trainer, stats, out


def test_same_seed_gives_same_first_losses_and_losses_are_finite(tmp_path):
    shards = make_shards(tmp_path / "shards")
    _, first, _ = run(tmp_path, "a", TINY, shards)
    _, second, _ = run(tmp_path, "b", TINY, shards)
    assert [s["step"] for s in first] == [1, 2, 3, 4, 5, 6]
    assert [(s["loss_d"], s["loss_g"]) for s in first] == [
        (s["loss_d"], s["loss_g"]) for s in second
    ]
    assert all(np.isfinite(s["loss_d"]) and np.isfinite(s["loss_g"]) for s in first)
    _, other_seed, _ = run(tmp_path, "c", replace(TINY, lr_d=1e-3), shards)
    assert [s["loss_g"] for s in other_seed][1:] != [s["loss_g"] for s in first][1:]


@pytest.mark.parametrize("outer", [1, 4])
def test_the_threads_around_training_do_not_change_it(tmp_path, outer):
    # training sets its own thread count (at most the CPUs it may use), so a test or a user's
    # process that set 1 or 4 threads before gets the same weights, bit for bit
    shards = make_shards(tmp_path / "shards")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(outer)
        trainer, _, _ = run(tmp_path, f"outer{outer}", TINY, shards)
    finally:
        torch.set_num_threads(before)
    torch.set_num_threads(2)
    reference, _, _ = run(tmp_path, "reference", TINY, shards)
    torch.set_num_threads(before)
    for got, want in zip(trainer.G.parameters(), reference.G.parameters(), strict=True):
        assert torch.equal(got, want)


def test_passive_openmp_waiting_is_set_before_torch_loads():
    # spinning OpenMP threads made training 20-90x slower beside other work (pipeline/__init__)
    code = "import os, pipeline.gan.train, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own choice is kept
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "ACTIVE", out.stderr


def test_interrupted_then_resumed_run_equals_uninterrupted_run(tmp_path):
    shards = make_shards(tmp_path / "shards")
    whole, _, _ = run(tmp_path, "whole", TINY, shards)
    run(tmp_path, "split", replace(TINY, steps=3), shards)  # stops after its checkpoint at step 3
    resumed, stats, out = run(tmp_path, "split", TINY, shards)  # same folder: resumes at 3
    assert [s["step"] for s in stats] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(whole.G.state_dict().values(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    generator, state = load_generator(out / "model.pt")
    assert generator.cfg.nz == TINY.nz and state["step"] == 6
    assert sorted(p.name for p in (out / "ckpt" / "samples").iterdir()) == [
        "step_0000003.png",
        "step_0000006.png",
    ]


def test_the_saved_generator_draws_each_sample_on_its_own(tmp_path):
    """Evaluation loads G in eval mode (running batch-norm statistics): a sample does not depend
    on the others drawn with it, and the file draws what the trainer's samples came from."""
    trainer, _, out = run(tmp_path, "run", TINY, make_shards(tmp_path / "shards"))
    generator, _ = load_generator(out / "model.pt")
    whole = generate(generator, 16, seed=3).int()
    in_halves = generate(generator, 16, seed=3, batch=8).int()
    assert (whole - in_halves).abs().max() <= 1  # float sums in another order, nothing more
    with trainer.sampling() as sampler:
        assert (generate(sampler, 16, seed=3).int() - whole).abs().max() <= 1


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    shards = make_shards(tmp_path / "shards")
    run(tmp_path, "run", replace(TINY, steps=3), shards)
    trainer, stats, _ = run(tmp_path, "run", replace(TINY, lr_g=1e-3), shards)
    assert trainer.step == 6 and [s["step"] for s in stats] == [1, 2, 3, 4, 5, 6]
    fresh, _, _ = run(tmp_path, "fresh", replace(TINY, lr_g=1e-3), shards)
    for a, b in zip(fresh.G.state_dict().values(), trainer.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_training_builds_its_networks_for_the_size_the_shards_hold(tmp_path):
    shards = make_shards(tmp_path / "shards", size=64)
    trainer, _, out = run(tmp_path, "sized", replace(TINY, steps=1), shards)
    with trainer.sampling() as generator:
        assert generate(generator, 2, 0).shape == (2, 3, 64, 64)
    generator, _ = load_generator(out / "model.pt")
    assert generator.cfg.image_size == 64
