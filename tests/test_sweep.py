"""The general sweep: grid parsing, the product of axes, parallel workers and resuming."""

from __future__ import annotations

import pytest

from dlhistory import catalogue
from dlhistory.cli import main
from dlhistory.errors import UsageError
from dlhistory.grid import Axis, jobs, parse_axis, run_sweep, summarize
from dlhistory.records import read_jsonl


def test_log_grid_is_log_spaced_and_includes_both_ends():
    axis = parse_axis("algorithm.lr=1e-4:1e-1:7")
    assert axis.log and axis.key == "algorithm.lr"
    assert [float(v) for v in axis.values] == pytest.approx([1e-4 * 10 ** (i / 2) for i in range(7)])


def test_lists_and_fixed_values():
    assert parse_axis("model.n=1,3,5") == Axis("model.n", ("1", "3", "5"))
    assert parse_axis("algorithm.schedule=constant") == Axis("algorithm.schedule", ("constant",))


@pytest.mark.parametrize("item", ["algorithm.lr", "algorithm.lr=", "algorithm.lr=0:1:5",
                                  "algorithm.lr=1e-3:1:1", "algorithm.lr=a:b:3"])
def test_bad_grid_items_are_usage_errors(item):
    with pytest.raises(UsageError, match="sweep item"):
        parse_axis(item)


def test_jobs_are_the_product_of_axes_variants_and_seeds():
    axes = [parse_axis("algorithm.lr=0.1,0.01"), parse_axis("model.n=1,3,5")]
    grid = jobs(axes, ["residual", "plain"], seeds=2)
    assert len(grid) == 2 * 3 * 2 * 2
    assert len({j.key for j in grid}) == len(grid)


def test_summarize_means_over_seeds():
    axes = [Axis("algorithm.lr", ("0.1", "0.01"))]
    records = [{"variant": "v", "algorithm.lr": "0.1", "val_accuracy": a} for a in (0.5, 0.7)]
    (row,) = summarize(axes, records, "val_accuracy")
    assert row["val_accuracy_mean"] == pytest.approx(0.6) and row["seeds"] == 2


def test_sweep_runs_in_parallel_and_resumes(run_env, tmp_path, capsys):
    milestone = catalogue.get("resnet")
    items = ["algorithm.lr=0.01,0.1", "model.n=1"]
    out, _, records = run_sweep(milestone, items, preset="smoke", seeds=1, workers=2,
                                   runs_dir=str(tmp_path), evals=1, log=lambda _: None)
    assert len(records) == 2 and len(read_jsonl(out / "results.jsonl")) == 2
    runs = list((tmp_path / "resnet" / "residual").iterdir())
    assert len(runs) == 2
    # The same command again finds both points done and runs nothing.
    again = run_sweep(milestone, items, preset="smoke", seeds=1, workers=2, runs_dir=str(tmp_path),
                      evals=1, log=lambda _: None)[2]
    assert len(again) == 2 and len(list((tmp_path / "resnet" / "residual").iterdir())) == 2
    # Through the CLI (also finished already): a table, a CSV and a figure.
    code = main(["sweep", "resnet", "--preset", "smoke", *items, "--runs-dir", str(tmp_path), "--evals", "1"])
    assert code == 0
    assert "train_loss_mean" in capsys.readouterr().out
    assert (out / "results.csv").exists() and (out / "sweep.png").exists()


def test_sweep_without_items_exits_2(capsys):
    assert main(["sweep", "resnet"]) == 2
    assert "grid item" in capsys.readouterr().err
