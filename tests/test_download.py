"""The downloader against a server on 127.0.0.1 that drops, corrupts, stalls and fails."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.archive import UnsafeArchiveError, UnsafePathError, safe_extract, safe_join
from pipeline.download import DownloadError, DownloadJob, DownloadSettings, fetch, fetch_all

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()
FAST = DownloadSettings(workers=4, retries=3, backoff=0.01, timeout=0.5)


def job(server, tmp_path: Path, path: str = "/f.bin", **kw) -> DownloadJob:
    return DownloadJob(server.url(path), tmp_path / "out" / path.strip("/"), **kw)


def test_fetch_verifies_and_renames(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    result = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert result.ok and result.nbytes == len(DATA) and not result.skipped
    assert (tmp_path / "out/f.bin").read_bytes() == DATA
    assert not (tmp_path / "out/f.bin.part").exists()


def test_present_file_is_not_fetched_again(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    again = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert again.ok and again.skipped
    assert http_server.requested_paths() == ["/f.bin"]


def test_present_file_with_wrong_checksum_is_fetched_again(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    (tmp_path / "out").mkdir()
    (tmp_path / "out/f.bin").write_bytes(b"stale")
    assert fetch(job(http_server, tmp_path, sha256=SHA), FAST).ok
    assert (tmp_path / "out/f.bin").read_bytes() == DATA


def test_dropped_connection_resumes_with_range(http_server, tmp_path):
    http_server.add("/f.bin", DATA, drop_after=300_000)
    result = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert result.ok
    assert (tmp_path / "out/f.bin").read_bytes() == DATA
    ranges = [r for _, r in http_server.log]
    assert ranges[0] is None and ranges[1] is not None
    assert (
        0 < int(ranges[1].removeprefix("bytes=").rstrip("-")) <= 300_000
    )  # resumed, not restarted


def test_server_that_ignores_range_restarts_cleanly(http_server, tmp_path):
    http_server.add("/f.bin", DATA, drop_after=300_000, ignore_range=True)
    assert fetch(job(http_server, tmp_path, sha256=SHA), FAST).ok
    assert (tmp_path / "out/f.bin").read_bytes() == DATA


def test_wrong_bytes_are_retried_then_reported(http_server, tmp_path):
    http_server.add("/bad.bin", DATA, corrupt_times=100)
    result = fetch(job(http_server, tmp_path, "/bad.bin", sha256=SHA), FAST)
    assert not result.ok and "sha256 mismatch" in result.reason
    assert len(http_server.log) == FAST.retries + 1
    assert not (tmp_path / "out/bad.bin").exists() and not (tmp_path / "out/bad.bin.part").exists()


def test_wrong_bytes_once_then_right(http_server, tmp_path):
    http_server.add("/f.bin", DATA, corrupt_times=1)
    assert fetch(job(http_server, tmp_path, sha256=SHA), FAST).ok
    assert len(http_server.log) == 2


def test_md5_and_size_are_checked(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    md5 = hashlib.md5(DATA).hexdigest()
    assert fetch(job(http_server, tmp_path, md5=md5, size=len(DATA)), FAST).ok
    bad = fetch(DownloadJob(http_server.url("/f.bin"), tmp_path / "x.bin", size=5), FAST)
    assert not bad.ok and "size mismatch" in bad.reason


def test_404_is_not_retried(http_server, tmp_path):
    result = fetch(job(http_server, tmp_path, "/missing.jpg"), FAST)
    assert not result.ok and result.status == 404 and result.reason == "HTTP 404"
    assert len(http_server.log) == 1


def test_500_is_retried(http_server, tmp_path):
    http_server.add("/f.bin", DATA, fail_status=500, fail_times=2)
    assert fetch(job(http_server, tmp_path, sha256=SHA), FAST).ok
    assert len(http_server.log) == 3
    http_server.add("/down.bin", DATA, fail_status=503)
    result = fetch(job(http_server, tmp_path, "/down.bin"), FAST)
    assert not result.ok and result.status == 503


def test_slow_server_times_out_then_retry_succeeds(http_server, tmp_path):
    http_server.add("/f.bin", DATA, delay=1.5, delay_times=1)
    result = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert result.ok and len(http_server.log) == 2


def test_disallowed_scheme_and_host_are_never_contacted(http_server, tmp_path):
    assert "scheme" in fetch(DownloadJob("file:///etc/passwd", tmp_path / "p"), FAST).reason
    only_example = DownloadSettings(allowed_hosts=("images.cocodataset.org",))
    http_server.add("/f.bin", DATA)
    result = fetch(job(http_server, tmp_path), only_example)
    assert not result.ok and "host not allowed" in result.reason
    assert http_server.log == [] and not (tmp_path / "p").exists()


def test_fetch_all_records_failures_and_honours_the_threshold(http_server, tmp_path):
    jobs = []
    for i in range(10):
        if i != 3:
            http_server.add(f"/img/{i}.jpg", DATA[: 1000 + i])
        jobs.append(job(http_server, tmp_path, f"/img/{i}.jpg"))
    failures = tmp_path / "failures.tsv"
    tolerant = DownloadSettings(
        workers=4, retries=1, backoff=0.01, timeout=2, max_failure_fraction=0.2
    )
    results = fetch_all(jobs, tolerant, failures)
    assert sum(r.ok for r in results) == 9
    table = pd.read_csv(failures, sep="\t")
    assert table["url"].tolist() == [http_server.url("/img/3.jpg")] and table[
        "status"
    ].tolist() == [404]
    strict = DownloadSettings(
        workers=4, retries=1, backoff=0.01, timeout=2, max_failure_fraction=0.05
    )
    with pytest.raises(DownloadError, match=r"1 of 10 .*failures.tsv"):
        fetch_all(jobs, strict, failures)
    assert fetch_all([], strict, failures) == []


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_archive_members_outside_the_folder_are_refused(tmp_path, member):
    path = tmp_path / "a.zip"
    path.write_bytes(_zip({"ok.txt": b"ok", member: b"evil"}))
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_archive_extracts_only_selected_members(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(_zip({"annotations/a.json": b"{}", "annotations/b.json": b"[]"}))
    written = safe_extract(path, tmp_path / "out", ["annotations/b.json"])
    assert written == [tmp_path / "out/annotations/b.json"]
    assert not (tmp_path / "out/annotations/a.json").exists()
    with pytest.raises(ValueError, match="no member"):
        safe_extract(path, tmp_path / "out", ["annotations/c.json"])


def test_corrupt_archive_is_named(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="broken.zip"):
        safe_extract(path, tmp_path / "out")


@pytest.mark.parametrize("name", ["/etc/passwd", "../../x.jpg", "C:\\x.jpg", "a/../../x", ""])
def test_safe_join_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, name)


def test_safe_join_keeps_nested_names(tmp_path):
    assert (
        safe_join(tmp_path, "train2017/000000000139.jpg")
        == tmp_path / "train2017" / "000000000139.jpg"
    )
