"""The runner: resume after an interruption or a kill -9, the NaN guard, run records, determinism.

Every run is a ``smoke`` run shrunk further by overrides (16 steps of 32 images, small evaluation
splits), in fp32 so that results are bit-for-bit reproducible, on one torch thread (``run_env_vars``:
two threads on a busy 2-core machine are ~30x slower). Runs shared by several tests are made once per
module by the ``reference`` fixture.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import safetensors.torch
import torch

import dlhistory
from dlhistory import catalogue, checkpoint, runner
from dlhistory.algorithms.supervised import MinibatchTraining
from dlhistory.errors import UsageError

SEED = 11
# 256 training images / batch 32 = 8 steps per epoch, 2 epochs = 16 steps.
TINY = {"model.n": 1, "data.train_size": 256, "data.val_size": 256, "data.test_size": 256,
        "data.train_eval_size": 256, "algorithm.batch_size": 32, "algorithm.epochs": 2}
TINY_STEPS = 16
ALEXNET_TINY = {"data.train_size": 256, "data.val_size": 256, "data.test_size": 256,
                "data.train_eval_size": 256, "algorithm.batch_size": 32, "algorithm.epochs": 2}
FINAL = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.safetensors", "model.safetensors", "result.json",
             "tensorboard", "curves.png")


def tiny_run(runs_dir: Path, milestone: str = "resnet", overrides: dict | None = None, seed: int = SEED,
             **options) -> dict:
    options = {"precision": "fp32", "evals": 2, "checkpoint_every": 3, **options}
    return dlhistory.run(milestone, preset="smoke", seed=seed, runs_dir=str(runs_dir), progress=False,
                         overrides=TINY if overrides is None else overrides, **options)


def records(run_dir: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def assert_no_duplicate_records(run_dir: str | Path) -> None:
    counts = Counter((r["step"], r["split"]) for r in records(run_dir))
    assert [k for k, n in counts.items() if n > 1] == []


def assert_same_final_metrics(a: dict, b: dict) -> None:
    for key in FINAL:
        assert b[key] == pytest.approx(a[key], abs=1e-6, rel=0), key


def run_dirs(runs_dir: Path, milestone: str = "resnet", variant: str = "residual") -> list[Path]:
    parent = runs_dir / milestone / variant
    return sorted(p for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []


def weights(path: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(path)


@pytest.fixture(scope="module")
def env(run_env_vars):
    """``run_env_vars`` for the whole module (module fixtures cannot use ``monkeypatch``)."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in run_env_vars.items():
            mp.setenv(name, value)
        yield run_env_vars
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory) -> dict[str, dict]:
    """Three uninterrupted tiny resnet runs: ``a`` and ``a2`` with the same seed, ``b`` with another."""
    runs = tmp_path_factory.mktemp("reference")
    return {"a": tiny_run(runs), "a2": tiny_run(runs), "b": tiny_run(runs, seed=SEED + 1), "runs": runs}


def interrupt_at(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """Make ``MinibatchTraining.update`` raise KeyboardInterrupt when it reaches step ``k`` (Ctrl-C)."""
    update = MinibatchTraining.update

    def interrupted(self, step):
        if step == k:
            raise KeyboardInterrupt
        return update(self, step)

    monkeypatch.setattr(MinibatchTraining, "update", interrupted)


# ------------------------------------------------------------------------------------------------
# Resume after an interruption (in-process)


@pytest.mark.parametrize(("milestone", "overrides", "resume_with"), [
    ("resnet", TINY, "path"),
    # alexnet draws from torch's generator every step (crop, flip, dropout): the RNG state must resume too.
    ("alexnet", ALEXNET_TINY, "latest"),
], ids=["resnet", "alexnet-rng"])
def test_resume_after_an_interruption_equals_an_uninterrupted_run(env, tmp_path, monkeypatch, milestone,
                                                                  overrides, resume_with):
    whole = tiny_run(tmp_path / "whole", milestone, overrides)

    runs = tmp_path / "interrupted"
    with monkeypatch.context() as m:
        interrupt_at(m, 7)  # checkpoints after steps 2 and 5; step 6 is done but not checkpointed
        with pytest.raises(KeyboardInterrupt):
            tiny_run(runs, milestone, overrides)
    variant = {"resnet": "residual", "alexnet": "cnn"}[milestone]
    (run_dir,) = run_dirs(runs, milestone, variant)
    assert not (run_dir / "result.json").exists()
    assert checkpoint.load(run_dir / "checkpoint.safetensors")["step"] == 5
    assert max(r["step"] for r in records(run_dir)) == 6  # records past the checkpoint, to be dropped

    resumed = dlhistory.run(milestone, runs_dir=str(runs), progress=False, evals=2, checkpoint_every=3,
                            resume=str(run_dir) if resume_with == "path" else "latest")

    assert resumed["run_dir"] == str(run_dir)
    assert run_dirs(runs, milestone, variant) == [run_dir]  # no new directory
    assert resumed["status"] == "complete" and resumed["steps"] == whole["steps"]
    assert (resumed["seed"], resumed["overrides"], resumed["preset"]) == (SEED, whole["overrides"], "smoke")
    assert_same_final_metrics(whole, resumed)
    a, b = weights(Path(whole["run_dir"]) / "model.safetensors"), weights(run_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    assert_no_duplicate_records(run_dir)
    ours, theirs = records(run_dir), records(whole["run_dir"])
    assert sorted((r["step"], r["split"]) for r in ours) == sorted((r["step"], r["split"]) for r in theirs)
    val = {r["step"]: r for r in theirs if r["split"] == "val"}
    for r in (r for r in ours if r["split"] == "val"):
        assert r["loss"] == pytest.approx(val[r["step"]]["loss"], abs=1e-6, rel=0)


def test_resume_refuses_different_overrides(env, reference):
    run_dir = reference["a"]["run_dir"]
    with pytest.raises(UsageError, match="overrides"):
        dlhistory.run("resnet", runs_dir=str(reference["runs"]), progress=False, resume=run_dir,
                      overrides={"algorithm.lr": 0.5})


def test_resume_continues_the_variant_of_the_run(env, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    with monkeypatch.context() as m:
        interrupt_at(m, 4)
        with pytest.raises(KeyboardInterrupt):
            tiny_run(runs, variant="plain")
    (run_dir,) = run_dirs(runs, "resnet", "plain")
    resumed = dlhistory.run("resnet", runs_dir=str(runs), progress=False, evals=2, resume=str(run_dir))
    assert resumed["variant"] == "plain"
    assert resumed["components"]["model"]["name"] == "plain"


# ------------------------------------------------------------------------------------------------
# Resume after kill -9 (a separate process, killed without warning)

# ``python -m dlhistory`` with every update slowed by 0.2 s, so that the kill lands mid-run however
# fast the machine is. Only the killed run is slowed; the resumed run is the plain command.
SLOW_CLI = """\
import os, runpy, sys, time
from dlhistory.algorithms import supervised
update = supervised.MinibatchTraining.update
def slow(self, step):
    time.sleep(float(os.environ.get("SLOW_STEP_SECONDS", "0.2")))
    hold = os.environ.get("SLOW_HOLD")  # past the first checkpoint, wait while this file exists
    while hold and step >= 3 and os.path.exists(hold):
        time.sleep(0.05)
    return update(self, step)
supervised.MinibatchTraining.update = slow
os.environ["DLHISTORY_ALLOCATOR"] = "system"  # re-executing with tcmalloc would drop the patch above
runpy.run_module("dlhistory", run_name="__main__", alter_sys=True)
"""


def cli_args(runs: Path, *extra: str) -> list[str]:
    """The tiny run's command line; resuming, only what a resume may say (the run knows the rest)."""
    common = ["--runs-dir", str(runs), "--no-progress", "--evals", "2", *extra]
    if "--resume" in extra:
        return ["run", "resnet", *common]
    overrides = [f"{k}={v}" for k, v in TINY.items()]
    return ["run", "resnet", *overrides, "--preset", "smoke", "--seed", str(SEED), "--precision", "fp32",
            *common]


def start_and_kill(runs: Path, env: dict, after_step: int, timeout: float = 120, sig: int = signal.SIGKILL,
                   meanwhile=None) -> Path | None:
    """Start the slowed CLI, send it ``sig`` once a checkpoint after ``after_step`` exists (calling
    ``meanwhile(run_dir)`` first, while it runs); its run directory.

    None when the run finished before it could be killed (the caller retries).
    """
    process = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *cli_args(runs, "--checkpoint-every", "2")],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            found = list((runs / "resnet" / "residual").glob("*/checkpoint.safetensors"))
            # The checkpoint is replaced atomically, so reading it while the run writes is safe.
            if found and checkpoint.load(found[0])["step"] >= after_step:
                if meanwhile is not None:
                    meanwhile(found[0].parent)
                os.kill(process.pid, sig)
                break
            if process.poll() is not None:
                break
            assert time.monotonic() < deadline, "no checkpoint appeared in time"
            time.sleep(0.02)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stopped = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 130}[sig]
    if process.returncode != stopped:
        assert process.returncode == 0, err
        return None  # finished before the kill
    if sig == signal.SIGTERM:  # stopped as by Ctrl-C: one line that says how to continue
        assert err.strip().splitlines()[-1] == "dlhistory: interrupted; continue with --resume latest", err
    (run_dir,) = run_dirs(runs)
    return run_dir


def test_resume_after_kill_9_equals_an_uninterrupted_run(env, reference, tmp_path):
    child_env = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        runs = tmp_path / f"attempt{attempt}"
        run_dir = start_and_kill(runs, child_env, after_step=3)
        if run_dir is not None:
            break
    else:
        pytest.fail("the run finished before it could be killed, three times")

    assert not (run_dir / "result.json").exists()
    killed_at = checkpoint.load(run_dir / "checkpoint.safetensors")["step"]
    assert 3 <= killed_at < TINY_STEPS - 1

    done = subprocess.run([sys.executable, "-m", "dlhistory", *cli_args(runs, "--resume", str(run_dir))],
                          env=child_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"run directory: {run_dir}" in done.stdout

    assert run_dirs(runs) == [run_dir]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "complete" and result["steps"] == TINY_STEPS
    assert_same_final_metrics(reference["a"], result)
    a = weights(Path(reference["a"]["run_dir"]) / "model.safetensors")
    b = weights(run_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert_no_duplicate_records(run_dir)
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".part")] == []


# ------------------------------------------------------------------------------------------------
# The NaN guard


def nan_loss_from(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """From step ``k`` on, the loss is NaN: its gradients, and then the weights, become NaN."""
    update = MinibatchTraining.update

    def poisoned(self, step):
        if step < k:
            return update(self, step)
        real = self.loss

        def nan_loss(outputs, targets):
            loss, metrics = real(outputs, targets)
            return loss * math.nan, metrics

        self.loss = nan_loss
        try:
            return update(self, step)
        finally:
            self.loss = real

    monkeypatch.setattr(MinibatchTraining, "update", poisoned)


def nan_weights_after(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """Step ``k`` reports a finite loss but leaves a NaN in the weights (e.g. an overflowing update)."""
    update = MinibatchTraining.update

    def poisoned(self, step):
        metrics = update(self, step)
        if step == k:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = math.nan
        return metrics

    monkeypatch.setattr(MinibatchTraining, "update", poisoned)


def assert_diverged_cleanly(error: runner.Diverged, runs: Path, failing_step: int, what: str) -> None:
    message = str(error)
    assert isinstance(error, UsageError) and error.exit_code == 2
    assert "\n" not in message
    assert "NaN" in message and f"step {failing_step}" in message and what in message
    (run_dir,) = run_dirs(runs)
    assert str(run_dir / "checkpoint.safetensors") in message

    state = checkpoint.load(run_dir / "checkpoint.safetensors")
    assert state["step"] == failing_step - 1  # the last good one (checkpoint_every=1)
    for name, tensor in state["weights"]["model"].items():
        assert torch.isfinite(tensor.float()).all(), name
    for group in state["procedure"]["optimizer"]["state"].values():
        assert all(torch.isfinite(t).all() for t in group.values() if isinstance(t, torch.Tensor))

    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "diverged" and result["error"] == message
    assert not (run_dir / "model.safetensors").exists()
    for r in records(run_dir):  # nothing non-finite was logged
        assert all(math.isfinite(v) for v in r.values() if isinstance(v, float)), r


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(env, tmp_path, monkeypatch):
    nan_loss_from(monkeypatch, 6)
    runs = tmp_path / "runs"
    with pytest.raises(runner.Diverged) as info:
        tiny_run(runs, checkpoint_every=1)
    assert_diverged_cleanly(info.value, runs, failing_step=6, what="loss")


def test_nan_weights_never_reach_a_checkpoint(env, tmp_path, monkeypatch):
    nan_weights_after(monkeypatch, 6)
    runs = tmp_path / "runs"
    with pytest.raises(runner.Diverged) as info:
        tiny_run(runs, checkpoint_every=1)
    assert_diverged_cleanly(info.value, runs, failing_step=6, what="weights")


def test_a_diverging_run_through_the_cli_exits_2_with_one_line(env, tmp_path):
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "dlhistory", *cli_args(runs, "--checkpoint-every", "1"),
                           "algorithm.lr=1e30"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("dlhistory: error: ")
    assert "NaN" in lines[0] and "checkpoint" in lines[0]
    (run_dir,) = run_dirs(runs)
    assert json.loads((run_dir / "result.json").read_text())["status"] == "diverged"
    state = checkpoint.load(run_dir / "checkpoint.safetensors")
    assert all(torch.isfinite(t).all() for t in state["weights"]["model"].values())


# ------------------------------------------------------------------------------------------------
# Run directories and result.json


def test_two_runs_with_the_same_options_get_different_directories(reference):
    a, a2 = Path(reference["a"]["run_dir"]), Path(reference["a2"]["run_dir"])
    assert a != a2 and a.parent == a2.parent == reference["runs"] / "resnet" / "residual"
    for run_dir in (a, a2):
        missing = [name for name in RUN_FILES if not (run_dir / name).exists()]
        assert missing == [], run_dir
        assert list((run_dir / "tensorboard").iterdir()), "no TensorBoard events"
        assert json.loads((run_dir / "result.json").read_text()) == json.loads(
            json.dumps(reference["a" if run_dir == a else "a2"], default=str))


def test_result_records_what_reproduces_the_run(reference):
    result = reference["a"]
    assert result["status"] == "complete"
    assert result["seed"] == SEED and result["preset"] == "smoke" and result["variant"] == "residual"
    assert result["overrides"] == [f"{k}={v}" for k, v in TINY.items()]
    assert result["versions"]["torch"] == torch.__version__
    assert {"python", "numpy", "dlhistory"} <= set(result["versions"])
    assert isinstance(result["commit"], str) and result["commit"]
    recipe = runner.load_recipe(catalogue.get("resnet"), "smoke", None, tuple(result["overrides"]))
    assert result["components"]["model"]["config"]["n"] == recipe.model.config.n == 1
    assert result["parameters"] > 0
    assert result["steps"] == TINY_STEPS
    assert result["samples_per_s"] > 0 and result["train_seconds"] > 0
    assert result["threads"] == 1
    for key in FINAL:
        assert math.isfinite(result[key])
    assert 0 <= result["test_accuracy"] <= 1


def test_parameter_count_is_the_models(reference):
    state = weights(Path(reference["a"]["run_dir"]) / "model.safetensors")
    trainable = sum(t.numel() for k, t in state.items()
                    if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert reference["a"]["parameters"] == trainable


def test_result_records_wall_time(reference):
    result = reference["a"]
    assert "wall_seconds" in result
    assert result["wall_seconds"] >= result["train_seconds"] > 0


# ------------------------------------------------------------------------------------------------
# Determinism and precision


def test_same_seed_same_result_and_weights(reference):
    a, a2 = reference["a"], reference["a2"]
    assert a2["test_accuracy"] == a["test_accuracy"]
    for key in FINAL:
        assert a2[key] == a[key], key
    wa = weights(Path(a["run_dir"]) / "model.safetensors")
    wa2 = weights(Path(a2["run_dir"]) / "model.safetensors")
    assert wa.keys() == wa2.keys()
    for k in wa:
        assert torch.equal(wa[k], wa2[k]), k


def test_different_seeds_give_different_weights(reference):
    wa = weights(Path(reference["a"]["run_dir"]) / "model.safetensors")
    wb = weights(Path(reference["b"]["run_dir"]) / "model.safetensors")
    assert reference["b"]["seed"] == SEED + 1
    assert not torch.equal(wa["fc.weight"], wb["fc.weight"])
    assert sum(not torch.equal(wa[k], wb[k]) for k in wa if wa[k].is_floating_point()) > len(wa) // 2


def test_fp32_is_recorded(reference):
    config = json.loads((Path(reference["a"]["run_dir"]) / "config.json").read_text())
    assert config["precision"] == "fp32" and reference["a"]["precision"] == "fp32"
    assert config["seed"] == SEED and config["device"] == "cpu"


def test_an_unknown_precision_is_a_usage_error_and_writes_nothing(env, tmp_path):
    with pytest.raises(UsageError, match="bogus") as info:
        tiny_run(tmp_path / "runs", precision="bogus")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "runs").exists() or run_dirs(tmp_path / "runs") == []


def test_denormals_are_flushed_only_during_a_run(run_env, tmp_path, monkeypatch):
    seen = []
    update = MinibatchTraining.update

    def probing(self, step):
        seen.append((torch.tensor([1e-40]) * 1.0).item())  # a denormal survives unless flushed
        return update(self, step)

    monkeypatch.setattr(MinibatchTraining, "update", probing)
    dlhistory.run("adam", preset="smoke", runs_dir=str(tmp_path), progress=False, evals=1)
    assert seen and all(v == 0.0 for v in seen)
    assert (torch.tensor([1e-40]) * 1.0).item() > 0  # restored for whatever the process runs next


# ------------------------------------------------------------------------------------------------
# A comparison (and so a review) continues where it stopped


def test_an_interrupted_compare_continues_the_interrupted_run(env, reference, tmp_path, monkeypatch):
    import dataclasses

    from dlhistory import comparison
    from dlhistory.spec import Point

    tiny = tuple(f"{k}={v}" for k, v in TINY.items())
    resnet = catalogue.get("resnet")
    one_point = dataclasses.replace(resnet, claim=dataclasses.replace(
        resnet.claim, points=lambda m, preset: [Point("residual", "tiny", tiny)], seeds=1))
    options = {"runs_dir": str(tmp_path), "precision": "fp32", "evals": 2, "checkpoint_every": 3,
               "progress": False, "first_seed": SEED, "log": lambda _: None}
    with monkeypatch.context() as m:
        interrupt_at(m, 7)
        with pytest.raises(KeyboardInterrupt):
            comparison.compare(one_point, "smoke", 1, **options)
    (run_dir,) = run_dirs(tmp_path)
    said = []
    c = comparison.compare(one_point, "smoke", 1, **{**options, "log": said.append})
    assert any(f"continuing {run_dir}" in line for line in said), said
    assert run_dirs(tmp_path) == [run_dir]
    assert_same_final_metrics(reference["a"], c.results["residual tiny"][0])
    # and a third time, the finished run is reused
    said.clear()
    comparison.compare(one_point, "smoke", 1, **{**options, "log": said.append})
    assert any(f"reused {run_dir}" in line for line in said), said


def test_resume_refuses_a_run_that_has_ended(env, reference):
    with pytest.raises(UsageError, match="has ended"):
        dlhistory.run("resnet", resume=reference["a"]["run_dir"], progress=False)


def test_sigterm_stops_a_run_like_ctrl_c_and_it_resumes_exactly(env, reference, tmp_path):
    child_env = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        runs = tmp_path / f"attempt{attempt}"
        run_dir = start_and_kill(runs, child_env, after_step=3, sig=signal.SIGTERM)
        if run_dir is not None:
            break
    else:
        pytest.fail("the run finished before it could be stopped, three times")
    done = subprocess.run([sys.executable, "-m", "dlhistory", *cli_args(runs, "--resume", str(run_dir))],
                          env=child_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_same_final_metrics(reference["a"], json.loads((run_dir / "result.json").read_text()))


def test_a_second_process_cannot_resume_a_run_that_is_training(env, tmp_path):
    # The first process holds its step 3 until the second (a Python that imports torch, seconds on a
    # busy machine) has been answered: it must arrive while the first still trains, or it would find
    # the run ended and rightly continue it. A timed slowdown lost that race on a slow CI machine.
    hold = tmp_path / "hold"
    hold.touch()
    child_env = {**os.environ, **env, "OMP_NUM_THREADS": "1", "SLOW_HOLD": str(hold)}
    refused = []

    def second(run_dir: Path) -> None:
        refused.append(subprocess.run([sys.executable, "-m", "dlhistory",
                                       *cli_args(tmp_path, "--resume", str(run_dir))],
                                      env={**child_env, "SLOW_HOLD": ""}, capture_output=True, text=True,
                                      timeout=300))
        hold.unlink()

    start_and_kill(tmp_path, child_env, after_step=1, meanwhile=second)
    (proc,) = refused
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "is in use by process" in line and line.startswith("dlhistory: error: ")


# ------------------------------------------------------------------------------------------------
# Values torch refuses, memory, another model's checkpoint, a full disk: one line, nothing left


@pytest.mark.parametrize(("milestone", "override", "said"), [
    ("alexnet", "model.dropout=1.5", "dropout probability has to be between 0 and 1"),
    ("alexnet", "loss.label_smoothing=2", "label_smoothing must be between 0.0 and 1.0"),  # at the 1st step
    ("alexnet", "model.width=1000000", "does not fit in memory"),
])
def test_a_value_torch_refuses_is_one_line_and_leaves_no_run(env, tmp_path, milestone, override, said):
    runs = tmp_path / "runs"
    with pytest.raises(UsageError, match=said) as raised:
        tiny_run(runs, milestone, {**ALEXNET_TINY, override.split("=")[0]: override.split("=")[1]})
    assert "\n" not in str(raised.value)
    assert not [p for p in runs.rglob("*") if p.is_file()]  # no config.json of a run that never ran


def test_debug_shows_the_traceback_of_a_refused_value(env, tmp_path, monkeypatch):
    monkeypatch.setenv("DLHISTORY_DEBUG", "1")
    with pytest.raises(ValueError, match="dropout probability"):
        tiny_run(tmp_path, "alexnet", {**ALEXNET_TINY, "model.dropout": 1.5})


def test_a_failure_after_a_checkpoint_keeps_the_run_and_its_traceback(env, tmp_path, monkeypatch):
    update = MinibatchTraining.update

    def broken(self, step):
        if step == 7:
            raise RuntimeError("a bug in a component")
        return update(self, step)

    monkeypatch.setattr(MinibatchTraining, "update", broken)
    with pytest.raises(RuntimeError, match="a bug in a component"):
        tiny_run(tmp_path)
    (run_dir,) = run_dirs(tmp_path)
    checkpoint.load(run_dir / "checkpoint.safetensors")  # kept, and resumable


def test_resuming_with_another_models_checkpoint_is_one_line(env, reference, tmp_path, monkeypatch):
    other = tiny_run(tmp_path / "other", "resnet", {**TINY, "model.n": 2})
    interrupt_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path)
    monkeypatch.undo()
    (run_dir,) = run_dirs(tmp_path)
    (run_dir / "checkpoint.safetensors").write_bytes(
        (Path(other["run_dir"]) / "checkpoint.safetensors").read_bytes())
    with pytest.raises(UsageError, match="does not fit this run's networks") as raised:
        dlhistory.run("resnet", resume=str(run_dir), runs_dir=str(tmp_path), progress=False)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("config", ["{not json", "{}"])
def test_resuming_a_run_whose_config_is_broken_is_one_line(env, tmp_path, config):
    run_dir = tmp_path / "resnet" / "residual" / "20260101-000000-smoke-s0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(config)
    with pytest.raises(UsageError, match=r"config\.json"):
        dlhistory.run("resnet", resume=str(run_dir), runs_dir=str(tmp_path), progress=False)


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_old_one(env, tmp_path, monkeypatch):
    from safetensors import SafetensorError

    saves = []
    real = checkpoint.save_file

    def full_after_one(tensors, path, metadata=None):  # what safetensors raises when the disk is full
        saves.append(path)
        if len(saves) > 1:
            raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                                  'message: "No space left on device" })')
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full_after_one)
    with pytest.raises(UsageError, match=r"No space left on device.*the previous one is kept") as raised:
        tiny_run(tmp_path)
    assert "\n" not in str(raised.value)
    (run_dir,) = run_dirs(tmp_path)
    checkpoint.load(run_dir / "checkpoint.safetensors")
    assert not list(run_dir.glob(".*.part"))
