"""2013 DQN: the replay memory's layout and sampling, the environments, the TD loss, the judge, runs and
the ``play`` tool.

The replay memory is checked against a naive agent that keeps its own frame stack (a deque refilled
with the first frame at every episode start): every state the memory rebuilds, across episode
boundaries and after the circular array wrapped, must be the one the agent saw.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dlhistory import checkpoint, runner
from dlhistory.algorithms.qlearning import DQN as DQNProcedure
from dlhistory.algorithms.qlearning import DQNConfig, epsilon
from dlhistory.algorithms.replay import ReplayMemory, TransitionMemory, Transitions
from dlhistory.data.environments import AtariConfig, CartPoleConfig, Environments
from dlhistory.errors import UsageError
from dlhistory.milestones import dqn as milestone_dqn
from dlhistory.milestones.dqn import TDConfig, TemporalDifference
from dlhistory.spec import Context
from dlhistory.tools import play as play_tool
from dlhistory.tools.play import PLAY

DQN = milestone_dqn.MILESTONE


@pytest.fixture
def env(monkeypatch):
    """One thread (the machine is shared); tests give each run an empty runs directory."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("DLHISTORY_THREADS", "1")
    yield
    torch.set_num_threads(threads)


def run(preset: str = "smoke", variant: str | None = None, overrides: dict | None = None, **options):
    """One run of the DQN milestone, without a progress bar."""
    items = tuple(f"{k}={v}" for k, v in (overrides or {}).items())
    return runner.run(DQN, runner.RunOptions(preset=preset, variant=variant, overrides=items, progress=False,
                                             **options))


# ------------------------------------------------------------------------------------------------
# The replay memory


def test_a_million_atari_frames_fit_well_under_8_gb():
    need = ReplayMemory.nbytes_for(1_000_000, (84, 84), np.uint8)
    assert need < 7.1e9  # 84 * 84 bytes per frame, stored once, plus 9 bytes of bookkeeping
    stacked = 1_000_000 * 2 * 4 * 84 * 84  # (s, s') as stacks of 4 frames
    assert stacked / need > 7.9
    small = ReplayMemory(100, (84, 84), np.uint8)
    assert small.nbytes == ReplayMemory.nbytes_for(100, (84, 84), np.uint8)
    assert small.frames.shape == (100, 84, 84)  # one frame per slot: no stack dimension


def _record(capacity: int, lengths: list[int], stack: int = 4, seed: int = 0):
    """Write episodes of the given lengths (frames numbered 1, 2, ...; terminal on even episodes, cut by a
    time limit on odd ones) into a memory and, beside it, what a naive stacking agent saw."""
    rng = np.random.default_rng(seed)
    memory = ReplayMemory(capacity, (1,), np.float32, stack)
    seen, counter = [], 0  # (state, action, reward, terminal, next state) as the agent experienced them
    for e, length in enumerate(lengths):
        counter += 1
        frames = deque([counter] * stack, maxlen=stack)
        memory.start(np.array([counter], np.float32))
        assert memory.state()[:, 0].tolist() == list(frames)
        for t in range(length):
            state = list(frames)
            counter += 1
            frames.append(counter)
            action, reward = int(rng.integers(4)), float(rng.normal())
            terminal = e % 2 == 0 and t == length - 1
            memory.add(action, reward, terminal, np.array([counter], np.float32))
            seen.append((tuple(state), action, reward, terminal, tuple(frames)))
            assert memory.state()[:, 0].tolist() == list(frames)  # what the agent acts on
    return memory, seen


def _as_tuples(batch: Transitions) -> list[tuple]:
    return [(tuple(s[:, 0].tolist()), int(a), float(r), bool(d), tuple(n[:, 0].tolist()))
            for s, a, r, d, n in zip(batch.states, batch.actions, batch.rewards, batch.terminals,
                                     batch.next_states, strict=True)]


def test_stacks_are_rebuilt_exactly_across_episode_boundaries():
    lengths = [1, 2, 3, 5, 8, 1, 4]
    memory, seen = _record(100, lengths)
    slots = np.arange(memory.written)
    valid = slots[memory.valid(slots)]
    assert len(valid) == len(seen) == sum(lengths) == len(memory)  # no transition from a final frame
    got = _as_tuples(memory.transitions(valid))
    for (state, action, reward, terminal, after), expected in zip(got, seen, strict=True):
        assert (state, action, terminal, after) == expected[:2] + expected[3:]
        assert reward == pytest.approx(expected[2])
    first = got[0]
    assert first[0] == (1.0, 1.0, 1.0, 1.0) and first[4] == (1.0, 1.0, 1.0, 2.0)


def test_after_wrapping_every_sample_is_a_transition_the_agent_made():
    memory, seen = _record(37, [3, 9, 1, 6, 12, 2, 7, 5, 11, 4, 8], seed=1)
    assert memory.written > 2 * memory.capacity
    recent = {t[0] + t[4]: t for t in seen}
    batch = memory.sample(2000, np.random.default_rng(0))
    for got in _as_tuples(batch):
        expected = recent[got[0] + got[4]]
        assert got[1] == expected[1] and got[3] == expected[3]
    # The oldest transitions held are sampled too, but none whose stack reaches overwritten frames.
    oldest_frame = memory.written - memory.capacity + 1  # frames are numbered by write order from 1
    assert min(min(t[0]) for t in _as_tuples(batch)) >= oldest_frame


def test_a_memory_resumes_from_its_state_dict():
    memory, _ = _record(37, [3, 9, 1, 6, 12, 2, 7], seed=2)
    copy = ReplayMemory(37, (1,), np.float32, 4)
    copy.load_state_dict(memory.state_dict())
    a, b = memory.sample(64, np.random.default_rng(5)), copy.sample(64, np.random.default_rng(5))
    assert _as_tuples(a) == _as_tuples(b) and len(copy) == len(memory)


def test_a_transition_memory_keeps_the_newest_whole_transitions():
    memory = TransitionMemory(25, (4,))
    for t in range(4):  # 4 batches of 10 environments: 40 transitions written, the newest 25 kept
        ids = torch.arange(10) + 10 * t
        states = ids[:, None].float().expand(10, 4)
        memory.add(states, ids % 2, ids.float(), ids % 3 == 0, states + 1000)
    assert len(memory) == 25
    batch = memory.sample(500, np.random.default_rng(0))
    ids = batch.states[:, 0, 0].long()
    assert batch.states.shape == (500, 1, 4) and ids.min() >= 15 and len(ids.unique()) == 25
    assert torch.equal(batch.next_states, batch.states + 1000) and torch.equal(batch.actions, ids % 2)
    assert torch.equal(batch.rewards, ids.float()) and torch.equal(batch.terminals, ids % 3 == 0)
    copy = TransitionMemory(25, (4,))
    copy.load_state_dict(memory.state_dict())
    again = copy.sample(500, np.random.default_rng(0))
    assert _as_tuples(again) == _as_tuples(batch) and len(copy) == 25


def test_many_environments_only_on_cartpole(env, tmp_path):
    with pytest.raises(UsageError, match=r"set algorithm\.envs=1 for Atari"):
        run("smoke-breakout", overrides={"algorithm.envs": 2}, runs_dir=str(tmp_path))
    with pytest.raises(ValueError, match="dividing train_every"):
        DQNConfig(train_every=10, envs=4)


def test_an_empty_memory_refuses_to_sample():
    memory = ReplayMemory(10, (1,), np.float32, 1)
    memory.start(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="no transition"):
        memory.sample(1, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------
# The environments


def test_cartpole_steps_and_truncates():
    env = Environments(CartPoleConfig(max_steps=5), seed=0).make()
    frame = env.reset()
    assert frame.shape == (4,) and frame.dtype == np.float32
    steps = [env.step(i % 2) for i in range(5)]
    assert all(s.reward == 1.0 and s.score == 1.0 for s in steps)
    last = steps[-1]
    assert last.truncated and last.game_over and not last.terminal


def test_evaluation_seeds_are_disjoint_from_training_seeds():
    data = Environments(CartPoleConfig(), seed=0)
    val, test = data.episode_seeds("val", 50), data.episode_seeds("test", 50)
    assert not set(val) & set(test) and min(val + test) > 10_000
    assert data.episode_seeds("val", 3) == val[:3]  # the same episodes at every evaluation


@pytest.mark.parametrize("config", [CartPoleConfig(), AtariConfig(game="Breakout")],
                         ids=["cartpole", "breakout"])
def test_an_environment_resumes_exactly_from_its_state(config):
    def play(env, n):  # a fixed action sequence, through game ends
        steps = []
        for i in range(n):
            steps.append(env.step((i * 7) % env.n_actions))
            if steps[-1].game_over:
                env.reset()
        return steps

    env = Environments(config, seed=3).make()
    env.reset()
    play(env, 20)
    state = env.state_dict()
    first = play(env, 60)
    other = Environments(config, seed=3).make()
    other.reset()
    other.load_state_dict(state)
    second = play(other, 60)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.frame, b.frame) and a[1:] == b[1:]


def test_breakout_preprocessing_episodic_life_and_clipping():
    data = Environments(AtariConfig(game="Breakout"), seed=0)
    assert (data.frame_shape, data.frame_dtype, data.n_actions, data.stack) == ((84, 84), np.uint8, 4, 4)
    train = data.make()
    frame = train.reset()
    assert frame.shape == (84, 84) and frame.dtype == np.uint8
    lives, lost, rng = train.lives, None, np.random.default_rng(0)
    for _ in range(5000):
        step = train.step(int(rng.integers(4)))
        assert step.reward == np.sign(step.score)  # clipped for learning, the score as the game gave it
        if step.terminal:
            lost = step
            break
    assert lost is not None and not lost.game_over  # a lost life ends the learner's episode, not the game
    train.reset()
    assert train.lives == lives - 1  # the same game goes on
    evaluation = data.make(seed=1, train=False)
    evaluation.reset()
    while not (step := evaluation.step(int(rng.integers(4)))).game_over:
        assert not step.terminal  # evaluation plays whole games


# ------------------------------------------------------------------------------------------------
# The algorithm and the loss


def test_epsilon_anneals_linearly_then_holds():
    config = DQNConfig(epsilon_start=1.0, epsilon_end=0.1, exploration_steps=100, learning_starts=32)
    assert [epsilon(config, s) for s in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])


def test_a_memory_smaller_than_learning_starts_is_refused():
    with pytest.raises(ValueError, match="learning_starts < memory"):
        DQNConfig(memory=1000, learning_starts=1000)


class _Fixed(torch.nn.Module):
    """A 'network' whose Q-values are a fixed table indexed by the state's single number."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table)

    def forward(self, states):
        return self.table[states[:, 0, 0].long()]


def test_td_target_max_and_double():
    online, target = _Fixed([[0.0, 0.0], [5.0, 1.0]]), _Fixed([[0.0, 0.0], [2.0, 3.0]])
    batch = Transitions(states=torch.zeros(2, 1, 1), actions=torch.zeros(2, dtype=torch.long),
                        rewards=torch.tensor([1.0, 1.0]), terminals=torch.tensor([False, True]),
                        next_states=torch.ones(2, 1, 1))
    plain = TemporalDifference(TDConfig(gamma=0.5)).target(batch, online, target)
    double = TemporalDifference(TDConfig(gamma=0.5, double=True)).target(batch, online, target)
    assert plain.tolist() == [1.0 + 0.5 * 3.0, 1.0]  # max_a' Q_target(s', a') = 3; no bootstrap at the end
    assert double.tolist() == [1.0 + 0.5 * 2.0, 1.0]  # a* = argmax Q_online = 0, valued by the target: 2


def test_huber_is_squared_near_zero_and_linear_beyond():
    huber, mse = TemporalDifference(TDConfig()), TemporalDifference(TDConfig(kind="mse"))
    q, y = torch.tensor([0.5, 3.0]), torch.zeros(2)
    assert float(huber(q, y)) == pytest.approx((0.5 * 0.25 + (3.0 - 0.5)) / 2)
    assert float(mse(q, y)) == pytest.approx((0.25 + 9.0) / 2)


def smoke_procedure(envs: int):
    """The smoke preset's DQN procedure acting in ``envs`` environments, built as the runner builds it."""
    torch.set_num_threads(1)  # as the runner would (the env fixture restores it)
    recipe = DQN.recipe("smoke")
    recipe = recipe.swap(algorithm=recipe.algorithm.with_config(
        dataclasses.replace(recipe.algorithm.config, envs=envs)))
    data = recipe.data(Context())
    return recipe.algorithm(recipe.model(data), recipe.loss(), data, Context())


def test_acting_in_many_environments_costs_the_same_every_step(env, monkeypatch):
    """Ten CartPoles: every step is one forward pass of ten states, exploring or not, so the cost key
    only says whether the step learns."""
    procedure = smoke_procedure(envs=10)
    forward = type(procedure.model).forward
    passes = []
    monkeypatch.setattr(type(procedure.model), "forward",
                        lambda self, x: passes.append(len(x)) or forward(self, x))
    for step in range(30):
        key = procedure.cost_key(step)
        passes.clear()
        learned = "loss" in procedure.update(step)
        assert key == learned == (step >= 19)
        assert passes == ([10, 32, 32] if learned else [10])  # act; learn: Q(s), the target's Q(s')
    assert procedure.env_steps == 300


def test_the_cost_key_says_what_a_step_will_do(env, monkeypatch):
    """The runner counts FLOPs once per cost key: the key, asked before a step, must say whether it takes
    a gradient step and how many of its actions are greedy (a forward pass each), without drawing."""
    procedure = smoke_procedure(envs=1)
    forward = type(procedure.model).forward
    passes = []
    monkeypatch.setattr(type(procedure.model), "forward",
                        lambda self, x: passes.append(len(x)) or forward(self, x))
    keys, done = [], []
    for step in range(60):  # learning starts at 200 transitions: step 19 (10 actions per step)
        keys.append(procedure.cost_key(step))
        passes.clear()
        learned = "loss" in procedure.update(step)
        done.append((learned, passes.count(1)))  # the greedy actions' forward passes, one state each
    assert keys == done
    assert [k[0] for k in keys].index(True) == 19 and all(k[0] for k in keys[19:])
    assert len(set(keys)) > 3  # epsilon falls from 1 over 1000 steps: more greedy actions


# ------------------------------------------------------------------------------------------------
# The claim


def _results(ours, linear=100.0, random=20.0):
    results = {"dqn": [{"status": "complete", "test_return": v} for v in ours],
               "dqn double": [{"status": "complete", "test_return": 480.0}]}
    if linear is not None:
        results["linear"] = [{"status": "complete", "test_return": linear}]
    if random is not None:
        results["random"] = [{"status": "complete", "test_return": random}]
    return results


def test_the_judge_counts_seeds_on_cartpole():
    verdict = milestone_dqn.judge(DQN, "cpu", _results([500, 500, 480, 475, 100]))
    assert verdict.outcome == "holds" and "4 of 5 seeds" in verdict.reason
    verdict = milestone_dqn.judge(DQN, "cpu", _results([500, 500, 480, 300, 100]))
    assert verdict.outcome == "FAILS" and "3 of 5 seeds" in verdict.reason
    verdict = milestone_dqn.judge(DQN, "cpu", _results([500] * 5, linear=500.0))
    assert verdict.outcome == "FAILS" and "beats linear (500.0) NO" in verdict.reason
    headers, rows = verdict.table
    assert headers[:2] == ("variant", "seed 0") and rows[0][:2] == ("dqn", "500.0")


def test_a_missing_baseline_is_not_judged():
    verdict = milestone_dqn.judge(DQN, "cpu", _results([500] * 5, linear=None))
    assert verdict.outcome == "not judged" and "missing baseline linear" in verdict.reason
    # Breakout needs only the random floor (no linear learner on pixels).
    breakout = {"dqn": [{"status": "complete", "test_return": 12.0}] * 5}
    verdict = milestone_dqn.judge(DQN, "cpu-breakout", breakout)
    assert verdict.outcome == "not judged" and "missing baseline random" in verdict.reason
    breakout["random"] = [{"status": "complete", "test_return": 1.5}]
    verdict = milestone_dqn.judge(DQN, "cpu-breakout", breakout)
    assert verdict.outcome == "holds", verdict.reason


def test_a_diverged_run_fails_the_claim_by_name():
    results = _results([500] * 5)
    results["dqn"][2] = {"status": "diverged", "error": "loss became NaN/Inf by step 7"}
    verdict = milestone_dqn.judge(DQN, "cpu", results)
    assert verdict.outcome == "FAILS" and "dqn diverged" in verdict.reason
    assert ("dqn", "500.0", "500.0", "diverged", "500.0", "500.0") in verdict.table[1]
    # Double DQN is run alongside, not judged: its divergence is said, not counted.
    results = _results([500] * 5)
    results["dqn double"] = [{"status": "diverged"}]
    verdict = milestone_dqn.judge(DQN, "cpu", results)
    assert verdict.outcome == "holds" and "dqn double diverged (not part of the claim)" in verdict.reason


def test_the_claim_reports_its_columns():
    keys = [m.key for m in DQN.claim.columns]
    assert keys[0] == "test_return" and {"test_return_last", "train_return", "steps", "train_seconds",
                                         "train_flops"} <= set(keys)


# ------------------------------------------------------------------------------------------------
# Runs


def test_breakout_smoke_run(env, tmp_path):
    result = run("smoke-breakout", runs_dir=str(tmp_path), evals=2)
    assert result["status"] == "complete" and result["steps"] == 100
    assert math.isfinite(result["test_return"]) and result["test_return"] >= 0
    for name in ("model", "target", "selected"):
        assert (Path(result["run_dir"]) / f"{name}.safetensors").exists()


def test_the_random_baseline_only_plays(env, tmp_path):
    result = run(variant="random", runs_dir=str(tmp_path))
    assert result["steps"] == 0 and result["parameters"] == 0 and result["train_games"] == 0
    assert 8 <= result["test_return"] <= 60  # random CartPole lasts about 22 steps


def test_a_smoke_run_logs_scores_against_environment_steps(env, tmp_path):
    result = run(runs_dir=str(tmp_path), evals=2)
    records = [json.loads(line) for line in (Path(result["run_dir"]) / "metrics.jsonl").open()]
    train = [r for r in records if r["split"] == "train" and "return" in r]
    val = [r for r in records if r["split"] == "val"]
    assert train and val and all("env_steps" in r for r in train + val)
    assert val[-1]["env_steps"] == 2000 and result["train_flops"] > 0
    assert DQNProcedure.panels[0].x == "env_steps"
    assert (Path(result["run_dir"]) / "curves.png").exists()


@pytest.mark.parametrize("envs", [1, 10])
def test_dqn_learns_cartpole_on_a_small_budget(env, tmp_path, envs):
    """30k environment steps of the cpu preset (seconds): the greedy policy already balances far longer
    than a random one, acting in one environment or in ten at once."""
    options = dict(preset="cpu", runs_dir=str(tmp_path), evals=5,
                   overrides={"algorithm.steps": 30_000, "algorithm.exploration_steps": 10_000,
                              "algorithm.val_episodes": 5, "algorithm.test_episodes": 10})
    learned = run(**{**options, "overrides": {**options["overrides"], "algorithm.envs": envs}})
    floor = run(variant="random", **options)
    assert learned["test_return"] > 3 * floor["test_return"], (learned["test_return"], floor["test_return"])


def resumable(runs: Path, **kwargs) -> dict:
    """A CartPole smoke run of seed 4 with a checkpoint every 60 updates."""
    return run(seed=4, runs_dir=str(runs), evals=2, checkpoint_every=60, **kwargs)


def interrupted_at_update_130(monkeypatch, runs: Path, **kwargs) -> Path:
    """Start a run, stop it as Ctrl-C would at update 130 (the last checkpoint: after update 119);
    its directory."""
    update = DQNProcedure.update

    def interrupted(self, step):
        if step == 130:
            raise KeyboardInterrupt
        return update(self, step)

    with monkeypatch.context() as m:
        m.setattr(DQNProcedure, "update", interrupted)
        with pytest.raises(KeyboardInterrupt):
            resumable(runs, **kwargs)
    (run_dir,) = (runs / "dqn" / "dqn").iterdir()
    return run_dir


@pytest.mark.parametrize("envs", ["1", "10"])
def test_resume_with_the_replay_memory_is_exact(env, tmp_path, monkeypatch, envs):
    """Interrupted at step 130 of 200, resumed: the same games, the same weights. With
    ``algorithm.save_buffer=true`` the checkpoint holds the memory, the games in progress and every
    random generator (one environment, or ten CartPoles stepped in torch)."""
    buffered = {"algorithm.save_buffer": "true", "algorithm.envs": envs}
    whole = resumable(tmp_path / "whole", overrides=buffered)
    run_dir = interrupted_at_update_130(monkeypatch, tmp_path / "half", overrides=buffered)
    assert checkpoint.load(run_dir / "checkpoint.safetensors")["procedure"]["memory"] is not None
    resumed = resumable(tmp_path / "half", resume=str(run_dir))
    for key in ("test_return", "val_return", "train_return", "train_games", "steps", "train_flops"):
        assert resumed[key] == whole[key], key
    a = load_file(str(Path(whole["run_dir"]) / "model.safetensors"))
    b = load_file(str(run_dir / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("envs", ["1", "10"])
def test_a_resume_without_the_memory_says_so_and_records_it(env, tmp_path, monkeypatch, capsys, envs):
    run_dir = interrupted_at_update_130(monkeypatch, tmp_path, overrides={"algorithm.envs": envs})
    resumed = resumable(tmp_path, resume=str(run_dir))
    assert "without the replay memory" in capsys.readouterr().err
    assert resumed["resumed_without_memory_at"] == [1200]  # the checkpoint after update 119
    assert json.loads((run_dir / "result.json").read_text())["resumed_without_memory_at"] == [1200]
    assert "resumed_without_memory_at" not in resumable(tmp_path / "again")


def test_checkpoints_leave_the_memory_out_unless_asked(env, tmp_path):
    result = run(runs_dir=str(tmp_path), evals=1)
    state = checkpoint.load(Path(result["run_dir"]) / "checkpoint.safetensors")
    assert state["procedure"]["memory"] is None


# ------------------------------------------------------------------------------------------------
# The play tool


def _play(*argv: str) -> None:
    """``dlhistory play dqn ARGV``, as the command line calls the tool."""
    parser = argparse.ArgumentParser(prog="dlhistory play", exit_on_error=False)
    PLAY.arguments(parser)
    PLAY.main(DQN, parser.parse_args(["dqn", *argv]))


def test_play_is_the_milestones_tool():
    assert DQN.tools == (PLAY,) and PLAY.name == "play"


def test_env_picks_the_preset():
    assert play_tool.preset_for(DQN, "cpu", None) == "cpu"
    assert play_tool.preset_for(DQN, "cpu", "cartpole") == "cpu"
    assert play_tool.preset_for(DQN, "cpu", "breakout") == "cpu-breakout"
    assert play_tool.preset_for(DQN, "smoke", "breakout") == "smoke-breakout"
    assert play_tool.preset_for(DQN, "full", "breakout") == "full"
    with pytest.raises(UsageError, match="no 'full' preset for --env cartpole"):
        play_tool.preset_for(DQN, "full", "cartpole")
    with pytest.raises(UsageError, match="'gpu'"):
        play_tool.preset_for(DQN, "gpu", None)


def test_play_writes_a_gif_and_prints_scores(env, tmp_path, capsys):
    result = run(runs_dir=str(tmp_path), evals=1)
    gif = tmp_path / "out" / "cartpole.gif"
    _play("--preset", "smoke", "--episodes", "2", "--gif", str(gif), "--runs-dir", str(tmp_path))
    out, err = capsys.readouterr()
    assert out.count("score") == 2 and result["run_dir"] in err
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames > 2 and image.size == (300, 200)  # Pillow merges repeated frames
    scores = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines()]
    assert f"({int(sum(scores)) + 2} frames)" in err  # CartPole scores 1 per step, + the start
    assert [p.name for p in gif.parent.iterdir()] == ["cartpole.gif"]  # no temporary file left


def test_play_never_picks_a_run_that_did_not_complete(env, tmp_path, capsys):
    """A diverged (or interrupted) run is not played; the newest completed one is, or none."""
    def fake(name: str, status: str | None) -> Path:
        run_dir = tmp_path / "dqn" / "dqn" / name
        run_dir.mkdir(parents=True)
        config = {"milestone": "dqn", "variant": "dqn", "preset": "smoke", "seed": 0, "overrides": [],
                  "precision": "fp32"}
        (run_dir / "config.json").write_text(json.dumps(config))
        if status:
            (run_dir / "result.json").write_text(json.dumps({"status": status}))
        return run_dir

    diverged = fake("diverged", "diverged")
    with pytest.raises(UsageError, match="no finished smoke runs of dqn/dqn"):
        _play("--preset", "smoke", "--runs-dir", str(tmp_path))
    with pytest.raises(UsageError, match="did not complete"):
        _play("--checkpoint", str(diverged))
    complete = run(runs_dir=str(tmp_path), evals=1)
    fake("interrupted", None)  # newer, but without a result
    _play("--preset", "smoke", "--episodes", "1", "--runs-dir", str(tmp_path))
    assert f"playing dqn/dqn (smoke): {complete['run_dir']}" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--episodes", "0"], "--episodes 0: play 1 to 100 games"),
    (["--episodes", "100000"], "play 1 to 100 games"),
    (["--seed", "-1"], "--seed -1: environment seeds are whole numbers"),
    (["--gif", "out.png"], "must end in .gif"),
    (["--gif", "/proc/x.gif"], "cannot write in /proc"),
    (["--gif", "/"], "a folder; give a file name ending in .gif"),
    (["--variant", "linaer"], "did you mean: linear"),
    (["--preset", "full", "--env", "cartpole"], "no 'full' preset for --env cartpole"),
    ([], "no finished cpu runs of dqn/dqn"),
])
def test_play_bad_input_is_one_line(tmp_path, args, message):
    with pytest.raises(UsageError, match=message) as raised:
        _play("--runs-dir", str(tmp_path), "--gif", str(tmp_path / "x.gif"), *args)
    assert "\n" not in str(raised.value)
    assert not list(tmp_path.glob("**/*.gif"))


def test_play_knows_only_its_environments():
    with pytest.raises(argparse.ArgumentError, match="invalid choice: 'pong'"):
        _play("--env", "pong")
