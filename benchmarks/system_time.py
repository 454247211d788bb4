"""System time of every workload: a slice of each milestone's cpu-preset training, then the tools.

    python benchmarks/system_time.py                      # all ten milestones and three tools (~15 min)
    python benchmarks/system_time.py alexnet gpt          # some milestones (and the tools they feed)

Each milestone trains its cpu recipe at seed 0 on a shorter budget (``SLICES``: about a tenth of the
run, its final evaluation and the start-up included), as a child process, once with glibc's malloc
and once with the allocator the command line preloads (tcmalloc, ``dlhistory/allocator.py``); then
``translate`` (the 1,000 test sentences), ``sample`` and ``generate`` use the slices' runs. It prints,
for each, user and system CPU seconds, the system share of CPU time (issue 18's target: under 10%) and
the wall time as a ratio against glibc's, measured in the same run, plus the machine. Set
``DLHISTORY_DATA`` as for the tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from allocator import measure, settings, test_sentences, times
from machine import line

from dlhistory.report.tables import format_table

SLICES: dict[str, list[str]] = {
    "alexnet": ["algorithm.epochs=0.5"],
    "dqn": ["algorithm.steps=20000"],
    "seq2seq": ["algorithm.flops=4e12"],
    "adam": ["algorithm.epochs=0.5"],
    "gan": ["algorithm.steps=300"],
    "resnet": ["algorithm.epochs=0.3"],
    "transformer": ["algorithm.flops=4e12"],
    "bert": ["algorithm.pretrain.steps=60", "algorithm.finetune.epochs=0.1",
             "algorithm.finetune.min_steps=20"],
    "gpt": ["algorithm.tokens=800000"],
    "simclr": ["algorithm.pretrain.steps=30"],
}
"""Milestone -> overrides of its cpu recipe that shorten its budget (nothing else)."""


def tools(runs_dir: str, milestones: list[str]) -> dict[str, list[str]]:
    """The inference commands whose milestone was trained above, on that slice's run."""
    commands = {
        "transformer": ["translate", "transformer", "--file", str(test_sentences(1000))],
        "gpt": ["sample", "gpt", "--tokens", "2000"],
        "gan": ["generate", "gan", "--n", "256", "--out", str(Path(runs_dir, "samples.png"))],
    }
    return {f"{c[0]} {m}": [*c, "--runs-dir", runs_dir] for m, c in commands.items() if m in milestones}


def workloads(runs_dir: str, milestones: list[str]) -> dict[str, list[str]]:
    runs = {f"run {m} (slice)": ["run", m, "--preset", "cpu", "--seed", "0", "--no-progress",
                                 "--runs-dir", runs_dir, *SLICES[m]] for m in milestones}
    return {**runs, **tools(runs_dir, milestones)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("milestones", nargs="*", help=f"some of {', '.join(SLICES)} (default: all)")
    args = p.parse_args()
    unknown = sorted(set(args.milestones) - set(SLICES))
    if unknown:
        p.error(f"unknown milestone {', '.join(unknown)}; choose from {', '.join(SLICES)}")
    milestones = args.milestones or list(SLICES)
    allocators = settings()
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for name, command in workloads(runs_dir, milestones).items():
            reference = None
            for allocator, env in allocators.items():  # glibc first: the reference
                wall, user, system, _ = measure(command, env)
                reference = reference or wall
                rows.append([name, allocator, *times(wall, user, system, reference)])
    print(format_table(["workload", "allocator", "wall s", "user s", "system s", "system share",
                        "wall vs glibc"], rows))
    print(line())


if __name__ == "__main__":
    main()
