"""tcmalloc for the command line, preloaded as PyTorch's CPU performance guide recommends.

glibc's malloc hands large freed blocks back to the kernel and faults them in again on the next
allocation, page by page: beam-search translation of 200 test sentences spent 5.3 s of its 19.7 s of
CPU time in the kernel with it (27%), 1.5 s of 16.0 s (10%) with tcmalloc preloaded, with the same
output (``benchmarks/allocator.py`` measures it on your machine; jemalloc with its defaults was worse,
14.5 s). The command line re-executes itself once with the library in ``LD_PRELOAD`` when it finds
one (Debian's ``libtcmalloc-minimal4``, which the install script adds where apt-get is available);
where it is absent, already loaded, or ``DLHISTORY_ALLOCATOR=system`` is set, nothing changes. An
allocator cannot change what a run computes, only how fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
FOLDERS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
           "/usr/local/lib")
MARK = "DLHISTORY_PRELOADED"
"""Set in the re-executed process, so that it never re-executes again (even if the preload failed)."""


def find() -> str | None:
    """The path of a tcmalloc library on this machine, or None."""
    for folder in FOLDERS:
        for name in NAMES:
            if (Path(folder) / name).is_file():
                return str(Path(folder) / name)
    return None


def preload(argv: list[str]) -> None:
    """Re-execute ``python -m dlhistory ARGV`` with tcmalloc preloaded, once, where it helps and exists;
    return (and go on in this process) otherwise."""
    env = os.environ
    if (not sys.platform.startswith("linux") or env.get("DLHISTORY_ALLOCATOR", "") == "system"
            or env.get(MARK) or "malloc" in env.get("LD_PRELOAD", "")):
        return
    library = find()
    if library is None:
        return
    preloads = ":".join(p for p in (library, env.get("LD_PRELOAD", "")) if p)
    try:
        os.execve(sys.executable, [sys.executable, "-m", "dlhistory", *argv],
                  {**env, "LD_PRELOAD": preloads, MARK: library})
    except OSError:
        return  # could not re-execute: the same command, with glibc's malloc
