"""2018 BERT's model, masking and loss (a staging file, to be folded into the ``bert`` milestone).

Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019. https://arxiv.org/abs/1810.04805

GPT reads left to right, so each token's representation sees only the tokens before it. BERT drops
the causal mask: the 2017 Transformer's encoder, and nothing else, reads the whole sequence in both
directions. Next-token prediction then becomes trivial (a token could see itself), so BERT pre-trains
on a *masked language model* task instead (section 3.1, "Task #1"): hide 15% of the tokens and predict
them from both sides. The encoder is then fine-tuned with one small layer on top of the [CLS]
position for a classification task with few labels (section 3.2).

Here:

* data -- :func:`mask_tokens`, BERT's 15% masking with its 80/10/10 rule;
* model -- :class:`Bert` (token + position + segment embeddings, post-LN encoder layers whose
  attention is the 2017 milestone's :class:`MultiHeadAttention`, imported), :class:`MaskedLMHead`
  (the pre-training head, tied to the token embedding) and :class:`Classifier` (the pooler and the
  fine-tuning layer);
* loss -- :func:`mlm_loss`, cross-entropy on the masked positions only;
* :func:`to_hf_bert`, :func:`from_hf_bert` and :func:`export_hf` -- the weights in Hugging Face's
  ``BertForMaskedLM`` layout, so the pre-trained model can be loaded (and checked) by ``transformers``.

Differences from the released BERT, all small: no dropout on the attention probabilities (the 2017
milestone's attention has none; BERT's ``attention_probs_dropout_prob`` is 0.1, and the export says 0);
the [MASK] count per sequence is 15% of the *eligible* tokens (BERT's script takes 15% of all tokens,
[CLS] and [SEP] included, and picks among the eligible ones); the random replacement never draws a
special token (BERT's script may draw any vocabulary entry).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .transformer import MultiHeadAttention

IGNORE = -100
"""The target of a position that is not predicted (``F.cross_entropy``'s default ``ignore_index``)."""
LAYER_NORM_EPS = 1e-12
"""Every LayerNorm's epsilon in BERT (the released code's, and Hugging Face's ``layer_norm_eps``)."""
INIT_STD = 0.02
"""BERT's ``initializer_range``: the standard deviation of every weight matrix at initialisation."""

# ================================================================================================
# Data: BERT's masking (section 3.1, "Task #1: Masked LM", and appendix C.2).


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
    Students Learn Better"), the cpu size; BERT-Small is 4 layers of 512 (8 heads, d_ff 2048) and
    BERT-base 12 layers of 768 (12 heads, d_ff 3072, 512 positions)."""

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

    def __post_init__(self) -> None:
        sizes = (self.layers, self.heads, self.d_model, self.d_ff, self.max_positions, self.type_vocab)
        if min(sizes) < 1:
            raise ValueError("needs layers, heads, d_model, d_ff, max_positions and type_vocab >= 1")
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout {self.dropout}: needs 0 <= dropout < 1")


class BertLayer(nn.Module):
    """One encoder layer, post-LN as in BERT and the 2017 Transformer (section 3.1 of Vaswani et al.):
    x = LayerNorm(x + Dropout(Attention(x))), then x = LayerNorm(x + Dropout(FFN(x))). The attention
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

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
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
        return x


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


# ================================================================================================
# Loss: cross-entropy at the masked positions only.


def mlm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over the chosen positions: "the final hidden vectors corresponding to
    the mask tokens are fed into an output softmax over the vocabulary" (3.1); the others (``IGNORE``)
    are not predicted. logits (B, L, V), targets (B, L)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


# ================================================================================================
# Hugging Face's layout: ``transformers.BertForMaskedLM``'s names for our weights.


def _hf_names(config: BertConfig) -> dict[str, str]:
    """Our state-dict name (of the model and of its head, the head's prefixed ``head.``) -> Hugging
    Face's. Every tensor has the same shape and layout in both (``nn.Linear`` throughout)."""
    names = {"token_embedding.weight": "bert.embeddings.word_embeddings.weight",
             "position_embedding.weight": "bert.embeddings.position_embeddings.weight",
             "segment_embedding.weight": "bert.embeddings.token_type_embeddings.weight"}
    pairs = [("norm", "bert.embeddings.LayerNorm")]
    for i in range(config.layers):
        ours, theirs = f"layers.{i}.", f"bert.encoder.layer.{i}."
        pairs += [(f"{ours}attention.w_q", f"{theirs}attention.self.query"),
                  (f"{ours}attention.w_k", f"{theirs}attention.self.key"),
                  (f"{ours}attention.w_v", f"{theirs}attention.self.value"),
                  (f"{ours}attention.w_o", f"{theirs}attention.output.dense"),
                  (f"{ours}norm1", f"{theirs}attention.output.LayerNorm"),
                  (f"{ours}feed_forward.0", f"{theirs}intermediate.dense"),
                  (f"{ours}feed_forward.2", f"{theirs}output.dense"),
                  (f"{ours}norm2", f"{theirs}output.LayerNorm")]
    pairs += [("head.dense", "cls.predictions.transform.dense"),
              ("head.norm", "cls.predictions.transform.LayerNorm")]
    for ours, theirs in pairs:
        names[f"{ours}.weight"], names[f"{ours}.bias"] = f"{theirs}.weight", f"{theirs}.bias"
    # The decoder's weight is the word embedding and its bias is cls.predictions.bias: Hugging Face ties
    # both (``_tied_weights_keys``), so neither is stored twice.
    names["head.bias"] = "cls.predictions.bias"
    return names


def to_hf_bert(model: Bert, head: MaskedLMHead, config: BertConfig,
               vocab_size: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config.json's dict, state dict) of a ``transformers.BertForMaskedLM`` computing what ``head(
    model(ids, mask))`` computes, in eval mode. Tensors are detached, contiguous, fp32 copies."""
    if head.decoder.weight is not model.token_embedding.weight:
        raise ValueError("the head's decoder is not tied to the model's token embedding")
    if model.vocab_size != vocab_size or model.config != config:
        raise ValueError(f"the model is {model.config} with {model.vocab_size} tokens, not {config} with "
                         f"{vocab_size}")
    ours = {**model.state_dict(), **{f"head.{k}": v for k, v in head.state_dict().items()}}
    del ours["head.decoder.weight"]
    state = {theirs: ours[name].detach().float().cpu().clone().contiguous()
             for name, theirs in _hf_names(config).items()}
    hf_config = {
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": vocab_size,
        "hidden_size": config.d_model, "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads, "intermediate_size": config.d_ff,
        "hidden_act": "gelu",  # Hugging Face's "gelu" is the exact (erf) GELU, as nn.GELU()
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": 0.0,  # the 2017 milestone's attention has no dropout of its own
        "max_position_embeddings": config.max_positions, "type_vocab_size": config.type_vocab,
        "initializer_range": INIT_STD, "layer_norm_eps": LAYER_NORM_EPS,
        "position_embedding_type": "absolute", "tie_word_embeddings": True, "torch_dtype": "float32",
    }
    return hf_config, state


def from_hf_bert(state: dict[str, torch.Tensor], config: BertConfig) -> tuple[dict, dict]:
    """(the model's state dict, the head's) from a ``BertForMaskedLM`` state dict, the inverse of
    :func:`to_hf_bert`'s; a one-line KeyError naming the first missing weight."""
    missing = [theirs for theirs in _hf_names(config).values() if theirs not in state]
    if missing:
        raise KeyError(f"no {missing[0]!r} in the weights ({len(missing)} missing)")
    model, head = {}, {}
    for ours, theirs in _hf_names(config).items():
        if ours.startswith("head."):
            head[ours.removeprefix("head.")] = state[theirs]
        else:
            model[ours] = state[theirs]
    head["decoder.weight"] = model["token_embedding.weight"]
    return model, head


def export_hf(directory: str | os.PathLike, model: Bert, head: MaskedLMHead, config: BertConfig,
              vocab_size: int, tokenizer_json: str | None = None) -> Path:
    """Write a folder ``transformers.BertForMaskedLM.from_pretrained`` (and, with ``tokenizer_json``,
    ``AutoTokenizer.from_pretrained``) reads: config.json, model.safetensors, tokenizer.json and
    tokenizer_config.json. The files are written into a temporary folder beside ``directory``, then
    renamed to it, so a reader never sees half an export; an existing non-empty ``directory`` is
    refused (FileExistsError), not overwritten. Returns the folder's path."""
    from safetensors.torch import save_file

    target = Path(directory).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty folder; export to a new one")
    hf_config, state = to_hf_bert(model, head, config, vocab_size)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        if tokenizer_json is not None:
            (tmp / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
            tokenizer_config = {"tokenizer_class": "PreTrainedTokenizerFast",
                                "model_max_length": config.max_positions,
                                **_special_tokens(tokenizer_json)}
            (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n",
                                                           encoding="utf-8")
        if target.exists():
            target.rmdir()  # empty (checked above); rename cannot replace a folder on every system
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


BERT_SPECIALS = {"[PAD]": "pad_token", "[UNK]": "unk_token", "[CLS]": "cls_token", "[SEP]": "sep_token",
                 "[MASK]": "mask_token"}
"""BERT's special tokens and the names ``transformers``' tokenizers give their roles."""


def _special_tokens(tokenizer_json: str) -> dict[str, str]:
    """The roles of BERT's special tokens that the tokenizer has as added tokens, for
    tokenizer_config.json (so ``tokenizer.mask_token`` is "[MASK]" once loaded)."""
    added = json.loads(tokenizer_json).get("added_tokens") or []
    present = {token.get("content") for token in added if isinstance(token, dict)}
    return {role: token for token, role in BERT_SPECIALS.items() if token in present}
