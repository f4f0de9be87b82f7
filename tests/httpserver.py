"""A file server on 127.0.0.1 for download tests, with Range support and injected faults.

    server = FileServer()
    server.add("/a.bin", data, drop_after=1000)  # first request closes after 1000 bytes
    server.url("/a.bin"); server.count("/a.bin"); server.requests[-1].range
    server.close()

Faults apply to the first N requests of a path (`*_times`; `fail_times=None`: always), counted
from 1 per path. Files can also come from a folder (`FileServer(directory=...)`), without faults.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

MAX_DELAY = 2.0  # seconds: a stall longer than this would only slow the tests down


@dataclass
class Entry:
    data: bytes
    fail_status: int | None = None  # answer this status ...
    fail_times: int | None = None  # ... for the first N requests (None: always)
    fail_headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "1"}
    drop_after: int | None = None  # send the full Content-Length, then close after K bytes ...
    drop_times: int = 1  # ... for the first N requests
    corrupt_times: int = 0  # serve wrong bytes (same length) for the first N requests
    delay: float = 0.0  # sleep before answering ...
    delay_times: int = 1  # ... for the first N requests
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    hits: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.delay <= MAX_DELAY:
            raise ValueError(f"delay {self.delay} s: keep it within 0..{MAX_DELAY} s")


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None  # the Range header as sent
    headers: dict[str, str]
    hit: int  # 1 for the first request of this path


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Clients that hang up (timeouts, dropped transfers) are expected: stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FileServer:
    """Serves `add`ed paths (and files under `directory`); records every request."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self.entries: dict[str, Entry] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # most requests held at once (arrived, not yet answered)
        self.lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, data: bytes, *, corrupt: int | None = None, **faults) -> None:
        """Serve `data` at `path`; `faults` are Entry's fields (`corrupt`: corrupt_times)."""
        if corrupt is not None:
            faults["corrupt_times"] = corrupt
        with self.lock:
            self.entries[path] = Entry(data, **faults)

    @property
    def log(self) -> list[tuple[str, str | None]]:
        """(path, Range header) of every request, in order."""
        return [(r.path, r.range) for r in self.requests]

    def requested_paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def count(self, path: str) -> int:
        return sum(r.path == path for r in self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FileServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lookup(self, path: str) -> tuple[Entry | None, int]:
        """The entry for `path` (from the folder if not added) and this request's number."""
        with self.lock:
            entry = self.entries.get(path) or self._from_directory(path)
            if entry is None:
                return None, 0
            entry.hits += 1
            return entry, entry.hits

    def _from_directory(self, path: str) -> Entry | None:
        if self.directory is None:
            return None
        root = self.directory.resolve()
        file = (root / unquote(path).lstrip("/")).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            return None
        self.entries[path] = Entry(file.read_bytes())
        return self.entries[path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = urlsplit(self.path).path
                entry, hit = server._lookup(path)
                with server.lock:
                    server.requests.append(
                        Request(path, self.headers.get("Range"), dict(self.headers), hit)
                    )
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                self.held = True
                try:
                    self._answer(entry, hit)
                finally:
                    self._release()

            def _release(self) -> None:
                """The request stops counting as in flight once its answer starts: the client
                can end its request (and start another) only after that, whereas this thread
                may still be finishing its write when the next request arrives."""
                if self.held:
                    self.held = False
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, entry: Entry | None, hit: int) -> None:
                if entry is None:
                    return self._send(404, b"not found")
                if entry.delay and hit <= entry.delay_times:
                    time.sleep(entry.delay)
                self._release()
                if entry.fail_status and (entry.fail_times is None or hit <= entry.fail_times):
                    return self._send(entry.fail_status, b"fault", entry.fail_headers)
                data = entry.data
                if hit <= entry.corrupt_times:
                    data = bytes(b ^ 0xFF for b in data)
                start = None if entry.ignore_range else self._range_start()
                if start is not None and start >= len(data):
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                body = data[start or 0 :]
                self.send_response(206 if start is not None else 200)
                if start is not None:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if entry.drop_after is not None and hit <= entry.drop_times:
                    self.wfile.write(body[: entry.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(body)
                return None

            def _range_start(self) -> int | None:
                """First byte of a `Range: bytes=N-` request (other forms: whole file)."""
                header = self.headers.get("Range") or ""
                first, _, last = header.removeprefix("bytes=").partition("-")
                ok = header.startswith("bytes=") and first.isdigit() and not last
                return int(first) if ok else None

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def photo_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A JPEG of colourful blocks (a stand-in photo that passes the quality filters)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed + 7919 * width + height)
    blocks = rng.integers(0, 256, (max(height // 16, 1), max(width // 16, 1), 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(blocks).resize((width, height), Image.NEAREST).save(
        buffer, format="JPEG", quality=90
    )
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive in memory with `members` (name -> bytes)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
