"""The trainer's side of the shard format: a split as one uint8 tensor, labels, random batches.

A whole shard set loads with one read per file (`np.load`, checked against manifest.json), and
batches are sliced from one tensor (on the training device when it fits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.io import file_digest
from pipeline.shards import read_manifest


def load_split(shards_dir: Path, split: str = "train", verify: bool = False) -> torch.Tensor:
    """All crops of one split as a uint8 tensor (n, 3, size, size), channels first.

    Filled shard by shard into one tensor: the peak is the split plus one shard, not three copies.
    """
    manifest = read_manifest(shards_dir)
    size = manifest["image_size"]
    files = {n: info for n, info in sorted(manifest["files"].items()) if n.startswith(f"{split}-")}
    images = torch.empty(
        (sum(info["count"] for info in files.values()), 3, size, size), dtype=torch.uint8
    )
    start = 0
    for name, info in files.items():
        path = Path(shards_dir) / name
        if verify and file_digest(path, "sha256") != info["sha256"]:
            raise ValueError(f"{path}: SHA-256 differs from manifest.json; rebuild the shards")
        array = np.load(path, allow_pickle=False)
        if (
            array.shape[1:] != (size, size, 3)
            or array.dtype != np.uint8
            or len(array) != info["count"]
        ):
            raise ValueError(
                f"{path}: shape {array.shape} {array.dtype} does not match manifest.json"
            )
        images[start : start + len(array)] = torch.from_numpy(array).permute(0, 3, 1, 2)
        start += len(array)
    return images


def load_labels(shards_dir: Path, split: str, column: str) -> tuple[torch.Tensor, list[str]]:
    """Class indices of one split's crops, in `load_split`'s order, from `column` of the index
    (category or source), and the class names (sorted) the indices point into."""
    path = Path(shards_dir) / "index.parquet"
    try:
        index = pd.read_parquet(path, columns=["split", "shard", "offset", column])
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the {column} of each crop: {err}") from err
    index = index[index["split"] == split].sort_values(["shard", "offset"])
    names = sorted(index[column].unique())
    codes = index[column].map({name: i for i, name in enumerate(names)})
    return torch.tensor(codes.to_numpy(np.int64)), names


class BatchSampler:
    """Random batches from a uint8 image tensor as floats in [-1, 1], optional horizontal flip.

    The data may live on the GPU; indices are drawn from a seeded generator whose state is
    saved in checkpoints, so a resumed run sees the same batches as an uninterrupted one.
    """

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        seed: int,
        hflip: bool = True,
        labels: torch.Tensor | None = None,
        device: torch.device | str | None = None,
    ):
        """`device`: where batches go (default: where `images` are). Images kept on the CPU
        while batches go to a GPU are gathered there and copied batch by batch."""
        if len(images) == 0:
            raise ValueError("no training images in the shards")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        self.images, self.batch_size, self.hflip = images, batch_size, hflip
        self.labels = labels.to(images.device) if labels is not None else None
        self.device = torch.device(device) if device is not None else images.device
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self) -> torch.Tensor:
        return self.draw()[0]

    def draw(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch of images and their labels (None without labels)."""
        index = torch.randint(len(self.images), (self.batch_size,), generator=self.generator)
        index = index.to(self.images.device)
        batch = self.images[index].to(self.device, non_blocking=True)
        if self.hflip:
            flip = (torch.rand(self.batch_size, generator=self.generator) < 0.5).to(batch.device)
            batch[flip] = batch[flip].flip(3)  # `batch` is a copy: the data stays untouched
        labels = self.labels[index].to(self.device) if self.labels is not None else None
        return batch.float().div_(127.5).sub_(1.0), labels

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
