"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public datasets for tests (``$DLHISTORY_TEST_DATA`` or ``../shared/data``).

    The project never needs it to run, so tests that use it skip, not fail, when it is absent.
    """
    env = os.environ.get("DLHISTORY_TEST_DATA")
    # tests/conftest.py -> parents[1] is the repository, and shared/ lies beside the repository.
    path = Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (set DLHISTORY_TEST_DATA)")
    return path
