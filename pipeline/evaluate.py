"""Evaluate a trained generator: pictures and the metrics the field uses.

- SWD (no weights needed) between generated and held-out real crops, beside the SWD between the
  held-out crops and as many training crops: the floor a perfect generator would reach.
- FID and KID against the reference features of the training crops (`pipeline.reference`), with
  the held-out crops' FID/KID as the floor; skipped, with a message, without Inception weights.
- Precision and recall (k-NN manifolds) on the same features (pixels without Inception).
- Memorisation: each sample's nearest training crop, against held-out crops' nearest distances.
- Pictures: samples.png (EMA generator, fixed latents), an interpolation strip, the
  nearest-neighbour sheet and distance histograms, loss/accuracy curves, the SWD curve of training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.config import EvalSettings
from pipeline.gan.data import load_split
from pipeline.gan.devices import select_device, use_cpu_threads
from pipeline.gan.grids import save_grid, to_uint8
from pipeline.gan.models import grid_labels, load_generator
from pipeline.gan.sampling import MIN_REAL, class_labels, generate, real_sets
from pipeline.io import write_json
from pipeline.metrics.colour import colour_metrics
from pipeline.metrics.fid import frechet_distance, kernel_inception_distance
from pipeline.metrics.memorisation import memorisation, nearest
from pipeline.metrics.prc import precision_recall
from pipeline.metrics.swd import sliced_wasserstein
from pipeline.plots import plot_distances, plot_losses, plot_metric_curve, read_stats
from pipeline.reference import Extractor, ReferenceFeatures, load_reference
from pipeline.seeds import Stream, stream
from pipeline.sheets import pairs_sheet

log = logging.getLogger(__name__)


def swd_metrics(
    generator, *, state: dict, holdout: torch.Tensor, train: torch.Tensor, count: int, seed: int
) -> dict:
    held_out, train = real_sets(holdout, train, count, seed)
    if len(held_out) < MIN_REAL:
        note = f"{len(held_out)} real crops per set are too few for SWD (need {MIN_REAL}): not computed"
        log.warning(note)
        return {"num_images": len(held_out), "swd": None, "swd_real_floor": None, "note": note}
    fake = generate(
        generator,
        len(held_out),
        stream(seed, Stream.FIXED_LATENTS),
        class_labels(state.get("class_counts"), len(held_out), stream(seed, Stream.FIXED_LATENTS)),
    )
    swd_fake, swd_floor = sliced_wasserstein(held_out, fake), sliced_wasserstein(held_out, train)
    log.info(
        "SWD x1e3: generated %.2f, real-vs-real floor %.2f (%d images)",
        swd_fake["swd_mean"],
        swd_floor["swd_mean"],
        len(held_out),
    )
    colours, colour_floor = (
        colour_metrics(held_out, fake, seed),
        colour_metrics(held_out, train, seed),
    )
    return {
        "num_images": len(held_out),
        "swd": swd_fake["swd_mean"],
        "swd_real_floor": swd_floor["swd_mean"],
        **colours,
        **{f"{key}_real_floor": value for key, value in colour_floor.items()},
        "swd_levels": swd_fake,
        "swd_real_floor_levels": swd_floor,
    }


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents a and b (rows) at fractions t."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def interpolation(generator, rows: int, steps: int, seed: int) -> torch.Tensor:
    """`rows` walks of `steps` images between pairs of random latents (of one class each)."""
    rng = torch.Generator().manual_seed(stream(seed, Stream.INTERPOLATION))
    nz = generator.cfg.nz
    a, b = torch.randn(rows, 1, nz, generator=rng), torch.randn(rows, 1, nz, generator=rng)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    z = slerp(a, b, t).reshape(rows * steps, nz)
    labels = grid_labels(generator.cfg.n_classes, rows * steps, per_row=steps)
    device = next(generator.parameters()).device
    y = labels.to(device) if labels is not None else None
    return to_uint8(generator(z.to(device), y))


def distribution_metrics(
    fake: torch.Tensor, ref: ReferenceFeatures, settings: EvalSettings, seed: int
) -> dict:
    """FID and KID (Inception features only) of generated and of held-out crops against the
    training reference, and precision/recall of the generated ones."""
    train, holdout = ref.train, ref.holdout
    out: dict = {"features": ref.kind}
    if ref.kind == "inception":
        out["fid"] = frechet_distance(fake.numpy(), train.numpy())
        kid = dict(subsets=settings.kid_subsets, subset_size=settings.kid_subset_size, seed=seed)
        out["kid"], out["kid_std"] = kernel_inception_distance(fake.numpy(), train.numpy(), **kid)
        if len(holdout) >= MIN_REAL:  # the floor: real crops the model never saw
            out["fid_real_floor"] = frechet_distance(holdout.numpy(), train.numpy())
            out["kid_real_floor"], _ = kernel_inception_distance(
                holdout.numpy(), train.numpy(), **kid
            )
        out["inception_weights"] = ref.weights
        out["standard_weights"] = ref.standard_weights
        log.info("FID %.2f  KID %.4f (%d generated)", out["fid"], out["kid"], len(fake))
    else:
        out.update(fid=None, kid=None, fid_note=ref.note)
    n = min(len(fake), len(train))
    pick = torch.randperm(
        len(train), generator=torch.Generator().manual_seed(stream(seed, Stream.PR_SUBSET))
    )[:n]
    if n > settings.pr_neighbours:
        out.update(precision_recall(train[pick], fake[:n], k=settings.pr_neighbours))
    return out


def memorisation_check(
    fake_images: torch.Tensor,
    *,
    fake_features: torch.Tensor,
    ref: ReferenceFeatures,
    train: torch.Tensor,
    settings: EvalSettings,
    sheet_png: Path,
    distances_png: Path,
) -> dict:
    """Nearest training crop of each sample: the copy statistics (against held-out crops), the
    side-by-side sheet of the closest samples and the distance histograms."""
    fake_nn = nearest(fake_features, ref.train)
    closest = np.argsort(fake_nn.distance)[: settings.nearest_count]  # the likeliest copies first
    train_images = train[ref.train_index[fake_nn.index[closest]]]
    pairs_sheet(
        fake_images[closest],
        right=train_images,
        captions=[f"d={fake_nn.distance[i]:.3g}" for i in closest],
        path=sheet_png,
        title=f"closest samples (left) and their nearest training crop (right), {ref.kind} features",
    )
    if len(ref.holdout) < MIN_REAL:
        note = f"{len(ref.holdout)} held-out crops: too few to judge copying (need {MIN_REAL})"
        log.warning(note)
        plot_distances(
            fake_nn.distance, held_out=np.array([]), threshold=None, path=distances_png, title=note
        )
        return {"note": note, "median_distance_generated": float(np.median(fake_nn.distance))}
    held_nn = nearest(ref.holdout, ref.train)
    result = memorisation(fake_nn, held_nn, settings.copy_quantile, settings.copy_alarm)
    plot_distances(
        fake_nn.distance,
        held_out=held_nn.distance,
        threshold=result["copy_threshold"],
        path=distances_png,
        title=f"copy fraction {result['copy_fraction']:.1%} (about {settings.copy_quantile:.0%} if no copying)",
    )
    return result


@dataclass(frozen=True)
class EvalOutputs:
    """What evaluation writes, by the names of pipeline.layout.EVAL_FILES (the rule's outputs)."""

    samples: Path
    metrics: Path
    losses: Path
    interpolation: Path
    nearest: Path
    distances: Path
    curve: Path


def matching_reference(path: Path, extractor: Extractor) -> ReferenceFeatures:
    """The reference features at `path`, refused unless `extractor` makes features of their kind."""
    ref = load_reference(path)
    if extractor.kind != ref.kind:
        raise ValueError(
            f"{path} holds {ref.kind} features but this run would use "
            f"{extractor.kind}: rerun the evaluate_reference rule"
        )
    return ref


def evaluate(
    model_path: Path,
    *,
    shards_dir: Path,
    stats_path: Path,
    reference_path: Path,
    evals_path: Path,
    out: EvalOutputs,
    settings: EvalSettings,
    seed: int,
    threads: int = 1,
) -> dict:
    """The evaluate stage: pictures and metrics of one trained generator."""
    use_cpu_threads(threads)
    generator, state = load_generator(model_path)
    grid_y = grid_labels(generator.cfg.n_classes, settings.grid_size**2, per_row=settings.grid_size)
    save_grid(
        generate(generator, settings.grid_size**2, seed, grid_y),
        out.samples,
        nrow=settings.grid_size,
    )
    save_grid(
        interpolation(generator, settings.interpolation_rows, 10, seed), out.interpolation, nrow=10
    )
    holdout, train = load_split(shards_dir, "holdout"), load_split(shards_dir, "train")
    metrics = {
        "step": int(state["step"]),
        **swd_metrics(
            generator,
            state=state,
            holdout=holdout,
            train=train,
            count=settings.num_samples,
            seed=seed,
        ),
    }
    if state.get("classes"):
        metrics["classes"] = state["classes"]  # samples.png: one class per row, in this order
    extractor = Extractor.from_settings(settings, select_device("auto"))
    ref = matching_reference(reference_path, extractor)
    samples_seed = stream(seed, Stream.SAMPLES)
    labels = class_labels(state.get("class_counts"), settings.num_samples, samples_seed)
    fake_images = generate(generator, settings.num_samples, samples_seed, labels)
    fake_features = extractor(fake_images, desc="generated")
    metrics.update(distribution_metrics(fake_features, ref, settings, seed))
    metrics["memorisation"] = memorisation_check(
        fake_images,
        fake_features=fake_features,
        ref=ref,
        train=train,
        settings=settings,
        sheet_png=out.nearest,
        distances_png=out.distances,
    )
    write_json(metrics, out.metrics)
    title = f"{model_path.parent.parent.name}: {metrics['step']} steps"
    plot_losses(read_stats(stats_path), out.losses, title=title)
    plot_metric_curve(read_stats(evals_path), out.curve, title=title)
    return metrics
