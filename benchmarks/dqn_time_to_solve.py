"""DQN on CartPole against CleanRL's ``dqn.py``, one after the other on this machine: time to solved.

    git clone https://github.com/vwxyzjn/cleanrl /tmp/cleanrl
    python -m venv /tmp/peer && /tmp/peer/bin/pip install torch==2.13.0 gymnasium==0.29.1 tyro tensorboard
    python benchmarks/dqn_time_to_solve.py --peer /tmp/cleanrl --peer-python /tmp/peer/bin/python

The peer needs its own environment: CleanRL's dqn.py reads gymnasium 0.29's ``final_observation``,
which gymnasium 1.x (ours) no longer gives. Three seeds take about 12 minutes on 2 cores.

The peer runs CleanRL's CartPole settings on our cpu schedule (200k environment steps, memory 10k,
batch 128, a gradient step every 10 steps after 1,000, a target copy every 500, Adam 2.5e-4, epsilon
1 -> 0.05 over the first 50k steps), one thread; its time is its whole run's wall time, as the speed
issue measured it (it evaluates no greedy policy on the way). Ours is ``dlhistory run dqn --preset
cpu`` with an evaluation every 5,000 environment steps: the training seconds (evaluations excluded) at
the first validation whose 10 greedy games average >= 475, the solved mark of CartPole-v1, and the
run's whole wall time. The reference "today's recipe" is the same command acting in one gymnasium
environment (``algorithm.envs=1``). Every ratio is against the peer measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import line

SOLVED = 475.0
PEER_FLAGS = ["--no-cuda", "--total-timesteps", "200000", "--learning-rate", "2.5e-4",
              "--buffer-size", "10000", "--target-network-frequency", "500", "--batch-size", "128",
              "--start-e", "1", "--end-e", "0.05", "--exploration-fraction", "0.25",
              "--learning-starts", "1000", "--train-frequency", "10"]


def one_thread() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "DLHISTORY_THREADS": "1", "MKL_NUM_THREADS": "1"}


def peer_seconds(checkout: Path, python: str, seed: int) -> float:
    """Wall seconds of CleanRL's dqn.py at our schedule (in a scratch folder: it writes runs/ there)."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {**one_thread(), "PYTHONPATH": str(checkout)}
        start = time.perf_counter()
        subprocess.run([python, str(checkout / "cleanrl" / "dqn.py"), *PEER_FLAGS, "--seed", str(seed)],
                       cwd=scratch, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def ours(seed: int, *overrides: str) -> tuple[float | None, float, float]:
    """(training seconds at the first validation >= 475 or None, whole wall seconds, test return)."""
    with tempfile.TemporaryDirectory() as runs:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dlhistory", "run", "dqn", "--preset", "cpu", "--seed",
                        str(seed), "--evals", "40", "--runs-dir", runs, "--no-progress", *overrides],
                       env=one_thread(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        (metrics,) = Path(runs).glob("dqn/dqn/*/metrics.jsonl")
        records = [json.loads(line) for line in metrics.open()]
        solved = next((r["train_seconds"] for r in records
                       if r.get("split") == "val" and r.get("return", 0) >= SOLVED), None)
        test = json.loads((metrics.parent / "result.json").read_text())["test_return"]
        return solved, wall, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, required=True, help="a CleanRL checkout (holds cleanrl/dqn.py)")
    parser.add_argument("--peer-python", default=sys.executable,
                        help="the Python of the peer's environment (gymnasium 0.29, tyro)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if not (args.peer / "cleanrl" / "dqn.py").is_file():
        parser.error(f"--peer {args.peer}: no cleanrl/dqn.py there; clone https://github.com/vwxyzjn/cleanrl")
    recipes = {"ours": (), "ours, one environment": ("algorithm.envs=1",)}
    peer_walls, runs = [], {name: [] for name in recipes}
    for seed in range(1, args.seeds + 1):  # CleanRL's default seed is 1
        peer_walls.append(peer_seconds(args.peer, args.peer_python, seed))
        for name, overrides in recipes.items():
            runs[name].append(ours(seed, *overrides))
        print(f"seed {seed}: peer {peer_walls[-1]:.1f} s; "
              + "; ".join(f"{name} {found[-1]}" for name, found in runs.items()), flush=True)
    print(line())
    peer = statistics.fmean(peer_walls)
    print(f"peer: CleanRL dqn.py, 200k steps: {peer:.1f} s wall (mean of {args.seeds} seeds)")
    for name, found in runs.items():
        print(f"{name}: {summary(found, peer)}")


def summary(runs: list[tuple[float | None, float, float]], peer: float) -> str:
    """Mean time to solved and whole-run wall time of ``runs`` (as :func:`ours` returns them), as
    ratios to the peer's wall time, and their test returns."""
    solved, walls, tests = zip(*runs, strict=True)
    reached = [s for s in solved if s is not None]
    to_solve = "never solved"
    if reached:
        mean = statistics.fmean(reached)
        to_solve = (f"{mean:.1f} s to validation >= {SOLVED:g} ({len(reached)} of {len(solved)} seeds), "
                    f"{mean / peer:.2f}x the peer")
    wall = statistics.fmean(walls)
    return (f"{to_solve}; whole run {wall:.1f} s wall ({wall / peer:.2f}x); "
            f"test returns {', '.join(f'{t:.0f}' for t in tests)}")

if __name__ == "__main__":
    main()
