"""GPT training speed: tokens per second, model FLOP utilisation, and the training seconds until the
validation loss first reaches nanoGPT's CPU-recipe result (1.886 nats per character).

    python benchmarks/gpt_speed.py                       # dlhistory only: reference and fastest recipe
    python benchmarks/gpt_speed.py --nanogpt ~/nanoGPT   # and nanoGPT's own train.py, beside it

nanoGPT's ``prepare.py`` imports ``requests``; where this environment lacks it, give a Python that has
it (and torch, numpy) with ``--peer-python``.

The reference is nanoGPT's README CPU recipe, trained by dlhistory: 4 layers, 4 heads, 128 dims, context
64, batch 12, 2,000 iterations, lr 1e-3 decaying to 1e-4 after 100 warm-up steps, beta2 0.99, no
dropout, in fp32. The fastest recipe is the same model under the precision the machine does best (bf16
autocast where the CPU has it) with the fastest changes found so far (``FASTEST``), at ``--seeds``
seeds: one seed's time to the target moves by a tenth, so the goal is judged on their mean. All run
in this process, one after the other, so their ratio is this machine's. With ``--nanogpt DIR`` (a clone of
github.com/karpathy/nanoGPT; nothing is downloaded) its train.py runs the same recipe on the same text,
once before dlhistory's runs and once after, and the mean of its two wall times is the reference the
goal is stated against: reach 1.886 in at most half of nanoGPT's time.

The time to a loss is read from ``metrics.jsonl``, which records each evaluation's validation loss
with the training seconds before it (evaluations themselves are not counted). nanoGPT estimates its
validation loss from random batches; dlhistory reads the whole validation split.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dlhistory
from dlhistory.hardware import cpu_has_bf16
from dlhistory.records import read_jsonl
from dlhistory.report.tables import format_table
from dlhistory.tools import use_threads

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe

TARGET = 1.886
RECIPE = {"model.layers": 4, "model.heads": 4, "model.d_model": 128, "model.dropout": 0.0,
          "data.block_size": 64, "algorithm.batch_size": 12, "algorithm.lr": 1e-3, "algorithm.min_lr": 1e-4,
          "algorithm.warmup_steps": 100, "algorithm.beta2": 0.99, "algorithm.optimizer": "adamw"}
TOKENS_PER_STEP = RECIPE["algorithm.batch_size"] * RECIPE["data.block_size"]
FASTEST = {"algorithm.optimizer": "muon", "algorithm.ns_steps": 4, "algorithm.lr": 5e-3,
           "algorithm.warmup_steps": 50, "algorithm.tokens": 800 * TOKENS_PER_STEP}
"""The fastest change to the reference's training found so far, the model and its data unchanged:
Muon on the hidden matrices with four Newton-Schulz steps, lr 5e-3 after 50 warm-up steps, and a
cosine schedule 800 steps long instead of 2,000. Found in single exploratory runs on a 2-core Xeon,
the step read on validation (every 50 steps for 2,000-step runs, every 20 for shorter ones):
AdamW at lr 3e-3 reached 1.886 at step 1,299 (lr 1e-3: not within 2,000 steps; a 1,000-step
schedule: not at all); Muon on the 2,000-step schedule at step 699, at lr 3e-3 and 5e-3 alike and
with four Newton-Schulz steps instead of five (ReLU^2: step 749; batch 24: step 449, 1.3x the
tokens). Shorter schedules at lr 3e-3: step 659 for 1,000 and 800 steps. At lr 5e-3, warm-up 50 and
800 steps: step 559 for seeds 0 and 1 (val 1.776 and 1.791 at the end); three Newton-Schulz steps
there: 659 and 719 (at lr 3e-3 it never reached 1.886); a 600-step schedule: 539 and 559, but its
runs end at 1.871-1.874, too close to the target to rely on. Muon orthogonalises in float32: in
bfloat16, as torch.optim.Muon does, a step took 2.4x longer on a CPU without native bf16."""


def train(runs: Path, iterations: int, precision: str, evals: int, peak: float, seed: int = 0,
          **changes) -> dict:
    """One dlhistory run of the recipe; its result with the seconds to TARGET and its model FLOP
    utilisation: achieved training FLOP/s over ``peak``, the machine's measured matmul GFLOP/s.
    ``evals`` is the evaluations per 2,000 steps, so shorter schedules keep the same resolution."""
    overrides = {**RECIPE, "algorithm.tokens": iterations * TOKENS_PER_STEP, **changes}
    steps = overrides["algorithm.tokens"] // TOKENS_PER_STEP
    result = dlhistory.run("gpt", preset="cpu", seed=seed, runs_dir=str(runs), precision=precision,
                           evals=max(1, evals * steps // 2000), progress=False, overrides=overrides)
    curve = [r for r in read_jsonl(Path(result["run_dir"]) / "metrics.jsonl") if r["split"] == "val"]
    reached = next((r["train_seconds"] for r in curve if r["loss"] <= TARGET), None)
    flops = result["train_flops"]
    return {"precision": result["precision"], "val loss": round(result["val_loss"], 4),
            "tokens/s": round(result["steps"] * TOKENS_PER_STEP / result["train_seconds"]),
            "GFLOP/s": round(flops / result["train_seconds"] / 1e9, 1),
            "MFU": f"{flops / result['train_seconds'] / 1e9 / peak:.1%}",
            "seconds to 1.886": reached and round(reached, 1),
            "train seconds": round(result["train_seconds"], 1)}


def nanogpt(directory: Path, iterations: int, text: Path, python: str) -> dict:
    """nanoGPT's README CPU recipe, run by its own train.py on a copy of its folder."""
    work = Path(tempfile.mkdtemp()) / "nanoGPT"
    shutil.copytree(directory, work, ignore=shutil.ignore_patterns(".git", "out*"))
    data = work / "data" / "shakespeare_char"
    shutil.copy(text, data / "input.txt")  # its prepare.py downloads only when the file is missing
    subprocess.run([python, "prepare.py"], cwd=data, check=True, capture_output=True)
    command = [python, "train.py", "config/train_shakespeare_char.py", "--device=cpu",
               "--compile=False", "--eval_iters=20", "--log_interval=100", "--block_size=64",
               "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--dropout=0.0",
               f"--max_iters={iterations}", f"--lr_decay_iters={iterations}",
               "--always_save_checkpoint=False", f"--eval_interval={iterations // 10}"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    losses = [float(line.split("val loss ")[1]) for line in done.stdout.splitlines() if "val loss " in line]
    return {"wall seconds": round(wall, 1), "val loss": losses[-1] if losses else None,
            "returncode": done.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--evals", type=int, default=100, help="evaluations per 2,000 steps (resolution)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the fastest recipe (0, 1, ...)")
    parser.add_argument("--nanogpt", type=Path, help="a clone of nanoGPT to run beside dlhistory")
    parser.add_argument("--peer-python", default=sys.executable, help="the Python that runs nanoGPT")
    args = parser.parse_args()
    use_threads()  # the runs' threads (DLHISTORY_THREADS), for the peak too
    machine = describe()
    print(json.dumps(machine))
    # MFU against the better of the two measured peaks: a CPU without bf16 instructions emulates it.
    peak = max(machine["bf16 matmul GFLOP/s"], machine["fp32 matmul GFLOP/s"])
    runs = Path(tempfile.mkdtemp())
    # nanoGPT runs before and after ours, and its mean is the reference: on a shared virtual machine
    # the same run's wall time moved by a third between sessions, and may drift within one.
    text = shakespeare_text() if args.nanogpt else None  # fetched and verified once, for both runs
    peer = [nanogpt(args.nanogpt, args.iterations, text, args.peer_python)] if args.nanogpt else []
    rows = {"reference (fp32)": train(runs, args.iterations, "fp32", args.evals, peak)}
    precision = "bf16" if cpu_has_bf16() else "fp32"
    seeds = [train(runs, args.iterations, precision, args.evals, peak, seed=seed, **FASTEST)
             for seed in range(args.seeds)]
    rows |= {f"fastest (Muon x4, lr 5e-3, 800 steps), seed {seed}": row for seed, row in enumerate(seeds)}
    keys = list(next(iter(rows.values())))
    print(format_table(["recipe", *keys], [[name, *(str(r[k]) for k in keys)] for name, r in rows.items()]))
    reference = rows["reference (fp32)"]["seconds to 1.886"]
    fastest = [r["seconds to 1.886"] for r in seeds]
    # A seed that never reaches the target has no time: the mean is then not defined, and says so.
    mean = sum(fastest) / len(fastest) if fastest and None not in fastest else None
    print(f"fastest recipe's seconds to {TARGET} over {args.seeds} seeds: {fastest}, mean {mean}")
    if reference and mean:
        print(f"fastest mean: {mean / reference:.2f}x the reference's time to {TARGET}")
    if args.nanogpt:
        peer.append(nanogpt(args.nanogpt, args.iterations, text, args.peer_python))
        print(f"nanoGPT before ours: {peer[0]}")
        print(f"nanoGPT after ours: {peer[1]}")
        if mean and all(p["returncode"] == 0 for p in peer):
            wall = sum(p["wall seconds"] for p in peer) / len(peer)
            print(f"dlhistory's fastest mean time to {TARGET}: {mean / wall:.2f}x nanoGPT's mean wall "
                  "time for the whole recipe (goal: <= 0.5)")


def shakespeare_text() -> Path:
    """The verified Tiny Shakespeare file dlhistory trains on, for nanoGPT's prepare.py."""
    from dlhistory.data.download import fetch
    from dlhistory.data.shakespeare import FILE

    return fetch(FILE)


if __name__ == "__main__":
    main()
