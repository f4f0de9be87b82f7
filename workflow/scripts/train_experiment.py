"""train_experiment (rules/train.smk; its sweep twin train_sweep_run): train the GAN on the shards, on the
GPUs this job owns (torchrun with more than one)."""

from pathlib import Path

from pipeline.config import TrainSettings, from_dict
from pipeline.gan import devices, train
from pipeline.gan.job import TrainJob
from pipeline.job_context import job_context

with job_context(snakemake) as smk:  # noqa: F821 (Snakemake's script directive defines it)
    job = TrainJob(
        shards_dir=Path(smk.input.shards),
        model_path=Path(smk.output.model),
        stats_path=Path(smk.output.stats),
        work_dir=Path(smk.output.model).parent / "checkpoints",  # kept when the job fails
        settings=from_dict(TrainSettings, smk.params.train),
        seed=smk.params.seed,
        threads=smk.threads,
        evals_path=Path(smk.output.evals),
        best_path=Path(smk.output.best),
        progress_path=Path(smk.output.progress),
    )
    with devices.own_gpus(job.settings.gpus if job.settings.device != "cpu" else 0):
        train.train_job(job)
