"""The 2014 Adam milestone: its recipe, the good-band measure, the claim's judge and its figures.

The judge and the band are tested on synthetic learning-rate curves (no training); one smoke
comparison runs the whole experiment end to end in worker processes.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import dlhistory
from dlhistory.algorithms import optimizers
from dlhistory.algorithms.supervised import TrainingConfig, learning_rate
from dlhistory.comparison import Comparison, save
from dlhistory.errors import UsageError
from dlhistory.milestones import adam, alexnet
from dlhistory.milestones.adam import (
    FIGURE1_GRIDS,
    FIGURE1_OPTIMIZERS,
    LR_GRIDS,
    PaperModelConfig,
    figure1_choice,
    good_band,
    lr_label,
    paper_model,
    sensitivity,
)
from dlhistory.report.tables import review_rows
from dlhistory.runner import load_recipe

PNG = b"\x89PNG\r\n\x1a\n"
M = adam.MILESTONE


# ------------------------------------------------------------------------------------------------
# The recipe: only the algorithm changes, and it is the optimizer written from the paper.


def test_baselines_swap_only_the_algorithm_and_keep_the_budget():
    ours = M.recipe("cpu")
    for name in M.baselines:
        other = M.recipe("cpu", name)
        assert other.differs_from(ours) == ("algorithm",)
        assert other.algorithm.config.epochs == ours.algorithm.config.epochs
        assert other.algorithm.config.schedule == "constant"


def test_the_loss_is_alexnets_imported_by_name():
    assert M.recipe("cpu").loss is alexnet.LOSS


def test_defaults_are_the_papers():
    config = M.recipe("cpu").algorithm.config
    assert (config.lr, config.beta1, config.beta2, config.eps) == (1e-3, 0.9, 0.999, 1e-8)
    assert M.recipe("cpu", "sgd").algorithm.config.momentum == 0.0  # plain SGD
    assert M.recipe("cpu", "rmsprop").algorithm.config.rho == 0.9  # Tieleman & Hinton


@pytest.mark.parametrize(("variant", "rule"), [
    ("adam", adam.Adam), ("sgd", optimizers.SGD), ("sgd-nesterov", optimizers.SGD),
    ("adagrad", optimizers.AdaGrad), ("rmsprop", optimizers.RMSProp)])
def test_each_variant_trains_with_our_optimizer(run_env, variant, rule):
    from dlhistory.spec import Context

    recipe = M.recipe("smoke", variant)
    data = recipe.data(Context())
    procedure = recipe.algorithm(recipe.model(data), recipe.loss(), data, Context())
    assert type(procedure.optimizer) is rule


def test_paper_models():
    class Data:
        shape, num_classes = (1, 28, 28), 10

    logistic = paper_model(PaperModelConfig(architecture="logistic"), Data())
    assert sum(p.numel() for p in logistic.parameters()) == 784 * 10 + 10
    mlp = paper_model(PaperModelConfig(architecture="mlp", mlp=(20, 30)), Data())
    assert [m.out_features for m in mlp if isinstance(m, torch.nn.Linear)] == [20, 30, 10]
    cnn = paper_model(PaperModelConfig(), Data())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in cnn.modules())  # 2014: no batch norm
    for net in (logistic, mlp, cnn):
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_adam_hyperparameters_are_checked():
    with pytest.raises(UsageError, match="beta1"):
        load_recipe(M, "cpu", None, ("algorithm.beta1=1.0",))
    with pytest.raises(UsageError, match="unknown key"):
        load_recipe(M, "cpu", "sgd", ("algorithm.beta1=0.5",))  # SGD has no beta1


def test_inverse_square_root_schedule():
    config = TrainingConfig(lr=0.5, schedule="rsqrt")
    assert [learning_rate(config, s, 100) for s in (0, 3, 99)] == pytest.approx([0.5, 0.25, 0.05])


def test_every_grid_holds_the_default_rate_and_figure1_every_optimizer():
    for preset, grids in LR_GRIDS.items():
        assert any(math.isclose(lr, 1e-3) for lr in grids["adam"]), preset
        assert any(math.isclose(lr, 0.01) for lr in grids["sgd"]), preset
        if preset != "smoke":
            assert all(len(grid) >= 7 for grid in grids.values())
    names = [p.name for p in M.points("cpu")]
    assert len(names) == len(set(names))
    assert {p.variant for p in M.points("cpu") if "logistic" in p.label} == set(FIGURE1_OPTIMIZERS)


# ------------------------------------------------------------------------------------------------
# The good band


def test_band_edges_are_interpolated_in_log_lr():
    band = good_band([1e-3, 1e-2, 1e-1], [0.80, 0.90, 0.85])
    assert band.best_lr == 1e-2 and band.best == 0.90 and not band.censored
    # floor 0.89: a tenth of the way down to 0.80 on the left, a fifth down to 0.85 on the right
    assert band.low == pytest.approx(10 ** -2.1) and band.high == pytest.approx(10 ** -1.8)
    assert band.decades == pytest.approx(0.3)


def test_band_spans_neighbours_within_tolerance():
    band = good_band([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [0.5, 0.895, 0.9, 0.892, 0.5])
    assert band.low < 1e-3 and band.high > 1e-1 and band.decades > 2


def test_band_reaching_the_grid_end_is_censored():
    band = good_band([1e-3, 1e-2, 1e-1], [0.9, 0.899, 0.5])
    assert band.censored and band.low == 1e-3


def test_band_stops_at_a_diverged_rate_without_interpolating():
    band = good_band([1e-3, 1e-2, 1e-1], [0.5, 0.9, math.nan])
    assert band.high == 1e-2 and not band.censored
    assert band.high_bound == 1e-1  # it could reach as far as the diverged rate
    assert band.decades_at_most == pytest.approx(math.log10(1e-1 / band.low))


def test_a_censored_band_could_be_any_width():
    assert good_band([1e-3, 1e-2], [0.9, 0.5]).decades_at_most == math.inf


def test_band_when_everything_diverged():
    with pytest.raises(ValueError, match="diverged"):
        good_band([1e-3, 1e-2], [math.nan, math.nan])


# ------------------------------------------------------------------------------------------------
# The judge, on synthetic curves: accuracy falls off quadratically in log10(lr) from a peak.


def curve(peak_lr: float, width: float, lr: float, top: float = 0.9) -> float:
    return top - 0.04 * (math.log10(lr / peak_lr) / width) ** 2


def synthetic(adam_peak=1e-3, adam_width=1.0, sgd_peak=0.1, sgd_width=0.4, seeds=3,
              preset="cpu", diverge=()) -> dict[str, list[dict]]:
    results = {}
    for variant, peak, width in (("adam", adam_peak, adam_width), ("sgd", sgd_peak, sgd_width)):
        for lr in LR_GRIDS[preset][variant]:
            runs = [{"val_accuracy": curve(peak, width, lr) + 0.001 * s, "test_accuracy": 0.8}
                    for s in range(seeds)]
            if (variant, lr) in diverge:
                runs[0] = {"status": "diverged"}
            results[f"{variant} {lr_label(lr)}"] = runs
    for variant in FIGURE1_OPTIMIZERS:
        for i, lr in enumerate(FIGURE1_GRIDS[preset]):
            results[f"{variant} logistic {lr_label(lr)}"] = [{"train_loss": 1.0 + abs(i - 1)}] * seeds
    return results


def test_sensitivity_holds_for_a_wide_adam_and_a_narrow_sgd():
    verdict = sensitivity(M, "cpu", synthetic())
    assert verdict.holds, verdict.reason
    headers, rows = verdict.table
    assert [r[0] for r in rows] == ["sgd", "adam"]
    adam_row = dict(zip(headers, rows[1], strict=True))
    assert adam_row["best lr (val)"] == "0.001"
    assert adam_row["val at default"] == "90.10%"  # the mean of 90.0, 90.1 and 90.2


def test_sensitivity_fails_when_the_default_is_far_from_the_best():
    verdict = sensitivity(M, "cpu", synthetic(adam_peak=10 ** -4, adam_width=0.6))
    assert not verdict.holds
    assert "below its best (needs <= 1.00) NO" in verdict.reason


def test_sensitivity_fails_when_sgd_is_as_robust():
    verdict = sensitivity(M, "cpu", synthetic(sgd_width=1.0))
    assert not verdict.holds and "(needs less than Adam's) NO" in verdict.reason


def test_sensitivity_gives_sgd_the_benefit_of_a_diverged_neighbour():
    # SGD's band stops at 10^-0.5 because 1.0 diverged: it could be half a decade wider, as wide as Adam's.
    grid = LR_GRIDS["cpu"]["sgd"]
    results = synthetic(sgd_peak=10 ** -0.5, sgd_width=0.5, adam_width=0.5,
                        diverge={("sgd", grid[-2]), ("sgd", grid[-1])})
    verdict = sensitivity(M, "cpu", results)
    assert not verdict.holds and "(needs less than Adam's) NO" in verdict.reason
    sgd_row = verdict.table[1][0]
    assert sgd_row[0] == "sgd" and "(at most 0.62: next rate diverged)" in sgd_row[-1]


def test_sensitivity_fails_when_the_best_is_at_the_grid_edge():
    verdict = sensitivity(M, "cpu", synthetic(sgd_peak=10 ** 0.5))
    assert not verdict.holds and "is inside its grid NO" in verdict.reason


def test_sensitivity_counts_a_rate_with_a_diverged_seed_as_bad():
    grid = LR_GRIDS["cpu"]["adam"]
    verdict = sensitivity(M, "cpu", synthetic(diverge={("adam", grid[-2]), ("adam", grid[-1])}))
    headers, rows = verdict.table
    band = dict(zip(headers, rows[1], strict=True))["good band (within 1 pt)"]
    assert band.endswith(f"{grid[-3]:.2g}")


def test_sensitivity_fails_when_the_default_diverged():
    verdict = sensitivity(M, "cpu", synthetic(diverge={("adam", 1e-3)}))
    assert verdict.outcome == "FAILS" and "Adam at 1e-3 diverged (needs <= 1.00) NO" in verdict.reason


def test_sensitivity_fails_naming_an_optimizer_whose_every_rate_diverged():
    verdict = sensitivity(M, "cpu", synthetic(diverge={("sgd", lr) for lr in LR_GRIDS["cpu"]["sgd"]}))
    assert verdict.outcome == "FAILS" and "every learning rate of sgd diverged" in verdict.reason


def test_sensitivity_is_not_judged_without_the_whole_grid():
    results = synthetic()
    del results[f"adam {lr_label(LR_GRIDS['cpu']['adam'][0])}"]
    verdict = sensitivity(M, "cpu", results)
    assert verdict.outcome == "not judged" and "no runs of adam lr=" in verdict.reason


def test_figure1_picks_the_lowest_training_loss():
    chosen = figure1_choice(synthetic(), "cpu")
    assert chosen == {v: f"{v} logistic {lr_label(FIGURE1_GRIDS['cpu'][1])}" for v in FIGURE1_OPTIMIZERS}


def test_review_row_of_a_grid_points_to_its_table():
    c = Comparison(M, "cpu", [0, 1, 2], synthetic())
    c.verdict = sensitivity(M, "cpu", c.results)
    from dlhistory.comparison import Review, ReviewEntry

    (row,) = review_rows(Review("cpu", 3, [ReviewEntry(M, c)]))
    assert "see the adam table" in row[3] and row[4] == "holds"


def test_save_writes_both_figures_and_the_table(tmp_path):
    results = synthetic()
    for runs in results.values():  # the Figure 1 curves come from each run's metrics.jsonl
        for i, r in enumerate(runs):
            run_dir = tmp_path / "runs" / f"{id(runs)}-{i}"
            run_dir.mkdir(parents=True)
            (run_dir / "metrics.jsonl").write_text(
                "".join(f'{{"step": {s}, "split": "train", "loss": {2 / (s + 1)}}}\n' for s in range(5)))
            r["run_dir"] = str(run_dir)
    c = Comparison(M, "cpu", [0, 1, 2], results)
    c.verdict = sensitivity(M, "cpu", c.results)
    paths = save(c, tmp_path / "out")
    assert paths["figure"].name == "adam.png" and paths["figure1"].name == "adam-figure1.png"
    assert all(p.read_bytes().startswith(PNG) for k, p in paths.items() if k.startswith("figure"))
    assert "good band (within 1 pt)" in paths["md"].read_text()


# ------------------------------------------------------------------------------------------------
# End to end


def test_smoke_comparison_in_two_workers(run_env, tmp_path):
    c = dlhistory.compare("adam", preset="smoke", seeds=1, runs_dir=str(tmp_path), workers=2, evals=1,
                          log=lambda _: None)
    assert set(c.results) == {p.name for p in M.points("smoke")}
    assert all(r["status"] == "complete" for runs in c.results.values() for r in runs)
    assert c.verdict.table is not None  # smoke proves the code runs; its verdict is not a finding
    paths = save(c, tmp_path / "out")
    assert Path(paths["figure1"]).read_bytes().startswith(PNG)


def test_a_diverged_point_is_a_result_not_a_crash(run_env, tmp_path):
    from dlhistory.pool import run_point
    from dlhistory.runner import RunOptions

    options = RunOptions(preset="smoke", variant="sgd", overrides=("algorithm.lr=1e12",),
                         runs_dir=str(tmp_path), progress=False, evals=1)
    result = run_point(M, options)
    assert result["status"] == "diverged" and "NaN" in result["error"]
    assert Path(result["run_dir"], "result.json").exists()
