"""Several networks and phases: a toy milestone that pre-trains an autoencoder, then probes its features.

The model component builds three named networks (encoder, decoder, head); the algorithm runs two phases:
``pretrain`` (reconstruction, no labels) and ``probe`` (a linear head on the frozen encoder, on
``labels`` labelled images). The pre-training is stored once per (configs, seed) and reused by every
probe that starts from it; --resume works inside a phase and across the boundary.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn

from dlhistory import checkpoint, runner
from dlhistory.algorithms.supervised import OptimizerState, descend
from dlhistory.data.digits import DigitsConfig, digits_data
from dlhistory.records import read_jsonl
from dlhistory.spec import Claim, Component, Milestone, Phase, Recipe

# --- the four components ------------------------------------------------------------------------


@dataclass(frozen=True)
class NetsConfig:
    features: int = 16


def nets(config: NetsConfig, data) -> dict[str, nn.Module]:
    pixels = math.prod(data.shape)
    return {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(pixels, config.features), nn.ReLU()),
            "decoder": nn.Linear(config.features, pixels),
            "head": nn.Linear(config.features, data.num_classes)}


@dataclass(frozen=True)
class LossConfig:
    pass


def losses(config: LossConfig):
    return {"reconstruction": lambda x_hat, x: F.mse_loss(x_hat, x.flatten(1)),
            "classification": F.cross_entropy}


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 12
    lr: float = 1e-2


@dataclass(frozen=True)
class ProbeConfig:
    steps: int = 10
    labels: int = 100
    lr: float = 0.1


@dataclass(frozen=True)
class PhasesConfig:
    pretrain: PretrainConfig = PretrainConfig()
    probe: ProbeConfig = ProbeConfig()


class Pretrain(OptimizerState):
    samples_per_step = 32

    def __init__(self, config: PretrainConfig, nets, loss, data, ctx):
        self.config, self.nets, self.loss, self.data = config, nets, loss, data
        self.total_steps = config.steps
        self.modules = {k: nets[k] for k in ("encoder", "decoder")}
        params = [p for m in self.modules.values() for p in m.parameters()]
        self.optimizer = torch.optim.Adam(params, config.lr)

    def cost_key(self, step: int) -> int:
        return 0

    def update(self, step: int) -> dict:
        x, _ = self.data.train_batch(step, 32)
        loss = self.loss["reconstruction"](self.nets["decoder"](self.nets["encoder"](x)), x)
        descend(self.optimizer, loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict:
        x, _ = next(self.data.eval_batches(split, 10_000))
        return {"loss": self.loss["reconstruction"](self.nets["decoder"](self.nets["encoder"](x)), x).item()}


class Probe(OptimizerState):
    samples_per_step = 32

    def __init__(self, config: ProbeConfig, nets, loss, data, ctx):
        self.config, self.nets, self.loss, self.data = config, nets, loss, data
        self.total_steps = config.steps
        self.modules = dict(nets)
        self.optimizer = torch.optim.SGD(nets["head"].parameters(), config.lr)

    def update(self, step: int) -> dict:
        x, y = self.data.train_batch(step, 32)
        keep = torch.arange(len(y)) < self.config.labels  # a toy label budget
        with torch.no_grad():
            features = self.nets["encoder"](x[keep])
        loss = self.loss["classification"](self.nets["head"](features), y[keep])
        descend(self.optimizer, loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict:
        x, y = next(self.data.eval_batches(split, 10_000))
        logits = self.nets["head"](self.nets["encoder"](x))
        return {"loss": self.loss["classification"](logits, y).item(),
                "accuracy": (logits.argmax(1) == y).float().mean().item()}


def phases(config: PhasesConfig, nets, loss, data, ctx) -> tuple[Phase, ...]:
    return (Phase("pretrain", config.pretrain, Pretrain), Phase("probe", config.probe, Probe))


RECIPE = Recipe(Component("digits", digits_data, DigitsConfig()),
                Component("autoencoder", nets, NetsConfig()),
                Component("reconstruction+ce", losses, LossConfig()),
                Component("pretrain-then-probe", phases, PhasesConfig()))
TOY = Milestone(key="toy", year=2020, title="Toy", citation="", url="", showed="", variant="probe",
                presets={p: RECIPE for p in ("smoke", "cpu", "full")}, baselines={}, changes=(),
                claim=Claim("", "test_accuracy", "max", ""))


def toy_run(runs: Path, *overrides: str, seed: int = 0, **options) -> dict:
    options = {"precision": "fp32", "progress": False, "evals": 2, "checkpoint_every": 4, **options}
    return runner.run(TOY, runner.RunOptions(preset="smoke", seed=seed, overrides=overrides,
                                             runs_dir=str(runs), **options))


def phase_dirs(runs: Path) -> list[Path]:
    return sorted((runs / "toy" / "phases").iterdir())


def interrupt(monkeypatch: pytest.MonkeyPatch, procedure: type, at: int) -> None:
    update = procedure.update

    def interrupted(self, step):
        if step == at:
            raise KeyboardInterrupt
        return update(self, step)

    monkeypatch.setattr(procedure, "update", interrupted)


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("DLHISTORY_THREADS", "1")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --- tests --------------------------------------------------------------------------------------


def test_a_pretraining_runs_once_and_feeds_every_probe_that_shares_it(env, tmp_path):
    first = toy_run(tmp_path, "algorithm.probe.labels=8")
    (stored,) = phase_dirs(tmp_path)
    records = (stored / "metrics.jsonl").read_text()
    second = toy_run(tmp_path, "algorithm.probe.labels=32")
    assert phase_dirs(tmp_path) == [stored]  # the probe's own config is not part of the key
    assert first["phases"] == second["phases"] == {"pretrain": str(stored)}
    assert (stored / "metrics.jsonl").read_text() == records  # reused, not trained again
    assert first["pretrain_val_loss"] == second["pretrain_val_loss"]
    assert first["test_accuracy"] != second["test_accuracy"] or first["steps"] == second["steps"]
    # The pre-training's FLOPs count in each run that starts from it.
    pretrain = json.loads((stored / "result.json").read_text())["train_flops"]
    assert first["train_flops"] > pretrain > 0


def test_another_pretraining_config_or_seed_is_another_phase(env, tmp_path):
    toy_run(tmp_path)
    toy_run(tmp_path, "algorithm.pretrain.steps=8")
    toy_run(tmp_path, seed=1)
    toy_run(tmp_path, "model.features=8")
    assert len(phase_dirs(tmp_path)) == 4


def test_every_network_is_saved_by_name(env, tmp_path):
    result = toy_run(tmp_path)
    run_dir = Path(result["run_dir"])
    for folder in (run_dir, phase_dirs(tmp_path)[0]):
        for name in ("encoder", "decoder", "head"):
            assert (folder / f"{name}.safetensors").is_file(), (folder, name)
    # The probe trained the head on the pre-trained encoder, which it left as it was.
    encoder = safetensors.torch.load_file(run_dir / "encoder.safetensors")
    stored = safetensors.torch.load_file(phase_dirs(tmp_path)[0] / "encoder.safetensors")
    assert all(torch.equal(encoder[k], stored[k]) for k in encoder)
    assert result["parameters"] == sum(v.numel() for f in ("encoder", "decoder", "head")
                                       for v in safetensors.torch.load_file(run_dir / f"{f}.safetensors")
                                       .values())


def same_result(a: dict, b: dict) -> None:
    for key in ("test_accuracy", "val_loss", "pretrain_val_loss", "steps"):
        assert b[key] == pytest.approx(a[key], abs=1e-6, rel=0), key
    ours = safetensors.torch.load_file(Path(a["run_dir"]) / "head.safetensors")
    theirs = safetensors.torch.load_file(Path(b["run_dir"]) / "head.safetensors")
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_resume_across_the_phase_boundary(env, tmp_path, monkeypatch):
    whole = toy_run(tmp_path / "whole")
    runs = tmp_path / "interrupted"
    with monkeypatch.context() as m:
        interrupt(m, Probe, 6)
        with pytest.raises(KeyboardInterrupt):
            toy_run(runs)
    resumed = runner.run(TOY, runner.RunOptions(runs_dir=str(runs), resume="latest", progress=False, evals=2,
                                                checkpoint_every=4))
    same_result(whole, resumed)
    assert len(phase_dirs(runs)) == 1


def test_resume_inside_a_phase_continues_its_checkpoint(env, tmp_path, monkeypatch):
    whole = toy_run(tmp_path / "whole")
    runs = tmp_path / "interrupted"
    with monkeypatch.context() as m:
        interrupt(m, Pretrain, 9)  # checkpoints after steps 3 and 7
        with pytest.raises(KeyboardInterrupt):
            toy_run(runs)
    (stored,) = phase_dirs(runs)
    assert checkpoint.load(stored / "checkpoint.safetensors")["step"] == 7
    assert not (stored / "result.json").exists()
    resumed = runner.run(TOY, runner.RunOptions(runs_dir=str(runs), resume="latest", progress=False, evals=2,
                                                checkpoint_every=4))
    same_result(whole, resumed)
    steps = [(r["step"], r["split"]) for r in read_jsonl(stored / "metrics.jsonl")]
    assert len(steps) == len(set(steps))  # the records after the checkpoint were dropped, then redone


def test_a_flop_budget_stops_at_the_first_step_that_reaches_it(env, tmp_path, monkeypatch):
    step = _probe_step_flops(tmp_path)
    assert step > 0
    monkeypatch.setattr(Probe, "budget_flops", 2.5 * step, raising=False)
    result = toy_run(tmp_path / "budget", "algorithm.probe.steps=100")
    assert result["steps"] == 3  # two and a half steps' worth: the third reaches it


def _probe_step_flops(tmp_path: Path) -> float:
    one = toy_run(tmp_path / "p1", "algorithm.probe.steps=1")
    two = toy_run(tmp_path / "p2", "algorithm.probe.steps=2")
    return two["train_flops"] - one["train_flops"]


def test_two_processes_cannot_hold_one_run_directory(env, tmp_path):
    from dlhistory.errors import UsageError
    from dlhistory.records import hold

    with hold(tmp_path / "run"), pytest.raises(UsageError, match="in use by process"), hold(tmp_path / "run"):
        pass


def test_the_config_of_a_phase_is_an_override(env):
    recipe = runner.load_recipe(TOY, "smoke", None, ("algorithm.probe.labels=5",))
    assert recipe.algorithm.config == dataclasses.replace(PhasesConfig(), probe=ProbeConfig(labels=5))


def test_a_divergence_in_the_pretraining_ends_the_run_as_diverged(env, tmp_path):
    with pytest.raises(runner.Diverged):
        toy_run(tmp_path, "algorithm.pretrain.lr=1e30")
    (run_dir,) = (tmp_path / "toy" / "probe").iterdir()
    assert json.loads((run_dir / "result.json").read_text())["status"] == "diverged"
    assert not (phase_dirs(tmp_path)[0] / "result.json").exists()  # never reused
