"""The pool: several milestones' runs in one set of workers, where one milestone's failure stops only its
own runs."""

from __future__ import annotations

import pytest

from dlhistory import catalogue, pool
from dlhistory.errors import DataError
from dlhistory.runner import RunOptions


def _batches(tmp_path) -> list[pool.Batch]:
    return [pool.Batch(catalogue.get(key), [RunOptions(preset="smoke", seed=s, runs_dir=str(tmp_path))
                                            for s in range(3)])
            for key in ("alexnet", "resnet")]


@pytest.fixture
def first_alexnet_run_lacks_data(monkeypatch):
    started = []

    def fake_run(milestone, options):
        started.append((milestone.key, options.seed))
        if milestone.key == "alexnet":
            raise DataError("fashion-mnist not found")
        return {"status": "complete", "seed": options.seed}

    monkeypatch.setattr(pool, "run_point", fake_run)
    return started


def test_a_milestone_whose_run_fails_stops_its_own_runs_only(tmp_path, first_alexnet_run_lacks_data):
    out = list(pool.execute_all(_batches(tmp_path), workers=1, log=lambda _: None, reuse=False))
    assert first_alexnet_run_lacks_data == [("alexnet", 0), ("resnet", 0), ("resnet", 1), ("resnet", 2)]
    assert isinstance(out[0][2], DataError) and out[0][:2] == (0, 0)
    assert [(k, i, r["seed"]) for k, i, r in out[1:]] == [(1, 0, 0), (1, 1, 1), (1, 2, 2)]


def test_one_milestones_execute_raises_what_its_run_raised(tmp_path, first_alexnet_run_lacks_data):
    batch = _batches(tmp_path)[0]
    with pytest.raises(DataError, match="fashion-mnist"):
        list(pool.execute(batch.milestone, batch.runs, workers=1, log=lambda _: None, reuse=False))


def test_a_run_two_milestones_need_runs_once_and_both_get_its_result(tmp_path, monkeypatch):
    calls = []

    def fake_run(milestone, options):
        calls.append((milestone.key, options.variant))
        return {"made by": milestone.key}

    monkeypatch.setattr(pool, "run_point", fake_run)
    seq2seq, transformer = catalogue.get("seq2seq"), catalogue.get("transformer")
    rnn = RunOptions(preset="smoke", variant="attention", seed=0, runs_dir=str(tmp_path))
    ours = RunOptions(preset="smoke", variant="transformer", seed=0, runs_dir=str(tmp_path))
    batches = [pool.Batch(seq2seq, [rnn]),
               pool.Batch(transformer, [ours, rnn], owners=[transformer, seq2seq])]  # its borrowed baseline
    out = list(pool.execute_all(batches, workers=1, log=lambda _: None, reuse=False))
    assert calls == [("seq2seq", "attention"), ("transformer", "transformer")]
    assert sorted((k, i, r["made by"]) for k, i, r in out) == [(0, 0, "seq2seq"), (1, 0, "transformer"),
                                                                (1, 1, "seq2seq")]


def test_a_review_goes_on_past_a_failing_milestone_and_raises_its_error_at_the_end(tmp_path, monkeypatch):
    """A bug in one milestone's run (here a RuntimeError) stops that milestone only: the next
    milestone's runs all start, both are written to the review's summary, and the error is raised
    last, so the exit code still says something failed."""
    from dlhistory import comparison

    started = []

    def fake_run(milestone, options):
        started.append((milestone.key, options.seed))
        if milestone.key == "alexnet":
            raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
        raise DataError("fashion-mnist not found")

    monkeypatch.setattr(pool, "run_point", fake_run)
    milestones = (catalogue.get("alexnet"), catalogue.get("resnet"))
    with pytest.raises(RuntimeError, match="scatter"):
        comparison.review(milestones, preset="smoke", seeds=2, log=lambda _: None,
                          out_dir=tmp_path / "review", workers=1, reuse=False, runs_dir=str(tmp_path))
    assert ("resnet", 0) in started
    summary = (tmp_path / "review" / "summary.json").read_text()
    assert "a run failed: RuntimeError" in summary and "fashion-mnist not found" in summary
