"""The seq2seq and transformer milestones end to end at the smoke preset, and ``dlhistory translate``."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import pytest
from torch.utils.flop_counter import FlopCounterMode

import dlhistory
from conftest import offline_dataset
from dlhistory.cli import main
from dlhistory.comparison import run_owner
from dlhistory.errors import UsageError
from dlhistory.milestones import seq2seq, transformer
from dlhistory.runner import RunOptions, load_recipe, run
from dlhistory.spec import Context

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def nmt_env(shared_data, monkeypatch, tmp_path):
    offline_dataset(shared_data, "multi30k", monkeypatch, tmp_path / "cache")
    return tmp_path


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    """One smoke run of each model, shared by the translate tests."""
    if not (shared_data / "multi30k").is_dir():
        pytest.skip(f"Multi30k not found under {shared_data}")
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLHISTORY_THREADS", "1")
        for m in (seq2seq.MILESTONE, transformer.MILESTONE):
            for variant in m.variants:
                run(m, RunOptions(preset="smoke", variant=variant, runs_dir=str(runs),
                                  data_dir=str(shared_data), progress=False))
    return runs


@pytest.mark.parametrize("key", ["seq2seq", "transformer"])
def test_smoke_run_writes_bleu_perplexity_and_the_tokenizer(trained, key):
    run_dir = next((trained / key).glob("*/*/result.json")).parent
    result = json.loads((run_dir / "result.json").read_text())
    for metric in ("test_bleu", "val_bleu", "val_perplexity", "train_loss", "train_flops"):
        assert metric in result
    assert 0 <= result["test_bleu"] <= 100 and result["val_perplexity"] > 1 and result["train_flops"] > 0
    assert "tok:13a" in result["bleu_signature"]  # sacrebleu's signature of the BLEU it reports
    assert (run_dir / "tokenizer.json").exists() and (run_dir / "curves.png").read_bytes().startswith(PNG)


def test_transformer_baseline_is_the_2014_milestones_own_recipe_with_only_the_model_changed():
    m = transformer.MILESTONE
    ours, rnn = m.recipe("cpu"), m.recipe("cpu", "attention-rnn")
    assert rnn.differs_from(ours) == ("model",)
    assert rnn == seq2seq.MILESTONE.recipe("cpu")
    assert m.borrowed == {"attention-rnn": ("seq2seq", "attention")}
    assert ours.data is seq2seq.DATA  # unchanged components are the predecessor's, by name


def test_the_transformers_baseline_runs_are_the_2014_milestones_where_the_recipes_are_equal(
        trained, shared_data, tmp_path):
    trained = shutil.copytree(trained, tmp_path / "runs")  # the runs it adds stay here

    def compare(*overrides):
        return dlhistory.compare("transformer", preset="smoke", seeds=1, runs_dir=str(trained),
                                 progress=False, data_dir=str(shared_data), log=lambda _: None,
                                 overrides=overrides)

    made = set((trained / "seq2seq").glob("*/*/result.json"))
    c = compare()
    (rnn,) = c.results["attention-rnn"]
    assert Path(rnn["run_dir"]).parent == trained / "seq2seq" / "attention"  # the 2014 run, reused
    assert set((trained / "seq2seq").glob("*/*/result.json")) == made
    assert "transformer-attention-attention-rnn.png" in {p.name for p in c.paths.values()}  # drawn from it
    (rnn,) = compare("loss.label_smoothing=0.1").results["attention-rnn"]  # a change for both: still equal
    assert Path(rnn["run_dir"]).parent == trained / "seq2seq" / "attention"
    config = json.loads((Path(rnn["run_dir"]) / "config.json").read_text())
    assert config["overrides"] == ["loss.label_smoothing=0.1"]
    # At the full preset the Transformer trains 30 epochs and the 2014 milestone 20: its own run then.
    m = transformer.MILESTONE
    assert run_owner(m, "full", "attention-rnn", ()) == (m, "attention-rnn")
    assert run_owner(m, "cpu", "attention-rnn", ()) == (seq2seq.MILESTONE, "attention")


@pytest.mark.parametrize("m", [seq2seq.MILESTONE, transformer.MILESTONE], ids=lambda m: m.key)
def test_budgets_are_flops_at_cpu_and_steps_at_smoke_never_minutes(m):
    for preset in ("smoke", "cpu", "full"):
        configs = {v: m.recipe(preset, v).algorithm.config for v in m.variants}
        assert all(c.minutes is None for c in configs.values())
        assert len({c.flops for c in configs.values()}) == 1  # every variant: the same compute
    assert m.recipe("cpu").algorithm.config.flops is not None
    assert m.recipe("smoke").algorithm.config.flops is None


def test_the_translation_config_has_no_dead_fields():
    with pytest.raises(UsageError, match="warmup"):
        load_recipe(seq2seq.MILESTONE, "cpu", None, ("algorithm.warmup=0.5",))


def test_seq2seq_baseline_only_switches_attention_off():
    m = seq2seq.MILESTONE
    for preset in ("smoke", "cpu", "full"):
        ours, encdec = m.recipe(preset).model.config, m.recipe(preset, "encdec").model.config
        assert ours.attention and not encdec.attention
        assert {**vars(ours), "attention": False} == vars(encdec)


def test_translate_prints_one_line_per_sentence_and_draws_attention(trained, capsys, tmp_path):
    out = tmp_path / "attention.png"
    code = main(["translate", "seq2seq", "Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.",
                 "--runs-dir", str(trained), "--beam", "2", "--attention-map", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 2
    assert out.read_bytes().startswith(PNG)


def test_translate_in_batches_gives_each_sentence_in_its_place(trained, monkeypatch):
    """The tool searches batches of similar length (here of 2): every sentence comes out in the order
    given, exactly as searched in one batch (an output that never ends is cut at its own source's length
    + 50 subwords, whatever its batch); the first one's attention is kept."""
    from dlhistory.tools import translate

    sentences = ["Zwei Hunde spielen im Schnee.", "Ein Mann.", "Eine Frau liest ein Buch im Park.",
                 "Ein Kind."]
    run_dir = next((trained / "seq2seq" / "attention").glob("*/"))
    translator = translate.Translator(seq2seq.MILESTONE, run_dir)
    whole = translator.translate(sentences, beam=1)
    monkeypatch.setattr(translate, "BATCH", 2)
    batched = translator.translate(sentences, beam=1)
    assert len(batched.output_tokens) == 4
    assert batched.output_tokens == whole.output_tokens
    assert batched.first_attention is not None and batched.first_attention.dim() == 2


def test_translate_reads_a_file_and_a_checkpoint(trained, capsys, tmp_path):
    sentences = tmp_path / "in.txt"
    sentences.write_text("Ein Mann fährt Fahrrad.\n\nEine Frau liest ein Buch.\n", encoding="utf-8")
    run_dir = next((trained / "transformer" / "transformer").glob("*/"))
    code = main(["translate", "transformer", "--file", str(sentences), "--checkpoint",
                 str(run_dir / "checkpoint.safetensors"), "--attention-map", str(tmp_path / "t.png")])
    assert code == 0
    assert len(capsys.readouterr().out.strip().split("\n")) == 2
    assert (tmp_path / "t.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize("argv, message", [
    (["translate", "seq2seq"], "nothing to translate"),
    (["translate", "seq2seq", "Hallo.", "--beam", "0"], "beam width"),
    (["translate", "seq2seq", "Hallo.", "--beam", "100000"], "beam width is 1 (greedy) to 32"),
    (["translate", "seq2seq", "Hallo.", "--alpha", "nan"], "length-penalty exponent"),
    (["translate", "seq2seq", ""], "sentence 1 is empty"),
    (["translate", "seq2seq", "Hallo.", " "], "sentence 2 is empty"),
    (["translate", "seq2seq", " ".join(["Haus"] * 300)], "over the 200 this tool takes"),
    (["translate", "seq2seq", "Hallo.", "--attention-map", "/proc/x.png"], "cannot write in /proc"),
    (["translate", "seq2seq", "Hallo.", "--attention-map", "x.gif"], "must end in .png"),
    (["translate", "seq2seq", "Hallo.", "--checkpoint", "empty"], "not a run directory"),
    (["translate", "seq2seq", "Hallo.", "--checkpoint", "notes.txt"], "not a run directory"),
    (["translate", "seq2seq", "Hallo.", "--file", "/no/such/file.txt"], "cannot read it"),
    (["translate", "seq2seq", "Hallo.", "--checkpoint", "/no/such/run"], "not a run directory"),
    (["translate", "seq2seq", "Hallo.", "--variant", "nope"], "has no variant"),
    (["translate", "seq2seq", "--variant", "encdec", "Hallo.", "--attention-map", "x.png"], "no attention"),
])
def test_translate_bad_input_is_one_line_and_exit_2(trained, capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("empty").mkdir()
    Path("notes.txt").write_text("not weights\n")
    code = main([*argv, "--runs-dir", str(trained)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
    assert not Path("x.png").exists()


def test_translate_without_a_run_says_how_to_train_one(tmp_path, capsys):
    assert main(["translate", "transformer", "Hallo.", "--runs-dir", str(tmp_path)]) == 2
    assert "dlhistory run transformer" in capsys.readouterr().err


def test_translate_uses_only_runs_that_finished_and_says_which(trained, capsys, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained / "seq2seq", runs / "seq2seq")
    finished = next((runs / "seq2seq" / "attention").glob("*/"))
    broken = finished.with_name(finished.name + "-diverged")  # a newer run that did not complete
    shutil.copytree(finished, broken)
    result = json.loads((broken / "result.json").read_text())
    (broken / "result.json").write_text(json.dumps({**result, "status": "diverged"}))
    later = (broken / "config.json").stat().st_mtime + 10
    os.utime(broken / "config.json", (later, later))
    assert main(["translate", "seq2seq", "Hallo.", "--runs-dir", str(runs)]) == 0
    assert f"seq2seq/attention: {finished}" in capsys.readouterr().err
    assert main(["translate", "seq2seq", "Hallo.", "--checkpoint", str(broken)]) == 2
    assert "did not complete" in capsys.readouterr().err


def test_translate_refuses_a_run_of_another_milestone(trained, capsys):
    run_dir = next((trained / "transformer" / "transformer").glob("*/"))
    assert main(["translate", "seq2seq", "Hallo.", "--checkpoint", str(run_dir)]) == 2
    assert "is a run of transformer" in capsys.readouterr().err


def test_smoke_comparison_draws_bleu_against_flops_and_minutes_and_attention(trained, shared_data):
    c = dlhistory.compare("seq2seq", preset="smoke", seeds=1, runs_dir=str(trained), progress=False,
                          data_dir=str(shared_data), log=lambda _: None)
    assert c.verdict.outcome == "not judged"  # smoke proves the code runs
    assert all(r["status"] == "complete" for runs in c.results.values() for r in runs)
    names = sorted(p.name for k, p in c.paths.items() if k.startswith("figure"))
    assert names == ["seq2seq-attention-attention.png", "seq2seq-bleu-flops.png", "seq2seq-bleu-minutes.png",
                     "seq2seq.png"]  # the encoder-decoder without attention has no attention to draw
    assert all(p.read_bytes().startswith(PNG) for k, p in c.paths.items() if k.startswith("figure"))


def test_a_time_limit_stops_training_early(nmt_env):
    result = dlhistory.run("transformer", preset="smoke", runs_dir=str(nmt_env / "runs"), progress=False,
                           overrides={"algorithm.minutes": 1e-4, "algorithm.epochs": 5})
    assert result["steps"] < 5 * transformer.MILESTONE.recipe("smoke").data.config.train_size // 32
    assert result["train_seconds"] < 5


def test_a_flop_budget_stops_training_at_the_first_step_that_reaches_it(nmt_env):
    """The budget is 2.5 steps' worth of FLOPs, counted here step by step: the run takes 3 steps."""
    m = seq2seq.MILESTONE
    recipe = load_recipe(m, "smoke", None, ("algorithm.epochs=5",))
    data = recipe.data(Context(data_dir=os.environ["DLHISTORY_DATA"]))
    procedure = recipe.algorithm(recipe.model(data), recipe.loss(), data, Context())
    counts = []
    for step in range(4):
        with FlopCounterMode(display=False) as counter:
            procedure.update(step)
        counts.append(counter.get_total_flops())
    total = list(itertools.accumulate(counts))
    budget = (total[1] + total[2]) / 2
    result = dlhistory.run("seq2seq", preset="smoke", runs_dir=str(nmt_env / "runs"), progress=False, evals=2,
                           overrides={"algorithm.flops": budget, "algorithm.epochs": 5})
    assert result["steps"] == 3 and result["train_flops"] == total[2]
    val = [r for r in map(json.loads, Path(result["run_dir"], "metrics.jsonl").read_text().splitlines())
           if r["split"] == "val"]
    assert val[-1]["train_flops"] == total[2] and len(val) == 2  # evaluations spread over the budget


@pytest.mark.parametrize("key", ["seq2seq", "transformer"])
def test_both_models_learn_to_translate_their_training_sentences(nmt_env, key):
    """A learning test, not a smoke test: 30 epochs on 256 pairs must drive the training perplexity
    below the 500 of the vocabulary (an untrained model sits near it; measured: 87 and 93)."""
    result = dlhistory.run(key, preset="smoke", runs_dir=str(nmt_env / "runs"), progress=False, evals=1,
                           overrides={"algorithm.epochs": 30, "algorithm.lr": 3e-3})
    assert result["train_perplexity"] < 150, result["train_perplexity"]
