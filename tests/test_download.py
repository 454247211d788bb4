"""Tests of the verified downloader and the Fashion-MNIST IDX reader.

Downloads are served by a loopback HTTP server on 127.0.0.1, so the tests never reach the network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from dlhistory.data import fashion_mnist
from dlhistory.data.download import RemoteFile, cache_dir, fetch, verify
from dlhistory.errors import DataError

PAYLOAD = b"dlhistory test payload\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _QuietFiles(SimpleHTTPRequestHandler):
    """Serves a folder without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Truncating(BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 10, and hangs up: what a dropped connection looks like."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class Loopback:
    """A threaded HTTP server on 127.0.0.1 (a free port) serving ``root``, or answering with ``handler``."""

    def __init__(self, root: Path, handler: type[BaseHTTPRequestHandler] | None = None) -> None:
        self.root = root
        factory = handler or functools.partial(_QuietFiles, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), factory)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )  # a short poll so stop() is quick
        self.thread.start()
        self.running = True

    def url(self, name: str) -> str:
        return self.base + name

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.running = False


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache under tmp_path, no user data dir, online, and no proxy between us and 127.0.0.1."""
    monkeypatch.setenv("DLHISTORY_CACHE", str(tmp_path / "cache"))
    for var in ("DLHISTORY_DATA", "DLHISTORY_MIRROR", "DLHISTORY_OFFLINE",
                "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def www(tmp_path: Path) -> Iterator[Loopback]:
    """A loopback file server over an empty folder."""
    root = tmp_path / "www"
    root.mkdir()
    srv = Loopback(root)
    yield srv
    srv.stop()


def _remote(urls: tuple[str, ...], sha256: str = PAYLOAD_SHA, name: str = "blob.bin") -> RemoteFile:
    return RemoteFile(dataset="toy", name=name, urls=urls, sha256=sha256)


def _leftovers(cache: Path) -> list[str]:
    """Every file (hidden .part files included) under the cache's dataset folder."""
    folder = cache / "toy"
    return sorted(os.listdir(folder)) if folder.exists() else []


# -- downloading ---------------------------------------------------------------------------------------


def test_cache_dir_follows_env(isolated_env: Path) -> None:
    assert cache_dir() == isolated_env


def test_remote_file_needs_a_checksum() -> None:
    with pytest.raises(AssertionError):
        RemoteFile(dataset="toy", name="x", urls=())


def test_download_lands_in_cache_then_cache_is_used(
    www: Loopback, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (www.root / "blob.bin").write_bytes(PAYLOAD)
    f = _remote((www.url("blob.bin"),))

    path = fetch(f)
    assert path == isolated_env / "toy" / "blob.bin"
    assert path.read_bytes() == PAYLOAD and verify(path, f)
    assert _leftovers(isolated_env) == ["blob.bin"]
    assert f"downloading {www.url('blob.bin')} -> {path}" in capsys.readouterr().err

    www.stop()  # the second fetch must not need the server
    assert fetch(f) == path
    assert "downloading" not in capsys.readouterr().err


def test_falls_back_to_the_next_url(www: Loopback, isolated_env: Path) -> None:
    (www.root / "blob.bin").write_bytes(PAYLOAD)
    f = _remote((www.url("missing/blob.bin"), www.url("blob.bin")))  # the first answers 404
    assert fetch(f).read_bytes() == PAYLOAD


def test_a_mirror_is_tried_before_the_public_homes(www: Loopback, isolated_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (www.root / "toy").mkdir()
    (www.root / "toy" / "blob.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("DLHISTORY_MIRROR", f"http://127.0.0.1:9/nothing, {www.base}")
    f = _remote(("http://127.0.0.1:9/unreachable/blob.bin",))
    assert fetch(f).read_bytes() == PAYLOAD


def test_a_mirror_with_a_corrupt_copy_is_not_trusted(www: Loopback, isolated_env: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (www.root / "toy").mkdir()
    (www.root / "toy" / "blob.bin").write_bytes(PAYLOAD + b"tampered")
    (www.root / "blob.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("DLHISTORY_MIRROR", www.base)
    assert fetch(_remote((www.url("blob.bin"),))).read_bytes() == PAYLOAD  # the public home instead


@pytest.mark.parametrize("mirror", ["file:///etc", "data:text/plain,x", "ftp://example.org/data",
                                    "http://example.org/a/../../etc", "example.org/data"])
def test_a_mirror_must_be_an_http_address(mirror: str, isolated_env: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLHISTORY_MIRROR", mirror)
    with pytest.raises(DataError, match="a mirror is an http:// or https:// address") as err:
        fetch(_remote(("http://127.0.0.1:9/blob.bin",)))
    assert "\n" not in str(err.value)


class _Huge(BaseHTTPRequestHandler):
    """Announces far more bytes than any dataset file has."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 40))
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_download_over_the_size_cap_is_refused(tmp_path: Path, isolated_env: Path) -> None:
    srv = Loopback(tmp_path, handler=_Huge)
    try:
        with pytest.raises(DataError, match="refused: 1099511627776 bytes announced"):
            fetch(_remote((srv.url("blob.bin"),)))
    finally:
        srv.stop()
    assert _leftovers(isolated_env) == []


def test_an_unreadable_file_is_not_called_corrupt(isolated_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cached = isolated_env / "toy" / "blob.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD)
    monkeypatch.setenv("DLHISTORY_OFFLINE", "1")
    real_open = open

    def refused(path, *args, **kwargs):  # chmod does not stop root, who runs CI: refuse in open()
        if str(path) == str(cached):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refused)
    with pytest.raises(DataError) as err:
        fetch(_remote(("http://127.0.0.1:9/blob.bin",)))
    assert "unreadable (PermissionError: Permission denied)" in str(err.value)
    assert "checksum mismatch" not in str(err.value)


def test_checksum_mismatch_on_download_leaves_nothing(www: Loopback, isolated_env: Path) -> None:
    (www.root / "blob.bin").write_bytes(PAYLOAD + b"tampered")
    with pytest.raises(DataError) as err:
        fetch(_remote((www.url("blob.bin"),)))
    message = str(err.value)
    assert "toy/blob.bin" in message and "checksum" in message
    assert _leftovers(isolated_env) == []


def test_truncated_download_leaves_nothing(tmp_path: Path, isolated_env: Path) -> None:
    srv = Loopback(tmp_path, handler=_Truncating)
    try:
        with pytest.raises(DataError) as err:
            fetch(_remote((srv.url("blob.bin"),)))
    finally:
        srv.stop()
    assert "toy/blob.bin" in str(err.value)
    assert _leftovers(isolated_env) == []


def test_corrupt_cache_is_replaced_by_a_good_download(www: Loopback, isolated_env: Path) -> None:
    cached = isolated_env / "toy" / "blob.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a file")
    (www.root / "blob.bin").write_bytes(PAYLOAD)
    f = _remote((www.url("blob.bin"),))

    assert fetch(f) == cached
    assert cached.read_bytes() == PAYLOAD
    assert _leftovers(isolated_env) == ["blob.bin"]


def test_corrupt_cache_offline_names_the_corrupt_file(
    www: Loopback, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = isolated_env / "toy" / "blob.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a file")
    www.stop()
    monkeypatch.setenv("DLHISTORY_OFFLINE", "1")

    with pytest.raises(DataError) as err:
        fetch(_remote((www.url("blob.bin"),)))
    message = str(err.value)
    assert f"{cached}: checksum mismatch" in message
    assert "DLHISTORY_OFFLINE" in message
    assert cached.read_bytes() == b"half a file"  # a user's file is reported, never deleted


@pytest.mark.parametrize("nested", [True, False], ids=["dir/dataset/name", "dir/name"])
def test_data_dir_env_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nested: bool) -> None:
    data = tmp_path / "data"
    path = data / "toy" / "blob.bin" if nested else data / "blob.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    monkeypatch.setenv("DLHISTORY_DATA", str(data))
    monkeypatch.setenv("DLHISTORY_OFFLINE", "1")
    assert fetch(_remote(())) == path


def test_data_dir_argument_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "arg").mkdir()
    (tmp_path / "arg" / "blob.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("DLHISTORY_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DLHISTORY_OFFLINE", "1")
    assert fetch(_remote(()), data_dir=tmp_path / "arg") == tmp_path / "arg" / "blob.bin"


def test_system_dirs_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "blob.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("DLHISTORY_OFFLINE", "1")
    f = RemoteFile(dataset="toy", name="blob.bin", urls=(), sha256=PAYLOAD_SHA, system_dirs=(str(tmp_path),))
    assert fetch(f) == tmp_path / "blob.bin"


def test_gunzipped_sha256_accepts_a_recompressed_file(tmp_path: Path) -> None:
    official = gzip.compress(PAYLOAD, compresslevel=9, mtime=0)
    repacked = gzip.compress(PAYLOAD, compresslevel=1, mtime=123456789)  # other header, other deflate
    assert official != repacked
    f = RemoteFile(
        dataset="toy", name="blob.gz", urls=(), gunzipped_sha256=hashlib.sha256(PAYLOAD).hexdigest()
    )
    for i, blob in enumerate([official, repacked]):
        (tmp_path / f"{i}.gz").write_bytes(blob)
        assert verify(tmp_path / f"{i}.gz", f)

    (tmp_path / "other.gz").write_bytes(gzip.compress(PAYLOAD + b"!"))
    (tmp_path / "plain").write_bytes(PAYLOAD)  # right bytes, but not gzip'd
    (tmp_path / "cut.gz").write_bytes(official[: len(official) // 2])
    for name in ("other.gz", "plain", "cut.gz", "absent.gz"):
        assert not verify(tmp_path / name, f)


def test_error_message_is_one_line(www: Loopback, isolated_env: Path) -> None:
    cached = isolated_env / "toy" / "blob.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"junk")
    www.stop()
    f = _remote((www.url("blob.bin"), www.url("again/blob.bin")))
    with pytest.raises(DataError) as err:
        fetch(f, data_dir="/nonexistent/dlhistory-data")
    message = str(err.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith("toy/blob.bin not found or corrupt")
    assert "download failed" in message and www.url("blob.bin") in message
    assert "/nonexistent/dlhistory-data" in message and "DLHISTORY_DATA" in message


# -- IDX files -----------------------------------------------------------------------------------------


def _idx(magic: int, dims: list[int], body: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + body


@pytest.mark.parametrize("gzipped", [True, False], ids=["gz", "plain"])
def test_read_idx_images_and_labels(tmp_path: Path, gzipped: bool) -> None:
    pixels = bytes(range(3 * 2 * 4))
    images = _idx(0x0803, [3, 2, 4], pixels)
    labels = _idx(0x0801, [3], bytes([7, 0, 9]))
    pack = gzip.compress if gzipped else bytes
    (tmp_path / "i").write_bytes(pack(images))
    (tmp_path / "l").write_bytes(pack(labels))

    x = fashion_mnist.read_idx(tmp_path / "i")
    assert x.dtype == torch.uint8 and x.shape == (3, 1, 2, 4)
    assert x.flatten().tolist() == list(pixels)
    y = fashion_mnist.read_idx(tmp_path / "l")
    assert y.dtype == torch.int64 and y.tolist() == [7, 0, 9]


@pytest.mark.parametrize(
    "blob",
    [
        _idx(0x0803, [3, 2, 4], bytes(23)),  # one byte short
        _idx(0x0801, [3], bytes(4)),  # one byte too many
        _idx(0x0802, [3], bytes(3)),  # signed bytes: not an image or label file
        b"\x00\x00\x08",  # shorter than a magic number
        b"\x1f\x8b" + b"not really gzip",
    ],
    ids=["short", "long", "magic", "tiny", "bad-gzip"],
)
def test_read_idx_rejects_malformed_files(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(blob)
    with pytest.raises(DataError, match="bad-idx"):
        fashion_mnist.read_idx(path)


def test_fashion_mnist_files_are_described() -> None:
    assert set(fashion_mnist.FILES) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert len(fashion_mnist.CLASSES) == 10 and fashion_mnist.CLASSES[9] == "Ankle boot"
    for f in fashion_mnist.FILES.values():
        assert f.dataset == "fashion-mnist" and f.gunzipped_sha256 and f.sha256 is None
        assert all(url.endswith("/" + f.name) for url in f.urls)


# -- the real dataset ------------------------------------------------------------------------------------


def test_load_real_fashion_mnist(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = shared_data / "fashion-mnist"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    monkeypatch.setenv("DLHISTORY_OFFLINE", "1")  # the copy must be enough: never touch the network

    assert fetch(fashion_mnist.FILES["test_labels"], data_dir=shared_data).parent == folder
    arrays = fashion_mnist.load_arrays(data_dir=shared_data)
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = arrays[split]
        assert x.shape == (n, 1, 28, 28) and x.dtype == torch.uint8
        assert y.shape == (n,) and y.dtype == torch.int64
        assert int(y.min()) == 0 and int(y.max()) == 9
        assert torch.bincount(y, minlength=10).gt(0).all()  # every class appears
        assert int(x.max()) > 0  # not an all-black array
    assert fashion_mnist.load_arrays(data_dir=shared_data) is arrays  # memoized within the process
