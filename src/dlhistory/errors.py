"""Errors a user can fix. The CLI prints their message on one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(Exception):
    """Bad input from the user: an unknown name, a wrong type, a missing file.

    The message is one line that names what is wrong and how to fix it.
    """

    exit_code = 2


class DataError(UsageError):
    """A dataset file is missing, partial or corrupt; the message says what to get and where to put it."""


def did_you_mean(name: str, valid: Iterable[str], n: int = 3) -> str:
    """' (did you mean: a, b?)' for the closest valid names, or '' when none is close."""
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=n, cutoff=0.5)
    if not close:
        return f" (valid: {', '.join(sorted(valid)[:8])})" if valid else ""
    return f" (did you mean: {', '.join(close)}?)"
