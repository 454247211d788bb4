"""What this machine can compute: the matmul throughput it actually reaches, measured once and cached.

A run records the FLOP/s it achieved; its utilisation is that over the peak of the same machine, at
the same threads and precision, measured here with large square products (what the kernels reach, not
a data-sheet number). The peak is cached per CPU model, torch version, threads and precision in the
user cache (``machine.json``), so the review measures it once per machine.
"""

from __future__ import annotations

import contextlib
import json
import time

import torch

from ..data.download import cache_dir
from ..records import cpu_model, write_json

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def matmul_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """Sustained GFLOP/s of square (n x n) matrix products in ``dtype`` on the CPU (2 n^3 per product)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up: the first call picks kernels
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def peak_gflops(precision: str, threads: int) -> float:
    """This machine's measured matmul GFLOP/s in ``precision`` ('bf16' or 'fp32') with ``threads``
    torch threads; measured at the first call per machine and cached."""
    key = f"{cpu_model()} | torch {torch.__version__} | {threads} threads | {precision}"
    path = cache_dir() / "machine.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            known[key] = round(matmul_gflops(DTYPES[precision]), 1)
        finally:
            torch.set_num_threads(before)
        with contextlib.suppress(OSError):  # a read-only cache measures again next time
            write_json(path, known)
    return known[key]


def utilisation(result: dict) -> float | None:
    """A run's achieved FLOP/s over this machine's peak at its threads and precision; None for a run
    without FLOPs, on another CPU, or on a GPU."""
    achieved = result.get("flops_per_s")
    precision = result.get("precision")
    if not achieved or precision not in DTYPES or result.get("device", "cpu") != "cpu":
        return None
    if result.get("versions", {}).get("cpu") != cpu_model():
        return None
    return achieved / 1e9 / peak_gflops(precision, int(result.get("threads") or 1))
