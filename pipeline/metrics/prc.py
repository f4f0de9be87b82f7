"""Improved precision and recall (Kynkäänniemi et al. 2019) with k-nearest-neighbour manifolds.

Each set's manifold is the union of balls around its features, each with the radius to its k-th
nearest neighbour in the same set. Precision: the fraction of generated features inside the real
manifold (are the samples realistic?). Recall: the fraction of real features inside the generated
manifold (do the samples cover the data?).
"""

from __future__ import annotations

import torch


def _kth_radius(features: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance of each feature to its k-th nearest other feature of the same set."""
    radii = []
    for part in features.split(chunk):
        distances = torch.cdist(part, features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # k + 1: itself is at 0
    return torch.cat(radii)


def _inside(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int):
    """Whether each query lies within the radius of at least one support feature."""
    inside = []
    for part in queries.split(chunk):
        inside.append((torch.cdist(part, support) <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk: int = 1024
) -> dict[str, float]:
    real, fake = real.double(), fake.double()
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} features per set")
    real_radii, fake_radii = _kth_radius(real, k, chunk), _kth_radius(fake, k, chunk)
    precision = _inside(fake, real, real_radii, chunk).double().mean()
    recall = _inside(real, fake, fake_radii, chunk).double().mean()
    return {"precision": float(precision), "recall": float(recall)}
