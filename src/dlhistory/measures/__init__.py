"""How generated samples are measured: Fréchet distances, precision and recall, class coverage, in the
features of the standard Inception-v3 or of the project's own Fashion-MNIST classifier.

What the measures compute once per machine (the classifier's weights, the real images' Inception
features) is kept in :func:`measures_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path


def measures_dir() -> Path:
    """``$DLHISTORY_MEASURES``, or ``measures/`` in the cache (``$DLHISTORY_CACHE``, ~/.cache/dlhistory)."""
    from ..data.download import cache_dir

    env = os.environ.get("DLHISTORY_MEASURES")
    return Path(env).expanduser() if env else cache_dir() / "measures"
