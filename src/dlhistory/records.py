"""What a run leaves on disk: its directory, JSON records, metrics.jsonl, TensorBoard events, provenance.

Two runs never share a directory (``mkdir`` is atomic), JSON is written atomically, and a resumed run
drops the metrics records written after the checkpoint it continues from.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from .errors import UsageError


def new_run_dir(runs_dir: str, milestone: str, variant: str, preset: str, seed: int, label: str = "") -> Path:
    """A fresh ``runs/<milestone>/<variant>/<run-id>``; two runs never share one (mkdir is atomic)."""
    parent = Path(runs_dir) / milestone / variant
    parent.mkdir(parents=True, exist_ok=True)
    label = f"-{label}" if label else ""
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}{label}-s{seed}"
    for i in range(1000):
        path = parent / (stem if i == 0 else f"{stem}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {parent}")


def find_run(runs_dir: str, milestone: str, variant: str, which: str) -> Path:
    """Resolve ``--resume``: a run directory, or 'latest' of this milestone and variant."""
    if which != "latest":
        path = Path(which)
        if not (path / "config.json").exists():
            raise UsageError(f"--resume {which}: not a run directory (no config.json there)")
        return path
    runs = runs_of(runs_dir, milestone, variant)
    if not runs:
        raise UsageError(f"--resume latest: no runs of {milestone}/{variant} under {runs_dir}")
    return runs[-1]


def runs_of(runs_dir: str, milestone: str, variant: str) -> list[Path]:
    """The run directories of a milestone's variant, oldest first (by their config.json's time)."""
    configs = (Path(runs_dir) / milestone / variant).glob("*/config.json")
    return [p.parent for p in sorted(configs, key=lambda p: p.stat().st_mtime)]


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    import numpy

    from . import __version__

    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
             "dlhistory": __version__}
    with contextlib.suppress(ImportError):
        import sklearn

        found["scikit-learn"] = sklearn.__version__
    return found


def git_commit() -> str:
    """The commit of the source tree this package runs from ('+dirty' when it has local changes)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("+dirty" if dirty else "")) if sha else "unknown"


class Logger:
    """metrics.jsonl plus TensorBoard events, written by the main process only."""

    def __init__(self, run_dir: Path | None, resume_step: int | None):
        self.run_dir = run_dir
        self.tb = None
        if run_dir is None:
            return
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            # Drop records written after the checkpoint we resume from: they will be written again.
            kept = [r for r in read_jsonl(self.path)
                    if isinstance(r.get("step"), int) and r["step"] <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)
        except ImportError:  # tensorboard is a dependency, but a run should not die for lack of it
            self.tb = None

    def log(self, step: int, split: str, metrics: dict[str, float]) -> None:
        if self.run_dir is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "split": split, **metrics}) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file; a line cut short by an interruption is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
