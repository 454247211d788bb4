"""Throughput and time-to-accuracy of the 2012 AlexNet-style CNN: fp32 with the default (NCHW) layout,
fp32 + channels_last (what runs use on a CPU without bf16 units), and bf16 autocast + channels_last.

    python benchmarks/alexnet_precision.py                  # both measurements (about 15 minutes)
    python benchmarks/alexnet_precision.py --throughput     # images/s only (about 1 minute)

Images/s is measured over ``--steps`` training steps after a warm-up. Time-to-target trains the cpu
preset and reports the training seconds until the *validation* accuracy first reaches ``--target``
(evaluated ``--evals`` times per run); the test accuracy is the final one, for reference only.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import alexnet_time_to_target
import torch
from machine import line

from dlhistory import catalogue
from dlhistory.hardware import Hardware, cpu_has_bf16, prepare_model, seed_everything
from dlhistory.report.tables import format_table
from dlhistory.spec import Context


def throughput(precision: str, channels_last: bool, steps: int, warmup: int = 10) -> float:
    """Training images/s of the cpu-preset CNN (forward, backward, SGD step; data indexing included)."""
    recipe = catalogue.get("alexnet").recipe("cpu")
    hw = Hardware(torch.device("cpu"), bf16=precision == "bf16", channels_last=channels_last)
    seed_everything(0, deterministic=False)
    data = recipe.data(Context())
    model = prepare_model(recipe.model(data), hw)
    procedure = recipe.algorithm(model, recipe.loss(), data, Context())
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        with hw.autocast():
            procedure.update(step)
    return steps * procedure.samples_per_step / (time.perf_counter() - start)


def time_to_target(precision: str, target: float, evals: int, runs_dir: str) -> tuple[float | None, float]:
    """(training seconds until validation accuracy >= target, or None; final test accuracy)."""
    run = alexnet_time_to_target.time_to_target(target, evals, runs_dir, precision=precision)
    return run["seconds"], run["test"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--throughput", action="store_true", help="measure images/s only")
    parser.add_argument("--steps", type=int, default=100, help="steps timed for images/s")
    parser.add_argument("--target", type=float, default=0.93, help="validation accuracy to reach")
    parser.add_argument("--evals", type=int, default=24, help="validation evaluations per run")
    args = parser.parse_args()
    settings = [("fp32", False), ("fp32", True)] + ([("bf16", True)] if cpu_has_bf16() else [])
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for precision, channels_last in settings:
            row = [precision + (" + channels_last" if channels_last else ""),
                   f"{throughput(precision, channels_last, args.steps):.0f}"]
            if not channels_last:  # a run always takes channels_last on a CPU: its row is images/s only
                rows.append(row + ["-", "-"] * (not args.throughput))
                continue
            if not args.throughput:
                seconds, test = time_to_target(precision, args.target, args.evals, runs_dir)
                row += ["not reached" if seconds is None else f"{seconds:.0f}", f"{100 * test:.2f}%"]
            rows.append(row)
    headers = ["precision", "train images/s"]
    if not args.throughput:
        headers += [f"s to {100 * args.target:.0f}% val", "final test acc"]
    print(line())
    print(format_table(headers, rows))
    print(f"channels_last / NCHW in fp32: {float(rows[1][1]) / float(rows[0][1]):.2f}x the images/s")


if __name__ == "__main__":
    main()
