"""Parallel, resumable, verified HTTP downloads, shared by every source.

`fetch` gets one file (`fetch.py`), `fetch_all` and `fetch_images` many at once with a failure
list, `fetch_unless_local` a source's images unless the user holds them (`batch.py`), and images without a checksum must decode before they count (`images.py`).
"""

from pipeline.download.batch import fetch_all, fetch_images, fetch_unless_local
from pipeline.download.fetch import (
    DownloadError,
    DownloadJob,
    DownloadResult,
    DownloadSettings,
    fetch,
    hosts_of,
)
from pipeline.io import file_digest

__all__ = [
    "DownloadError",
    "DownloadJob",
    "DownloadResult",
    "DownloadSettings",
    "fetch",
    "fetch_all",
    "fetch_images",
    "fetch_unless_local",
    "file_digest",
    "hosts_of",
]
