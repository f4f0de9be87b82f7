"""A file server on 127.0.0.1 for download tests, with Range support and injected faults."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Entry:
    data: bytes
    fail_status: int | None = None  # answer this status ...
    fail_times: int | None = None  # ... for the first N requests (None: always)
    drop_after: int | None = None  # send the full Content-Length, then close after K bytes ...
    drop_times: int = 1  # ... for the first N requests
    corrupt_times: int = 0  # serve wrong bytes for the first N requests
    delay: float = 0.0  # sleep before answering ...
    delay_times: int = 1  # ... for the first N requests
    ignore_range: bool = False
    hits: int = field(default=0)


class FileServer:
    """Serves `add`ed paths; `log` records (path, range header) of every request."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.log: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, data: bytes, **faults) -> None:
        with self.lock:
            self.entries[path] = Entry(data, **faults)

    def requested_paths(self) -> list[str]:
        return [path for path, _ in self.log]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with server.lock:
                    server.log.append((self.path, self.headers.get("Range")))
                    entry = server.entries.get(self.path)
                    if entry:
                        entry.hits += 1
                        hit = entry.hits
                if entry is None:
                    return self._send(404, b"not found")
                if entry.delay and hit <= entry.delay_times:
                    time.sleep(entry.delay)
                if entry.fail_status and (entry.fail_times is None or hit <= entry.fail_times):
                    return self._send(entry.fail_status, b"fault")
                data = entry.data
                if hit <= entry.corrupt_times:
                    data = bytes(b ^ 0xFF for b in data)
                start = self._range_start(entry)
                if start is not None and start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
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

            def _range_start(self, entry: Entry) -> int | None:
                header = self.headers.get("Range")
                if entry.ignore_range or not header or not header.startswith("bytes="):
                    return None
                first = header[6:].split("-", 1)[0]
                return int(first) if first.isdigit() else None

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
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
