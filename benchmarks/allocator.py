"""System time by memory allocator: the same commands with glibc's malloc, with tcmalloc (what the
command line preloads, ``dlhistory/allocator.py``) and with jemalloc where installed.

    python benchmarks/allocator.py                          # translate 200 test sentences, beam 5
    python benchmarks/allocator.py --runs-dir RUNS -- sample gpt --tokens 2000

Each command runs once per allocator, one after another in this process's children; it prints wall
time, user and system CPU seconds, the system share of CPU time and each allocator's wall time as a
ratio against glibc's measured in the same run, plus the machine. The translation needs a finished
transformer run in ``--runs-dir`` (``dlhistory run transformer`` makes one); outputs are compared,
since an allocator must not change them.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import line

from dlhistory.allocator import find
from dlhistory.data.download import fetch
from dlhistory.data.multi30k import FILES, SPLITS
from dlhistory.report.tables import format_table

JEMALLOC = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2")


def settings() -> dict[str, dict[str, str]]:
    """Allocator name -> the environment that selects it (absent libraries left out)."""
    found = {"glibc": {"DLHISTORY_ALLOCATOR": "system"}}
    if find():
        found["tcmalloc (preloaded)"] = {}
    jemalloc = next((p for p in JEMALLOC if Path(p).is_file()), None)
    if jemalloc:
        found["jemalloc"] = {"DLHISTORY_ALLOCATOR": "system", "LD_PRELOAD": jemalloc}
    return found


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall, user, system) seconds of one run of ``dlhistory COMMAND``, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dlhistory", *command], capture_output=True, text=True,
                          env={**os.environ, **env}, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, done.stdout


def times(wall: float, user: float, system: float, reference: float) -> list[str]:
    """One table row's measurements: wall, user and system seconds, system share, wall vs reference."""
    return [f"{wall:.1f}", f"{user:.1f}", f"{system:.1f}", f"{system / (user + system):.1%}",
            f"{wall / reference:.2f}x"]


def test_sentences(n: int) -> Path:
    path = fetch(FILES[f"{SPLITS['test']}.de.gz"])
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(n)]
    out = Path(tempfile.mkdtemp()) / "test.de"
    out.write_text("".join(lines), encoding="utf-8")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--sentences", type=int, default=200)
    p.add_argument("command", nargs="*", help="a dlhistory command instead of the translation")
    args = p.parse_args()
    command = args.command or ["translate", "transformer", "--file", str(test_sentences(args.sentences))]
    command += ["--runs-dir", args.runs_dir] if "--runs-dir" not in command else []
    rows, outputs, reference = [], set(), None
    for name, env in settings().items():
        wall, user, system, output = measure(command, env)
        reference = reference or wall
        outputs.add(output)
        rows.append([name, *times(wall, user, system, reference)])
    print(f"dlhistory {' '.join(command)}")
    print(format_table(["allocator", "wall s", "user s", "system s", "system share", "wall vs glibc"], rows))
    print("outputs identical" if len(outputs) == 1 else "OUTPUTS DIFFER between allocators")
    print(line())


if __name__ == "__main__":
    main()
