"""Break the trainer on purpose, one way at a time, and show which tests fail on each break.

Each break is a small edit of the source, applied to a copy of the repository (never to this
one); the trainer's tests then run on the copy and the table lists, per break, how many tests
failed and which. A break that no test catches is printed as MISSED and the script exits 1.

    .venv/bin/python benchmarks/breaks.py                 # the quick tests (about 12 minutes)
    .venv/bin/python benchmarks/breaks.py --only ema_never_updated --learning
    .venv/bin/python benchmarks/breaks.py --only no_final_tanh --learning-only -k "bce and not diff"
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICK_TESTS = [
    "tests/test_trainer_invariants.py",
    "tests/test_gan.py",
    "tests/test_gan_stabilisers.py",
    "tests/test_gan_variants.py",
    "tests/test_shards.py",  # the batch sampler
]
LEARNING_TESTS = ["tests/test_learning.py"]


@dataclass(frozen=True)
class Break:
    name: str
    file: str
    old: str
    new: str
    what: str


TRAINER, MODELS = "pipeline/gan/trainer.py", "pipeline/gan/models.py"
BREAKS = [
    Break(
        "d_never_steps",
        TRAINER,
        "self.scaler_d.step(self.opt_d)",
        "None",
        "D's optimiser never steps",
    ),
    Break(
        "d_targets_swapped",
        TRAINER,
        "settings.loss,\n                    logits_real,\n                    logits_fake,",
        "settings.loss,\n                    logits_fake,\n                    logits_real,",
        "D's real and fake targets swapped",
    ),
    Break("no_final_tanh", MODELS, "nn.Tanh(),", "nn.Identity(),", "G without its final tanh"),
    Break(
        "reals_in_0_1",
        TRAINER,
        "real, labels = self.sampler.draw()",
        "real, labels = self.sampler.draw(); real = (real + 1) / 2",
        "reals reach D in [0, 1], fakes in [-1, 1]",
    ),
    Break(
        "augment_reals_only",
        TRAINER,
        "self.critic(old, old_labels)",
        "self.d_net(old, old_labels)",
        "DiffAugment applied to reals only in the D step",
    ),
    Break(
        "fakes_not_detached",
        TRAINER,
        "self.replayed(fake.detach(), labels)",
        "self.replayed(fake, labels)",
        "fakes not detached in the D step (G gets D's gradients)",
    ),
    Break(
        "g_grads_not_zeroed",
        TRAINER,
        "self.replayed(fake.detach(), labels)|self.opt_g.zero_grad(set_to_none=True)",
        "self.replayed(fake, labels)|pass",
        "fakes not detached and G's gradients not zeroed before its step",
    ),
    Break(
        "ema_never_updated",
        "pipeline/gan/ema.py",
        "shadow.lerp_(weight.detach(), 1.0 - self.decay)",
        "pass",
        "EMA weights never updated",
    ),
    Break(
        "g_batchnorm_eval",
        TRAINER,
        "self.G = Generator(self.model_config).to(self.device)",
        "self.G = Generator(self.model_config).to(self.device).eval()",
        "G's BatchNorm left in eval mode during training",
    ),
    Break(
        "grid_latents_uniform",
        TRAINER,
        "self.fixed_z = torch.randn(\n            64,",
        "self.fixed_z = 2 * torch.rand(\n            64,",
        "the grid's fixed latents uniform, training latents normal",
    ),
    Break(
        "r1_on_fakes",
        TRAINER,
        "r1_penalty(critic, real)",
        "r1_penalty(critic, fake)",
        "R1 computed on fakes",
    ),
    Break(
        "smoothing_on_fakes",
        "pipeline/gan/losses.py",
        "fake_target = torch.zeros_like(fake)",
        "fake_target = torch.full_like(fake, label_smoothing)",
        "label smoothing applied to the fake targets too",
    ),
    Break(
        "label_ignored_by_g",
        MODELS,
        "z = torch.cat([z, self.embed(labels)], dim=1)",
        "z = torch.cat([z, self.embed(torch.zeros_like(labels))], dim=1)",
        "the class label ignored by G",
    ),
    Break(
        "g_frozen",
        TRAINER,
        "self.G.parameters(), lr=settings.lr_g,",
        "self.G.parameters(), lr=0.0 * settings.lr_g,",
        "G's learning rate 0",
    ),
    Break(
        "g_loss_sign",
        TRAINER,
        "loss_g = g_loss(settings.loss, self.critic(fake, labels))",
        "loss_g = -g_loss(settings.loss, self.critic(fake, labels))",
        "G's loss with its sign flipped",
    ),
    # Round 2: breaks thought of after the first table was green, none of them in the issue
    Break(
        "lr_swapped",
        TRAINER,
        "self.G.parameters(), lr=settings.lr_g,|self.D.parameters(), lr=settings.lr_d,",
        "self.G.parameters(), lr=settings.lr_d,|self.D.parameters(), lr=settings.lr_g,",
        "G trained at D's learning rate and D at G's (TTUR reversed)",
    ),
    Break(
        "adam_betas_ignored",
        TRAINER,
        "lr=settings.lr_g, betas=(settings.beta1, settings.beta2)|"
        "lr=settings.lr_d, betas=(settings.beta1, settings.beta2)",
        "lr=settings.lr_g|lr=settings.lr_d",
        "Adam at torch's default betas (0.9, 0.999), not the configured ones",
    ),
    Break(
        "ema_decay_inverted",
        "pipeline/gan/ema.py",
        "shadow.lerp_(weight.detach(), 1.0 - self.decay)",
        "shadow.lerp_(weight.detach(), self.decay)",
        "EMA weighted the wrong way round (follows the weights, no averaging)",
    ),
    Break(
        "ema_buffers_stale",
        "pipeline/gan/ema.py",
        "shadow.copy_(buffer)",
        "pass",
        "EMA generator keeps its initial batch-norm statistics",
    ),
    Break(
        "flip_vertical",
        "pipeline/gan/data.py",
        "batch[flip].flip(3)",
        "batch[flip].flip(2)",
        "the flip augmentation turns crops upside down",
    ),
    Break(
        "same_batch_always",
        "pipeline/gan/data.py",
        "index = torch.randint(len(self.images), (self.batch_size,), generator=self.generator)",
        "index = torch.arange(self.batch_size) % len(self.images)",
        "the sampler draws the same crops at every step",
    ),
    Break(
        "n_critic_ignored",
        TRAINER,
        "for _ in range(settings.n_critic):",
        "for _ in range(1):",
        "one D step per G step whatever n_critic says",
    ),
    Break(
        "r1_gamma_ignored",
        TRAINER,
        "settings.r1_gamma / 2 * r1_penalty(critic, real)",
        "r1_penalty(critic, real)",
        "R1 weighted 1 whatever r1_gamma says",
    ),
    Break(
        "spectral_norm_ignored",
        MODELS,
        'sn = nn.utils.parametrizations.spectral_norm if cfg.d_norm == "spectral" else (lambda m: m)',
        "sn = lambda m: m  # noqa: E731",
        "d_norm spectral builds a D without spectral norm",
    ),
    Break(
        "diffaugment_off",
        TRAINER,
        "images = diff_augment(images, self.settings.diffaugment)",
        "pass",
        "DiffAugment configured but never applied",
    ),
    Break(
        "grid_scale",
        "pipeline/gan/grids.py",
        "add(1).mul(127.5)",
        "mul(255)",
        "samples turned to pixels as if in [0, 1] (the bottom half of the range is black)",
    ),
    Break(
        "resume_without_ema",
        TRAINER,
        'self.ema.model.load_state_dict(state["generator_ema"])',
        "pass",
        "a resumed run starts its EMA from the initial generator",
    ),
    Break(
        "model_keeps_raw_g",
        "pipeline/gan/checkpoint.py",
        'model["generator"] = trainer.sampling_generator.state_dict()',
        'model["generator"] = state["generator"]',
        "the model file evaluation reads holds G's raw weights, not the EMA's",
    ),
    Break(
        "eval_in_train_mode",
        MODELS,
        "return generator.eval(), state",
        "return generator, state",
        "evaluation samples with batch statistics (G loaded in training mode)",
    ),
    Break(
        "samples_ignore_seed",
        "pipeline/gan/sampling.py",
        "z = torch.randn(count, generator.cfg.nz, generator=rng)",
        "z = torch.randn(count, generator.cfg.nz)",
        "samples drawn from the global random state, not their seed",
    ),
]


def copy_repo(dest: Path) -> Path:
    """The tracked and untracked (not ignored) files of this repository, copied."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for rel in listed:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def apply(root: Path, br: Break) -> None:
    """Edit the copy; a break that leaves code Python cannot compile is refused (its tests would
    fail to import, which shows nothing about them)."""
    path = root / br.file
    text = path.read_text()
    for old, new in zip(br.old.split("|"), br.new.split("|"), strict=True):
        if text.count(old) != 1:
            raise SystemExit(f"{br.name}: {old!r} is not found exactly once in {br.file}")
        text = text.replace(old, new)
    try:
        compile(text, str(path), "exec")
    except SyntaxError as error:
        raise SystemExit(f"{br.name}: the broken {br.file} does not compile: {error}") from None
    path.write_text(text)


def failed_tests(root: Path, tests: list[str], select: str | None = None) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *tests]
    cmd += ["-k", select] if select else []
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.MULTILINE)
    if proc.returncode not in (0, 1):
        failed.append(f"(pytest exit {proc.returncode}: {proc.stdout[-300:]})")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="break names to apply (default: all)")
    parser.add_argument("--learning", action="store_true", help="run the learning tests too")
    parser.add_argument("--learning-only", action="store_true", help="the learning tests only")
    parser.add_argument("-k", dest="select", help="pytest's -k: the tests to run")
    args = parser.parse_args()
    tests = [] if args.learning_only else QUICK_TESTS
    tests += LEARNING_TESTS if args.learning or args.learning_only else []
    chosen = [b for b in BREAKS if not args.only or b.name in args.only]
    missed = []
    print(f"{'break':<22} {'failed':>6}  tests that fail (first 3)")
    for br in chosen:
        with tempfile.TemporaryDirectory(prefix=f"break-{br.name}-") as tmp:
            root = copy_repo(Path(tmp))
            apply(root, br)
            failed = failed_tests(root, tests, args.select)
        names = ", ".join(f.split("::")[-1] for f in failed[:3])
        print(f"{br.name:<22} {len(failed):>6}  {names or 'MISSED'}  ({br.what})", flush=True)
        if not failed:
            missed.append(br.name)
    if missed:
        print(f"missed: {missed}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
