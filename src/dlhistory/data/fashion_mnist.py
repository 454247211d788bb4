"""The raw Fashion-MNIST arrays: 60,000 training and 10,000 test 28x28 grayscale images of 10 classes.

Fashion-MNIST is a drop-in replacement for MNIST made from Zalando's article images:
H. Xiao, K. Rasul & R. Vollgraf, 2017, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
Learning Algorithms", arXiv:1708.07747. MIT licence (Zalando SE).

The files are the four gzip'd IDX files of the official release. Debian's ``dataset-fashion-mnist``
package installs the same images re-compressed, so they are verified by the SHA-256 of their
decompressed bytes, which both copies share.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path

import torch

from dlhistory.data.download import RemoteFile, cache_dir, fetch
from dlhistory.errors import DataError

CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_HOMES = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)  # Debian's dataset-fashion-mnist package


def _remote(name: str, gunzipped_sha256: str) -> RemoteFile:
    """The RemoteFile for one of the four official files."""
    return RemoteFile(
        dataset="fashion-mnist",
        name=name,
        urls=tuple(home + name for home in _HOMES),
        gunzipped_sha256=gunzipped_sha256,
        system_dirs=_SYSTEM_DIRS,
    )


FILES: dict[str, RemoteFile] = {
    "train_images": _remote(
        "train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    "train_labels": _remote(
        "train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
    ),
    "test_images": _remote(
        "t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
    ),
    "test_labels": _remote(
        "t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
    ),
}

_IMAGES_MAGIC = 0x0803  # unsigned bytes, 3 dimensions (N, rows, cols)
_LABELS_MAGIC = 0x0801  # unsigned bytes, 1 dimension (N,)


def _read_bytes(path: Path) -> bytearray:
    """The (decompressed, when gzip'd) bytes of ``path``; a bytearray so torch can wrap it without a copy."""
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as fh:
            return bytearray(fh.read())
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read IDX file ({' '.join(str(e).split())})") from e


def read_idx(path: Path) -> torch.Tensor:
    """Parse a gzip'd (or plain) IDX file.

    Images (magic 0x0803) become uint8 ``(N, 1, rows, cols)``; labels (magic 0x0801) become int64
    ``(N,)``. A malformed file (bad magic, a size that disagrees with its header) raises ``DataError``.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic not in (_IMAGES_MAGIC, _LABELS_MAGIC):
        raise DataError(f"{path}: not an IDX image or label file (magic 0x{magic:08x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    count = 1
    for d in dims:
        count *= d
    if len(data) != header + count:
        raise DataError(
            f"{path}: IDX header says {dims} ({count} bytes of data) but it holds {len(data) - header}"
        )
    if count == 0:
        values = torch.zeros(0, dtype=torch.uint8)  # torch.frombuffer refuses an empty buffer
    else:
        # Shares memory with `data`: no copy of the image bytes.
        values = torch.frombuffer(data, dtype=torch.uint8, count=count, offset=header)
    if magic == _IMAGES_MAGIC:
        return values.view(dims[0], 1, dims[1], dims[2])
    return values.to(torch.int64)


@functools.lru_cache(maxsize=4)
def _load(data_dir: str, cache: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read and check the four files; memoized by (data dir, cache) because a process may run many models.

    ``cache`` is only part of the key: ``fetch`` reads ``$DLHISTORY_CACHE`` itself.
    """
    arrays = {}
    for split in ("train", "test"):
        x = read_idx(fetch(FILES[f"{split}_images"], data_dir or None))
        y = read_idx(fetch(FILES[f"{split}_labels"], data_dir or None))
        if x.dim() != 4 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise DataError(
                f"fashion-mnist {split}: images {tuple(x.shape)} and labels {tuple(y.shape)} disagree"
            )
        if y.numel() and not (int(y.min()) >= 0 and int(y.max()) < len(CLASSES)):
            raise DataError(f"fashion-mnist {split}: labels outside 0..{len(CLASSES) - 1}")
        arrays[split] = (x, y)
    return arrays


def load_arrays(data_dir: str | os.PathLike | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train": (x, y), "test": (x, y)}``: x uint8 ``(N, 1, 28, 28)``, y int64 ``(N,)``, N = 60000 / 10000.

    Files are found by :func:`dlhistory.data.download.fetch` (cache, ``data_dir`` or ``$DLHISTORY_DATA``,
    Debian's package, then download). The result is memoized and shared by every caller in the process:
    treat the tensors as read-only (``x.float() / 255`` makes a new tensor, as any preprocessing should).
    """
    if data_dir is None:
        data_dir = os.environ.get("DLHISTORY_DATA") or None
    key = str(Path(data_dir).expanduser().resolve()) if data_dir is not None else ""
    return _load(key, str(cache_dir()))
