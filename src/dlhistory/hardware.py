"""Hardware for a run: the device, bf16 where it pays, the process group, seeds, memory behaviour.

The runner calls these before it builds anything; benchmarks call them to time a model as a run would.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .errors import UsageError


@dataclass
class Hardware:
    """Device, precision and process group of this run."""

    device: torch.device
    bf16: bool
    channels_last: bool
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


# --------------------------------------------------------------------------------------------------
# Setup: device, precision, processes, seeds


def cpu_has_bf16() -> bool:
    """True where the CPU has native bf16 arithmetic (AVX-512 BF16 or AMX), so autocast is a win."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve(device: str, precision: str) -> tuple[torch.device, bool]:
    """(device, bf16) that ``--device`` and ``--precision`` ask for here; nothing is started."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA GPU is visible; use --device cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UsageError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    dev = torch.device(device)
    if precision not in ("auto", "bf16", "fp32"):
        raise UsageError(f"unknown precision {precision!r}; use auto, bf16 or fp32")
    supported = torch.cuda.is_bf16_supported() if dev.type == "cuda" else cpu_has_bf16()
    if precision == "bf16" and not supported:
        raise UsageError("--precision bf16 is not supported on this hardware; use --precision fp32")
    return dev, precision == "bf16" or (precision == "auto" and supported)


def setup_hardware(device: str, precision: str) -> Hardware:
    """Choose the device (cuda when present), bf16 where supported, and join torchrun's group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev, bf16 = resolve(device, precision)
    if dev.type == "cuda" and world_size > 1:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    # channels_last pays off on every CPU measured (oneDNN's convolutions want NHWC: a training step of the
    # cpu-preset AlexNet-style CNN 1.66x and of ResNet-20 1.35x faster in fp32 on a 2-core Xeon without
    # bf16 units) and, with bf16, on tensor-core GPUs.
    channels_last = dev.type == "cpu" or bf16
    return Hardware(dev, bf16, channels_last, rank=rank, world_size=world_size, local_rank=local_rank)


def keep_freed_memory() -> None:
    """Let glibc's malloc keep freed memory for the next step instead of handing it back to the kernel.

    A training step frees and allocates the same megabytes of activations every time; by default the
    freed top of the heap goes back to the kernel and the next step faults it in again, page by page.
    ``benchmarks/dqn_speed.py`` measured a DQN gradient step (Nature CNN, batch 32) at 22-32 ms before
    and 8-9 ms after. Nothing changes elsewhere (macOS, musl): the call is skipped.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    libc.mallopt(m_trim_threshold, 1 << 30)  # keep up to 1 GiB of free heap
    libc.mallopt(m_mmap_threshold, 32 << 20)  # blocks under 32 MiB come from the heap (glibc's maximum)


def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def prepare_model(model: Any, hw: Hardware) -> Any:
    """Move a network to the device (channels_last for conv nets) and wrap it for data parallelism."""
    if not isinstance(model, torch.nn.Module):
        return model  # e.g. the scikit-learn SVM baseline
    model = model.to(hw.device)
    if hw.channels_last and any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    if hw.world_size > 1:
        ids = [hw.device.index] if hw.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return model


def parameter_count(model: Any) -> int:
    if isinstance(model, torch.nn.Module):
        return sum(p.numel() for p in model.parameters())
    return int(getattr(model, "parameter_count", 0))
