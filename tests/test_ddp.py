"""Two processes under torchrun (gloo on CPU) train one model: the ranks' weights stay identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from tests.test_gan import TINY, make_shards


def test_torchrun_two_ranks_keep_identical_weights(tmp_path):
    shards = make_shards(tmp_path / "shards")
    settings = tmp_path / "train.json"
    settings.write_text(json.dumps({**asdict(replace(TINY, steps=6)), "diffaugment": []}))
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "pipeline.gan",
        "--shards",
        str(shards),
        "--out",
        str(tmp_path / "out"),
        "--settings",
        str(settings),
        "--image-size",
        "32",
        "--seed",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    agreed = [
        ln
        for ln in proc.stderr.splitlines()
        if "generator weights on 2 ranks differ by at most 0" in ln
    ]
    assert len(agreed) == 2  # both ranks checked against rank 0
    model = torch.load(tmp_path / "out/model.pt", weights_only=True)
    assert model["step"] == 6
    assert (
        len((tmp_path / "out/stats.jsonl").read_text().splitlines()) == 6
    )  # written once, by rank 0
