"""Parallel, resumable, verified HTTP downloads, shared by every source.

A file appears under its final name only after it arrived whole and matched its checksum: bytes go
to `{dest}.part`, an interrupted transfer resumes from there with an HTTP Range request, and the
verified file is renamed into place. A file that exists is never fetched again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from pipeline.io import atomic_path, file_digest
from pipeline.progress import progress

log = logging.getLogger(__name__)
CHUNK = 1 << 16  # small enough that a dropped transfer keeps most of its bytes
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class DownloadSettings:
    workers: int = 8
    per_host: int = 4
    retries: int = 4
    backoff: float = 0.5
    timeout: float = 30.0
    max_failure_fraction: float = 0.0
    allowed_schemes: tuple[str, ...] = ("http", "https")
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class DownloadJob:
    url: str
    dest: Path
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None


@dataclass
class DownloadResult:
    job: DownloadJob
    ok: bool
    status: int | None
    reason: str
    nbytes: int
    skipped: bool = False


class DownloadError(RuntimeError):
    """Too many downloads failed (the message says how many, and where the list is)."""


class _Failure(Exception):
    def __init__(self, reason: str, status: int | None = None, retry: bool = True):
        super().__init__(reason)
        self.reason, self.status, self.retry = reason, status, retry


_host_slots: dict[str, threading.BoundedSemaphore] = {}
_host_lock = threading.Lock()


def _slot(host: str, limit: int) -> threading.BoundedSemaphore:
    with _host_lock:
        key = f"{host}#{limit}"
        if key not in _host_slots:
            _host_slots[key] = threading.BoundedSemaphore(limit)
        return _host_slots[key]


def hosts_of(*urls: str) -> tuple[str, ...]:
    """The host names of `urls`: what a source may contact, given the URLs in its config."""
    return tuple(sorted({urlsplit(u).hostname for u in urls if urlsplit(u).hostname}))


def _refusal(url: str, s: DownloadSettings) -> str:
    parts = urlsplit(url)
    if parts.scheme not in s.allowed_schemes:
        return f"scheme {parts.scheme!r} not allowed (allowed: {', '.join(s.allowed_schemes)})"
    if not parts.hostname:
        return "URL has no host"
    if s.allowed_hosts and parts.hostname not in s.allowed_hosts:
        return f"host not allowed: {parts.hostname}"
    return ""


def _verify(path: Path, job: DownloadJob) -> None:
    """Raise _Failure if the file's size or checksums differ from the job's."""
    if job.size is not None and path.stat().st_size != job.size:
        raise _Failure(f"size mismatch: expected {job.size} bytes, got {path.stat().st_size}")
    for algorithm in ("sha256", "md5"):
        expected = getattr(job, algorithm)
        if expected:
            got = file_digest(path, algorithm)
            if got.lower() != expected.lower():
                raise _Failure(f"{algorithm} mismatch: expected {expected}, got {got}")


def _transfer(
    job: DownloadJob, part: Path, s: DownloadSettings, session: requests.Session, on_bytes
) -> int:
    """One attempt: append to `part` from where it stops. Returns the last HTTP status."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(
        job.url, headers=headers, stream=True, timeout=s.timeout, allow_redirects=True
    ) as response:
        status = response.status_code
        if status == 416:  # the part is already whole (or the server disagrees): check it below
            return status
        if status not in (200, 206):
            raise _Failure(f"HTTP {status}", status, retry=status in RETRY_STATUS)
        if status == 200 and offset:
            offset = 0  # the server ignored the Range header: start again
        expected = response.headers.get("Content-Length")
        written = 0
        with open(part, "ab" if offset else "wb") as handle:
            for chunk in response.iter_content(CHUNK):
                handle.write(chunk)
                written += len(chunk)
                on_bytes(len(chunk))
        if expected is not None and written != int(expected):
            raise _Failure(f"connection closed after {written} of {expected} bytes", status)
        return status


def fetch(
    job: DownloadJob,
    s: DownloadSettings,
    session: requests.Session | None = None,
    on_bytes=lambda n: None,
) -> DownloadResult:
    """Fetch one file (or keep it if it is already there), with retries and resume."""
    dest = Path(job.dest)
    if dest.exists():
        try:
            _verify(dest, job)
            return DownloadResult(job, True, None, "", 0, skipped=True)
        except _Failure as err:
            log.warning("%s: %s; fetching it again", dest, err.reason)
            dest.unlink()
    refusal = _refusal(job.url, s)
    if refusal:
        return DownloadResult(job, False, None, refusal, 0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    status, reason = None, ""
    for attempt in range(s.retries + 1):
        if attempt:
            time.sleep(min(s.backoff * 2 ** (attempt - 1), 30.0))
        try:
            with _slot(urlsplit(job.url).hostname or "", s.per_host):
                status = _transfer(job, part, s, session, on_bytes)
            _verify(part, job)
            nbytes = part.stat().st_size
            os.replace(part, dest)
            return DownloadResult(job, True, status, "", nbytes)
        except _Failure as err:
            status, reason = err.status or status, err.reason
            if "mismatch" in reason or status == 416:
                part.unlink(missing_ok=True)  # wrong bytes: never resume from them
            if not err.retry:
                break
        except requests.Timeout:
            reason = f"timeout after {s.timeout} s"
        except requests.RequestException as err:
            reason = f"network error: {type(err).__name__}: {err}"
        except FileNotFoundError:  # the part vanished under us (another process): start over
            reason = "partial file vanished"
    return DownloadResult(job, False, status, reason, 0)


def _write_failures(results: Sequence[DownloadResult], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        handle.write("url\tdest\tstatus\treason\n")
        for r in results:
            if not r.ok:
                reason = r.reason.replace("\t", " ").replace("\n", " ")
                handle.write(f"{r.job.url}\t{r.job.dest}\t{r.status or ''}\t{reason}\n")


def fetch_all(
    jobs: Sequence[DownloadJob],
    s: DownloadSettings,
    failures_path: Path | None = None,
    desc: str = "download",
) -> list[DownloadResult]:
    """Fetch many files in parallel; fail only above `s.max_failure_fraction` failed files."""
    if not jobs:
        if failures_path:
            _write_failures([], failures_path)
        return []
    local = threading.local()
    bar = progress(total=len(jobs), desc=desc, unit="file")
    lock, totals = threading.Lock(), {"bytes": 0, "failed": 0}

    def count_bytes(n: int) -> None:
        with lock:
            totals["bytes"] += n

    def one(job: DownloadJob) -> DownloadResult:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        result = fetch(job, s, local.session, count_bytes)
        with lock:
            totals["failed"] += not result.ok
            bar.set_postfix(
                MB=f"{totals['bytes'] / 1e6:.1f}", failed=totals["failed"], refresh=False
            )
            bar.update(1)
        return result

    started = time.perf_counter()
    with ThreadPoolExecutor(max(1, s.workers)) as pool:
        results = list(pool.map(one, jobs))
    bar.close()
    failed = [r for r in results if not r.ok]
    skipped = sum(r.skipped for r in results)
    log.info(
        "%s: %d fetched, %d already present, %d failed, %.1f MB in %.1f s",
        desc,
        len(results) - len(failed) - skipped,
        skipped,
        len(failed),
        totals["bytes"] / 1e6,
        time.perf_counter() - started,
    )
    if failures_path:
        _write_failures(results, failures_path)
    for r in failed[:5]:
        log.warning("failed: %s (%s)", r.job.url, r.reason)
    if len(failed) / len(jobs) > s.max_failure_fraction:
        where = f"; the list is in {failures_path}" if failures_path else ""
        raise DownloadError(
            f"{desc}: {len(failed)} of {len(jobs)} downloads failed, more than the allowed "
            f"max_failure_fraction {s.max_failure_fraction}{where}"
        )
    return results
