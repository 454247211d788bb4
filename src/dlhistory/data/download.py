"""The one verified downloader for every dataset.

A dataset file is looked for, in order, in the user cache, in the data directory the user named
(``data_dir`` / ``$DLHISTORY_DATA``), in known system locations (e.g. a Debian package), and is
otherwise downloaded from its public homes. Every candidate is checked against its SHA-256 before it
is used, so a partial or corrupt file is never mistaken for the dataset; downloads are written to a
temporary file and renamed into place only once verified, so an interruption leaves nothing behind
that looks valid.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dlhistory.errors import DataError
from dlhistory.records import atomic_write

_CHUNK = 1 << 20  # 1 MiB: large enough to be fast, small enough to never hold a dataset in memory
_TIMEOUT_S = 60.0  # a stalled server must not hang a run forever
_USER_AGENT = "dlhistory"  # some hosts refuse urllib's default agent
_MAX_BYTES = 1 << 30  # 1 GiB: the largest file any milestone reads is tens of megabytes


@dataclass(frozen=True)
class RemoteFile:
    """One file of a public dataset."""

    dataset: str  # folder name, e.g. "fashion-mnist", "multi30k"
    name: str  # file name, e.g. "train-images-idx3-ubyte.gz"
    urls: tuple[str, ...]  # public homes, tried in order
    sha256: str | None = None  # SHA-256 of the file's bytes as stored
    # SHA-256 of the decompressed bytes of a .gz file: Debian re-compresses Fashion-MNIST, so only this
    # is stable across the official files and the packaged ones.
    gunzipped_sha256: str | None = None
    system_dirs: tuple[str, ...] = ()  # known system locations, e.g. ("/usr/share/datasets/fashion-mnist",)

    def __post_init__(self) -> None:
        # An unverifiable file could be anything, so every file must carry at least one checksum.
        assert self.sha256 or self.gunzipped_sha256, f"{self.dataset}/{self.name}: no checksum given"

    @property
    def label(self) -> str:
        """``<dataset>/<name>``, how messages name the file."""
        return f"{self.dataset}/{self.name}"


def cache_dir() -> Path:
    """The user cache: ``$DLHISTORY_CACHE`` or ``~/.cache/dlhistory``."""
    env = os.environ.get("DLHISTORY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dlhistory"


def _offline() -> bool:
    """True when ``$DLHISTORY_OFFLINE`` asks us never to touch the network."""
    return os.environ.get("DLHISTORY_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _sha256_of_stream(stream: BinaryIO) -> str:
    """SHA-256 hex digest of a binary stream, read in chunks."""
    h = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def verify(path: Path, f: RemoteFile) -> bool:
    """True when the bytes at ``path`` match ``f``'s checksums (every one that is given)."""
    return _problem(path, f) is None


def _problem(path: Path, f: RemoteFile) -> str | None:
    """What is wrong with the file at ``path`` ('checksum mismatch', 'unreadable: PermissionError'),
    or None when its bytes match every checksum ``f`` gives.

    Streams the file (and its decompressed bytes for ``gunzipped_sha256``), so it never holds it all in
    memory.
    """
    try:
        if f.sha256:
            with open(path, "rb") as fh:
                if _sha256_of_stream(fh) != f.sha256.lower():
                    return "checksum mismatch"
        if f.gunzipped_sha256:
            with gzip.open(path, "rb") as gz:
                if _sha256_of_stream(gz) != f.gunzipped_sha256.lower():
                    return "checksum mismatch"
    except (EOFError, zlib.error, gzip.BadGzipFile):  # cut short or not gzip: the bytes are wrong
        return "checksum mismatch"
    except OSError as e:  # the bytes could not be read at all: say so, it is not their checksum
        return f"unreadable ({type(e).__name__}: {e.strerror or e}); check its permissions"
    return None


def _local_candidates(f: RemoteFile, data_dir: str | os.PathLike | None) -> list[Path]:
    """Every local path where ``f`` may already be, in the order they are tried."""
    paths = [cache_dir() / f.dataset / f.name]
    if data_dir is None:
        data_dir = os.environ.get("DLHISTORY_DATA") or None
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        # Accept both a folder of dataset folders and a folder that holds the files themselves.
        paths += [root / f.dataset / f.name, root / f.name]
    paths += [Path(d) / f.name for d in f.system_dirs]
    # The same file may be named twice (e.g. DLHISTORY_DATA equal to the cache): check it once.
    unique: list[Path] = []
    for p in paths:
        if p not in unique:
            unique.append(p)
    return unique


def _mirrors(f: RemoteFile) -> list[str]:
    """``<mirror>/<dataset>/<name>`` for each base URL in ``$DLHISTORY_MIRROR`` (comma-separated), tried
    before the public homes: a lab's or a CI's copy of the datasets, checked against the same SHA-256.
    Only http(s) mirrors, without ``..`` in their path: a local folder is ``DLHISTORY_DATA``'s job."""
    bases = [b.strip().rstrip("/") for b in os.environ.get("DLHISTORY_MIRROR", "").split(",")
             if b.strip()]
    for base in bases:
        url = urllib.parse.urlsplit(base)
        if url.scheme not in ("http", "https") or not url.netloc or ".." in url.path.split("/"):
            raise DataError(f"DLHISTORY_MIRROR {_one_line(base)[:100]!r}: a mirror is an http:// or "
                            "https:// address without '..' (for a local folder set DLHISTORY_DATA)")
    return [f"{base}/{f.dataset}/{f.name}" for base in bases]


def _one_line(text: object) -> str:
    """``text`` with line breaks folded, because errors are printed on a single line."""
    return " ".join(str(text).split())


def _stream_into(url: str, out: BinaryIO) -> None:
    """Copy the body at ``url`` into ``out`` in chunks; raise when fewer bytes come than were announced."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        expected = response.headers.get("Content-Length")
        received = 0
        if expected is not None and expected.strip().isdigit() and int(expected) > _MAX_BYTES:
            raise ValueError(f"refused: {expected.strip()} bytes announced, over the {_MAX_BYTES} any "
                             "dataset file here has")
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
            if received > _MAX_BYTES:  # a server that announces nothing, or lies
                raise ValueError(f"refused: over {_MAX_BYTES} bytes, more than any dataset file here has")
    # http.client's read() just stops at EOF when a connection drops mid-body, so compare with what was
    # announced: a short file must fail here, not later as a puzzling checksum mismatch.
    if expected is not None and expected.strip().isdigit() and received != int(expected):
        raise ValueError(f"truncated: got {received} of {expected.strip()} bytes")


def _download(url: str, dest: Path, f: RemoteFile) -> None:
    """Download ``url`` to ``dest`` atomically; raise ``OSError``/``ValueError``/``HTTPException`` on failure.

    The bytes go to a file beside ``dest`` that is checked (length, then checksum), flushed to disk and
    only then renamed onto ``dest`` (:func:`~dlhistory.records.atomic_write`), so ``dest`` is either the
    verified file or untouched, and an interruption leaves nothing behind.
    """

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            _stream_into(url, out)
        if not verify(tmp, f):
            raise ValueError("checksum mismatch")

    atomic_write(dest, write)


def _not_found(f: RemoteFile, looked: list[Path], corrupt: list[str], failures: list[str]) -> DataError:
    """The one-line error for a file that is nowhere usable, saying what to get and where to put it."""
    details = ["looked in: " + ", ".join(str(p.parent) for p in looked), *corrupt]
    if failures:
        details.append("download failed: " + "; ".join(failures))
    where = cache_dir() / f.dataset
    source = f.urls[0] if f.urls else "its public home"
    message = (
        f"{f.label} not found or corrupt ({'; '.join(details)}); download it from {source} into {where}/ "
        f"or set DLHISTORY_DATA to a folder holding {f.label}"
    )
    return DataError(_one_line(message))


def fetch(f: RemoteFile, data_dir: str | os.PathLike | None = None) -> Path:
    """The path of a verified copy of ``f``, downloading it into the cache when no local copy is good.

    Looks in the user cache, then ``data_dir`` (else ``$DLHISTORY_DATA``) as ``<dir>/<dataset>/<name>``
    or ``<dir>/<name>``, then ``f.system_dirs``, then downloads from each ``$DLHISTORY_MIRROR`` and
    each public URL in turn (unless ``$DLHISTORY_OFFLINE=1``). A file that exists but fails its
    checksum is never used. Raises ``DataError`` with a one-line message when nothing usable is found.
    """
    looked = _local_candidates(f, data_dir)
    corrupt: list[str] = []
    for path in looked:
        if path.is_file():
            problem = _problem(path, f)
            if problem is None:
                return path
            corrupt.append(f"{path}: {problem}")

    failures: list[str] = []
    dest = cache_dir() / f.dataset / f.name
    urls = (*_mirrors(f), *f.urls)
    if _offline():
        failures.append("downloading disabled by DLHISTORY_OFFLINE")
    else:
        for url in urls:
            print(f"downloading {url} -> {dest}", file=sys.stderr, flush=True)
            try:
                _download(url, dest, f)
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts: OSError
                failures.append(f"{url}: {_one_line(e) or type(e).__name__}")
                continue
            return dest
        if not urls:
            failures.append("no public URL known")
    raise _not_found(f, looked, corrupt, failures)
