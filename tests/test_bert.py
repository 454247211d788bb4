"""BERT's masking, model, heads and loss (``milestones/bert.py``), and the same logits as Hugging Face's
``BertForMaskedLM`` after an export (``tools/bert_hf.py``; randomly initialised: nothing is downloaded;
``transformers`` is a test-only dependency)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from dlhistory.milestones.bert import (
    IGNORE,
    Bert,
    BertConfig,
    Classifier,
    MaskedLM,
    MaskedLMConfig,
    MaskedLMHead,
    mask_tokens,
)
from dlhistory.tools.bert_hf import export_hf, from_hf_bert, to_hf_bert

PAD, UNK, CLS, SEP, MASK = range(5)  # BERT's specials at the ids the polarity data gives them
SPECIALS = (PAD, UNK, CLS, SEP, MASK)
VOCAB = 1000
SMALL = BertConfig(layers=2, heads=4, d_model=32, d_ff=64, dropout=0.1, max_positions=24)


def batch(rows: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] tokens [SEP] [PAD]...: random lengths from 8 to ``length``, random tokens that include the
    specials [UNK], [CLS], [SEP] and [MASK] now and then (they must never be chosen); mask True at real
    tokens."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, length + 1, (rows,), generator=g)
    ids = torch.randint(1, 40, (rows, length), generator=g)  # (many specials: ids 1..4 of 39)
    ids = torch.where(torch.rand(rows, length, generator=g) < 0.5, ids,
                      torch.randint(5, VOCAB, (rows, length), generator=g))
    mask = torch.arange(length)[None] < lengths[:, None]
    ids[:, 0] = CLS
    ids[torch.arange(rows), lengths - 1] = SEP
    return ids.masked_fill(~mask, PAD), mask


def masked(ids, mask, seed=0, rate=0.15):
    return mask_tokens(ids, mask, VOCAB, torch.Generator().manual_seed(seed), SPECIALS, MASK, rate)


# ------------------------------------------------------------------------------------------------
# Masking (section 3.1)


def test_masking_chooses_15_percent_of_eligible_tokens_80_10_10():
    ids, mask = batch(512, 128, seed=1)
    inputs, targets = masked(ids, mask)
    eligible = mask & ~torch.isin(ids, torch.tensor(SPECIALS))
    chosen = targets != IGNORE
    # Never a special or padding token; targets are the original ids exactly where chosen.
    assert not (chosen & ~eligible).any()
    assert torch.equal(targets[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    # Each row: round(15% of its n eligible tokens), at least one; so between floor and ceil of 0.15 n.
    # That is the whole tolerance: the count per row is fixed, only which tokens is random.
    n, k = eligible.sum(1).double(), chosen.sum(1).double()
    assert (k >= torch.floor(0.15 * n).clamp(min=1)).all() and (k <= torch.ceil(0.15 * n).clamp(min=1)).all()
    assert abs(k.sum() / n.sum() - 0.15) <= 0.5 * len(n) / n.sum()  # rounding: at most 1/2 a row
    # Of the chosen, 80% [MASK], 10% a random token, 10% unchanged: each fraction is a binomial
    # proportion over N ~ 5,000 chosen tokens, so within 5 standard deviations (a false failure about
    # once in 1.7 million seeds; this seed is fixed anyway).
    total = int(chosen.sum())
    replaced = inputs[chosen]
    allowed = VOCAB - len(SPECIALS)  # a random replacement is the original itself once in `allowed`
    fractions = {"mask": (replaced == MASK, 0.8),
                 "random": ((replaced != MASK) & (replaced != ids[chosen]), 0.1 * (1 - 1 / allowed)),
                 "unchanged": (replaced == ids[chosen], 0.1 + 0.1 / allowed)}
    for name, (which, p) in fractions.items():
        tolerance = 5 * math.sqrt(p * (1 - p) / total)
        assert abs(which.sum().item() / total - p) < tolerance, name
    # A random replacement is never a special token.
    assert not torch.isin(replaced[replaced != MASK], torch.tensor(SPECIALS)).any()


def test_masking_is_a_pure_function_of_the_generator():
    ids, mask = batch(64, 32, seed=2)
    first, second, other = masked(ids, mask, seed=5), masked(ids, mask, seed=5), masked(ids, mask, seed=6)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[1], other[1])


def test_masking_a_row_without_eligible_tokens_chooses_none():
    ids = torch.tensor([[CLS, SEP, PAD, PAD], [CLS, 7, SEP, PAD]])
    mask = ids != PAD
    _, targets = masked(ids, mask)
    assert (targets[0] == IGNORE).all() and targets[1].tolist() == [IGNORE, 7, IGNORE, IGNORE]
    with pytest.raises(ValueError, match="rate"):
        masked(ids, mask, rate=0.0)


# ------------------------------------------------------------------------------------------------
# The model and its heads


def test_shapes_and_the_loss():
    torch.manual_seed(0)
    model = Bert(SMALL, VOCAB)
    head, classifier = MaskedLMHead(model), Classifier(SMALL, 3)
    assert head.decoder.weight is model.token_embedding.weight  # tied
    ids, mask = batch(4, 24, seed=3)
    hidden = model(ids, mask)
    assert hidden.shape == (4, 24, 32)
    logits = head(hidden)
    assert logits.shape == (4, 24, VOCAB) and classifier(hidden).shape == (4, 3)
    _, targets = masked(ids, mask)
    chosen = targets != IGNORE
    expected = torch.nn.functional.cross_entropy(logits[chosen], targets[chosen])
    torch.testing.assert_close(MaskedLM(MaskedLMConfig())(logits[chosen], targets[chosen]), expected)
    with pytest.raises(ValueError, match="positions"):
        model(torch.zeros(1, 25, dtype=torch.long))


@torch.no_grad()
def test_padding_is_not_attended_to():
    torch.manual_seed(0)
    model = Bert(SMALL, VOCAB).eval()
    ids, mask = batch(4, 24, seed=4)
    changed = torch.where(mask, ids, torch.randint(5, VOCAB, ids.shape))  # other tokens where padded
    assert not torch.equal(changed, ids)
    torch.testing.assert_close(model(changed, mask)[mask], model(ids, mask)[mask], atol=1e-6, rtol=0)
    # ...whereas without the mask they would be attended to.
    assert not torch.allclose(model(changed)[mask], model(ids)[mask], atol=1e-4)


@torch.no_grad()
def test_pre_ln_normalises_each_sublayer_input_and_the_output():
    """norm="pre": x + F(LayerNorm(x)) per sub-layer, written out here with the layer's own modules,
    and a final LayerNorm; the same weights in post-LN order compute something else."""
    torch.manual_seed(0)
    pre = Bert(dataclasses.replace(SMALL, norm="pre"), VOCAB).eval()
    post = Bert(SMALL, VOCAB).eval()
    assert set(pre.state_dict()) - set(post.state_dict()) == {"final_norm.weight", "final_norm.bias"}
    for p in pre.parameters():  # sub-layers of BERT's initial scale barely move x: let them matter
        p.mul_(5 if p.ndim == 2 else 1)
    post.load_state_dict({k: v for k, v in pre.state_dict().items() if not k.startswith("final_norm")})
    ids, mask = batch(3, 24, seed=6)
    layer, x = pre.layers[0], torch.randn(3, 24, 32)
    h = layer.norm1(x)
    x1 = x + layer.attention(h, h, h, mask)
    torch.testing.assert_close(layer(x, mask), x1 + layer.feed_forward(layer.norm2(x1)))
    hidden = pre(ids, mask)
    torch.testing.assert_close(hidden.mean(-1), torch.zeros(3, 24), atol=1e-5, rtol=0)  # normalised
    assert not torch.allclose(hidden, post(ids, mask), atol=1e-3)
    with pytest.raises(ValueError, match="post-LN only"):
        to_hf_bert(pre, MaskedLMHead(pre), pre.config, VOCAB)


@pytest.mark.parametrize("changes", [{"layers": 0}, {"heads": 3}, {"d_model": 0}, {"dropout": 1.0},
                                     {"dropout": -0.1}, {"max_positions": 0}, {"type_vocab": 0},
                                     {"d_ff": 0}, {"norm": "sandwich"}])
def test_bad_configs_are_one_line_value_errors(changes):
    with pytest.raises(ValueError) as e:
        BertConfig(**changes)
    assert len(str(e.value).splitlines()) == 1


# ------------------------------------------------------------------------------------------------
# Hugging Face's BertForMaskedLM, with the same weights


def random_model(seed: int = 0) -> tuple[Bert, MaskedLMHead]:
    """A small BERT whose LayerNorm gains and shifts and every bias are random too, so that a swapped
    or dropped bias, or a norm left at 1 and 0, changes the logits; its matrices are 3 times BERT's
    initial scale, so that pre-activations are of order 1, where GELU's tanh approximation differs
    from the exact GELU by more than the tolerance (at BERT's 0.02 it does not)."""
    torch.manual_seed(seed)
    model = Bert(SMALL, VOCAB)
    head = MaskedLMHead(model)
    with torch.no_grad():
        for name, p in [*model.named_parameters(), *head.named_parameters()]:
            if p.ndim == 2:
                p.mul_(3)
            if p.ndim == 1:
                centre = 1.0 if "norm" in name and name.endswith("weight") else 0.0
                p.copy_(centre + 0.1 * torch.randn_like(p))
    return model.eval(), head.eval()


@torch.no_grad()
def test_logits_equal_hugging_faces_after_export(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, head = random_model()
    folder = export_hf(tmp_path / "bert", model, head, SMALL, VOCAB)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["bert"]  # no staging folder left behind
    hf, info = transformers.BertForMaskedLM.from_pretrained(folder, local_files_only=True,
                                                            output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    hf = hf.float().eval()
    ids, mask = batch(3, 24, seed=5)
    segments = (torch.arange(24)[None] >= 10).long().expand(3, -1) * mask  # sentence B from position 10
    ours = head(model(ids, mask, segments))
    theirs = hf(input_ids=ids, attention_mask=mask.long(), token_type_ids=segments).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)  # padded positions too
    # And back: Hugging Face's state dict loads into ours unchanged.
    state, head_state = from_hf_bert(hf.state_dict(), SMALL)
    again = Bert(SMALL, VOCAB).eval()
    again.load_state_dict(state)
    again_head = MaskedLMHead(again).eval()
    again_head.load_state_dict(head_state)
    torch.testing.assert_close(again_head(again(ids, mask, segments)), ours, atol=0, rtol=0)


def test_export_writes_the_tokenizer_and_refuses_a_used_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"]
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(words)},
                                                                 unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(words[:5])
    model, head = random_model()
    with pytest.raises(ValueError, match="not"):
        to_hf_bert(model, head, SMALL, VOCAB + 1)
    folder = export_hf(tmp_path / "bert", model, head, SMALL, VOCAB, tokenizer.to_str())
    loaded = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert loaded.mask_token == "[MASK]" and loaded.pad_token_id == PAD
    assert loaded("good film")["input_ids"] == [5, 7]
    assert json.loads((folder / "config.json").read_text())["vocab_size"] == VOCAB
    with pytest.raises(FileExistsError):
        export_hf(folder, model, head, SMALL, VOCAB)
