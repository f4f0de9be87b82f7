"""Many downloads at once: a thread pool, a progress bar, the list of failures, the threshold."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd
import requests

from pipeline.download.fetch import (
    DownloadError,
    DownloadJob,
    DownloadResult,
    DownloadSettings,
    fetch,
    hosts_of,
)
from pipeline.io import atomic_path
from pipeline.progress import progress

log = logging.getLogger(__name__)


def _write_failures(results: Sequence[DownloadResult], path: Path) -> None:
    """TSV of the failed results (url, dest, status, reason), header only if none failed."""
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        handle.write("url\tdest\tstatus\treason\n")
        for r in results:
            if not r.ok:
                reason = " ".join(r.reason.split())
                handle.write(f"{r.job.url}\t{r.job.dest}\t{r.status or ''}\t{reason}\n")


def _unique(jobs: Sequence[DownloadJob]) -> dict[Path, DownloadJob]:
    """One job per destination (two threads must never write the same .part)."""
    by_dest: dict[Path, DownloadJob] = {}
    for job in jobs:
        first = by_dest.setdefault(Path(job.dest), job)
        if first.url != job.url:
            raise ValueError(f"two URLs for one file {job.dest}: {first.url} and {job.url}")
    return by_dest


def _fetch_parallel(
    jobs: Sequence[DownloadJob], settings: DownloadSettings, desc: str
) -> tuple[list[DownloadResult], int]:
    """Fetch `jobs` on `s.workers` threads (one Session each); returns (results, bytes)."""
    local = threading.local()
    lock, totals = threading.Lock(), {"bytes": 0, "failed": 0}

    def count_bytes(n: int) -> None:
        with lock:
            totals["bytes"] += n

    with progress(total=len(jobs), desc=desc, unit="file") as bar:

        def one(job: DownloadJob) -> DownloadResult:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            result = fetch(job, settings, local.session, count_bytes)
            with lock:
                totals["failed"] += not result.ok
                mb = f"{totals['bytes'] / 1e6:.1f}"
                bar.set_postfix(MB=mb, failed=totals["failed"], refresh=False)
                bar.update(1)
            return result

        with ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix=desc) as pool:
            results = list(pool.map(one, jobs))
    return results, totals["bytes"]


def fetch_all(
    jobs: Sequence[DownloadJob],
    settings: DownloadSettings,
    failures_path: Path | None = None,
    desc: str = "download",
) -> list[DownloadResult]:
    """Fetch many files in parallel, one result per job in order.

    Failures go to `failures_path` (TSV); raises DownloadError if the failed fraction of jobs is
    above `settings.max_failure_fraction`.
    """
    if not jobs:
        if failures_path:
            _write_failures([], failures_path)
        return []
    started = time.perf_counter()
    unique = _unique(jobs)
    fetched, nbytes = _fetch_parallel(list(unique.values()), settings, desc)
    by_dest = {Path(r.job.dest): r for r in fetched}
    results = [replace(by_dest[Path(j.dest)], job=j) for j in jobs]
    failed = [r for r in results if not r.ok]
    skipped = sum(r.skipped for r in results)
    log.info(
        "%s: %d fetched, %d already present, %d failed, %.1f MB in %.1f s",
        desc,
        len(results) - len(failed) - skipped,
        skipped,
        len(failed),
        nbytes / 1e6,
        time.perf_counter() - started,
    )
    if failures_path:
        _write_failures(results, failures_path)
    for r in failed[:5]:
        log.warning("failed: %s (%s)", r.job.url, r.reason)
    if len(failed) / len(jobs) > settings.max_failure_fraction:
        where = f"; the list is in {failures_path}" if failures_path else ""
        raise DownloadError(
            f"{desc}: {len(failed)} of {len(jobs)} downloads failed, more than the allowed "
            f"max_failure_fraction {settings.max_failure_fraction}{where}"
        )
    return results


def fetch_images(
    rows: pd.DataFrame, settings: DownloadSettings, failures: Path, desc: str
) -> pd.DataFrame:
    """Fetch each distinct `image_url` of `rows` to its `image_path` once; return the rows whose
    image arrived (the others are listed in `failures`). Each image must decode (see
    `pipeline.download.images`): one corrupted in transit is fetched again."""
    images = rows.drop_duplicates("image_path")
    jobs = [
        DownloadJob(u, Path(p), image=True)
        for u, p in zip(images["image_url"], images["image_path"], strict=True)
    ]
    results = fetch_all(jobs, settings, failures_path=failures, desc=desc)
    arrived = {str(r.job.dest) for r in results if r.ok}
    kept = rows[rows["image_path"].isin(arrived)].reset_index(drop=True)
    if len(kept) < len(rows):
        log.warning(
            "%s: %d boxes dropped, their image could not be fetched (see %s)",
            desc,
            len(rows) - len(kept),
            failures,
        )
    return kept


def fetch_unless_local(
    rows: pd.DataFrame, *, source, download: DownloadSettings, failures: Path, desc: str
) -> pd.DataFrame:
    """A source's boxes with their images: read in place from the user's `source.local_dir` (a
    missing one is the crop stage's `missing_image` reject), else fetched from the host of
    `source.image_base_url` only, whatever hosts the annotations name (`fetch_images`)."""
    if source.local_dir:
        return rows
    allowed = replace(download, allowed_hosts=hosts_of(source.image_base_url))
    return fetch_images(rows, allowed, failures, desc)
