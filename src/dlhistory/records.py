"""What a run leaves on disk: its directory, JSON records, metrics.jsonl, TensorBoard events, provenance.

Two runs never share a directory (``mkdir`` is atomic) and one process at a time holds it (a lock),
every file is written atomically (:func:`atomic_write`), and a resumed run drops the metrics records
written after the checkpoint it continues from. A run's *identity* is the hash of what decides its
result, so a finished run can be found again and reused instead of repeated.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

# The runner imports code_version from here; its source, and so every run's code version, stays as is.
from .codeversion import code_version  # noqa: F401
from .config import shorten
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


def find_run(runs_dir: str, milestone: str, variant: str, which: str, finished: bool = False,
             preset: str | None = None) -> Path:
    """A run directory: ``which`` itself, or for 'latest' the newest run of this milestone and variant
    (with ``finished``, the newest that completed and wrote its networks; with ``preset``, of that preset).
    The one run finder: --resume, translate and play all use it."""
    if which != "latest":
        path = Path(which)
        run_config_of(path)
        if finished and not is_finished(path):
            raise UsageError(f"{shorten(which)}: this run did not complete; finish it with --resume {which}")
        return path
    runs = [p for p in runs_of(runs_dir, milestone, variant)
            if (not finished or is_finished(p))
            and (preset is None or json.loads((p / "config.json").read_text()).get("preset") == preset)]
    if not runs:
        what = f"{'finished ' if finished else ''}{preset + ' ' if preset else ''}runs"
        raise UsageError(f"no {what} of {milestone}/{variant} under {runs_dir}; train one with "
                         f"'dlhistory run {milestone}{' --preset ' + preset if preset else ''}'")
    return runs[-1]


RUN_KEYS = {"milestone", "variant", "preset", "seed", "overrides", "precision"}


def run_config_of(path: Path) -> dict[str, Any]:
    """A run directory's config.json; a one-line error where ``path`` is not a run directory."""
    said = shorten(str(path))
    try:
        config = json.loads((path / "config.json").read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{said}: not a run directory (no config.json there)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{said}: its config.json is unreadable ({type(e).__name__})") from None
    if not isinstance(config, dict) or not config.keys() >= RUN_KEYS:
        raise UsageError(f"{said}: its config.json is not a dlhistory run's")
    return config


def runs_of(runs_dir: str, milestone: str, variant: str) -> list[Path]:
    """The run directories of a milestone's variant, oldest first (by their config.json's time)."""
    configs = (Path(runs_dir) / milestone / variant).glob("*/config.json")
    return [p.parent for p in sorted(configs, key=lambda p: p.stat().st_mtime)]


def read_result(run_dir: Path) -> dict | None:
    """A run's result.json, or None while it has none (or an unreadable one)."""
    try:
        return json.loads((run_dir / "result.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def result_status(run_dir: Path) -> str | None:
    """'complete' or 'diverged' for a run that ended, None for one that is running or was interrupted."""
    result = read_result(run_dir)
    return None if result is None else result.get("status")


def is_finished(run_dir: Path) -> bool:
    """The run completed: its result says so (a diverged or interrupted run has not)."""
    result = read_result(run_dir)
    return result is not None and result.get("status") == "complete"


def runs_by_identity(runs_dir: str, milestone: str, variant: str) -> dict[str, list[Path]]:
    """The runs of a milestone's variant grouped by identity, newest first: read once, then looked up
    for every run an experiment needs."""
    found: dict[str, list[Path]] = {}
    for run_dir in reversed(runs_of(runs_dir, milestone, variant)):
        try:
            wanted = json.loads((run_dir / "config.json").read_text()).get("identity")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        found.setdefault(wanted, []).append(run_dir)
    return found


def find_finished(candidates: list[Path]) -> dict | None:
    """The result of the newest of ``candidates`` (runs of one identity, newest first) that ran to its
    end (completed, or diverged: that is a result too), or None. An interrupted run is never used."""
    for run_dir in candidates:
        result = read_result(run_dir)
        if result is not None and result.get("status") in ("complete", "diverged"):
            return {**result, "run_dir": str(run_dir), "reused": True}
    return None


def find_unfinished(candidates: list[Path]) -> Path | None:
    """The newest of ``candidates`` that was interrupted after a checkpoint and that no process holds
    now: the run to continue (``--resume``) instead of starting it again."""
    for run_dir in candidates:
        checkpointed = (run_dir / "checkpoint.safetensors").exists()
        if read_result(run_dir) is None and checkpointed and not held(run_dir):
            return run_dir
    return None


def identity(config: dict[str, Any]) -> str:
    """A stable hash of a JSON-able dict (key order does not matter)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def hold(directory: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``directory`` for this process (an advisory lock the kernel drops if the process dies).

    Another process that wants it fails with a one-line error naming the holder, or, with ``wait``,
    waits for it (two workers that need the same pre-training). Temporary files that a process killed
    mid-write left there (``.checkpoint.safetensors.<pid>.part``) are removed on taking it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise UsageError(f"{directory} is in use by process {holder}; wait for it to finish "
                             "(or stop it) before running it again") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        for stale in directory.glob(".*.part"):  # a writer killed mid-write left it; no one writes now
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def held(directory: Path) -> bool:
    """Whether some process holds ``directory`` now (see :func:`hold`); takes and changes nothing."""
    try:
        with open(directory / ".lock") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused while anyone holds it exclusively
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except FileNotFoundError:
        pass
    return False


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` a file beside ``path``, flush it to disk and rename it over ``path``: a reader (or a
    crash) sees the old file or the new one, never half of one, and a failed write leaves nothing. A
    full disk or a refused write is a one-line error that says the old file is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as e:
        reason = _storage_failure(e)
        if reason is None:
            raise
        kept = "the previous one is kept" if path.exists() else "nothing was written"
        raise UsageError(f"cannot write {shorten(str(path), 300)} ({reason}); {kept}; free some space "
                         "(or give a writable place) and run the command again") from None
    finally:
        tmp.unlink(missing_ok=True)


STORAGE_ERRORS = {errno.ENOSPC: "StorageFull", errno.EDQUOT: "QuotaExceeded",
                  errno.EROFS: "ReadOnlyFilesystem", errno.EACCES: "PermissionDenied",
                  errno.EPERM: "PermissionDenied"}
"""The file system's refusals (by errno, and by the names Rust's io::ErrorKind gives them)."""


def _storage_failure(error: Exception) -> str | None:
    """Why the file system refused a write, or None when ``error`` is something else (a dropped
    connection while downloading, a bug). Libraries that write through Rust (safetensors) wrap the OS
    error in their own type and message."""
    if isinstance(error, OSError):
        return os.strerror(error.errno) if error.errno in STORAGE_ERRORS else None
    text = str(error)
    for code, kind in STORAGE_ERRORS.items():
        if f"code: {code}," in text or kind in text:
            return os.strerror(code)
    return None


def writable_folder(path: str, option: str) -> Path:
    """``path`` is a folder this process can write in, or can be made one (nothing is created here)."""
    folder = Path(path).absolute()
    try:
        existing = next(p for p in (folder, *folder.parents) if p.exists())
    except OSError as e:  # a name too long for the file system, ...
        raise UsageError(f"{option} {shorten(path)}: not a usable path ({e.strerror})") from None
    if not existing.is_dir():
        raise UsageError(f"{option} {shorten(path)}: {shorten(str(existing))} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or str(existing).startswith(("/proc", "/sys")):
        raise UsageError(f"{option} {shorten(path)}: this user cannot write in {shorten(str(existing))}")
    return folder


def writable_file(path: str, option: str, suffix: str) -> Path:
    """``path`` names a ``suffix`` file (``.png``, ``.gif``) that this process can write: checked before
    any work, so a long computation does not end in a traceback about its output."""
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{option} {shorten(path)}: a folder; give a file name ending in {suffix}")
    if file.suffix.lower() != suffix:
        raise UsageError(f"{option} {shorten(path)}: the file must end in {suffix}")
    writable_folder(str(file.absolute().parent), option)
    return file


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def versions() -> dict[str, str]:
    import numpy

    from . import __version__

    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
             "dlhistory": __version__, "cpu": cpu_model()}
    with contextlib.suppress(ImportError):
        import sklearn

        found["scikit-learn"] = sklearn.__version__
    return found


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform says: runs on machines
    that differ by 2x in speed say which one made them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


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
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
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
