"""What one training step must do, checked on the step itself: cheap, exact, and able to fail.

A GAN trainer can be subtly wrong and still produce plausible pictures: reals and fakes reaching
D on different scales, an augmentation applied to one side only, a generator that leaves
[-1, 1], gradients mixed between the two players, an EMA that never moves, BatchNorm left in
eval mode, sample-grid latents from another distribution than training latents, R1 on fakes,
smoothing on the fake targets, a class label G ignores, learning rates or betas that do not
reach the optimiser they are for, fewer D steps than `n_critic`. Each test here watches the real
step (spies on D, G, the sampler, the optimisers) and compares with what the step must be,
recomputed independently. `benchmarks/breaks.py` applies such breaks to the code and shows which
test fails.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import pytest
import torch

from pipeline.config import TrainSettings
from pipeline.gan import trainer as trainer_module
from pipeline.gan.losses import LOSSES, d_loss, g_loss
from pipeline.gan.trainer import Trainer

SIZE = 16
BASE = TrainSettings(batch_size=8, nz=32, ngf=8, ndf=8, hflip=True, amp="off", gpus=0)
GRAD_TOLERANCE = dict(rtol=1e-4, atol=1e-6)


def data(count: int = 24, seed: int = 0) -> torch.Tensor:
    """uint8 images, NCHW, spanning 0..255 in every channel."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)


def make(settings: TrainSettings = BASE, labels=None, classes=None, images=None) -> Trainer:
    images = data() if images is None else images
    return Trainer(
        settings,
        images=images,
        image_size=SIZE,
        seed=5,
        device=torch.device("cpu"),
        labels=labels,
        classes=classes,
    )


@dataclass
class Spy:
    """What the step fed to D and G, what the sampler drew, and G's mode at each call."""

    reals: list = field(default_factory=list)
    real_labels: list = field(default_factory=list)
    d_inputs: list = field(default_factory=list)
    d_labels: list = field(default_factory=list)
    g_latents: list = field(default_factory=list)
    g_labels: list = field(default_factory=list)
    g_outputs: list = field(default_factory=list)
    g_modes: list = field(default_factory=list)


def spy_on(trainer: Trainer) -> Spy:
    spy = Spy()
    d_forward, g_forward, draw = trainer.D.forward, trainer.G.forward, trainer.sampler.draw

    def d(x, labels=None):
        spy.d_inputs.append(x.detach().clone())
        spy.d_labels.append(labels)
        return d_forward(x, labels)

    def g(z, labels=None):
        spy.g_latents.append(z.detach().clone())
        spy.g_labels.append(labels)
        spy.g_modes.append([m.training for m in trainer.G.modules()])
        out = g_forward(z, labels)
        spy.g_outputs.append(out.detach().clone())
        return out

    def drawn():
        real, labels = draw()
        spy.reals.append(real.clone())
        spy.real_labels.append(labels)
        return real, labels

    trainer.D.forward, trainer.G.forward, trainer.sampler.draw = d, g, drawn
    return spy


def params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# --- what D sees -------------------------------------------------------------------------------


def test_d_sees_the_data_and_the_fakes_on_one_scale():
    images = data()
    trainer = make(images=images)
    spy = spy_on(trainer)
    trainer.train_step()
    real, fake = spy.reals[0], spy.g_outputs[0]
    assert torch.equal(spy.d_inputs[0], real) and torch.equal(spy.d_inputs[1], fake)
    # each real is a training image (or its mirror) mapped 0..255 -> -1..1, nothing else
    scaled = images.float() / 127.5 - 1.0
    for image in real:
        assert any(torch.equal(image, s) or torch.equal(image, s.flip(2)) for s in scaled)
    assert real.min() == -1.0 and real.max() == 1.0  # the data spans 0..255
    assert fake.min() >= -1.0 and fake.max() <= 1.0


def test_g_output_stays_in_minus_one_to_one_whatever_its_weights():
    trainer = make()
    with torch.no_grad():
        for p in trainer.G.parameters():
            p.mul_(50.0)
        out = trainer.G(torch.randn(16, BASE.nz) * 3)
    assert out.abs().max() <= 1.0
    assert out.abs().max() > 0.99  # the bound is reached, not a scale that shrinks everything


@pytest.mark.parametrize(
    "policy", [("color",), ("translation",), ("color", "translation", "cutout")]
)
def test_every_augmentation_reaches_d_for_reals_and_fakes_alike(monkeypatch, policy):
    calls = []
    augment = trainer_module.diff_augment

    def recorded(images, names):
        out = augment(images, names)
        calls.append((images.detach().clone(), tuple(names), out.detach().clone()))
        return out

    monkeypatch.setattr(trainer_module, "diff_augment", recorded)
    trainer = make(replace(BASE, diffaugment=policy))
    spy = spy_on(trainer)
    trainer.train_step()
    # D step: reals, then fakes; G step: fakes again; each through the same policy
    assert [names for _, names, _ in calls] == [policy] * 3
    assert torch.equal(calls[0][0], spy.reals[0])
    assert torch.equal(calls[1][0], spy.g_outputs[0])
    assert torch.equal(calls[2][0], spy.g_outputs[0])
    assert len(spy.d_inputs) == 3
    for (_, _, out), seen in zip(calls, spy.d_inputs, strict=True):
        assert torch.equal(out, seen)  # what D saw is what came out of the augmentation
    assert not torch.equal(spy.d_inputs[0], spy.reals[0])  # and it did change the images


# --- who moves when ----------------------------------------------------------------------------


def after_each_step(optimizer: torch.optim.Optimizer, record) -> None:
    """Call `record()` right after each step of `optimizer` (inside one train_step)."""
    step = optimizer.step

    def recorded(*args, **kwargs):
        out = step(*args, **kwargs)
        record()
        return out

    optimizer.step = recorded


def test_the_d_update_moves_d_only_and_leaves_g_without_gradients():
    trainer = make()
    g_before, d_before = params(trainer.G), params(trainer.D)
    seen = {}
    after_each_step(
        trainer.opt_d,
        lambda: seen.update(
            G=params(trainer.G),
            D=params(trainer.D),
            g_grads=[p.grad for p in trainer.G.parameters()],
        ),
    )
    trainer.train_step()
    assert same(seen["G"], g_before)
    assert all(g is None or not g.any() for g in seen["g_grads"])
    assert not same(seen["D"], d_before)


def test_the_g_update_moves_g_only():
    trainer = make()
    after_d = {}
    after_each_step(trainer.opt_d, lambda: after_d.update(D=params(trainer.D)))
    g_before = params(trainer.G)
    trainer.train_step()
    assert same(params(trainer.D), after_d["D"])
    assert not same(params(trainer.G), g_before)


def grads_at_step(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> list:
    """The gradients of `model` each time `optimizer` steps."""
    seen = []
    step = optimizer.step

    def recorded(*args, **kwargs):
        seen.append([p.grad.detach().clone() for p in model.parameters()])
        return step(*args, **kwargs)

    optimizer.step = recorded
    return seen


def reference_grads(model: torch.nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(model.parameters())))


def test_d_steps_n_critic_times_per_g_step_each_on_a_new_batch():
    trainer = make(replace(BASE, n_critic=3))
    d_steps = grads_at_step(trainer.opt_d, trainer.D)
    g_steps = grads_at_step(trainer.opt_g, trainer.G)
    spy = spy_on(trainer)
    trainer.train_step()
    assert (len(d_steps), len(g_steps)) == (3, 1)
    assert len(spy.reals) == 3
    assert not torch.equal(spy.reals[0], spy.reals[1])
    assert not torch.equal(spy.reals[1], spy.reals[2])


@pytest.mark.parametrize(
    "settings",
    [
        *(replace(BASE, loss=k, d_norm="none" if k == "wgan-gp" else "batch") for k in LOSSES),
        replace(BASE, label_smoothing=0.2),
        replace(BASE, r1_gamma=5.0),
    ],
    ids=[*LOSSES, "label_smoothing", "r1"],
)
def test_each_player_gets_the_gradient_of_its_own_loss_alone(settings):
    """D's and G's gradients, when their optimisers step, recomputed from the same inputs with
    copies of the networks: D's loss on reals and (detached) fakes plus its penalties on the
    reals; G's loss through D as its own step left it."""
    trainer = make(settings)
    d_before, g_before = copy.deepcopy(trainer.D), copy.deepcopy(trainer.G)
    d_after = {}
    after_each_step(trainer.opt_d, lambda: d_after.update(D=copy.deepcopy(trainer.D)))
    spy = spy_on(trainer)
    d_seen = grads_at_step(trainer.opt_d, trainer.D)
    g_seen = grads_at_step(trainer.opt_g, trainer.G)
    trainer.train_step()
    real, fake, z = spy.reals[0], spy.g_outputs[0], spy.g_latents[0]
    assert len(d_seen) == 1 and len(g_seen) == 1
    if settings.loss != "wgan-gp":  # its penalty's random interpolates are checked apart
        loss = d_loss(settings.loss, d_before(real), d_before(fake), settings.label_smoothing)
        if settings.r1_gamma:
            loss = loss + settings.r1_gamma / 2 * r1_reference(d_before, real)
        for got, want in zip(d_seen[0], reference_grads(d_before, loss), strict=True):
            torch.testing.assert_close(got, want, **GRAD_TOLERANCE)
    d_now = d_after["D"]
    d_now.forward = type(d_now).forward.__get__(d_now)  # the copy without the spy
    loss = g_loss(settings.loss, d_now(g_before(z)))
    for got, want in zip(g_seen[0], reference_grads(g_before, loss), strict=True):
        torch.testing.assert_close(got, want, **GRAD_TOLERANCE)


def r1_reference(critic: torch.nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 written out: the squared norm of D's gradient at the real images, batch mean."""
    x = real.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.pow(2).sum(dim=(1, 2, 3)).mean()


# --- the losses on known logits ----------------------------------------------------------------


@pytest.mark.parametrize("kind", LOSSES)
def test_d_wants_real_logits_up_and_fake_logits_down_and_g_wants_fakes_up(kind):
    # logits on the wrong side of every loss's target: each loss has a slope there
    real = torch.full((4,), -0.5, requires_grad=True)
    fake = torch.full((4,), 0.5, requires_grad=True)
    d_real, d_fake = torch.autograd.grad(d_loss(kind, real, fake), (real, fake))
    assert (d_real < 0).all() and (d_fake > 0).all()
    (g_fake,) = torch.autograd.grad(g_loss(kind, fake), (fake,))
    assert (g_fake < 0).all()


def test_label_smoothing_lowers_the_real_targets_only():
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7, 1.5])
    s = 0.1

    def bce(logits, target):  # written out, not F.binary_cross_entropy_with_logits
        p = torch.sigmoid(logits)
        return -(target * p.log() + (1 - target) * (1 - p).log()).mean()

    want = bce(real, 1 - s) + bce(fake, 0.0)
    torch.testing.assert_close(d_loss("bce", real, fake, label_smoothing=s), want)
    assert not torch.allclose(
        d_loss("bce", real, fake, label_smoothing=s), d_loss("bce", real, fake)
    )


# --- the optimisers ----------------------------------------------------------------------------


def adam_moves(grads: list[list[torch.Tensor]], lr: float, betas: tuple[float, float]) -> list:
    """The move Adam makes at each step from these gradients, written out (Kingma & Ba 2015,
    Algorithm 1, eps 1e-8): torch.optim.Adam is not used to check itself."""
    b1, b2 = betas
    m = [torch.zeros_like(g) for g in grads[0]]
    v = [torch.zeros_like(g) for g in grads[0]]
    moves = []
    for t, step_grads in enumerate(grads, start=1):
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, step_grads, strict=True)]
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, step_grads, strict=True)]
        moves.append(
            [
                -lr * (mi / (1 - b1**t)) / ((vi / (1 - b2**t)).sqrt() + 1e-8)
                for mi, vi in zip(m, v, strict=True)
            ]
        )
    return moves


@pytest.mark.parametrize("player", ["G", "D"])
def test_each_player_steps_at_its_own_learning_rate_and_betas(player):
    """Three steps of each optimiser, against Adam written out with the configured learning rate
    and betas of that player (TTUR: G's and D's rates differ; betas not torch's defaults)."""
    settings = replace(BASE, lr_g=1e-4, lr_d=4e-4, beta1=0.3, beta2=0.95)
    trainer = make(settings)
    model, optimizer, lr = {
        "G": (trainer.G, trainer.opt_g, settings.lr_g),
        "D": (trainer.D, trainer.opt_d, settings.lr_d),
    }[player]
    grads = grads_at_step(optimizer, model)
    seen = [params(model)]
    after_each_step(optimizer, lambda: seen.append(params(model)))
    for _ in range(3):
        trainer.train_step()
    want = adam_moves(grads, lr, (settings.beta1, settings.beta2))
    assert len(seen) == len(want) + 1 == 4
    for k, moves in enumerate(want):
        for before, after, move in zip(seen[k], seen[k + 1], moves, strict=True):
            torch.testing.assert_close(after - before, move, rtol=1e-3, atol=1e-7)


# --- EMA, modes, latents, labels --------------------------------------------------------------


def test_the_ema_follows_g_after_every_step_and_gives_the_samples():
    trainer = make(replace(BASE, ema_decay=0.8))
    shadow = params(trainer.G)
    for _ in range(3):
        trainer.train_step()
        shadow = [0.8 * s + 0.2 * p for s, p in zip(shadow, params(trainer.G), strict=True)]
    for got, want in zip(params(trainer.ema.model), shadow, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert not same(params(trainer.ema.model), params(trainer.G))
    # batch-norm statistics are copied, not averaged: the eval-mode samples need G's own
    for got, want in zip(trainer.ema.model.buffers(), trainer.G.buffers(), strict=True):
        assert torch.equal(got, want)
    assert trainer.G.main[1].running_mean.abs().sum() > 0  # moved from their initial zeros
    ema = copy.deepcopy(trainer.ema.model).eval()
    with torch.no_grad():
        want = ((ema(trainer.fixed_z) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(trainer.samples(), want)


def test_g_trains_in_training_mode_and_samples_in_eval_mode():
    trainer = make()
    spy = spy_on(trainer)
    trainer.train_step()
    assert all(all(modes) for modes in spy.g_modes)  # BatchNorm uses batch statistics
    trainer.samples()
    assert not any(spy.g_modes[-1])  # running statistics for the grid
    trainer.train_step()
    assert all(spy.g_modes[-1]) and trainer.G.training


def test_grid_latents_and_training_latents_come_from_one_distribution():
    trainer = make(replace(BASE, batch_size=64, nz=64))
    spy = spy_on(trainer)
    trainer.train_step()
    drawn, fixed = spy.g_latents[0], trainer.fixed_z
    assert drawn.shape[1] == fixed.shape[1] == 64
    for z in (drawn, fixed):  # standard normal: 4096 values each
        assert abs(z.mean()) < 0.08 and abs(z.std() - 1) < 0.06
        assert abs((z.abs() > 1.96).float().mean() - 0.05) < 0.02  # its tails, not a uniform's


def two_classes() -> tuple[torch.Tensor, torch.Tensor]:
    images = data()
    labels = torch.tensor([i % 2 for i in range(len(images))])
    return images, labels


def test_the_class_label_reaches_g_and_d_and_changes_what_g_draws():
    images, labels = two_classes()
    trainer = make(replace(BASE, condition="category"), labels, ["a", "b"], images)
    spy = spy_on(trainer)
    trainer.train_step()
    drawn = spy.real_labels[0]
    assert drawn is not None and torch.equal(spy.g_labels[0], drawn)
    assert torch.equal(spy.d_labels[0], drawn) and torch.equal(spy.d_labels[1], drawn)
    z = torch.randn(4, BASE.nz)
    with trainer.sampling() as generator, torch.no_grad():
        a = generator(z, torch.zeros(4, dtype=torch.long))
        b = generator(z, torch.ones(4, dtype=torch.long))
        # as much as two latents differ (the untrained G's outputs are all small)
        other = generator(torch.randn(4, BASE.nz), torch.zeros(4, dtype=torch.long))
    assert (a - b).abs().mean() > 0.3 * (a - other).abs().mean()
