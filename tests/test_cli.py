"""Tests of the command line: ``dlhistory.cli.main`` in-process, and once as ``python -m dlhistory``.

Runs use the ``smoke`` preset on the real Fashion-MNIST (skipped when ``shared_data`` is absent). To keep
the whole file fast on a shared 2-core CPU, ``compare`` and ``review`` run against a catalogue whose
smoke presets evaluate on 200 images instead of 5000: the same milestones, baselines and claims.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dlhistory
from dlhistory import catalogue, cli
from dlhistory.config import apply_overrides
from dlhistory.data import fashion_mnist

SMALL_EVAL = ("data.val_size=200", "data.test_size=200", "data.train_eval_size=200")
FAST = ("--precision", "fp32", "--evals", "2", "--no-progress")
FAST_OPTIONS = {"precision": "fp32", "evals": 2, "progress": False}


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``dlhistory ARGV``."""
    try:
        code = cli.main(list(argv))
    except SystemExit as e:  # argparse exits instead of returning
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    assert lines[0].startswith("dlhistory: error: ")
    return lines[0]


def json_files(root: Path) -> list[Path]:
    return list(root.rglob("*.json"))


@pytest.fixture
def tiny_catalogue(monkeypatch: pytest.MonkeyPatch) -> tuple:
    """The catalogue with smaller evaluation splits at the smoke preset."""

    def tiny(m):
        if m.presets["smoke"].data.name != "fashion-mnist":
            return m  # the translation milestones' smoke splits are small already
        smoke = apply_overrides(m.presets["smoke"], SMALL_EVAL)
        return dataclasses.replace(m, presets={**m.presets, "smoke": smoke})

    milestones = tuple(tiny(m) for m in catalogue.CATALOGUE)
    monkeypatch.setattr(catalogue, "CATALOGUE", milestones)
    monkeypatch.setattr(catalogue, "BY_KEY", catalogue._index(milestones))
    return milestones


# ------------------------------------------------------------------------------------------------
# list and show


def test_list_prints_every_milestone_and_year(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for m in catalogue.CATALOGUE:
        assert re.search(rf"^{m.year}\s+{m.key}\s+{re.escape(m.title)}\s", out, re.MULTILINE), out


def test_no_command_prints_help(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 0 and "list" in out and "review" in out


def test_show_prints_the_four_components_and_the_baseline_diff(capsys):
    code, out, _ = run_cli(capsys, "show", "resnet")
    assert code == 0
    for kind, name in [("data", "fashion-mnist"), ("model", "resnet"), ("loss", "cross-entropy"),
                       ("algorithm", "sgd-momentum")]:
        assert re.search(rf"^  {kind}\s+{name}$", out, re.MULTILINE), f"{kind} missing:\n{out}"
    assert "model.n = 3" in out
    assert "baseline plain:" in out
    assert re.search(r"^\s+model\s+resnet -> plain$", out, re.MULTILINE)
    assert "data " not in out.split("baseline plain:")[1].split("claim:")[0]  # only the model differs


def test_show_reflects_an_override(capsys):
    code, out, _ = run_cli(capsys, "show", "resnet", "model.n=5")
    assert code == 0
    assert "model.n = 5" in out and "model.n = 3" not in out


def test_show_of_a_baseline(capsys):
    code, out, _ = run_cli(capsys, "show", "alexnet", "--variant", "hog-svm", "--preset", "smoke")
    assert code == 0
    assert "model.features = 'hog'" in out
    assert re.search(r"^\s+model\s+alexnet-cnn -> svm-rbf-hog$", out, re.MULTILINE)


def test_overrides_may_follow_options(capsys):
    code, out, err = run_cli(capsys, "show", "resnet", "--preset", "smoke", "model.n=5")
    assert code == 0, err
    assert "model.n = 5" in out


# ------------------------------------------------------------------------------------------------
# Usage errors: exit code 2, one line, nothing written

USAGE_ERRORS = {
    "unknown milestone": (["run", "alexnt", "--preset", "smoke"], "alexnet"),
    "unknown key": (["run", "resnet", "model.depht=3", "--preset", "smoke"], "model.depht"),
    "wrong type": (["run", "resnet", "model.n=abc", "--preset", "smoke"], "model.n"),
    "unknown preset": (["run", "resnet", "--preset", "huge"], "huge"),
    "unknown variant": (["run", "resnet", "--preset", "smoke", "--variant", "plian"], "plain"),
    "no seeds": (["compare", "resnet", "--preset", "smoke", "--seeds", "0"], "--seeds 0"),
    "resume a missing run": (["run", "resnet", "--resume", "/nonexistent"], "/nonexistent"),
    "resume with no runs": (["run", "resnet", "--resume"], "no runs of resnet"),
    "resume with another seed": (["run", "resnet", "--resume", "--seed", "5", "--preset", "full"],
                                 "drop --preset and --seed"),
    "a huge seed": (["run", "resnet", "--preset", "smoke", "--seed", "99999999999999999999999"], "--seed 9"),
    "a negative seed": (["run", "resnet", "--preset", "smoke", "--seed", "-1"], "from 0 to"),
    "runs dir is a file": (["run", "resnet", "--preset", "smoke", "--runs-dir", "/etc/hostname"], "a file"),
    "runs dir under /proc": (["run", "resnet", "--preset", "smoke", "--runs-dir", "/proc/x"], "/proc/x"),
    "sweep no workers": (["sweep", "resnet", "model.n=1,2", "--preset", "smoke", "--workers", "0"],
                         "--workers 0"),
    "a tool of another milestone": (["play", "alexnet"], "alexnet has no 'play'"),
    "unknown device": (["run", "resnet", "--preset", "smoke", "--device", "tpu"], "tpu"),
    "unknown precision": (["run", "resnet", "--preset", "smoke", "--precision", "fp8"], "fp8"),
    "review unknown milestone": (["review", "--preset", "smoke", "--only", "resnt"], "resnet"),
    "a NaN learning rate": (["run", "resnet", "--preset", "smoke", "algorithm.lr=nan"], "finite number"),
    "a sweep to NaN": (["sweep", "resnet", "algorithm.lr=nan:1:3", "--preset", "smoke"], "finite positive"),
    "a sweep of nothing": (["sweep", "resnet", "algorithm.lr=,,,", "--preset", "smoke"], "lists no values"),
    "a million-point sweep": (["sweep", "resnet", "algorithm.lr=1e-3:1e-1:1000000", "--preset", "smoke"],
                              "at most 1000"),
    "an unreadable data dir": (["run", "resnet", "--preset", "smoke", "--data-dir", "/no/such/data"],
                               "no readable folder"),
    "no training images": (["run", "resnet", "--preset", "smoke", "data.train_size=0"], "data.train_size"),
}


@pytest.mark.parametrize(("argv", "named"), USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_error_is_one_line_and_exit_2(capsys, run_env, tmp_path, argv, named):
    runs = [] if "--runs-dir" in argv else ["--runs-dir", str(tmp_path)]
    code, _, err = run_cli(capsys, *argv, *runs)
    assert code == 2
    assert named in one_line_error(err)
    assert not json_files(tmp_path), "a failed command wrote results"


def test_show_with_a_wrong_type(capsys):
    code, out, err = run_cli(capsys, "show", "resnet", "model.n=abc")
    assert code == 2 and not out
    assert "model.n='abc'" in one_line_error(err)


def test_unknown_key_suggests_the_closest_key(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "resnet", "model.depht=3", "--runs-dir", str(tmp_path))
    assert code == 2 and "did you mean" in one_line_error(err) and "model." in err


def test_cuda_without_a_gpu(capsys, run_env, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    code, _, err = run_cli(capsys, "run", "resnet", "--preset", "smoke", "--device", "cuda",
                           "--runs-dir", str(tmp_path))
    assert code == 2 and "--device cpu" in one_line_error(err)
    assert not json_files(tmp_path)


def test_unknown_key_after_options_is_named(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "resnet", "--preset", "smoke", "model.depht=3",
                           "--runs-dir", str(tmp_path))
    assert code == 2 and "model.depht" in one_line_error(err)


def test_compare_with_an_unknown_preset(capsys, tmp_path):
    code, _, err = run_cli(capsys, "compare", "resnet", "--preset", "huge", "--runs-dir", str(tmp_path))
    assert code == 2 and "huge" in one_line_error(err)


def test_an_empty_tuple_is_a_usage_error(capsys, run_env, tmp_path):
    code, _, err = run_cli(capsys, "run", "resnet", "model.widths=", *SMALL_EVAL, "--preset", "smoke", *FAST,
                           "--runs-dir", str(tmp_path))
    assert code == 2 and "model.widths" in one_line_error(err)


# ------------------------------------------------------------------------------------------------
# python -m dlhistory


def _module(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLHISTORY_OFFLINE": "1", "DLHISTORY_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dlhistory", *argv], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


def test_module_entry_point_lists_the_timeline(tmp_path):
    proc = _module(tmp_path, "list")
    assert proc.returncode == 0, proc.stderr
    assert all(m.key in proc.stdout for m in catalogue.CATALOGUE)


def test_module_entry_point_exits_2_on_a_usage_error(tmp_path):
    proc = _module(tmp_path, "run", "alexnt")
    assert proc.returncode == 2
    assert "alexnet" in one_line_error(proc.stderr)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------
# run


@pytest.fixture(scope="module")
def alexnet_runs(run_env_vars, tmp_path_factory) -> tuple[list[Path], list[str]]:
    """Two identical smoke runs of AlexNet: their run directories and what the CLI printed."""
    runs = tmp_path_factory.mktemp("runs")
    argv = ["run", "alexnet", *SMALL_EVAL, "--preset", "smoke", "--runs-dir", str(runs), *FAST]
    dirs, outputs = [], []
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in run_env_vars.items():
            mp.setenv(name, value)
        for _ in range(2):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert cli.main(argv) == 0
            printed = out.getvalue()
            found = re.search(r"^run directory: (.+)$", printed, re.MULTILINE)
            assert found, printed
            dirs.append(Path(found.group(1)))
            outputs.append(printed)
    torch.set_num_threads(threads)
    return dirs, outputs


def test_run_prints_results_and_the_run_directory(alexnet_runs):
    dirs, outputs = alexnet_runs
    assert re.search(r"^test_accuracy\s+0\.\d{4}$", outputs[0], re.MULTILINE), outputs[0]
    assert re.search(r"^parameters\s+\d+$", outputs[0], re.MULTILINE)
    assert dirs[0].is_dir()
    assert dirs[0].parent.parent.name == "alexnet" and dirs[0].parent.name == "cnn"


def test_run_directory_holds_the_records(alexnet_runs):
    run_dir = alexnet_runs[0][0]
    for name in ("config.json", "metrics.jsonl", "result.json", "model.safetensors", "curves.png"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_run_config_records_the_recipe_and_overrides(alexnet_runs):
    config = json.loads((alexnet_runs[0][0] / "config.json").read_text())
    assert (config["milestone"], config["variant"], config["preset"]) == ("alexnet", "cnn", "smoke")
    assert config["overrides"] == list(SMALL_EVAL)
    assert config["components"]["data"]["config"]["val_size"] == 200
    assert config["components"]["model"]["name"] == "alexnet-cnn"


def test_run_result_has_the_promised_keys(alexnet_runs):
    result = json.loads((alexnet_runs[0][0] / "result.json").read_text())
    keys = ("test_accuracy", "train_seconds", "samples_per_s", "parameters", "seed", "versions", "commit")
    for key in keys:
        assert key in result, key
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["seed"] == 0 and result["parameters"] > 0 and result["samples_per_s"] > 0
    assert "torch" in result["versions"]


def test_run_metrics_have_training_and_validation_records(alexnet_runs):
    lines = (alexnet_runs[0][0] / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert {r["split"] for r in records} == {"train", "val"}
    assert all("loss" in r for r in records if r["split"] == "train")


def test_run_weights_load_without_pickle(alexnet_runs):
    from safetensors.torch import load_file

    run_dir = alexnet_runs[0][0]
    weights = load_file(run_dir / "model.safetensors")
    assert weights and all(isinstance(t, torch.Tensor) for t in weights.values())
    result = json.loads((run_dir / "result.json").read_text())
    buffers = ("running_mean", "running_var", "num_batches_tracked")  # batch-norm state, not parameters
    assert sum(t.numel() for k, t in weights.items() if not k.endswith(buffers)) == result["parameters"]


def test_identical_runs_get_different_directories(alexnet_runs):
    first, second = alexnet_runs[0]
    assert first != second and first.parent == second.parent
    assert (second / "result.json").is_file() and (first / "result.json").is_file()


# ------------------------------------------------------------------------------------------------
# compare and review


def test_compare_prints_a_table_and_writes_a_summary(capsys, run_env, tiny_catalogue, tmp_path):
    code, out, err = run_cli(capsys, "compare", "alexnet", "--preset", "smoke", "--seeds", "1",
                             "--runs-dir", str(tmp_path), *FAST)
    assert code == 0, err
    table = out.split("claim")[0]
    for variant in ("cnn", "svm", "hog-svm"):
        assert re.search(rf"^{variant}\s", table, re.MULTILINE), out
    assert re.search(r"^claim not judged: smoke only proves the code runs; measured: ", out, re.MULTILINE)
    assert "holds" not in out.split("paper:")[1]
    (folder,) = (tmp_path / "alexnet").glob("compare-*")
    for name in ("summary.md", "summary.json", "alexnet.png"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["milestone"] == "alexnet" and summary["outcome"] == "not judged"
    assert set(summary["runs"]) == {"cnn", "svm", "hog-svm"}


def test_compare_from_python_saves_its_summary(run_env, tiny_catalogue, tmp_path):
    c = dlhistory.compare("alexnet", "smoke", 1, runs_dir=str(tmp_path), log=lambda _: None,
                          **FAST_OPTIONS)
    assert c.verdict.outcome == "not judged"
    assert c.paths["md"].is_file() and c.paths["json"].is_file() and c.paths["figure"].is_file()
    assert c.paths["md"].parent.parent == tmp_path / "alexnet"


def test_a_second_compare_reuses_every_run_and_force_runs_them_again(capsys, run_env, tiny_catalogue,
                                                                     tmp_path):
    args = ("compare", "alexnet", "--preset", "smoke", "--seeds", "1", "--runs-dir", str(tmp_path), *FAST)
    assert run_cli(capsys, *args)[0] == 0
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and err.count(": reused ") == 3, err
    assert len(list((tmp_path / "alexnet").glob("*/*/result.json"))) == 3
    code, _, err = run_cli(capsys, *args, "--force")
    assert code == 0 and "reused" not in err
    assert len(list((tmp_path / "alexnet").glob("*/*/result.json"))) == 6


def test_review_writes_a_summary_of_every_milestone(capsys, run_env, tiny_catalogue, tmp_path):
    # One worker: the tiny catalogue is patched into this process, which worker processes would not see.
    code, out, err = run_cli(capsys, "review", "--preset", "smoke", "--seeds", "1", "--workers", "1",
                             "--runs-dir", str(tmp_path), *FAST)
    assert code == 0, err
    (folder,) = (tmp_path / "review").glob("*")
    markdown = (folder / "summary.md").read_text()
    summary = json.loads((folder / "summary.json").read_text())
    assert [e["milestone"] for e in summary["milestones"]] == [m.key for m in tiny_catalogue]
    for m in tiny_catalogue:
        assert m.title in markdown and m.title in out
        assert (folder / m.key / "summary.md").is_file()
    assert all(e["outcome"] == "not judged" for e in summary["milestones"])
    assert "skipped" not in out
    page = (folder / "index.html").read_text()
    assert re.findall(r'<section class="milestone" id="(\w+)"', page) == [m.key for m in tiny_catalogue]
    assert "pending" not in page and f"page: {folder / 'index.html'}" in out
    # A second review right after the first runs nothing new.
    code, out, err = run_cli(capsys, "review", "--preset", "smoke", "--seeds", "1", "--workers", "1",
                             "--runs-dir", str(tmp_path), *FAST)
    assert code == 0 and "reused" in err
    assert not re.search(r"\(\d+/\d+\)$", err, re.MULTILINE), err  # no run started


@pytest.fixture
def no_fashion_mnist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nowhere to find Fashion-MNIST: empty data dir and cache, offline, no system copy."""
    for name, folder in (("DLHISTORY_DATA", "data"), ("DLHISTORY_CACHE", "cache")):
        (tmp_path / folder).mkdir()
        monkeypatch.setenv(name, str(tmp_path / folder))
    monkeypatch.setenv("DLHISTORY_OFFLINE", "1")
    # Debian's dataset-fashion-mnist may be installed: hide it.
    files = {k: dataclasses.replace(f, system_dirs=()) for k, f in fashion_mnist.FILES.items()}
    monkeypatch.setattr(fashion_mnist, "FILES", files)
    fashion_mnist._load.cache_clear()


def test_review_skips_milestones_whose_data_is_missing(capsys, no_fashion_mnist, tmp_path):
    runs = tmp_path / "runs"
    # One worker: the system copy is hidden by patching this process, which worker processes would not see.
    code, out, err = run_cli(capsys, "review", "--preset", "smoke", "--seeds", "1", "--runs-dir", str(runs),
                             "--workers", "1", *FAST)
    assert code == 0, err
    summary = json.loads(next((runs / "review").glob("*/summary.json")).read_text())
    assert [e["milestone"] for e in summary["milestones"]] == [m.key for m in catalogue.CATALOGUE]
    # DQN's data is an environment that ships with its packages: it still runs.
    acting = {m.key for m in catalogue.CATALOGUE if hasattr(m.recipe("smoke").data.config, "env")}
    assert acting == {"dqn"}
    for entry in summary["milestones"]:  # Multi30k is hidden too: an empty data dir and cache, offline
        if entry["milestone"] in acting:
            assert entry["outcome"] == "not judged"
            continue
        dataset = catalogue.get(entry["milestone"]).recipe("smoke").data.name.split("+")[0]  # +unlabeled
        assert entry["outcome"] == "skipped"
        assert dataset in entry["reason"] and "DLHISTORY_DATA" in entry["reason"]
    for m in catalogue.CATALOGUE:
        verdict = "not judged" if m.key in acting else "skipped"
        assert re.search(rf"^{m.year}\s+{re.escape(m.title)}\s.*\s({verdict})\s+\S", out, re.MULTILINE), out
    assert {p.parts[-4] for p in runs.rglob("result.json")} == acting
    page = next((runs / "review").glob("*/index.html")).read_text()
    assert page.count('<p class="fix">') == len(catalogue.CATALOGUE) - len(acting)
    assert "curl -fL --create-dirs" in page  # the command that fetches the missing file


@pytest.mark.parametrize(("argv", "said"), [
    (["run", "resnet", "--preset", "smoke"], "continue with --resume latest"),
    (["compare", "resnet", "--preset", "smoke"], "run the same command again"),
    (["sweep", "resnet", "model.n=1,2", "--preset", "smoke"], "run the same command again"),
    (["review", "--preset", "smoke"], "run the same command again"),
])
def test_ctrl_c_says_how_this_command_continues(capsys, tmp_path, monkeypatch, argv, said):
    import dlhistory

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    for name in ("run", "compare", "sweep", "review"):
        monkeypatch.setattr(dlhistory, name, interrupted)
    code, _, err = run_cli(capsys, *argv, "--runs-dir", str(tmp_path))
    assert code == 130 and err.strip().startswith(f"dlhistory: interrupted; {said}")
    assert len(err.strip().splitlines()) == 1


def test_ctrl_c_during_start_up_is_one_line(capsys, monkeypatch):
    from dlhistory import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    code, _, err = run_cli(capsys, "list")
    assert code == 130 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_full_preset_on_a_cpu_says_what_it_costs_before_it_starts(capsys, tmp_path, monkeypatch):
    import dlhistory

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    monkeypatch.setattr(dlhistory, "run", lambda *a, **k: {"rank": 1})  # stop before any training
    code, _, err = run_cli(capsys, "run", "alexnet", "--preset", "full", "--runs-dir", str(tmp_path))
    assert code == 0 and "meant for a GPU" in err and "many hours" in err


def test_the_program_preloads_tcmalloc_once_and_can_be_told_not_to(monkeypatch):
    from dlhistory import allocator

    monkeypatch.setattr(allocator, "find", lambda: "/lib/libtcmalloc_minimal.so.4")
    monkeypatch.setattr(sys, "platform", "linux")
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((argv, env)))
    for name in ("LD_PRELOAD", allocator.MARK, "DLHISTORY_ALLOCATOR"):
        monkeypatch.delenv(name, raising=False)
    allocator.preload(["list"])
    ((argv, env),) = calls
    assert argv[1:] == ["-m", "dlhistory", "list"]
    assert env["LD_PRELOAD"] == "/lib/libtcmalloc_minimal.so.4" and env[allocator.MARK]
    for name, value in ((allocator.MARK, "1"), ("DLHISTORY_ALLOCATOR", "system"),
                        ("LD_PRELOAD", "/x/libjemalloc.so.2")):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            allocator.preload(["list"])  # already preloaded, or asked not to: no re-execution
    assert len(calls) == 1


def test_the_program_runs_with_tcmalloc_preloaded():
    from dlhistory.allocator import find

    if find() is None:
        pytest.skip("no tcmalloc here: apt-get install libtcmalloc-minimal4 (the install script does)")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "DLHISTORY_PRELOADED")}
    done = subprocess.run([sys.executable, "-m", "dlhistory", "list"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0 and "2012" in done.stdout and not done.stderr, done.stderr
