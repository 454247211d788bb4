"""2019 GPT: the model (KV-cache decoding against recomputing the prefix, rotary positions, parameter
counts), the data (windows as a pure function of seed and step, evaluation windows), the schedule, the
judge on synthetic results, a learning test and the ``sample`` tool."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

import dlhistory
from conftest import offline_dataset
from dlhistory.algorithms.language_model import LanguageModelTrainingConfig, cosine_learning_rate, optimizers
from dlhistory.cli import main
from dlhistory.data.shakespeare import ShakespeareConfig, entropy_of_unigrams, shakespeare_data
from dlhistory.milestones import gpt
from dlhistory.spec import Context

M = gpt.MILESTONE


@pytest.fixture
def text_env(shared_data, monkeypatch, tmp_path):
    return offline_dataset(shared_data, "tinyshakespeare", monkeypatch, tmp_path / "cache")


def tiny(**changes) -> gpt.GPT:
    torch.manual_seed(0)
    config = dataclasses.replace(gpt.GPTConfig(layers=2, heads=2, d_model=16), **changes)
    return gpt.GPT(config, vocab_size=11, block_size=12).eval()


# ------------------------------------------------------------------------------------------------
# The model


@pytest.mark.parametrize("changes", [{}, {"positions": "rotary"}, {"qk_norm": True},
                                     {"activation": "relu2", "tied": False}], ids=str)
def test_decoding_with_the_kv_cache_gives_the_logits_of_recomputing_the_prefix(changes):
    model = tiny(**changes)
    ids = torch.randint(11, (1, 12))
    whole = model(ids)
    caches = [{} for _ in model.blocks]
    first = model(ids[:, :5], caches)
    steps = [first] + [model(ids[:, t: t + 1], caches) for t in range(5, 12)]
    assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5)


def test_generation_gives_the_tokens_of_recomputing_the_last_block_each_step():
    model = tiny()
    prompt = torch.randint(11, (1, 4))
    drawn = list(model.generate(prompt, 20, temperature=1.0, top_k=5,
                                generator=torch.Generator().manual_seed(3)))
    # The same draws without a cache: every step reads the last block_size tokens afresh (nanoGPT).
    generator, context, expected = torch.Generator().manual_seed(3), prompt, []
    for _ in range(20):
        logits = model(context[:, -model.block_size:])
        token = gpt._draw(logits[:, -1], 1.0, 5, generator)
        expected.append(int(token))
        context = torch.cat([context, token.view(1, 1)], 1)
    assert drawn == expected  # 20 tokens after 4: the window is full from the 9th on


def test_rotary_attention_depends_only_on_relative_positions():
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    scores = [float((gpt.rotate(q, start + 3) * gpt.rotate(k, start)).sum()) for start in (0, 5, 40)]
    assert max(scores) - min(scores) < 1e-4


def test_tied_embedding_and_non_embedding_parameters():
    model = tiny()
    assert model.head.weight is model.wte.weight
    total = sum(p.numel() for p in model.parameters())
    assert model.non_embedding_parameters() == total - 11 * 16 - 12 * 16
    assert gpt.non_embedding_parameters(model.config) == model.non_embedding_parameters()


def test_the_context_is_bounded_with_a_clear_message():
    with pytest.raises(ValueError, match="at most 12"):
        tiny()(torch.zeros(1, 13, dtype=torch.long))


# ------------------------------------------------------------------------------------------------
# Data, schedule and the family


def test_training_windows_are_a_pure_function_of_seed_and_step(text_env):
    config = ShakespeareConfig(block_size=16)
    a = shakespeare_data(config, Context(seed=1))
    b = shakespeare_data(config, Context(seed=1))
    assert torch.equal(a.batch(7, 4)[0], b.batch(7, 4)[0])
    assert not torch.equal(a.batch(7, 4)[0], a.batch(8, 4)[0])
    x, y = a.batch(7, 4)
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    assert a.vocab_size == 65 and len(a.splits["train"]) == 1_003_854


def test_evaluation_reads_the_validation_split_once_in_consecutive_windows(text_env):
    data = shakespeare_data(ShakespeareConfig(block_size=64), Context())
    x, _ = data.evaluation_windows("val")
    val = data.splits["val"]
    assert torch.equal(x.flatten(), val[: x.numel()]) and len(val) - x.numel() <= 64


def test_the_learning_rate_warms_up_then_decays_to_its_floor():
    config = LanguageModelTrainingConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10)
    rates = [cosine_learning_rate(config, s, 110) for s in range(111)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[110] == pytest.approx(1e-4) and all(a >= b for a, b in itertools.pairwise(rates[9:]))


def test_the_family_spans_thirty_times_with_one_budget_rule():
    sizes = {name: gpt.size_budget("cpu", name) for name in gpt.FAMILY["cpu"]}
    n = [gpt.non_embedding_parameters(c) for c, _ in sizes.values()]
    assert len(n) >= 5 and max(n) / min(n) >= 30
    budgets = [tokens for _, tokens in sizes.values()]
    assert budgets == [gpt.TOKENS_PER_PARAMETER * p for p in n]
    names = [p.name for p in M.points("cpu")]
    assert names[:2] == ["gpt", "ngram"] and "small xs" in names and len(names) == 2 + len(gpt.FAMILY["cpu"])


def test_muon_updates_the_hidden_matrices_and_adamw_the_rest():
    model = tiny()
    muon, adamw = optimizers(LanguageModelTrainingConfig(optimizer="muon"), model)
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    assert all(p.ndim == 2 for g in muon.param_groups for p in g["params"])
    assert id(model.wte.weight) not in in_muon and id(model.blocks[0].attn.attention.w_q.weight) in in_muon
    assert len(in_muon) + sum(len(g["params"]) for g in adamw.param_groups) == len(list(model.parameters()))


# ------------------------------------------------------------------------------------------------
# The judge, on synthetic results


def _results(main=1.5, ngram=2.1, law=lambda n: 1.2 + 60 * n ** -0.5, broken=()):
    results = {"gpt": [{"val_loss_per_char": main + 0.01 * s, "val_loss": main} for s in range(3)],
               "ngram": [{"val_loss_per_char": ngram, "val_loss": ngram}] * 3}
    for point in M.points("cpu")[2:]:
        config, tokens = gpt.size_budget("cpu", point.label)
        n = gpt.non_embedding_parameters(config)
        results[point.name] = [{"val_loss": law(n) + 0.002 * s, "non_embedding_parameters": n,
                                "tokens": tokens, "val_loss_per_char": law(n), "train_flops": 6 * n * tokens}
                               for s in range(3)]
    for name in broken:
        results[name] = [{"status": "diverged"}] * 3
    return results


def test_the_claim_holds_on_results_that_meet_it():
    verdict = gpt.judge(M, "cpu", _results())
    assert verdict.outcome == "holds", verdict.reason
    assert "alpha 0.5" in verdict.reason and verdict.table is not None


@pytest.mark.parametrize(("results", "said"), [
    (_results(main=1.6), "main model 1.6"),
    (_results(ngram=1.9), "below the n-gram"),
    (_results(law=lambda n: 1.5 + 0.1 * math.sin(n)), "R^2"),
    (_results(broken=("gpt m",)), "gpt m diverged"),
])
def test_the_claim_fails_where_it_should(results, said):
    verdict = gpt.judge(M, "cpu", results)
    assert verdict.outcome == "FAILS" and said in verdict.reason


def test_the_claim_is_not_judged_without_its_runs():
    results = _results()
    del results["ngram"]
    assert gpt.judge(M, "cpu", results).outcome == "not judged"


# ------------------------------------------------------------------------------------------------
# Runs and the sample tool


def test_a_small_budget_learns_far_below_the_unigram_entropy(text_env, tmp_path):
    """300 steps of a 2-layer model: the validation loss falls well below the loss of a model that
    knows only character frequencies (3.34 nats)."""
    result = dlhistory.run("gpt", preset="smoke", runs_dir=str(tmp_path), progress=False, evals=1,
                           overrides={"model.layers": 2, "model.heads": 2, "model.d_model": 64,
                                      "data.block_size": 64, "algorithm.batch_size": 16,
                                      "algorithm.tokens": 300 * 16 * 64, "algorithm.warmup_steps": 30,
                                      "data.val_tokens": 20_000})
    data = shakespeare_data(ShakespeareConfig(), Context())
    unigram = entropy_of_unigrams(data.splits["val"], data.vocab_size)
    assert result["val_loss"] < unigram - 0.7, (result["val_loss"], unigram)


@pytest.fixture(scope="module")
def sampled_run(shared_data, tmp_path_factory):
    if not (shared_data / "tinyshakespeare").is_dir():
        pytest.skip("Tiny Shakespeare not found")
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("DLHISTORY_DATA", str(shared_data))
        m.setenv("DLHISTORY_THREADS", "1")
        dlhistory.run("gpt", preset="smoke", runs_dir=str(runs), progress=False, evals=1)
    return runs


def test_sample_streams_text_from_the_newest_run(sampled_run, capsys):
    code = main(["sample", "gpt", "--prompt", "ROMEO:", "--tokens", "50", "--runs-dir", str(sampled_run)])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("ROMEO:") and len(out.rstrip("\n")) == len("ROMEO:") + 50
    assert "gpt: " in err and str(sampled_run) in err


def test_sample_is_reproducible_by_seed(sampled_run, capsys):
    texts = []
    for _ in range(2):
        assert main(["sample", "gpt", "--tokens", "30", "--seed", "5", "--runs-dir", str(sampled_run)]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1]


@pytest.mark.parametrize(("argv", "said"), [
    (["--prompt", "naïve"], "outside the vocabulary"),
    (["--tokens", "0"], "--tokens 0"),
    (["--temperature", "0"], "--temperature 0"),
    (["--temperature", "nan"], "--temperature nan"),
    (["--top-k", "0"], "--top-k 0"),
    (["--prompt", ""], "--prompt is empty"),
    (["--checkpoint", "/no/such/run"], "not a run directory"),
    (["--init", "gpt2"], "give hf:DIR"),
    (["--variant", "ngram"], "no finished runs"),
])
def test_sample_bad_input_is_one_line(sampled_run, capsys, argv, said):
    code = main(["sample", "gpt", *argv, "--runs-dir", str(sampled_run)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and said in err and len(err.splitlines()) == 1, err
