"""MR sentence polarity for BERT: the fixed split, nested label budgets, the unlabeled pre-training corpus
(no validation or test sentence in it), the WordPiece tokenizer learnt on that corpus only, and batches
that are a pure function of (seed, step).

The whole data component is built once per module: learning WordPiece on the ~70k-sentence corpus takes
a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import offline_dataset
from dlhistory.data import polarity
from dlhistory.data.download import verify
from dlhistory.data.polarity import (
    CLS,
    PAD,
    SEP,
    SIZES,
    SPECIALS,
    PolarityConfig,
    label_subset,
    polarity_data,
)
from dlhistory.spec import Context


@pytest.fixture(scope="module")
def data_dir(shared_data, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        for dataset in ("rt-polarity", "tinyshakespeare", "multi30k"):
            offline_dataset(shared_data, dataset, mp, tmp_path_factory.mktemp("cache"))
        yield str(shared_data)


@pytest.fixture(scope="module")
def built(data_dir):
    """The data at the default config (all labels), and what ``learn_wordpiece`` was given."""
    given = []
    learn = polarity.learn_wordpiece
    polarity.tokenised.cache_clear()  # learnt afresh, so what it was given is seen
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(polarity, "learn_wordpiece", lambda s, v: given.append(list(s)) or learn(s, v))
        data = polarity_data(PolarityConfig(), Context(seed=0, data_dir=data_dir))
    return data, given


def test_shared_files_match_their_published_sha256(data_dir):
    for remote in polarity.FILES.values():
        assert verify(Path(data_dir) / remote.dataset / remote.name, remote)


def test_split_sizes_and_stratification(built):
    data, _ = built
    assert {k: data.size(k) for k in ("train", "val", "test")} == SIZES == {"train": 8530, "val": 1066,
                                                                            "test": 1066}
    for split in ("val", "test"):
        assert torch.bincount(data.splits[split].labels).tolist() == [533, 533]
    assert torch.bincount(data.splits["train"].labels).tolist() == [4265, 4265]
    every = data.text["train"] + data.text["val"] + data.text["test"]
    assert len(set(every)) == 2 * polarity.PER_CLASS  # disjoint, and together the whole dataset


def test_split_does_not_depend_on_the_run_seed(built, data_dir, monkeypatch):
    data, _ = built
    # Another run seed with a budget; a tiny corpus keeps this second build fast.
    monkeypatch.setattr(polarity, "pretraining_sentences", lambda train, data_dir: train[:200])
    other = polarity_data(PolarityConfig(vocab_size=300), Context(seed=7, data_dir=data_dir))
    assert other.text == data.text
    assert len(other.budget(100)) == 100 and not torch.equal(other.budget(100), data.budget(100))
    _, labels = polarity.load_sentences(data_dir)
    assert all(torch.equal(a, b) for a, b in zip(polarity.split_indices(labels, 0).values(),
                                                  polarity.split_indices(labels, 0).values(), strict=True))
    assert not torch.equal(polarity.split_indices(labels, 1)["val"], polarity.split_indices(labels, 0)["val"])


def test_without_the_corpus_the_tokenizer_is_learnt_on_the_training_sentences(data_dir, monkeypatch):
    given = []
    learn = polarity.learn_wordpiece
    polarity.tokenised.cache_clear()
    monkeypatch.setattr(polarity, "learn_wordpiece", lambda s, v: given.append(list(s)) or learn(s, v))
    data = polarity_data(PolarityConfig(vocab_size=300, corpus=False), Context(seed=0, data_dir=data_dir))
    assert given == [data.text["train"]] and data.corpus_size == 0
    with pytest.raises(ValueError, match="no unlabeled corpus"):
        data.pretraining_batch(0, 4, seed=0)


def test_pretraining_corpus_holds_no_validation_or_test_sentence(built, data_dir):
    data, given = built
    corpus = polarity.pretraining_sentences(data.text["train"], data_dir)
    assert len(given) == 1 and given[0] == corpus  # the tokenizer saw this corpus and nothing else
    assert data.corpus_size == len(corpus)
    assert len(data.stream) == data.corpus_tokens + len(corpus)  # each sentence and its [SEP]
    held_out = set(data.text["val"]) | set(data.text["test"])
    assert not held_out & set(corpus)
    assert set(data.text["train"]) <= set(corpus)
    assert data.corpus_tokens > len(corpus)  # reported: WordPiece tokens, without [CLS]/[SEP]


def test_in_domain_weight_repeats_the_mr_training_sentences_in_the_stream_only(built, data_dir):
    data = built[0]
    heavier = polarity_data(PolarityConfig(in_domain_weight=3), Context(seed=0, data_dir=data_dir))
    assert heavier.tokenizer.to_str() == data.tokenizer.to_str()  # learnt on the text, each sentence once
    assert (heavier.corpus_size, heavier.corpus_tokens) == (data.corpus_size, data.corpus_tokens)
    mr = sum(len(row) + 1 for row in polarity.pieces(data.tokenizer, data.text["train"]))  # with [SEP]
    assert len(heavier.stream) == len(data.stream) + 2 * mr
    assert torch.equal(heavier.stream[:mr], heavier.stream[mr:2 * mr])
    assert torch.equal(heavier.stream[2 * mr:], data.stream)
    with pytest.raises(ValueError, match="in_domain_weight 0"):
        PolarityConfig(in_domain_weight=0)


def test_label_budgets_are_nested_balanced_and_fixed_per_seed(built):
    labels = built[0].splits["train"].labels
    for seed in (0, 1):
        small, middle, whole = (set(label_subset(labels, n, seed).tolist()) for n in (250, 1000, 8530))
        assert small <= middle <= whole == set(range(8530))
        for n in (2, 3, 250, 251, 1000):
            index = label_subset(labels, n, seed)
            counts = torch.bincount(labels[index], minlength=2)
            assert len(set(index.tolist())) == n and counts.max() - counts.min() <= 1
        assert torch.equal(label_subset(labels, 250, seed), label_subset(labels, 250, seed))
    assert set(label_subset(labels, 250, 0).tolist()) != set(label_subset(labels, 250, 1).tolist())


def test_batches_are_a_pure_function_of_seed_and_step(built):
    data = built[0]
    a, b = data.pretraining_batch(5, 16, seed=3), data.pretraining_batch(5, 16, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], data.pretraining_batch(6, 16, seed=3)[0])
    assert not torch.equal(a[0], data.pretraining_batch(5, 16, seed=4)[0])
    ids, mask = a
    assert ids.shape == mask.shape == (16, 64) and mask.all()  # full windows: no padding
    assert (ids[:, 0] == CLS).all() and (ids[:, 1:] != CLS).all() and (ids[:, 1:] != PAD).all()
    assert (ids == SEP).any()  # windows span sentences
    for labels in (None, 250):
        later = data.train_batch(9, 32, labels)
        data.train_batch(0, 32, labels)  # another epoch in between must not change step 9's batch
        data.train_batch(9, 32, 1000)  # nor another budget's batch
        assert all(torch.equal(x, y) for x, y in zip(later, data.train_batch(9, 32, labels), strict=True))
        ids, mask, y = later
        assert ids.shape[0] == y.shape[0] == 32 and y.dtype == torch.long
    # An epoch of a budget covers the budget's sentences once.
    def sentences(batches):
        return sorted(tuple(row[m].tolist()) for ids, mask, _ in batches
                      for row, m in zip(ids, mask, strict=True))

    budget = data.splits["train"].rows(data.budget(250))
    assert sentences(data.train_batch(step, 50, 250) for step in range(5)) == sentences([budget])
    val = list(data.eval_batches("val", 500))
    assert [len(b[2]) for b in val] == [500, 500, 66]
    assert sorted(torch.cat([b[2] for b in val]).tolist()) == sorted(data.splits["val"].labels.tolist())
    assert [b[1].shape[1] for b in val] == sorted(b[1].shape[1] for b in val)  # shortest first
    assert sum(len(b[2]) for b in data.eval_batches("train", 100, labels=250)) == 250


def test_encode_adds_cls_and_sep_pads_with_zero_and_truncates(built):
    data = built[0]
    long = " ".join(["good"] * 200)
    ids, mask = data.encode(["a gorgeous , witty , seductive movie .", "bad .", long])
    assert ids.dtype == torch.long and mask.dtype == torch.bool and ids.shape == (3, 64)
    assert (ids[:, 0] == CLS).all() and ids[2, 63] == SEP and mask[2].all()
    short = int(mask[1].sum())
    assert short == 4 and ids[1, short - 1] == SEP
    assert (ids[1, short:] == PAD).all() and not mask[1, short:].any()
    tokens = data.tokenizer.decode(ids[0].tolist())
    assert tokens == "a gorgeous, witty, seductive movie."


def test_tokenizer_is_deterministic_with_bert_specials(built):
    data, given = built
    vocab = data.tokenizer.get_vocab()
    assert [vocab[s] for s in SPECIALS] == [0, 1, 2, 3, 4] and data.vocab_size == 8000
    saved = json.loads(data.artifacts()["tokenizer.json"])
    assert [t["content"] for t in saved["added_tokens"]] == list(SPECIALS)  # no '##c' left special
    assert polarity.learn_wordpiece(given[0], 8000).to_str() == data.tokenizer.to_str()


@pytest.mark.parametrize("bad", [dict(vocab_size=100), dict(max_length=2)])
def test_bad_configs_raise_one_line_errors(bad):
    with pytest.raises(ValueError) as error:
        PolarityConfig(**bad)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("labels", [1, 8531])
def test_bad_budgets_raise_one_line_errors(built, labels):
    with pytest.raises(ValueError, match="label budget") as error:
        built[0].budget(labels)
    assert "\n" not in str(error.value)
