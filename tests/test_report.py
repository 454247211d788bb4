"""Tests of tables, the claim judges and the comparison figures, on synthetic results (no training)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from dlhistory.comparison import Comparison, Review, ReviewEntry, decide, default_judge, save
from dlhistory.milestones import alexnet, resnet
from dlhistory.records import read_jsonl
from dlhistory.report import figures
from dlhistory.report.tables import (
    REVIEW_HEADERS,
    comparison_markdown,
    format_table,
    markdown_table,
    review_rows,
)
from dlhistory.spec import Metric, Panel, Verdict

PNG = b"\x89PNG\r\n\x1a\n"
ALEXNET, RESNET = alexnet.MILESTONE, resnet.MILESTONE


# ------------------------------------------------------------------------------------------------
# Tables


def test_format_table_aligns_columns():
    text = format_table(["name", "value"], [["a", "1"], ["longer name", "22"], ["b", "333"]])
    lines = text.splitlines()
    assert len(lines) == 5
    start = len("longer name") + 2
    assert all(line[start - 2:start] == "  " for line in lines)
    assert [line[start:] for line in lines] == ["value", "-----", "1", "22", "333"]


def test_format_table_separator_matches_widths_and_has_no_trailing_spaces():
    lines = format_table(["x", "yy"], [["abc", "d"]]).splitlines()
    assert lines[1] == "---  --"
    assert all(line == line.rstrip() for line in lines)


def test_format_table_converts_cells_to_text():
    assert format_table(["n"], [[3], [4.5]]).splitlines()[2:] == ["3", "4.5"]


def test_format_table_rejects_a_ragged_row():
    with pytest.raises(ValueError):
        format_table(["a", "b"], [["1"]])


def test_markdown_table_shape():
    text = markdown_table(["a", "b"], [["1", "2"], ["3", "4"]])
    assert text == "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n"


def test_markdown_table_escapes_pipes():
    text = markdown_table(["h"], [["a|b"]])
    assert "| a\\|b |" in text
    assert text.splitlines()[2].count("|") - text.splitlines()[2].count("\\|") == 2


@pytest.mark.parametrize(("holds", "word"), [(True, "holds"), (False, "FAILS")])
def test_a_judged_verdict_holds_or_fails(holds, word):
    verdict = Verdict.judged(holds, "why")
    assert verdict.outcome == word and verdict.holds is holds


@pytest.mark.parametrize(("metric", "mean", "std", "n", "text"), [
    (Metric("test_accuracy", digits=2, percent=True), 0.91234, 0.01236, None, "91.23 ± 1.24%"),
    (Metric("val_accuracy", digits=2, percent=True), 1.0, 0.0, None, "100.00 ± 0.00%"),
    (Metric("train_loss"), 2.302585, 0.01, None, "2.3026 ± 0.0100"),
    (Metric("train_seconds", digits=1), 12.345, 0.44, None, "12.3 ± 0.4"),
    (Metric("train_flops", digits=2, scientific=True), 1.234e15, 2e13, None, "1.23e+15 ± 2.00e+13"),
    (Metric("test_accuracy", percent=True), math.nan, math.nan, None, "-"),
    (Metric("test_bleu", digits=2), 30.0, 1.0, 2, "30.00 ± 1.00 (n=2 of 3)"),
])
def test_metric_formats_mean_and_std(metric, mean, std, n, text):
    assert metric.format(mean, std, n, 3 if n else None) == text


# ------------------------------------------------------------------------------------------------
# Comparison summaries


def accuracy_results(cnn: list[float], svm: list[float], hog: list[float]) -> dict[str, list[dict]]:
    return {name: [{"test_accuracy": v, "train_seconds": 1.0} for v in values]
            for name, values in (("cnn", cnn), ("svm", svm), ("hog-svm", hog))}


def test_summary_is_mean_and_sample_std_over_seeds():
    c = Comparison(ALEXNET, "cpu", [0, 1, 2], accuracy_results([0.90, 0.92, 0.94], [0.8], [0.85]))
    mean, std, n = c.summary("test_accuracy", "cnn")
    assert mean == pytest.approx(0.92) and std == pytest.approx(0.02) and n == 3
    assert c.summary("test_accuracy", "svm") == (0.8, 0.0, 1)
    mean, std, n = c.summary("val_accuracy", "cnn")
    assert math.isnan(mean) and n == 0


def test_rows_and_headers_are_the_claims_columns():
    c = Comparison(ALEXNET, "cpu", [0], accuracy_results([0.9], [0.8], [0.85]))
    assert c.headers() == ["variant", *(m.header for m in ALEXNET.claim.report)]
    assert c.rows()[0][:2] == ["cnn", "90.00 ± 0.00%"]
    assert [r[0] for r in c.rows()] == ["cnn", "svm", "hog-svm"]


def test_a_mean_over_fewer_seeds_says_so():
    results = accuracy_results([0.9, 0.92], [0.8], [0.85])
    results["cnn"].append({"status": "diverged"})
    c = Comparison(ALEXNET, "cpu", [0, 1, 2], results)
    assert c.rows()[0][1] == "91.00 ± 1.41% (n=2 of 3)"


# ------------------------------------------------------------------------------------------------
# The default judge: threshold and every baseline


def test_default_judge_holds():
    results = accuracy_results([0.94, 0.95], [0.90], [0.92])
    verdict = default_judge(ALEXNET, "cpu", results)
    assert verdict.holds
    assert "NO" not in verdict.reason and "93.00%" in verdict.reason


def test_default_judge_fails_below_the_threshold():
    verdict = default_judge(ALEXNET, "cpu", accuracy_results([0.925], [0.90], [0.91]))
    assert not verdict.holds
    assert "test_accuracy 92.50% >= 93.00% NO" in verdict.reason
    assert "beats svm (90.00%) yes" in verdict.reason


def test_default_judge_fails_when_a_baseline_wins():
    verdict = default_judge(ALEXNET, "cpu", accuracy_results([0.94], [0.90], [0.945]))
    assert not verdict.holds
    assert "beats hog-svm (94.50%) NO" in verdict.reason
    assert "beats svm (90.00%) yes" in verdict.reason


def test_default_judge_a_tie_is_not_a_win():
    assert not default_judge(ALEXNET, "cpu", accuracy_results([0.94], [0.90], [0.94])).holds


def test_default_judge_uses_the_mean_over_seeds():
    # Seed 0 alone would lose to hog-svm; the mean (0.95) wins.
    assert default_judge(ALEXNET, "cpu", accuracy_results([0.93, 0.97], [0.90], [0.94])).holds


def test_default_judge_without_threshold_only_compares():
    assert "smoke" not in ALEXNET.claim.thresholds
    no_threshold = dataclasses.replace(ALEXNET, claim=dataclasses.replace(ALEXNET.claim, thresholds={}))
    verdict = default_judge(no_threshold, "cpu", accuracy_results([0.5], [0.4], [0.45]))
    assert verdict.holds and ">=" not in verdict.reason


def test_default_judge_minimises_a_loss():
    claim = dataclasses.replace(ALEXNET.claim, metric="test_loss", direction="min", thresholds={"cpu": 0.5})
    m = dataclasses.replace(ALEXNET, claim=claim)
    results = {"cnn": [{"test_loss": 0.3}], "svm": [{"test_loss": 0.6}], "hog-svm": [{"test_loss": 0.4}]}
    verdict = default_judge(m, "cpu", results)
    assert verdict.holds and "<= 0.5000 yes" in verdict.reason
    results["hog-svm"] = [{"test_loss": 0.2}]
    assert not default_judge(m, "cpu", results).holds


def test_default_judge_fails_a_diverged_run_without_crashing():
    results = accuracy_results([0.94, 0.95], [0.90], [0.92])
    results["cnn"][1] = {"status": "diverged", "error": "loss became NaN"}
    verdict = default_judge(ALEXNET, "cpu", results)
    assert verdict.outcome == "FAILS" and "cnn diverged" in verdict.reason


def test_default_judge_does_not_judge_without_a_baseline():
    results = accuracy_results([0.94], [0.90], [0.92])
    del results["hog-svm"]
    verdict = default_judge(ALEXNET, "cpu", results)
    assert verdict.outcome == "not judged" and "hog-svm" in verdict.reason


def test_default_judge_does_not_judge_a_claim_with_neither_threshold_nor_baseline():
    alone = dataclasses.replace(ALEXNET, baselines={},
                                claim=dataclasses.replace(ALEXNET.claim, thresholds={}))
    verdict = default_judge(alone, "cpu", {"cnn": [{"test_accuracy": 0.5}]})
    assert verdict.outcome == "not judged"


@pytest.mark.parametrize(("preset", "seeds", "why"), [("smoke", 3, "smoke only proves the code runs"),
                                                      ("cpu", 1, "1 of 3 seeds"),
                                                      ("cpu", 2, "2 of 3 seeds")])
def test_decide_never_judges_smoke_or_too_few_seeds(preset, seeds, why):
    results = accuracy_results([0.99] * seeds, [0.5] * seeds, [0.5] * seeds)
    verdict = decide(ALEXNET, preset, seeds, results)
    assert verdict.outcome == "not judged" and verdict.reason.startswith(why)
    assert "measured: " in verdict.reason  # what was measured is still said


def test_decide_judges_at_the_claims_seeds():
    assert decide(ALEXNET, "cpu", 3, accuracy_results([0.94] * 3, [0.5] * 3, [0.5] * 3)).outcome == "holds"
    assert decide(ALEXNET, "cpu", 3, accuracy_results([0.90] * 3, [0.5] * 3, [0.5] * 3)).outcome == "FAILS"


# ------------------------------------------------------------------------------------------------
# ResNet's degradation judge (smoke depths n=1 and n=2)


def depth_results(plain: tuple[float, float], residual: tuple[float, float]) -> dict[str, list[dict]]:
    n1, n2 = resnet.DEPTHS["smoke"]
    losses = {("plain", n1): plain[0], ("plain", n2): plain[1], ("residual", n1): residual[0],
              ("residual", n2): residual[1]}
    return {f"{variant} n={n}": [{"train_loss": loss}] for (variant, n), loss in losses.items()}


def test_degradation_holds():
    verdict = resnet.degradation(RESNET, "smoke", depth_results(plain=(0.30, 0.40), residual=(0.30, 0.25)))
    assert verdict.holds
    assert "14 vs 8 layers" in verdict.reason
    assert "plain +0.1000" in verdict.reason and "residual -0.0500" in verdict.reason


def test_degradation_fails_when_plain_does_not_degrade():
    verdict = resnet.degradation(RESNET, "smoke", depth_results(plain=(0.30, 0.28), residual=(0.30, 0.25)))
    assert not verdict.holds
    assert "plain -0.0200 (needs > 0)" in verdict.reason


def test_degradation_fails_when_residual_degrades():
    verdict = resnet.degradation(RESNET, "smoke", depth_results(plain=(0.30, 0.40), residual=(0.30, 0.35)))
    assert not verdict.holds
    assert "residual +0.0500 (needs <= 0)" in verdict.reason


def test_degradation_boundaries():
    # Equal residual losses count as "at or below"; equal plain losses are not a degradation.
    assert resnet.degradation(RESNET, "smoke", depth_results(plain=(0.3, 0.4), residual=(0.3, 0.3))).holds
    assert not resnet.degradation(RESNET, "smoke", depth_results(plain=(0.3, 0.3), residual=(0.3, 0.2))).holds


def test_degradation_averages_over_seeds():
    results = depth_results(plain=(0.30, 0.40), residual=(0.30, 0.25))
    results["residual n=2"] = [{"train_loss": 0.20}, {"train_loss": 0.42}]  # mean 0.31 > 0.30
    assert not resnet.degradation(RESNET, "smoke", results).holds


def test_degradation_fails_a_diverged_run_without_crashing():
    results = depth_results(plain=(0.30, 0.40), residual=(0.30, 0.25))
    results["plain n=2"] = [{"status": "diverged"}]
    verdict = resnet.degradation(RESNET, "smoke", results)
    assert verdict.outcome == "FAILS" and "plain n=2" in verdict.reason


def test_degradation_is_not_judged_without_a_depth():
    results = depth_results(plain=(0.30, 0.40), residual=(0.30, 0.25))
    del results["residual n=1"]
    assert resnet.degradation(RESNET, "smoke", results).outcome == "not judged"


def test_degradation_uses_the_shallowest_and_deepest_of_the_preset():
    n = resnet.DEPTHS["cpu"]
    results = {f"{v} n={d}": [{"train_loss": 0.3}] for v in ("plain", "residual") for d in n}
    results[f"plain n={max(n)}"] = [{"train_loss": 0.5}]
    results[f"residual n={max(n)}"] = [{"train_loss": 0.2}]
    verdict = resnet.degradation(RESNET, "cpu", results)
    assert verdict.holds and f"{6 * max(n) + 2} vs {6 * min(n) + 2} layers" in verdict.reason


# ------------------------------------------------------------------------------------------------
# Figures and saved summaries


def fake_run(folder: Path, losses: list[float]) -> str:
    """A run directory holding a metrics.jsonl of training-loss records (and one cut-short line)."""
    folder.mkdir(parents=True)
    lines = [json.dumps({"step": 10 * i, "split": "train", "loss": v}) for i, v in enumerate(losses)]
    lines.append(json.dumps({"step": 10 * len(losses), "split": "val", "loss": losses[-1], "accuracy": 0.5}))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 99, "spl')
    return str(folder)


def bar_comparison() -> Comparison:
    c = Comparison(ALEXNET, "smoke", [0, 1], accuracy_results([0.90, 0.92], [0.80, 0.81], [0.85, 0.86]))
    c.verdict = decide(ALEXNET, "smoke", 2, c.results)
    return c


def depth_comparison(tmp_path: Path) -> Comparison:
    results = {}
    for variant in ("plain", "residual"):
        for n in resnet.DEPTHS["smoke"]:
            results[f"{variant} n={n}"] = [
                {"train_loss": 0.3 * n, "test_accuracy": 0.8,
                 "run_dir": fake_run(tmp_path / f"{variant}{n}-s{seed}", [2.3, 1.0 * n, 0.5 + seed * 0.1])}
                for seed in (0, 1)]
    c = Comparison(RESNET, "smoke", [0, 1], results)
    c.verdict = resnet.degradation(RESNET, "smoke", results)
    return c


def test_bar_figure_is_a_png(tmp_path):
    out = tmp_path / "bars.png"
    figures.comparison_figure(bar_comparison(), out)
    assert out.read_bytes()[:8] == PNG


def test_depth_figure_reads_every_runs_curve(tmp_path, monkeypatch):
    comparison = depth_comparison(tmp_path)
    read = []

    def recording(path: Path) -> list[dict]:
        read.append(path)
        return read_jsonl(path)

    monkeypatch.setattr(figures, "read_jsonl", recording)
    out = tmp_path / "depth.png"
    figures.comparison_figure(comparison, out)
    assert out.read_bytes()[:8] == PNG
    expected = {Path(r["run_dir"]) / "metrics.jsonl" for rs in comparison.results.values() for r in rs}
    assert set(read) == expected


def test_depth_figure_tolerates_missing_metrics(tmp_path):
    comparison = depth_comparison(tmp_path)
    for results in comparison.results.values():
        results[0].pop("run_dir")  # a result without a run directory
    comparison.results["plain n=1"][1]["run_dir"] = str(tmp_path / "nowhere")  # one without metrics
    out = tmp_path / "depth.png"
    figures.comparison_figure(comparison, out)
    assert out.read_bytes()[:8] == PNG


def test_read_jsonl_skips_a_cut_short_line(tmp_path):
    records = read_jsonl(Path(fake_run(tmp_path / "run", [2.0, 1.0])) / "metrics.jsonl")
    assert [r["split"] for r in records] == ["train", "train", "val"]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize("panels", [(), (Panel("accuracy", percent=True),),
                                    (Panel("accuracy"), Panel("loss", ("train", "val"), x="step"))])
def test_training_curves_draw_the_procedures_panels(tmp_path, panels):
    run_dir = Path(fake_run(tmp_path / "run", [2.0, 1.5, 1.0]))
    figures.training_curves(run_dir / "metrics.jsonl", panels, run_dir / "curves.png")
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG


def test_training_curves_draws_nothing_without_training_records(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 0, "split": "val", "accuracy": 0.5}) + "\n")
    figures.training_curves(tmp_path / "metrics.jsonl", (), tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_save_writes_summary_json_markdown_and_figure(tmp_path):
    paths = save(bar_comparison(), tmp_path / "out")
    assert paths["figure"] == tmp_path / "out" / "alexnet.png"
    assert paths["figure"].read_bytes()[:8] == PNG
    summary = json.loads(paths["json"].read_text())
    assert summary["milestone"] == "alexnet" and summary["outcome"] == "not judged"  # smoke
    assert summary["summary"]["cnn"]["test_accuracy"]["mean"] == pytest.approx(0.91)
    markdown = paths["md"].read_text()
    assert "dlhistory compare alexnet --preset smoke --seeds 2" in markdown
    assert "**Verdict: not judged** (smoke only proves the code runs" in markdown


def test_comparison_markdown_has_the_table_and_the_paper(tmp_path):
    c = bar_comparison()
    c.verdict = Verdict("holds", "because")
    text = comparison_markdown(c)
    assert text.startswith(f"# {ALEXNET.year} {ALEXNET.title}")
    assert "| variant | test accuracy | validation accuracy |" in text
    assert "| cnn | 91.00 ± 1.41% |" in text
    assert ALEXNET.claim.paper in text and "holds** (because)" in text


def test_review_rows_report_skipped_and_judged_milestones():
    entries = [ReviewEntry(ALEXNET, comparison=bar_comparison()),
               ReviewEntry(RESNET, skipped="fashion-mnist not found")]
    rows = review_rows(Review("smoke", 2, entries))
    assert all(len(r) == len(REVIEW_HEADERS) for r in rows)
    assert rows[0][:2] == ["2012", "AlexNet"] and rows[0][4] == "not judged"
    assert "cnn: 91.00 ± 1.41%" in rows[0][3]
    assert rows[1] == ["2015", "ResNet", "model", "-", "skipped", "fashion-mnist not found", "-", "-"]
