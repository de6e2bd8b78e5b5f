"""download_tff_emnist: fails fast offline, verifies SHA-256, extracts only the two .h5 files."""
from __future__ import annotations

import hashlib
import http.server
import io
import random
import socket
import tarfile
import threading
import time

import pytest

from fl.data import (
    TFF_DIGITS_SHA256,
    TFF_DIGITS_URL,
    DataDownloadError,
    DataError,
    download_tff_emnist,
)

PREFIX = "fed_emnist_digitsonly"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server():
    """Serves ``payload["body"]`` on loopback; yields (url, payload)."""
    payload = {"body": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload["body"])))
            self.end_headers()
            self.wfile.write(payload["body"])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{PREFIX}.tar.bz2", payload
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_constants_are_tffs():
    assert TFF_DIGITS_URL.endswith("/tff-datasets-public/fed_emnist_digitsonly.tar.bz2")
    assert len(TFF_DIGITS_SHA256) == 64 and set(TFF_DIGITS_SHA256) <= set("0123456789abcdef")


def test_offline_fails_fast_with_instructions(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/{PREFIX}.tar.bz2"
    start = time.monotonic()
    with pytest.raises(DataDownloadError) as info:
        download_tff_emnist(cache_dir=tmp_path, timeout=2.0, url=url)
    assert time.monotonic() - start < 5.0
    assert "by hand" in str(info.value) and isinstance(info.value, DataError)
    assert not any(p.suffix == ".part" for p in tmp_path.iterdir())  # nothing half-written


@pytest.mark.network
def test_download_verify_extract(tmp_path, server):
    url, payload = server
    body = _archive({f"{PREFIX}/{PREFIX}_train.h5": b"train-bytes",
                     f"{PREFIX}/{PREFIX}_test.h5": b"test-bytes",
                     "../evil.h5": b"must not escape"})
    payload["body"] = body
    digest = hashlib.sha256(body).hexdigest()
    cache = tmp_path / "cache"
    out = download_tff_emnist(cache_dir=cache, url=url, sha256=digest, timeout=5.0)
    assert out == cache
    assert (cache / f"{PREFIX}_train.h5").read_bytes() == b"train-bytes"
    assert (cache / f"{PREFIX}_test.h5").read_bytes() == b"test-bytes"
    assert not (tmp_path / "evil.h5").exists() and not (cache / "evil.h5").exists()
    # a second call uses the cache: the server's content no longer matters
    payload["body"] = b"changed"
    assert download_tff_emnist(cache_dir=cache, url=url, sha256=digest) == cache


@pytest.mark.network
def test_hash_mismatch_discards_download(tmp_path, server):
    url, payload = server
    payload["body"] = _archive({f"{PREFIX}_train.h5": b"a", f"{PREFIX}_test.h5": b"b"})
    with pytest.raises(DataDownloadError, match="SHA-256 mismatch"):
        download_tff_emnist(cache_dir=tmp_path, url=url, timeout=5.0)  # TFF's real hash
    assert list(tmp_path.iterdir()) == []


def test_archive_placed_by_hand_is_verified_and_extracted(tmp_path):
    body = _archive({f"{PREFIX}_train.h5": b"a", f"{PREFIX}_test.h5": b"b"})
    (tmp_path / f"{PREFIX}.tar.bz2").write_bytes(body)
    offline = f"http://127.0.0.1:{_closed_port()}/x"
    out = download_tff_emnist(cache_dir=tmp_path, url=offline,
                              sha256=hashlib.sha256(body).hexdigest())
    assert (out / f"{PREFIX}_test.h5").read_bytes() == b"b"


@pytest.mark.network
def test_archive_without_members_rejected(tmp_path, server):
    url, payload = server
    payload["body"] = _archive({"readme.txt": b"x", f"{PREFIX}_train.h5": b"train only"})
    with pytest.raises(DataDownloadError, match="lacks"):
        download_tff_emnist(cache_dir=tmp_path, url=url,
                            sha256=hashlib.sha256(payload["body"]).hexdigest(), timeout=5.0)
    assert not (tmp_path / f"{PREFIX}_train.h5").exists()  # no half-set left in the cache
    assert not (tmp_path / "readme.txt").exists()


def test_hanging_name_lookup_is_cut_off(tmp_path, monkeypatch):
    release = threading.Event()

    def slow_lookup(*args, **kwargs):
        release.wait(10.0)
        raise OSError("released")

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    start = time.monotonic()
    try:
        with pytest.raises(DataDownloadError, match="within"):
            download_tff_emnist(cache_dir=tmp_path, timeout=0.3)
        assert time.monotonic() - start < 3.0
    finally:
        release.set()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x.tar.bz2", "file:///etc/passwd", "nonsense"])
def test_non_http_urls_rejected(tmp_path, url):
    with pytest.raises(DataDownloadError, match="http"):
        download_tff_emnist(cache_dir=tmp_path, url=url, timeout=1.0)


def test_truncated_archive_rejected_and_nothing_left(tmp_path):
    noise = random.Random(0).randbytes(40_000)
    body = _archive({f"{PREFIX}_train.h5": noise[:20_000], f"{PREFIX}_test.h5": noise[20_000:]})
    cut = body[: len(body) * 3 // 4]
    (tmp_path / f"{PREFIX}.tar.bz2").write_bytes(cut)
    offline = f"http://127.0.0.1:{_closed_port()}/x"
    with pytest.raises(DataDownloadError):
        download_tff_emnist(cache_dir=tmp_path, url=offline, sha256=hashlib.sha256(cut).hexdigest())
    assert not any(p.name.endswith(".h5") for p in tmp_path.iterdir())
