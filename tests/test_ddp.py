"""Two processes under torchrun (gloo on CPU) train one model: the ranks' weights stay identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from pipeline.gan.train import train
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
        "--seed",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    agreed = [
        ln
        for ln in proc.stderr.splitlines()
        if "G and D weights on 2 ranks differ by at most 0" in ln
    ]
    assert len(agreed) == 2  # both ranks checked against rank 0
    model = torch.load(tmp_path / "out/model.pt", weights_only=True)
    assert model["step"] == 6
    assert (
        len((tmp_path / "out/stats.jsonl").read_text().splitlines()) == 6
    )  # written once, by rank 0


def test_train_stage_launches_torchrun_and_syncs_a_penalised_discriminator(tmp_path, caplog):
    """`gpus: 2` makes the train stage start torchrun itself (gloo here, no GPU); WGAN-GP and R1
    need D's gradients averaged by hand, since DDP cannot take their double backward."""
    shards = make_shards(tmp_path / "shards")
    settings = replace(
        TINY, steps=4, gpus=2, loss="wgan-gp", d_norm="none", n_critic=2, r1_gamma=1.0
    )
    out = tmp_path / "out"
    caplog.set_level("INFO")
    returned = train(
        shards,
        model_path=out / "model.pt",
        stats_path=out / "stats.jsonl",
        work_dir=out / "ckpt",
        settings=settings,
        seed=0,
    )
    assert returned is None  # the work happened in the torchrun processes
    agreed = [r.message for r in caplog.records if "differ by at most 0" in r.message]
    assert len(agreed) == 2, [r.message for r in caplog.records][-20:]
    model = torch.load(out / "model.pt", weights_only=True)
    assert model["step"] == 4
    lines = [json.loads(ln) for ln in (out / "stats.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [1, 2, 3, 4]
    assert all(ln["grad_d"] > 0 for ln in lines)  # D learned through the hand-made all-reduce


def test_train_stage_refuses_more_gpus_than_visible(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match="gpus is 3 but only 1 CUDA devices"):
        train(
            make_shards(tmp_path / "s"),
            model_path=tmp_path / "m.pt",
            stats_path=tmp_path / "x",
            work_dir=tmp_path / "w",
            settings=replace(TINY, gpus=3),
            seed=0,
        )
