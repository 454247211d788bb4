"""What a speed figure was measured on: CPU model, torch threads, and the matmul throughput the machine
actually reaches (bf16 and fp32), measured here, so that a ratio from another machine can be read.

    python benchmarks/machine.py
"""

from __future__ import annotations

import torch

from dlhistory.records import cpu_model
from dlhistory.report.machine import matmul_gflops


def describe() -> dict[str, object]:
    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "bf16 matmul GFLOP/s": round(matmul_gflops(torch.bfloat16)),
            "fp32 matmul GFLOP/s": round(matmul_gflops(torch.float32))}


def line() -> str:
    return "machine: " + ", ".join(f"{k} {v}" for k, v in describe().items())


if __name__ == "__main__":
    print(line())
