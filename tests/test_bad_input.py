"""Every subcommand against generated bad input: exit 0, or exit 2 with one short line; never a traceback;
nothing left behind that looks valid.

The subcommands are read from the command line's own parser, so a milestone's new tool (``sample``,
``generate``, ``classify``, ...) is driven here the day it is registered. Hypothesis builds the words:
milestone names, dotted overrides with wrong keys and wrong values (NaN, infinities, huge numbers, text,
empty), and every option of the subcommand with values of the wrong kind, out of range, or naming paths
that cannot be used (a file where a folder belongs, /proc, a folder that does not exist, an empty one).

An accepted command is stopped where training would begin (``runner._run``): what it would train is
covered by the smoke and learning tests; this harness is about the input. The tools run for real,
on finished smoke runs made once (where the test data is), so their input is probed past "no finished
run": loading a run, translating, playing, writing a picture.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlhistory
from dlhistory import catalogue, checkpoint, cli, pool, runner
from dlhistory.config import keys


class Reached(Exception):
    """The command was accepted and got as far as starting a run."""


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


KEYS = sorted({key for m in catalogue.CATALOGUE for key in keys(m.recipe("smoke"))})
BAD_KEYS = ["model.nope", "x.y", "model", "algorithm.", ".lr", "=", "data.train_size.x", "model.n.n"]
VALUES = ["nan", "inf", "-inf", "-1", "0", "1e999", "99999999999999999999999", "abc", "", "1,2", ",,,",
          "true", "None", "x" * 2000, "1e-3", "0.5", "3", "\x00", "é"]
TEXTS = ["the movie was [MASK] .", "[MASK]", "a charming film", "", " ", "[MASK] " * 300, "\x00", "é"]
"""A tool's one-word positional: sentences with and without [MASK], empty, huge."""
INDICES = ["0", "5", "-1", "99999", "1e3", "x"]
"""A tool's positional number (an image's index)."""
NAMES = st.sampled_from([m.key for m in catalogue.CATALOGUE] + ["", "alexnt", "x" * 500, "../etc", "ALEXNET"])


def overrides() -> st.SearchStrategy[list[str]]:
    key = st.sampled_from(KEYS + BAD_KEYS)
    return st.lists(st.builds(lambda k, v: f"{k}={v}", key, st.sampled_from(VALUES)) | st.sampled_from(
        ["noequals", "=value", "model.n==3"]), max_size=3)


def option_values(paths: dict[str, str]) -> st.SearchStrategy[str]:
    return st.sampled_from(["-1", "0", "1", "2", "3", "99999999999999999999", "abc", "", "nan", "smoke",
                            "cpu", "huge", "x" * 300, *paths.values()])


def command(name: str, parser: argparse.ArgumentParser,
            paths: dict[str, str]) -> st.SearchStrategy[list[str]]:
    """Words for ``dlhistory NAME ...``: its positionals, some of its options with generated values."""
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    positional = [a for a in parser._actions if not a.option_strings]

    def words(draw_milestone, draw_overrides, chosen, values, texts):
        argv = [name]
        for action, text in zip(positional, texts, strict=True):
            if action.dest == "milestone":
                argv.append(draw_milestone)
            elif action.dest == "overrides":
                argv += draw_overrides
            else:  # a sentence (translate, classify, unmask) or a folder (export)
                argv.append(text)
        for action, value in zip(chosen, values, strict=False):
            flag = action.option_strings[-1]
            argv += [flag] if action.nargs == 0 else [flag, value]
        return argv

    owners = [m.key for m in catalogue.CATALOGUE if any(t.name == name for t in m.tools)]
    names = st.sampled_from(owners) | NAMES if owners else NAMES  # a tool: its own milestones, often
    return st.builds(words, names, overrides(),
                     st.lists(st.sampled_from(options), max_size=4, unique_by=lambda a: a.dest) if options
                     else st.just([]),
                     st.lists(option_values(paths), min_size=4, max_size=4),
                     st.tuples(*(st.sampled_from(INDICES if a.type is int else [*TEXTS, *paths.values()])
                                 for a in positional)))


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("places")
    (root / "a-file.txt").write_text("not a run\n")
    (root / "empty").mkdir()
    bad = root / "bad-run"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    return {"file": str(root / "a-file.txt"), "empty": str(root / "empty"),
            "missing": str(root / "no" / "such"), "proc": "/proc/x", "bad run": str(bad),
            "gif": str(root / "out.gif"), "png": "/proc/x.png"}


SHRUNK = {"dqn": ("cpu", {"algorithm.steps": 2000, "algorithm.memory": 1000, "algorithm.learning_starts": 200,
                          "algorithm.exploration_steps": 1000, "algorithm.val_episodes": 1,
                          "algorithm.test_episodes": 1})}
"""A finished run for a tool whose default is another preset than smoke (``play`` plays cpu runs):
that preset, shrunk to seconds."""


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path | None:
    """Finished smoke runs of the milestones that have tools (translate: seq2seq, play: dqn), so the
    tools are driven past "no finished run" into loading and using one; None without the test data."""
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    data = Path(os.environ.get("DLHISTORY_TEST_DATA", data))
    if not (data / "multi30k").is_dir():
        return None
    runs = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as m:
        for name, value in {"DLHISTORY_DATA": str(data), "DLHISTORY_OFFLINE": "1", "DLHISTORY_THREADS": "1",
                            "DLHISTORY_CACHE": str(tmp_path_factory.mktemp("cache"))}.items():
            m.setenv(name, value)
        threads = torch.get_num_threads()
        for key in sorted({k for owners in cli.tools().values() for k in owners[:1]}):
            preset, overrides = SHRUNK.get(key, ("smoke", {}))
            dlhistory.run(key, preset=preset, overrides=overrides, runs_dir=str(runs), progress=False,
                          evals=1)
        torch.set_num_threads(threads)
    return runs


@pytest.fixture(scope="module")
def stop_before_training(finished):
    def reached(*args, **kwargs):
        raise Reached

    with pytest.MonkeyPatch.context() as m:
        m.setattr(runner, "_run", reached)
        # Runs in worker processes would not see the patch: an accepted parallel command stops here.
        m.setattr(pool.concurrent.futures, "ProcessPoolExecutor", reached)
        yield


def drive(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except Reached:
            code = 0
    return code, err.getvalue()


def assert_clean(code: int, err: str, argv: list[str]) -> None:
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dlhistory: error: "), (argv, err)
        assert len(lines[0]) < 600, (argv, len(lines[0]))


def assert_nothing_half_written(runs: Path) -> None:
    for path in runs.rglob("*"):
        assert not path.name.endswith(".part"), path
        if path.name == "result.json":
            assert json.loads(path.read_text())["status"] in ("complete", "diverged"), path
        if path.name == "checkpoint.safetensors":
            checkpoint.load(path)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_a_subcommand_takes_bad_input_cleanly(name, places, finished, stop_before_training, run_env,
                                              tmp_path_factory, monkeypatch):
    runs = tmp_path_factory.mktemp(f"runs-{name}")
    # A generated positional may be a relative folder ("0", "[MASK]") that a tool writes to: keep it
    # out of the checkout.
    monkeypatch.chdir(tmp_path_factory.mktemp(f"cwd-{name}"))
    tool = name in {t.name for t in cli.tools()}
    codes: list[int] = []

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(command(name, subcommands()[name], places))
    def probe(argv: list[str]) -> None:
        if "--runs-dir" not in argv and name not in ("list", "show"):
            argv = [*argv, "--runs-dir", str(finished if tool and finished else runs)]
        code, err = drive(argv)
        codes.append(code)
        assert_clean(code, err, argv)
        assert_nothing_half_written(runs)
        if finished:
            assert_nothing_half_written(finished)

    probe()
    if tool and finished:  # the generated input got as far as using a finished run, at least once
        assert 0 in codes, name


def test_every_subcommand_is_driven():
    """The harness reads the subcommands from the parser: every tool of the catalogue is among them."""
    names = set(subcommands())
    assert {"list", "show", "run", "compare", "sweep", "review"} <= names
    assert {t.name for m in catalogue.CATALOGUE for t in m.tools} <= names
