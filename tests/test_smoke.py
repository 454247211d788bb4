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
        value = result[f"{split}_accuracy"]
        assert math.isfinite(value) and 0.0 <= value <= 1.0
    saved = json.loads((Path(result["run_dir"]) / "result.json").read_text())
    assert saved["variant"] == variant and saved["preset"] == "smoke"
    assert saved["parameters"] > 0
