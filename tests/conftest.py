"""Shared pytest fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The networks that measure samples (the GAN's Fashion-MNIST classifier, about a minute to train) are
# kept once for every test, whatever cache a test empties for itself; the file names carry versions.
os.environ.setdefault("DLHISTORY_MEASURES", str(Path(tempfile.gettempdir()) / "dlhistory-test-measures"))

if os.environ.get("PYTEST_XDIST_WORKER"):  # make test: one worker per core, so one thread per worker
    import torch

    torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def run_env_vars(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for fast, offline runs on the real Fashion-MNIST in ``shared_data``.

    ``DLHISTORY_THREADS=1``: on a 2-core machine shared with other processes, torch's default of one
    thread per core makes a smoke run about 30x slower (threads spin waiting for each other).
    An empty cache and ``DLHISTORY_OFFLINE=1`` keep tests from reading ``~/.cache`` or the network.
    """
    if not (shared_data / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not found under {shared_data}")
    return {"DLHISTORY_DATA": str(shared_data), "DLHISTORY_CACHE": str(tmp_path_factory.mktemp("cache")),
            "DLHISTORY_OFFLINE": "1", "DLHISTORY_THREADS": "1"}


@pytest.fixture
def run_env(run_env_vars: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """Apply :func:`run_env_vars` for one test, and restore torch's thread count after it."""
    import torch

    threads = torch.get_num_threads()
    for name, value in run_env_vars.items():
        monkeypatch.setenv(name, value)
    yield run_env_vars
    torch.set_num_threads(threads)


def offline_dataset(shared_data: Path, dataset: str, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """Runs read ``dataset`` from ``shared_data`` (skip without it), offline, with an empty cache, on
    one torch thread."""
    if not (shared_data / dataset).is_dir():
        pytest.skip(f"{dataset} not found under {shared_data}")
    for name, value in {"DLHISTORY_DATA": str(shared_data), "DLHISTORY_CACHE": str(cache),
                        "DLHISTORY_OFFLINE": "1", "DLHISTORY_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)
    return shared_data
