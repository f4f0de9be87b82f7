"""Losses, penalties, spectral norm, EMA, DiffAugment and the D-wins alarm, on tiny tensors."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import torch
from torch import nn

from pipeline.gan.augment import cutout, diff_augment, translation
from pipeline.gan.ema import EMA
from pipeline.gan.losses import d_loss, g_loss, gradient_penalty, r1_penalty
from pipeline.gan.models import Discriminator, ModelConfig
from pipeline.gan.monitor import DiscriminatorAlarm
from pipeline.gan.train import train
from tests.test_gan import TINY, make_shards


def linear_critic(norm: float, shape=(3, 8, 8)):
    w = torch.randn(int(torch.tensor(shape).prod()))
    w = w / w.norm() * norm
    return lambda x: x.flatten(1) @ w


def test_gradient_penalty_is_zero_for_a_1_lipschitz_linear_critic():
    real, fake = torch.randn(16, 3, 8, 8), torch.randn(16, 3, 8, 8)
    assert gradient_penalty(linear_critic(1.0), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    assert gradient_penalty(linear_critic(3.0), real, fake).item() == pytest.approx(4.0, rel=1e-5)


def test_r1_is_the_squared_gradient_norm_on_real_images():
    assert r1_penalty(linear_critic(2.0), torch.randn(5, 3, 8, 8)).item() == pytest.approx(
        4.0, rel=1e-5
    )


def test_losses_on_known_logits():
    real, fake = torch.full((4,), 2.0), torch.full((4,), -2.0)
    assert d_loss("hinge", real, fake).item() == 0.0  # both beyond the margin
    assert d_loss("lsgan", torch.ones(4), torch.zeros(4)).item() == 0.0
    assert d_loss("wgan-gp", real, fake).item() == -4.0
    soft = torch.nn.functional.softplus
    smoothed = 0.9 * soft(-real) + 0.1 * soft(real) + soft(fake)
    assert d_loss("bce", real, fake, label_smoothing=0.1).item() == pytest.approx(
        smoothed.mean().item()
    )
    assert g_loss("bce", fake).item() == pytest.approx(soft(torch.tensor(2.0)).item())
    assert g_loss("hinge", fake).item() == 2.0 and g_loss("lsgan", torch.ones(3)).item() == 0.0
    with pytest.raises(ValueError, match="unknown loss"):
        d_loss("wasserstein", real, fake)


def test_spectral_norm_bounds_the_top_singular_value():
    torch.manual_seed(0)
    discriminator = Discriminator(ModelConfig(image_size=32, ndf=8, d_norm="spectral"))
    for _ in range(30):  # power iterations run in training-mode forward passes
        discriminator(torch.randn(4, 3, 32, 32))
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules())
    for conv in convs:
        top = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
        assert top == pytest.approx(1.0, abs=0.05)


def test_ema_update_arithmetic():
    model = nn.Linear(2, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    ema = EMA(model, decay=0.9)
    nn.init.constant_(model.weight, 3.0)
    ema.update(model)
    assert torch.allclose(ema.model.weight, torch.full((1, 2), 0.9 * 1.0 + 0.1 * 3.0))
    ema.update(model)
    assert torch.allclose(ema.model.weight, torch.full((1, 2), 0.9 * 1.2 + 0.1 * 3.0))


def test_diffaugment_keeps_shapes_and_gradients():
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, ("color", "translation", "cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    ones = torch.ones(50, 1, 16, 16)
    cut = cutout(ones)  # a square of half the side, centred anywhere (so partly outside at times)
    assert 0.75 <= cut.mean().item() < 0.95 and (cut.flatten(1).min(dim=1).values == 0).all()
    moved = translation(ones)
    assert (moved.sum(dim=(1, 2, 3)) >= 14 * 14).all() and (moved <= 1).all()
    with pytest.raises(ValueError, match="policy"):
        diff_augment(x, ("rotate",))


def test_alarm_warns_once_when_d_wins_for_long(caplog):
    alarm = DiscriminatorAlarm(accuracy=0.99, steps=100)
    with caplog.at_level(logging.WARNING):
        fired = [alarm.update(step, 50, 1.0, 0.995) for step in range(50, 301, 50)]
    assert fired == [False, True, False, False, False, False]
    assert "vanishing gradients" in caplog.text
    assert not alarm.update(350, 50, 0.7, 0.99) and alarm.run == 0


VARIANTS = {
    "bce-smoothed-noisy": {"loss": "bce", "label_smoothing": 0.1, "label_noise": 0.05},
    "hinge-sn": {"loss": "hinge", "d_norm": "spectral"},
    "lsgan-r1": {"loss": "lsgan", "r1_gamma": 1.0},
    "wgan-gp": {"loss": "wgan-gp", "d_norm": "none", "n_critic": 2},
    "bce-ema-diffaugment": {"ema_decay": 0.9, "diffaugment": ("color", "translation", "cutout")},
    "bf16-channels-last": {"amp": "bf16", "channels_last": "on"},
    "fp16-5x5": {"amp": "fp16", "kernel": 5},
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_variant_trains_with_finite_losses_and_moving_weights(tmp_path, name):
    shards = make_shards(tmp_path / "shards")
    settings = replace(TINY, steps=4, **VARIANTS[name])
    trainer = train(
        shards,
        model_path=tmp_path / "m.pt",
        stats_path=tmp_path / "s.jsonl",
        work_dir=tmp_path / "w",
        settings=settings,
        seed=1,
    )
    initial = train(
        shards,
        model_path=tmp_path / "m0.pt",
        stats_path=tmp_path / "s0.jsonl",
        work_dir=tmp_path / "w0",
        settings=replace(settings, steps=1),
        seed=1,
    )
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert len(lines) == 4 and "nan" not in "".join(lines).lower()
    moved = [
        not torch.equal(a, b)
        for a, b in zip(trainer.G.parameters(), initial.G.parameters(), strict=True)
    ]
    assert all(moved)


def test_wgan_gp_with_batch_norm_is_refused(tmp_path):
    with pytest.raises(ValueError, match="d_norm"):
        train(
            make_shards(tmp_path / "s"),
            model_path=tmp_path / "m.pt",
            stats_path=tmp_path / "x",
            work_dir=tmp_path / "w",
            settings=replace(TINY, loss="wgan-gp"),
            seed=0,
        )


def whole_and_resumed(tmp_path, settings, seed: int):
    """The same run trained in one go (in a/) and stopped after step 3 then resumed (in b/)."""
    shards = make_shards(tmp_path / "shards")

    def run(name, s):
        out = tmp_path / name
        return train(
            shards,
            model_path=out / "m.pt",
            stats_path=out / "s",
            work_dir=out / "w",
            settings=s,
            seed=seed,
        )

    whole = run("a", settings)
    run("b", replace(settings, steps=3))
    return whole, run("b", settings)


def test_resume_with_ema_equals_an_uninterrupted_run(tmp_path):
    settings = replace(TINY, ema_decay=0.9, diffaugment=("translation",))
    whole, resumed = whole_and_resumed(tmp_path, settings, seed=2)
    for a, b in zip(
        whole.ema.model.state_dict().values(), resumed.ema.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    final = torch.load(tmp_path / "b/m.pt", weights_only=True)
    assert all(
        torch.equal(final["generator"][k], v) for k, v in resumed.ema.model.state_dict().items()
    )


def test_minibatch_std_layer_sees_the_batch_spread():
    from pipeline.gan.models import MinibatchStd

    same = MinibatchStd()(torch.ones(8, 2, 4, 4))
    assert same.shape == (8, 3, 4, 4) and same[:, 2].abs().max() == 0
    varied = MinibatchStd()(torch.randn(8, 2, 4, 4))
    assert varied[:, 2].min() > 0
    d = Discriminator(ModelConfig(image_size=32, ndf=4, minibatch_std=True))
    assert d(torch.randn(8, 3, 32, 32)).shape == (8,)


def test_experience_replay_feeds_old_fakes_and_survives_resume(tmp_path):
    settings = replace(TINY, replay=0.5, replay_size=16, minibatch_std=True)
    whole, resumed = whole_and_resumed(tmp_path, settings, seed=4)
    assert whole.replay_buffer is not None and len(whole.replay_buffer) == 16
    assert torch.equal(whole.replay_buffer, resumed.replay_buffer)
    for a, b in zip(whole.G.state_dict().values(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_diversity_alarm_and_progress_strip(tmp_path, caplog):
    from PIL import Image

    from pipeline.gan.monitor import check_diversity

    real = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    collapsed = real[:1].repeat(64, 1, 1, 1)
    with caplog.at_level(logging.WARNING):
        assert check_diversity(100, collapsed, real) and not check_diversity(
            100, real.flip(0), real
        )
    assert "collapsed" in caplog.text
    shards = make_shards(tmp_path / "shards")
    train(
        shards,
        model_path=tmp_path / "o/model.pt",
        stats_path=tmp_path / "o/s",
        work_dir=tmp_path / "o/w",
        settings=TINY,
        seed=0,
    )
    strip = Image.open(tmp_path / "o/progress.gif")
    assert strip.n_frames == 2  # the grids of steps 3 and 6


def test_label_noise_one_swaps_the_bce_targets():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    soft = torch.nn.functional.softplus
    swapped = soft(real).mean() + soft(-fake).mean()  # real called fake, fake called real
    assert d_loss("bce", real, fake, label_noise=1.0).item() == pytest.approx(swapped.item())


def test_gradient_norms_are_logged(tmp_path):
    train(
        make_shards(tmp_path / "s"),
        model_path=tmp_path / "m.pt",
        stats_path=tmp_path / "st.jsonl",
        work_dir=tmp_path / "w",
        settings=TINY,
        seed=0,
    )
    first = json.loads((tmp_path / "st.jsonl").read_text().splitlines()[0])
    assert first["grad_d"] > 0 and first["grad_g"] > 0
