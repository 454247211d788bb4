"""2018 BERT: pre-train on plentiful unlabeled text, then fine-tune on a few labels.

Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019. https://arxiv.org/abs/1810.04805

The labels of the task you care about are scarce; unlabeled text is not. GPT reads left to right, so
each token's representation sees only the tokens before it. BERT drops the causal mask: the 2017
Transformer's encoder, and nothing else, reads the whole sequence in both directions. Next-token
prediction then becomes trivial (a token could see itself), so BERT pre-trains on a *masked language
model* task instead (section 3.1): hide 15% of the tokens and predict them from both sides. The encoder
is then fine-tuned, with one small layer on its [CLS] position, on the labelled task (section 3.2).

Here the task is MR sentence polarity (Pang & Lee 2005) with 250, 1,000 or all 8,530 labels, and the
unlabeled text is the MR training sentences without labels, Tiny Shakespeare and Multi30k's English
(about 0.9M WordPieces; data/polarity.py). The four components:

* data -- the labelled splits *and the unlabeled corpus* (:func:`mask_tokens` hides tokens of it);
* model -- :class:`Bert` (token + position + segment embeddings, post-LN encoder layers whose attention
  is the 2017 milestone's :class:`MultiHeadAttention`, from ``models/attention.py``),
  :class:`MaskedLMHead` (tied to the token embedding) and :class:`Classifier` (the pooler and the
  fine-tuning layer);
* loss -- the masked-LM cross-entropy (:class:`MaskedLM`), then cross-entropy on the label;
* algorithm -- two phases (algorithms/pretraining.py): pre-training once per seed, reused by the
  fine-tuning at every label budget.

Baselines: the same encoder trained from random initialisation with the same fine-tuning recipe and
budgets, on data without the unlabeled text (its WordPiece is learnt on the labelled training sentences);
and the classical reference, TF-IDF features with logistic regression, C chosen on validation.
Changed vs the scratch baseline: the data (unlabeled text enters), the loss and the algorithm; the model
is the same encoder. The TF-IDF reference differs in all four.

Differences from the released BERT, all small: no next-sentence prediction (RoBERTa, Liu et al. 2019,
found it unneeded), so the pooler starts fresh at fine-tuning; no dropout on the attention
probabilities (the 2017 milestone's attention has none); the [MASK] count per sequence is 15% of the
*eligible* tokens (BERT's script takes 15% of all tokens, [CLS] and [SEP] included, and picks among the
eligible ones); the random replacement never draws a special token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..algorithms.pretraining import (
    FineTuneOnlyConfig,
    FineTuningConfig,
    PretrainingConfig,
    PretrainThenFineTuneConfig,
    fine_tune_only,
    pretrain_then_fine_tune,
)
from ..algorithms.tfidf import FitConfig, LogisticConfig, TfidfConfig, fit_logistic, logistic, tfidf
from ..data.polarity import MASK, SPECIALS, PolarityConfig, PolarityData, polarity_data
from ..models.attention import MultiHeadAttention
from ..report.budgets import accuracy_by_labels, means_by_budget
from ..spec import Claim, Component, Metric, Milestone, Point, Recipe, Verdict
from ..tools.bert import CLASSIFY, EXPORT, UNMASK

IGNORE = -100
"""The target of a position that is not predicted (``F.cross_entropy``'s default ``ignore_index``)."""
LAYER_NORM_EPS = 1e-12
"""Every LayerNorm's epsilon in BERT (the released code's, and Hugging Face's ``layer_norm_eps``)."""
INIT_STD = 0.02
"""BERT's ``initializer_range``: the standard deviation of every weight matrix at initialisation."""

# ================================================================================================
# Data: MR polarity with the unlabeled corpus; the baselines have no unlabeled text.

DATA = Component("rt-polarity+unlabeled", polarity_data, PolarityConfig())
LABELLED_ONLY = Component("rt-polarity", polarity_data, PolarityConfig(corpus=False))


def mask_tokens(ids: torch.Tensor, mask: torch.Tensor, vocab_size: int, generator: torch.Generator,
                special_ids: tuple[int, ...] | list[int], mask_id: int,
                rate: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for the masked language model, from ``ids`` (B, L) and ``mask`` (B, L), True
    at real (not padding) tokens.

    "We mask 15% of all WordPiece tokens in each sequence at random" (3.1): here round(rate * n) of the
    n real, non-special tokens of each row, at least one where n > 0 (BERT's script:
    ``max(1, round(len * rate))``), chosen uniformly without replacement. Of those, "(1) the [MASK]
    token 80% of the time (2) a random token 10% of the time (3) the unchanged i-th token 10% of the
    time", so the model cannot rely on seeing [MASK] at fine-tuning time, when there is none. Targets
    are the original ids at chosen positions and ``IGNORE`` elsewhere.

    A pure function of ``generator``'s state: three draws of fixed shapes, in a fixed order."""
    if not 0 < rate < 1:
        raise ValueError(f"rate {rate}: needs 0 < rate < 1")
    specials = torch.tensor(sorted({*special_ids, mask_id}), device=ids.device)
    eligible = mask & ~torch.isin(ids, specials)  # (B, L)
    # Draws first, all of them, so the generator advances the same whatever the data.
    scores = torch.rand(ids.shape, generator=generator, device=ids.device)
    action = torch.rand(ids.shape, generator=generator, device=ids.device)
    allowed = torch.ones(vocab_size, dtype=torch.bool, device=ids.device)
    allowed[specials[specials < vocab_size]] = False
    replacements = allowed.nonzero().squeeze(1)  # the ids a random replacement may take
    if len(replacements) == 0:
        raise ValueError("every id of the vocabulary is special: no random replacement to draw")
    pick = torch.randint(len(replacements), ids.shape, generator=generator, device=ids.device)

    # Choose the k lowest scores among the eligible positions of each row: a uniform k-subset.
    count = eligible.sum(1)  # (B,)
    k = torch.where(count > 0, (count * rate).round().clamp(min=1), 0)  # (B,)
    rank = scores.masked_fill(~eligible, 2.0).argsort(1).argsort(1)  # (B, L): 0 = lowest score
    chosen = eligible & (rank < k[:, None])

    inputs = ids.clone()
    inputs[chosen & (action < 0.8)] = mask_id
    randomised = chosen & (action >= 0.8) & (action < 0.9)  # the rest, action >= 0.9, stays
    inputs[randomised] = replacements[pick[randomised]]
    targets = torch.where(chosen, ids, IGNORE)
    return inputs, targets


# ================================================================================================
# Model: the Transformer's encoder (section 3, "Model Architecture"), and BERT's two heads.


@dataclass(frozen=True)
class BertConfig:
    """Sizes of BERT. The default is BERT-Mini (4 layers, d_model 256; Turc et al. 2019, "Well-Read
    Students Learn Better"); the cpu preset narrows it to d_model 192 (3 heads of 64); BERT-Small, the
    full preset, is 4 layers of 512 (8 heads, d_ff 2048) and BERT-base 12 layers of 768 (12 heads, d_ff
    3072, 512 positions)."""

    layers: int = 4
    """Encoder layers (BERT's L)."""
    heads: int = 4
    """Attention heads (BERT's A); d_model / heads = 64 in every released size."""
    d_model: int = 256
    """The hidden size (BERT's H)."""
    d_ff: int = 1024
    """The feed-forward network's inner size (4 H in every released size)."""
    dropout: float = 0.1
    """On the embeddings, on every sub-layer's output and before the classifier (BERT: 0.1)."""
    max_positions: int = 128
    """Learned positions: the longest sequence (BERT-base: 512; pre-training spent 90% of its steps
    at 128)."""
    type_vocab: int = 2
    """Segment (token type) embeddings: sentence A and sentence B."""
    norm: str = "post"
    """Where each sub-layer's LayerNorm sits. "post" is BERT's, x = LayerNorm(x + F(x)); "pre" is
    x = x + F(LayerNorm(x)) with one more LayerNorm after the last layer (Xiong et al. 2020, "On Layer
    Normalization in the Transformer Architecture"; GPT-2's, and the small-budget BERT of Geiping &
    Goldstein 2022, "Cramming"): its gradients are well scaled at initialisation, so it needs no long
    warm-up. Only "post" exports to Hugging Face's BERT, which has no pre-LN form."""

    def __post_init__(self) -> None:
        if self.norm not in ("post", "pre"):
            raise ValueError(f"norm {self.norm!r}: choose 'post' (BERT's) or 'pre'")
        sizes = (self.layers, self.heads, self.d_model, self.d_ff, self.max_positions, self.type_vocab)
        if min(sizes) < 1:
            raise ValueError("needs layers, heads, d_model, d_ff, max_positions and type_vocab >= 1")
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout {self.dropout}: needs 0 <= dropout < 1")


class BertLayer(nn.Module):
    """One encoder layer, post-LN as in BERT and the 2017 Transformer (section 3.1 of Vaswani et al.):
    x = LayerNorm(x + Dropout(Attention(x))), then x = LayerNorm(x + Dropout(FFN(x))); or pre-LN
    (``norm="pre"``): x = x + Dropout(Attention(LayerNorm(x))), then the same for the FFN. The attention
    is the 2017 milestone's; the FFN's nonlinearity is GELU (Hendrycks & Gimpel 2016) instead of ReLU,
    the exact, erf form, as BERT's code computes it; LayerNorm's epsilon is BERT's 1e-12."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = MultiHeadAttention(c.d_model, c.heads)
        self.norm1 = nn.LayerNorm(c.d_model, eps=LAYER_NORM_EPS)
        self.feed_forward = nn.Sequential(nn.Linear(c.d_model, c.d_ff), nn.GELU(),
                                          nn.Linear(c.d_ff, c.d_model))
        self.norm2 = nn.LayerNorm(c.d_model, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(c.dropout)
        self.pre_norm = c.norm == "pre"

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            h = self.norm1(x)
            x = x + self.dropout(self.attention(h, h, h, mask))  # (B, L, d)
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attention(x, x, x, mask)))  # (B, L, d)
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class Bert(nn.Module):
    """Token ids (B, L) and their padding mask -> hidden states (B, L, d_model). No causal mask: every
    position attends to every real position, both to its left and to its right."""

    def __init__(self, config: BertConfig, vocab_size: int):
        super().__init__()
        self.config, self.vocab_size = config, vocab_size
        d = config.d_model
        # "The input embeddings are the sum of the token embeddings, the segmentation embeddings and
        # the position embeddings" (section 3, figure 2); positions are learned, not sinusoidal.
        self.token_embedding = nn.Embedding(vocab_size, d)
        self.position_embedding = nn.Embedding(config.max_positions, d)
        self.segment_embedding = nn.Embedding(config.type_vocab, d)
        self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.layers))
        # Pre-LN leaves the residual stream unnormalised; the heads expect it normalised, as post-LN gives.
        self.final_norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS) if config.norm == "pre" else None
        self.apply(init_weights)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None,
                segments: torch.Tensor | None = None) -> torch.Tensor:
        """``ids`` (B, L); ``mask`` (B, L), True at real tokens (None: all real); ``segments`` (B, L),
        0 for sentence A and 1 for B (None: all A, as for one sentence)."""
        length = ids.shape[1]
        if length > self.config.max_positions:
            raise ValueError(f"{length} tokens: the model has {self.config.max_positions} positions")
        if segments is None:
            segments = torch.zeros_like(ids)
        positions = torch.arange(length, device=ids.device)
        x = self.token_embedding(ids) + self.position_embedding(positions) + self.segment_embedding(segments)
        x = self.dropout(self.norm(x))  # (B, L, d)
        for layer in self.layers:
            # Padding is masked as a key only: a padded position's own output is computed, unused.
            x = layer(x, mask)
        return x if self.final_norm is None else self.final_norm(x)


def init_weights(module: nn.Module) -> None:
    """BERT's initialisation: every weight matrix and embedding from a normal of std 0.02 truncated at
    two standard deviations (TensorFlow's ``truncated_normal_initializer``), biases 0, LayerNorm gains
    1 and shifts 0 (Hugging Face's port draws from an untruncated normal)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.trunc_normal_(module.weight, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class MaskedLMHead(nn.Module):
    """Hidden states (B, L, d) -> logits over the vocabulary (B, L, V), BERT's pre-training output
    (``get_masked_lm_output`` in the released code): dense -> GELU -> LayerNorm, then the decoder,
    which is the token embedding matrix (tied, Press & Wolf 2017) with an output bias of its own."""

    def __init__(self, bert: Bert):
        super().__init__()
        d = bert.config.d_model
        self.dense, self.activation = nn.Linear(d, d), nn.GELU()
        self.norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.apply(init_weights)
        self.decoder = nn.Linear(d, bert.vocab_size, bias=False)
        self.decoder.weight = bert.token_embedding.weight  # the same Parameter, not a copy
        self.bias = nn.Parameter(torch.zeros(bert.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.activation(self.dense(hidden)))) + self.bias


class Classifier(nn.Module):
    """Hidden states (B, L, d) -> class logits (B, classes), the fine-tuning layer (section 3.2): "the
    final hidden vector corresponding to the first input token ([CLS])" through BERT's pooler (a dense
    layer and tanh, pre-trained with next-sentence prediction in BERT, fresh here), dropout, and one
    linear layer, "the only new parameters introduced during fine-tuning"."""

    def __init__(self, config: BertConfig, classes: int):
        super().__init__()
        if classes < 2:
            raise ValueError(f"classes {classes}: needs at least 2")
        self.pooler = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.d_model, classes)
        self.apply(init_weights)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        pooled = torch.tanh(self.pooler(hidden[:, 0]))  # (B, d): the [CLS] position
        return self.output(self.dropout(pooled))



def bert_networks(config: BertConfig, data: PolarityData) -> dict[str, nn.Module]:
    """The encoder and both heads; pre-training trains the encoder and the masked-LM head, fine-tuning
    the encoder and the classifier."""
    if data.config.max_length > config.max_positions:
        raise ValueError(f"data.max_length {data.config.max_length} is longer than the model's "
                         f"{config.max_positions} positions (model.max_positions)")
    encoder = Bert(config, data.vocab_size)
    return {"encoder": encoder, "mlm_head": MaskedLMHead(encoder),
            "classifier": Classifier(config, data.num_classes)}


MODEL = Component("bert", bert_networks, BertConfig())


# ================================================================================================
# Loss: cross-entropy at the masked positions (pre-training), then on the label (fine-tuning).


@dataclass(frozen=True)
class MaskedLMConfig:
    """BERT's masked language model: the share of tokens hidden and predicted."""

    rate: float = 0.15

    def __post_init__(self) -> None:
        if not 0 < self.rate < 1:
            raise ValueError(f"rate {self.rate}: needs 0 < rate < 1")


class MaskedLM:
    """The masked-LM objective: :meth:`mask` hides tokens, the call scores the predictions of them."""

    ignore = IGNORE

    def __init__(self, config: MaskedLMConfig):
        self.rate = config.rate

    def mask(self, ids: torch.Tensor, mask: torch.Tensor, vocab_size: int,
             generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(ids, mask, vocab_size, generator, range(len(SPECIALS)), MASK, self.rate)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats) of the predictions at the chosen positions: "the final hidden
        vectors corresponding to the mask tokens are fed into an output softmax over the vocabulary"
        (3.1). logits (N, V), targets (N,); a target of ``IGNORE`` is not scored."""
        return F.cross_entropy(logits.float(), targets, ignore_index=IGNORE)


def bert_losses(config: MaskedLMConfig) -> dict:
    return {"mlm": MaskedLM(config), "classification": F.cross_entropy}


@dataclass(frozen=True)
class CrossEntropyConfig:
    """Cross-entropy on the label, nothing else: the loss of a model that is not pre-trained."""


def classification_loss(config: CrossEntropyConfig) -> dict:
    return {"classification": F.cross_entropy}


LOSS = Component("masked-lm+cross-entropy", bert_losses, MaskedLMConfig())


# ================================================================================================
# Algorithm: pre-train once per seed, fine-tune at each label budget (algorithms/pretraining.py).

ALGORITHM = Component("pretrain-then-finetune", pretrain_then_fine_tune, PretrainThenFineTuneConfig())


# ================================================================================================
# Baseline 1: the same encoder, the same fine-tuning, from random weights and without unlabeled text.


def _scratch(preset: str) -> dict[str, Component]:
    ours = PRESETS[preset]
    return {"data": LABELLED_ONLY.with_config(dataclasses.replace(ours.data.config, corpus=False)),
            "loss": Component("cross-entropy", classification_loss, CrossEntropyConfig()),
            "algorithm": Component("finetune", fine_tune_only,
                                   FineTuneOnlyConfig(ours.algorithm.config.finetune))}


# ================================================================================================
# Baseline 2: TF-IDF features and logistic regression, C chosen on validation (algorithms/tfidf.py).


def _tfidf(preset: str) -> dict[str, Component]:
    return {"data": LABELLED_ONLY.with_config(dataclasses.replace(PRESETS[preset].data.config, corpus=False)),
            "model": Component("tfidf", tfidf, TfidfConfig()),
            "loss": Component("logistic", logistic, LogisticConfig()),
            "algorithm": Component("lbfgs", fit_logistic, FitConfig())}


# ================================================================================================
# The claim: pre-training helps at every label budget, most where labels are fewest.

BUDGETS = {"smoke": (20, None), "cpu": (250, 1000, None), "full": (250, 1000, None)}
"""The label budgets of the comparison (None: all 8,530)."""
MARGIN = {"cpu": 0.03, "full": 0.03}
"""Test accuracy the pre-trained model must be above the scratch model by, at every budget."""
SMALLEST_MARGIN = {"cpu": 0.03, "full": 0.05}
"""... and at the smallest budget."""


def budget_label(labels: int | None) -> str:
    from ..data.polarity import SIZES

    return f"{labels or SIZES['train']} labels"


def _budget_overrides(variant: str, labels: int | None) -> tuple[str, ...]:
    if labels is None:  # the recipe's own: all labels
        return ()
    return (f"algorithm.labels={labels}",) if variant == "tfidf" else (f"algorithm.finetune.labels={labels}",)


def points(milestone: Milestone, preset: str) -> list[Point]:
    """Every variant at every label budget; the pre-trained model's fine-tunings share one pre-training
    per seed."""
    return [Point(v, budget_label(n), _budget_overrides(v, n)) for n in BUDGETS[preset]
            for v in milestone.variants]


def judge(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """At every budget the pre-trained model's mean test accuracy is at least MARGIN above the scratch
    model's, the gap is largest at the smallest budget (cpu) and at least SMALLEST_MARGIN there, and
    with all labels it reaches the preset's threshold. TF-IDF is reported, never required."""
    if preset not in SMALLEST_MARGIN:
        return Verdict("not judged", f"the claim states no margin at the {preset} preset")
    budgets = [budget_label(n) for n in BUDGETS[preset]]
    means = means_by_budget(results, milestone.variants, budgets)
    if isinstance(means, str):
        return Verdict("not judged", means)
    gaps = {b: means[b][milestone.variant] - means[b]["scratch"] for b in budgets}
    smallest, everything = budgets[0], budgets[-1]
    threshold = milestone.claim.thresholds[preset]
    checks = {f"with {everything}: {means[everything][milestone.variant]:.2%} (needs >= {threshold:.0%})":
                  means[everything][milestone.variant] >= threshold,
              f"gap at {smallest}: {gaps[smallest]:+.2%} (needs >= {SMALLEST_MARGIN[preset]:+.0%})":
                  gaps[smallest] >= SMALLEST_MARGIN[preset]}
    if preset == "cpu":
        checks[f"every gap >= {MARGIN[preset]:+.0%} (smallest {min(gaps.values()):+.2%})"] = \
            min(gaps.values()) >= MARGIN[preset]
        checks[f"the gap is largest at {smallest}"] = gaps[smallest] == max(gaps.values())
    rows = tuple((b, *(f"{means[b][v]:.2%}" for v in milestone.variants), f"{gaps[b]:+.2%}") for b in budgets)
    table = (("labels", *milestone.variants, f"{milestone.variant} - scratch"), rows)
    return Verdict.judged(all(checks.values()), "; ".join(checks), table)


def figures(comparison, out_dir: Path) -> list[Path]:
    """Test accuracy against the number of labels (log scale): each variant's mean and seed range."""
    from ..data.polarity import SIZES

    m, preset = comparison.milestone, comparison.preset
    path = out_dir / f"{m.key}.png"
    accuracy_by_labels(comparison, BUDGETS[preset], budget_label, lambda n: n or SIZES["train"],
                       "labelled training sentences",
                       f"{m.year} {m.title}: MR polarity ({preset}, {len(comparison.seeds)} seeds)", path)
    return [path]


# ================================================================================================
# Presets and the milestone.

# The cpu size is below BERT-Mini (d_model 192, 3 heads of 64). Its recipe was chosen on validation
# (seed 0, 2,000 pre-training steps) among pre-LN, a 40% masking rate (Wettig et al. 2023), MR's
# sentences weighted 8x in the stream and fine-tuning at lr 3e-5: none fine-tuned better than BERT's own.
# The budget is what three seeds afford in the three-hour review: 600 pre-training steps (1.2M tokens,
# about 1.3 passes over the corpus; at 2,000 steps the masked LM was still on its early plateau), and
# two epochs of fine-tuning (at least 200 steps; BERT fine-tunes for 2 to 4): with one epoch (at
# least 100 steps) a seed of the scratch baseline did not learn at all with all 8,530 labels.
CPU = Recipe(DATA, MODEL.with_config(BertConfig(heads=3, d_model=192, d_ff=768)), LOSS,
             ALGORITHM.with_config(PretrainThenFineTuneConfig(PretrainingConfig(steps=600, warmup_steps=60),
                                                              FineTuningConfig(epochs=2.0, min_steps=200))))
SMOKE = Recipe(
    DATA.with_config(PolarityConfig(vocab_size=300, max_length=24)),
    MODEL.with_config(BertConfig(layers=1, heads=2, d_model=16, d_ff=32, max_positions=24)),
    LOSS,
    ALGORITHM.with_config(PretrainThenFineTuneConfig(
        PretrainingConfig(steps=6, batch_size=8, warmup_steps=2, eval_batch_size=512),
        FineTuningConfig(epochs=0.01, min_steps=4, batch_size=16, eval_batch_size=512))))
FULL = Recipe(  # BERT-Small (Turc et al. 2019): 4 layers of 512
    DATA,
    MODEL.with_config(BertConfig(layers=4, heads=8, d_model=512, d_ff=2048)),
    LOSS,
    ALGORITHM.with_config(PretrainThenFineTuneConfig(
        PretrainingConfig(steps=20_000, batch_size=256, lr=3e-4, warmup_steps=1000),
        FineTuningConfig(lr=5e-5))))
PRESETS = {"smoke": SMOKE, "cpu": CPU, "full": FULL}

REPORT = (Metric("test_accuracy", "test accuracy", 2, percent=True),
          Metric("val_accuracy", "val accuracy", 2, percent=True),
          Metric("pretrain_val_accuracy", "masked tokens (val)", 2, percent=True),
          Metric("steps", "fine-tuning steps", 0),
          Metric("train_flops", "training FLOPs", 2, scientific=True),
          Metric("train_seconds", "fine-tuning seconds", 1))

MILESTONE = Milestone(
    key="bert",
    year=2018,
    title="BERT: pre-train, then fine-tune",
    citation="Devlin, Chang, Lee & Toutanova. BERT: Pre-training of Deep Bidirectional Transformers for "
             "Language Understanding. NAACL 2019.",
    url="https://arxiv.org/abs/1810.04805",
    showed="pre-training on plentiful unlabeled text, then fine-tuning, beats training on the few labels "
           "alone",
    variant="bert",
    presets=PRESETS,
    baselines={"scratch": _scratch, "tfidf": _tfidf},
    changes=("data", "model", "loss", "algorithm"),  # vs scratch: data, loss, algorithm (the same model)
    claim=Claim(
        statement="the pre-trained model beats the same model trained from scratch by >= 3 points of test "
                  "accuracy at every label budget (250, 1,000, 8,530), most at the smallest, and reaches "
                  ">= 75% with all labels",
        metric="test_accuracy",
        direction="max",
        paper="MR: CNN from random vectors 76.1%, NBSVM 79.4% (Kim 2014, 10-fold CV); BERT-base ~87%",
        report=REPORT,
        thresholds={"cpu": 0.75, "full": 0.80},
        points=points,
        judge=judge,
        figures=figures,
    ),
    tools=(CLASSIFY, UNMASK, EXPORT),
)
