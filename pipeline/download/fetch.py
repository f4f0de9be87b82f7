"""One resumable, verified HTTP download (`fetch`), with retries and per-host connection limits.

A file appears under its final name only after it arrived whole and matched its checksum: bytes go
to `{dest}.part`, an interrupted transfer resumes from there with an HTTP Range request, and the
verified file is renamed into place. A file that exists is never fetched again.

An image without a checksum (`DownloadJob(image=True)`, as `fetch_images` makes) must decode
with Pillow before it is renamed into place; bytes that do not decode (corrupted or truncated in
transit) are moved aside to `{dest}.corrupt` and the attempt counts as failed, so it is retried,
and failing that fetched again on the next run. An image already at `dest` gets a cheap structural
check (JPEG ends with its EOI marker, PNG with its IEND chunk) and is fetched again if damaged.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from pipeline.download.images import decode_error, image_damage, move_aside
from pipeline.io import file_digest
from pipeline.schema import schema_defaults

log = logging.getLogger(__name__)
# Smaller than 1 MiB on purpose: when a connection drops, the bytes of the chunk being read are
# lost, so a small chunk keeps nearly all of what arrived for the resume.
CHUNK = 1 << 16
MAX_WAIT = 30.0  # seconds: cap of the backoff, and the longest Retry-After honoured
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
OnBytes = Callable[[int], None]


@dataclass(frozen=True)
@schema_defaults("#/properties/download", code_only=("backoff", "allowed_hosts"))
class DownloadSettings:
    workers: int  # threads in total
    per_host: int  # concurrent connections per host
    retries: int  # attempts after the first
    backoff: float = 0.5  # seconds before retry k (from 0): backoff * 2**k, at most MAX_WAIT
    timeout: float  # connect and read timeout per request (seconds)
    max_failure_fraction: float  # fetch_all raises DownloadError above this
    allowed_schemes: tuple[str, ...]
    allowed_hosts: tuple[str, ...] = ()  # empty: any host


@dataclass(frozen=True)
class DownloadJob:
    url: str
    dest: Path
    sha256: str | None = None  # hex
    md5: str | None = None  # hex
    size: int | None = None  # bytes
    image: bool = False  # must decode as an image (for files without a checksum)


@dataclass
class DownloadResult:
    job: DownloadJob
    ok: bool
    status: int | None  # last HTTP status; None after a network error or a refusal
    reason: str  # '' when ok
    nbytes: int  # size of the file at `dest` when ok, else 0
    skipped: bool = False  # `dest` was already there


class DownloadError(RuntimeError):
    """Too many downloads failed (the message says how many, and where the list is)."""


class _Failure(Exception):
    """One failed attempt. `discard`: the partial bytes are wrong, never resume from them."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        retry: bool = True,
        discard: bool = False,
        wait: float = 0.0,
    ):
        super().__init__(reason)
        self.reason, self.status, self.retry = reason, status, retry
        self.discard, self.wait = discard, wait


_host_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_host_lock = threading.Lock()


def _slot(host: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore that limits connections to `host` to `limit`."""
    with _host_lock:
        key = (host, max(1, limit))
        if key not in _host_slots:
            _host_slots[key] = threading.BoundedSemaphore(key[1])
        return _host_slots[key]


def hosts_of(*urls: str) -> tuple[str, ...]:
    """The host names of `urls`: what a source may contact, given the URLs in its config."""
    return tuple(sorted({h for u in urls if (h := urlsplit(u).hostname)}))


def _refusal(url: str, settings: DownloadSettings) -> str:
    """Why `url` may not be contacted, or '' if it may."""
    parts = urlsplit(url)
    if parts.scheme not in settings.allowed_schemes:
        return (
            f"scheme {parts.scheme!r} not allowed (allowed: {', '.join(settings.allowed_schemes)})"
        )
    if not parts.hostname:
        return "URL has no host"
    if settings.allowed_hosts and parts.hostname not in settings.allowed_hosts:
        return f"host not allowed: {parts.hostname}"
    return ""


def _verify(path: Path, job: DownloadJob) -> None:
    """Raise _Failure (discard) if the file's size or checksums differ from the job's."""
    size = path.stat().st_size
    if job.size is not None and size != job.size:
        raise _Failure(f"size mismatch: expected {job.size} bytes, got {size}", discard=True)
    for algorithm in ("sha256", "md5"):
        expected = getattr(job, algorithm)
        if expected:
            got = file_digest(path, algorithm)
            if got.lower() != expected.lower():
                raise _Failure(f"{algorithm} mismatch: expected {expected} got {got}", discard=True)


def _check_decodes(part: Path, dest: Path) -> None:
    """Raise _Failure (retryable) if the transferred image does not decode; its bytes are moved
    to `{dest}.corrupt` (replacing an older one) for inspection."""
    error = decode_error(part)
    if error:
        corrupt = move_aside(part, dest)
        log.warning("%s: not a decodable image (%s); bytes moved to %s", dest, error, corrupt)
        raise _Failure(f"not a decodable image: {error}", discard=True)


def _retry_after(response: requests.Response) -> float:
    """Seconds the server asks us to wait (Retry-After in seconds, if at most MAX_WAIT)."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() and int(value) <= MAX_WAIT else 0.0


def _content_range(response: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total size) from Content-Range; None where absent or '*'."""
    match = re.match(
        r"bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)", response.headers.get("Content-Range", "")
    )
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first.isdigit() else None), (int(total) if total.isdigit() else None)


def _check_416(response: requests.Response, offset: int, job: DownloadJob) -> None:
    """416 to a Range request: fine only if the part can be whole (then _verify decides)."""
    _, total = _content_range(response)
    checkable = job.size is not None or job.sha256 or job.md5
    if not offset or (total is not None and total != offset) or (total is None and not checkable):
        raise _Failure("HTTP 416: partial file does not fit", 416, retry=bool(offset), discard=True)


def _stream(response: requests.Response, part: Path, offset: int, on_bytes: OnBytes) -> None:
    """Write the body to `part` (appending at `offset`); check it against Content-Length."""
    expected = response.headers.get("Content-Length")
    written = 0
    with open(part, "ab" if offset else "wb") as handle:
        for chunk in response.iter_content(CHUNK):
            handle.write(chunk)
            written += len(chunk)
            on_bytes(len(chunk))
    if expected and expected.isdigit() and written != int(expected):
        raise _Failure(
            f"connection closed after {written} of {expected} bytes", response.status_code
        )


def _transfer(
    job: DownloadJob,
    part: Path,
    settings: DownloadSettings,
    session: requests.Session,
    on_bytes: OnBytes,
) -> int:
    """One attempt: fill `part` from where it stops. Returns the HTTP status."""
    offset = part.stat().st_size if part.exists() else 0
    if job.size is not None and offset > job.size:
        offset = 0  # longer than the file can be: start again
    # identity: byte ranges and Content-Length then count the bytes that land on disk
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with session.get(job.url, headers=headers, stream=True, timeout=settings.timeout) as response:
        status = response.status_code
        if status == 416:
            _check_416(response, offset, job)
            return status
        if status not in (200, 206):
            retry = status in RETRY_STATUS
            raise _Failure(f"HTTP {status}", status, retry, wait=_retry_after(response))
        if status == 206 and _content_range(response)[0] != offset:
            raise _Failure("HTTP 206 for a range we did not ask for", status, discard=True)
        _stream(response, part, offset if status == 206 else 0, on_bytes)
        return status


def _network_reason(err: requests.RequestException, settings: DownloadSettings) -> str:
    if isinstance(err, requests.Timeout) or "timed out" in str(err).lower():
        return f"timeout after {settings.timeout} s"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return f"connection dropped: {err}"
    return f"network error: {type(err).__name__}: {err}"


def _present(dest: Path, job: DownloadJob) -> bool:
    """Whether `dest` is there and matches the job; a mismatching file is removed, a damaged
    image moved to `{dest}.corrupt`."""
    if not dest.exists():
        return False
    try:
        _verify(dest, job)
    except _Failure as err:
        log.warning("%s: %s; fetching it again", dest, err.reason)
        dest.unlink()
        return False
    if job.image:
        damage = image_damage(dest)
        if damage:
            corrupt = move_aside(dest, dest)
            log.warning("%s: %s; moved to %s, fetching it again", dest, damage, corrupt)
            return False
    return True


def _attempts(
    job: DownloadJob,
    dest: Path,
    settings: DownloadSettings,
    session: requests.Session,
    on_bytes: OnBytes,
) -> DownloadResult:
    part = dest.with_name(dest.name + ".part")
    host = urlsplit(job.url).hostname or ""
    status, reason, wait = None, "", 0.0
    for attempt in range(settings.retries + 1):
        if attempt:
            time.sleep(max(min(settings.backoff * 2 ** (attempt - 1), MAX_WAIT), wait))
        wait = 0.0
        try:
            with _slot(host, settings.per_host):
                status = _transfer(job, part, settings, session, on_bytes)
            _verify(part, job)
            if job.image:
                _check_decodes(part, dest)
            nbytes = part.stat().st_size
            os.replace(part, dest)
            return DownloadResult(job, True, status, "", nbytes)
        except _Failure as err:
            status = err.status if err.status is not None else status
            reason, wait = err.reason, err.wait
            if err.discard:
                part.unlink(missing_ok=True)
            if not err.retry:
                break
        except requests.RequestException as err:  # the part stays, to resume from
            status, reason = None, _network_reason(err, settings)
        except FileNotFoundError:  # the part vanished under us (another process): start over
            status, reason = None, "partial file vanished"
    return DownloadResult(job, False, status, reason, 0)


def fetch(
    job: DownloadJob,
    settings: DownloadSettings,
    session: requests.Session | None = None,
    on_bytes: OnBytes | None = None,
) -> DownloadResult:
    """Fetch one file (or keep it if it is already there), with retries and resume.

    `on_bytes(n)` is called for every chunk written (progress counting).
    """
    dest = Path(job.dest)
    if _present(dest, job):
        return DownloadResult(job, True, None, "", dest.stat().st_size, skipped=True)
    refusal = _refusal(job.url, settings)
    if refusal:
        return DownloadResult(job, False, None, refusal, 0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    own = session is None
    session = session or requests.Session()
    try:
        return _attempts(job, dest, settings, session, on_bytes or (lambda n: None))
    finally:
        if own:
            session.close()
