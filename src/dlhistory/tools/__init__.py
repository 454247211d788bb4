"""The milestones' own subcommands (``translate``, ``play``, ...): they use finished runs and never
change what a run computes, so they are not part of any run's code version."""

import os


def use_threads() -> None:
    """Torch threads as a run has them: ``DLHISTORY_THREADS`` where set. Decoding one token at a time
    is many tiny operations, and on a busy machine every extra OpenMP thread spins waiting for a core
    (a sample took 15 s with two threads beside another process, 0.3 s with one)."""
    import torch

    if os.environ.get("DLHISTORY_THREADS"):
        torch.set_num_threads(int(os.environ["DLHISTORY_THREADS"]))
