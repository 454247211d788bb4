"""DQN speed at the cpu presets: environment steps per second, where the time goes, replay memory size.

    python benchmarks/dqn_speed.py               # about 2 minutes on 2 cores

Breakout (``cpu-breakout``): environment steps per second while acting only (the random warm-up) and
while learning (one gradient step per 4 environment steps, epsilon at its final 0.01 so nearly every
action is a forward pass), and the milliseconds of one gradient step (batch 32: online and target
networks forward, backward, Adam) under bf16 autocast and in float32. CartPole (``cpu``): steps per
second of the whole procedure once learning. The gradient step is timed first with glibc's default
malloc, then with freed memory kept for reuse as every run has it (``hardware.keep_freed_memory``).
Replay memory: bytes for 1M Atari transitions, frames
stored once, against storing (s, s') as stacks, and the time to sample a batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np
import torch

from dlhistory import catalogue
from dlhistory.algorithms.replay import ReplayMemory
from dlhistory.hardware import cpu_has_bf16, keep_freed_memory, prepare_model, setup_hardware
from dlhistory.report.tables import format_table
from dlhistory.spec import Context


def procedure(preset: str, precision: str = "auto", **changes):
    """A DQN procedure of ``preset`` as the runner builds it, with algorithm fields changed."""
    recipe = catalogue.get("dqn").recipe(preset)
    recipe = recipe.swap(algorithm=recipe.algorithm.with_config(
        dataclasses.replace(recipe.algorithm.config, **changes)))
    hw = setup_hardware("cpu", precision)
    torch.manual_seed(0)
    data = recipe.data(Context())
    return recipe.algorithm(prepare_model(recipe.model(data), hw), recipe.loss(), data, Context()), hw


def steps_per_second(proc, hw, updates: int) -> float:
    """Environment steps per second over ``updates`` procedure steps (each ``train_every`` actions)."""
    start = time.perf_counter()
    for step in range(updates):
        with hw.autocast():
            proc.update(step)
    return updates * proc.config.train_every / (time.perf_counter() - start)


def learn_ms(proc, hw, n: int = 40) -> float:
    with hw.autocast():
        for _ in range(5):
            proc.learn()
        start = time.perf_counter()
        for _ in range(n):
            proc.learn()
    return 1000 * (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1000, help="procedure steps per measurement")
    args = parser.parse_args()
    rows = []

    # The gradient step with glibc's default malloc, then as every run has it (hardware.keep_freed_memory).
    proc, hw = procedure("cpu-breakout", learning_starts=1000)
    steps_per_second(proc, hw, 250)
    rows.append(["breakout", "one gradient step, bf16, glibc's default malloc (ms)",
                 f"{learn_ms(proc, hw):.1f}"])
    keep_freed_memory()
    rows.append(["breakout", "one gradient step, bf16, freed memory kept (ms)", f"{learn_ms(proc, hw):.1f}"])

    # Breakout: acting only, then learning with epsilon at its end value (almost every action greedy).
    proc, hw = procedure("cpu-breakout", learning_starts=10_000, exploration_steps=1)
    acting = proc.config.learning_starts // proc.config.train_every
    proc.config = dataclasses.replace(proc.config, epsilon_start=1.0, epsilon_end=1.0)  # random warm-up
    rows.append(["breakout", "acting only (random warm-up)", f"{steps_per_second(proc, hw, acting):.0f}"])
    proc.config = dataclasses.replace(proc.config, epsilon_start=0.01, epsilon_end=0.01)
    rows.append(["breakout", "acting + learning (epsilon 0.01)",
                 f"{steps_per_second(proc, hw, args.updates):.0f}"])
    fp32, hw32 = procedure("cpu-breakout", precision="fp32", learning_starts=1000)
    steps_per_second(fp32, hw32, 250)
    rows.append(["breakout", "one gradient step, float32, freed memory kept (ms)",
                 f"{learn_ms(fp32, hw32):.1f}"])

    # CartPole: the whole procedure once learning has started.
    proc, hw = procedure("cpu", exploration_steps=1)
    steps_per_second(proc, hw, proc.config.learning_starts // proc.config.train_every)
    rows.append(["cartpole", "acting + learning (epsilon 0.05)",
                 f"{steps_per_second(proc, hw, 4 * args.updates):.0f}"])

    # Replay memory.
    once = ReplayMemory.nbytes_for(1_000_000, (84, 84), np.uint8)
    rows.append(["memory", "1M Atari transitions, frames once (GB)", f"{once / 1e9:.2f}"])
    stacks = 1_000_000 * 2 * 4 * 84 * 84
    rows.append(["memory", "1M Atari transitions as (s, s') stacks (GB)", f"{stacks / 1e9:.2f}"])
    memory = ReplayMemory(100_000, (84, 84), np.uint8)
    rng = np.random.default_rng(0)
    memory.start(rng.integers(0, 255, (84, 84), dtype=np.uint8))
    for i in range(100_000):
        memory.add(0, 0.0, False, memory.frames[i % 1000])  # any frames: sampling cost is the same
    start = time.perf_counter()
    for _ in range(200):
        memory.sample(32, rng)
    rows.append(["memory", "sample a batch of 32 stacked transitions (ms)",
                 f"{1000 * (time.perf_counter() - start) / 200:.2f}"])

    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}, bf16 {'yes' if cpu_has_bf16() else 'no'}")
    print(format_table(["environment", "measure", "value"], rows))


if __name__ == "__main__":
    main()
