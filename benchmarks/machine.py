"""What a speed figure was measured on: CPU model, torch threads, and the matmul throughput the machine
actually reaches (bf16 and fp32), measured here, so that a ratio from another machine can be read.

    python benchmarks/machine.py
"""

from __future__ import annotations

import time

import torch

from dlhistory.records import cpu_model


def matmul_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """Sustained GFLOP/s of square (n x n) matrix products in ``dtype`` on the CPU (2 n^3 per product)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up: the first call picks kernels
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def describe() -> dict[str, object]:
    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "bf16 matmul GFLOP/s": round(matmul_gflops(torch.bfloat16)),
            "fp32 matmul GFLOP/s": round(matmul_gflops(torch.float32))}


def line() -> str:
    return "machine: " + ", ".join(f"{k} {v}" for k, v in describe().items())


if __name__ == "__main__":
    print(line())
