"""Images corrupted in transit, or damaged on disk, are moved aside and fetched again."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import pipeline.download as download
from pipeline.download import DownloadError, DownloadJob, DownloadSettings, fetch, fetch_images
from tests.httpserver import photo_jpeg

JPEG = photo_jpeg(320, 240)
BAD = bytes(b ^ 0xFF for b in JPEG)  # what the server sends when it corrupts JPEG
FAST = DownloadSettings(workers=2, retries=3, backoff=0.01, timeout=2)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(JPEG)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png_bytes()


def image_job(server, tmp_path: Path, path: str = "/a.jpg") -> DownloadJob:
    return DownloadJob(server.url(path), tmp_path / "out" / path.strip("/"), image=True)


def decodes(path: Path) -> bool:
    with Image.open(path) as image:
        image.load()
    return True


def test_image_corrupted_once_heals_within_the_run(http_server, tmp_path):
    http_server.add("/a.jpg", JPEG, corrupt=1)
    result = fetch(image_job(http_server, tmp_path), FAST)
    dest = tmp_path / "out/a.jpg"
    assert result.ok and result.status == 200 and result.nbytes == len(JPEG)
    assert dest.read_bytes() == JPEG and decodes(dest)
    assert (tmp_path / "out/a.jpg.corrupt").read_bytes() == BAD
    assert not (tmp_path / "out/a.jpg.part").exists()
    assert http_server.count("/a.jpg") == 2


def test_image_always_corrupted_fails_and_keeps_the_bad_bytes_aside(http_server, tmp_path):
    http_server.add("/a.jpg", JPEG, corrupt=100)
    once = DownloadSettings(retries=1, backoff=0.01, timeout=2)
    result = fetch(image_job(http_server, tmp_path), once)
    assert not result.ok and result.reason.startswith("not a decodable image: ")
    assert result.nbytes == 0
    assert not (tmp_path / "out/a.jpg").exists()
    assert not (tmp_path / "out/a.jpg.part").exists()
    assert (tmp_path / "out/a.jpg.corrupt").read_bytes() == BAD
    assert http_server.count("/a.jpg") == 2


def test_truncated_image_with_matching_length_is_refused(http_server, tmp_path):
    # the server sends what it has, a JPEG cut short: Content-Length matches, only decoding tells
    http_server.add("/a.jpg", JPEG[: len(JPEG) // 2])
    result = fetch(image_job(http_server, tmp_path), DownloadSettings(retries=0, timeout=2))
    assert not result.ok and "not a decodable image" in result.reason
    assert "truncated" in result.reason
    assert not (tmp_path / "out/a.jpg").exists()
    assert (tmp_path / "out/a.jpg.corrupt").read_bytes() == JPEG[: len(JPEG) // 2]


def test_corrupt_aside_is_replaced_by_the_newest_bad_bytes(http_server, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.jpg.corrupt").write_bytes(b"old")
    http_server.add("/a.jpg", JPEG, corrupt=1)
    assert fetch(image_job(http_server, tmp_path), FAST).ok
    assert (tmp_path / "out/a.jpg.corrupt").read_bytes() == BAD


def test_non_image_job_keeps_bytes_unchecked(http_server, tmp_path):
    http_server.add("/a.jpg", JPEG, corrupt=1)
    plain = DownloadJob(http_server.url("/a.jpg"), tmp_path / "out/a.jpg")
    assert fetch(plain, FAST).ok
    assert (tmp_path / "out/a.jpg").read_bytes() == BAD
    assert http_server.count("/a.jpg") == 1 and not (tmp_path / "out/a.jpg.corrupt").exists()


def rows_for(server, tmp_path: Path, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "box_id": range(len(names)),
            "image_url": [server.url(f"/{n}") for n in names],
            "image_path": [str(tmp_path / "img" / n) for n in names],
        }
    )


def test_fetch_images_fetches_a_corrupted_image_again_on_the_next_run(http_server, tmp_path):
    http_server.add("/good.jpg", photo_jpeg(64, 48, seed=1))
    http_server.add("/bad.jpg", JPEG, corrupt=1)
    rows = rows_for(http_server, tmp_path, ["good.jpg", "bad.jpg", "bad.jpg"])
    failures = tmp_path / "failures.tsv"
    strict = DownloadSettings(workers=2, retries=0, backoff=0.01, timeout=2)
    with pytest.raises(DownloadError, match="1 of 2"):
        fetch_images(rows, strict, failures, "images")
    table = pd.read_csv(failures, sep="\t")
    assert table["url"].tolist() == [http_server.url("/bad.jpg")]
    assert table["reason"].str.startswith("not a decodable image").all()
    assert not (tmp_path / "img/bad.jpg").exists()
    assert (tmp_path / "img/bad.jpg.corrupt").read_bytes() == BAD
    # the next run: the server now sends the right bytes
    kept = fetch_images(rows, strict, failures, "images")
    assert kept["box_id"].tolist() == [0, 1, 2]
    assert (tmp_path / "img/bad.jpg").read_bytes() == JPEG
    assert http_server.count("/bad.jpg") == 2 and http_server.count("/good.jpg") == 1
    assert failures.read_text() == "url\tdest\tstatus\treason\n"


@pytest.mark.parametrize(
    ("name", "good", "damaged"),
    [
        ("a.jpg", JPEG, JPEG[: len(JPEG) - 300]),
        ("a.jpg", JPEG, JPEG[:-2]),  # only the EOI marker missing
        ("a.png", PNG, PNG[: len(PNG) // 2]),
        ("a.jpg", JPEG, b"<html>rate limited</html>"),  # not an image at all
        ("a.jpg", JPEG, b""),
    ],
)
def test_present_damaged_image_is_moved_aside_and_fetched_again(
    http_server, tmp_path, caplog, name, good, damaged
):
    http_server.add(f"/{name}", good)
    dest = tmp_path / "out" / name
    dest.parent.mkdir()
    dest.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="pipeline.download"):
        result = fetch(image_job(http_server, tmp_path, f"/{name}"), FAST)
    assert result.ok and not result.skipped
    assert dest.read_bytes() == good
    assert dest.with_name(name + ".corrupt").read_bytes() == damaged
    assert http_server.count(f"/{name}") == 1
    assert any(
        str(dest) in r.getMessage() and "fetching it again" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize(
    "data",
    [
        JPEG,
        JPEG + b"\x00" * 100 + b"\r\n",  # padding after the EOI marker
        JPEG + b"trailer some cameras append",  # not padding, but it decodes: kept
        PNG,
    ],
)
def test_present_good_image_is_not_fetched_again(http_server, tmp_path, data):
    http_server.add("/a.img", JPEG, corrupt=100)  # would fail if it were fetched
    dest = tmp_path / "out/a.img"
    dest.parent.mkdir()
    dest.write_bytes(data)
    result = fetch(image_job(http_server, tmp_path, "/a.img"), FAST)
    assert result.ok and result.skipped and result.nbytes == len(data)
    assert dest.read_bytes() == data and not dest.with_name("a.img.corrupt").exists()
    assert http_server.count("/a.img") == 0


@pytest.mark.parametrize("data", [JPEG, JPEG + b"\x00" * 100 + b"\r\n", PNG])
def test_present_whole_image_is_not_decoded(http_server, tmp_path, monkeypatch, data):
    """Reruns over many images stay fast: a file that passes the structural check is kept
    without decoding it."""

    def no_decoding(path):
        raise AssertionError(f"decoded {path}")

    monkeypatch.setattr(download.images, "decode_error", no_decoding)
    dest = tmp_path / "out/a.jpg"
    dest.parent.mkdir()
    dest.write_bytes(data)
    assert fetch(image_job(http_server, tmp_path), FAST).skipped
    assert http_server.count("/a.jpg") == 0
