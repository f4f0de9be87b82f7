"""The downloader against a server on 127.0.0.1 that drops, corrupts, stalls and fails."""

from __future__ import annotations

import hashlib
import stat
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.archive import UnsafeArchiveError, UnsafePathError, safe_extract, safe_join
from pipeline.download import (
    DownloadError,
    DownloadJob,
    DownloadSettings,
    fetch,
    fetch_all,
    file_digest,
)
from tests.httpserver import FileServer, zip_bytes

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()
FAST = DownloadSettings(workers=4, retries=3, backoff=0.01, timeout=0.5)


def job(server, tmp_path: Path, path: str = "/f.bin", **kw) -> DownloadJob:
    return DownloadJob(server.url(path), tmp_path / "out" / path.strip("/"), **kw)


def test_fetch_verifies_and_renames(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    result = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert result.ok and result.status == 200 and result.reason == ""
    assert result.nbytes == len(DATA) and not result.skipped
    assert (tmp_path / "out/f.bin").read_bytes() == DATA
    assert not (tmp_path / "out/f.bin.part").exists()
    # no compression: Content-Length and byte ranges then count the bytes on disk
    assert http_server.requests[0].headers["Accept-Encoding"] == "identity"
    assert file_digest(tmp_path / "out/f.bin", "sha256") == SHA
    assert file_digest(tmp_path / "out/f.bin", "md5") == hashlib.md5(DATA).hexdigest()


def test_present_file_is_not_fetched_again(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    again = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert again.ok and again.skipped and again.nbytes == len(DATA)
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
    ranges = [r.range for r in http_server.requests]
    assert len(ranges) == 2 and ranges[0] is None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 300_000  # resumed, not restarted


def test_interrupted_download_leaves_only_the_part_then_resumes(http_server, tmp_path):
    http_server.add("/f.bin", DATA, drop_after=200_000, drop_times=100)
    dest = tmp_path / "out/f.bin"
    result = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert not result.ok and result.status is None and "connection" in result.reason
    assert not dest.exists()
    part = tmp_path / "out/f.bin.part"
    assert 0 < part.stat().st_size < len(DATA)
    # each attempt resumed from the bytes kept so far
    starts = [int(r.range[6:-1]) if r.range else 0 for r in http_server.requests]
    assert starts == sorted(starts) and len(set(starts)) == FAST.retries + 1
    kept = part.stat().st_size
    http_server.add("/f.bin", DATA)  # the server recovers: a later run finishes the file
    assert fetch(job(http_server, tmp_path, sha256=SHA), FAST).ok
    assert http_server.requests[-1].range == f"bytes={kept}-"
    assert dest.read_bytes() == DATA and not part.exists()


def test_complete_part_is_verified_after_416(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    (tmp_path / "out").mkdir()
    (tmp_path / "out/f.bin.part").write_bytes(DATA)
    result = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert result.ok and (tmp_path / "out/f.bin").read_bytes() == DATA
    assert http_server.log == [("/f.bin", f"bytes={len(DATA)}-")]


def test_part_longer_than_the_file_is_discarded(http_server, tmp_path):
    http_server.add("/f.bin", DATA[:1000])
    (tmp_path / "out").mkdir()
    (tmp_path / "out/f.bin.part").write_bytes(b"x" * 5000)
    assert fetch(job(http_server, tmp_path), FAST).ok  # no checksum: 416's total decides
    assert (tmp_path / "out/f.bin").read_bytes() == DATA[:1000]
    assert [r.range for r in http_server.requests] == ["bytes=5000-", None]


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
    http_server.add("/down.bin", DATA, fail_status=500)
    result = fetch(job(http_server, tmp_path, "/down.bin"), FAST)
    assert not result.ok and result.status == 500 and result.reason == "HTTP 500"
    assert http_server.count("/down.bin") == FAST.retries + 1
    assert not (tmp_path / "out/down.bin").exists()


def test_429_waits_for_retry_after(http_server, tmp_path):
    http_server.add(
        "/f.bin", DATA, fail_status=429, fail_times=1, fail_headers={"Retry-After": "1"}
    )
    started = time.perf_counter()
    assert fetch(job(http_server, tmp_path, sha256=SHA), FAST).ok
    assert time.perf_counter() - started >= 0.9  # not FAST.backoff
    assert http_server.count("/f.bin") == 2


def test_unreachable_server_is_a_network_error(tmp_path):
    with FileServer() as gone:
        url = gone.url("/f.bin")
    result = fetch(DownloadJob(url, tmp_path / "f.bin"), FAST)
    assert not result.ok and result.status is None and "network error" in result.reason


def test_slow_server_times_out_then_retry_succeeds(http_server, tmp_path):
    http_server.add("/f.bin", DATA, delay=1.5, delay_times=1)
    result = fetch(job(http_server, tmp_path, sha256=SHA), FAST)
    assert result.ok and len(http_server.log) == 2


def test_persistent_stall_is_reported_as_timeout(http_server, tmp_path):
    http_server.add("/f.bin", DATA, delay=1.0, delay_times=100)
    once = DownloadSettings(retries=1, backoff=0.01, timeout=0.3)
    result = fetch(job(http_server, tmp_path), once)
    assert not result.ok and result.status is None and "timeout" in result.reason
    assert http_server.count("/f.bin") == 2 and not (tmp_path / "out/f.bin").exists()


def test_disallowed_scheme_and_host_are_never_contacted(http_server, tmp_path):
    refused = fetch(DownloadJob("file:///etc/passwd", tmp_path / "p"), FAST)
    assert (
        not refused.ok and refused.status is None and "scheme 'file' not allowed" in refused.reason
    )
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
    assert failures.read_text() == "url\tdest\tstatus\treason\n"


def test_fetch_all_respects_the_per_host_limit(http_server, tmp_path):
    jobs = []
    for i in range(8):
        http_server.add(f"/{i}.bin", DATA[:1000], delay=0.2)
        jobs.append(job(http_server, tmp_path, f"/{i}.bin"))
    two = DownloadSettings(workers=8, per_host=2, retries=0, timeout=2)
    failures = tmp_path / "failures.tsv"
    assert all(r.ok for r in fetch_all(jobs, two, failures))
    assert http_server.peak_in_flight == 2
    assert failures.read_text() == "url\tdest\tstatus\treason\n"


def test_fetch_all_fetches_a_repeated_file_once(http_server, tmp_path):
    http_server.add("/f.bin", DATA)
    twice = [job(http_server, tmp_path, sha256=SHA)] * 2
    results = fetch_all(twice, FAST)
    assert [r.ok for r in results] == [True, True] and http_server.count("/f.bin") == 1
    clash = [twice[0], DownloadJob(http_server.url("/g.bin"), twice[0].dest)]
    with pytest.raises(ValueError, match="two URLs"):
        fetch_all(clash, FAST)


def test_server_serves_a_folder(tmp_path):
    (tmp_path / "site/sub").mkdir(parents=True)
    (tmp_path / "site/sub/a.txt").write_bytes(b"hello")
    with FileServer(directory=tmp_path / "site") as server:
        ok = fetch(DownloadJob(server.url("/sub/a.txt"), tmp_path / "a.txt"), FAST)
        missing = fetch(DownloadJob(server.url("/../outside.txt"), tmp_path / "b.txt"), FAST)
    assert ok.ok and (tmp_path / "a.txt").read_bytes() == b"hello"
    assert missing.reason == "HTTP 404"


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_archive_members_outside_the_folder_are_refused(tmp_path, member):
    path = tmp_path / "a.zip"
    path.write_bytes(zip_bytes({"ok.txt": b"ok", member: b"evil"}))
    with pytest.raises(UnsafeArchiveError, match=r"a\.zip.*evil\.txt"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out/ok.txt").exists()  # refused before anything was written


def test_archive_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="'link' is a symbolic link"):
        safe_extract(path, tmp_path / "out")


def test_archive_extracts_only_selected_members(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(zip_bytes({"annotations/a.json": b"{}", "annotations/b.json": b"[]"}))
    written = safe_extract(path, tmp_path / "out", ["annotations/b.json"])
    assert written == [tmp_path / "out/annotations/b.json"]
    assert not (tmp_path / "out/annotations/a.json").exists()
    before = written[0].stat().st_ino
    assert safe_extract(path, tmp_path / "out", ["annotations/b.json"]) == written
    assert written[0].stat().st_ino == before  # same size already there: kept, not rewritten
    assert len(list((tmp_path / "out/annotations").iterdir())) == 1  # no temporary files left
    with pytest.raises(ValueError, match="no member"):
        safe_extract(path, tmp_path / "out", ["annotations/c.json"])


def test_corrupt_archive_is_named(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="broken.zip"):
        safe_extract(path, tmp_path / "out")


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../../x.jpg", "C:\\x.jpg", "a/../../x", "", ".", "..\\x"]
)
def test_safe_join_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, name)


def test_safe_join_keeps_nested_names(tmp_path):
    assert (
        safe_join(tmp_path, "train2017/000000000139.jpg")
        == tmp_path / "train2017" / "000000000139.jpg"
    )
