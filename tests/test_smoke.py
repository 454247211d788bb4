"""Every milestone and every baseline runs end to end at the smoke preset (seconds each)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import dlhistory
from dlhistory.catalogue import CATALOGUE

CASES = [(m.key, v) for m in CATALOGUE for v in m.variants]


@pytest.mark.parametrize(("milestone", "variant"), CASES, ids=[f"{m}-{v}" for m, v in CASES])
def test_smoke_run(run_env, tmp_path, milestone, variant):
    result = dlhistory.run(milestone, preset="smoke", variant=variant, runs_dir=str(tmp_path),
                           progress=False, evals=2)
    assert result["status"] == "complete"
    for split in ("train", "val", "test"):
        metrics = {k: v for k, v in result.items() if k.startswith(f"{split}_") and k != "train_seconds"}
        # Every dataset has training and validation splits; Tiny Shakespeare has no test split.
        assert metrics or split == "test", split
        assert all(math.isfinite(v) for v in metrics.values()), metrics
        assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k.endswith("accuracy"))
        assert all(0.0 <= v <= 100.0 for k, v in metrics.items() if k.endswith("bleu"))
    saved = json.loads((Path(result["run_dir"]) / "result.json").read_text())
    assert saved["variant"] == variant and saved["preset"] == "smoke"
    assert saved["parameters"] > 0 or saved["steps"] == 0  # only a policy that never learns (random) has none
