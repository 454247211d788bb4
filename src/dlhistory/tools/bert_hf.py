"""BERT's weights in Hugging Face's layout: ``transformers.BertForMaskedLM`` reads what ``dlhistory
export bert`` writes, and computes the same logits (checked by the tests, offline).

The mapping of our names to theirs (:func:`to_hf_bert`), its inverse (:func:`from_hf_bert`) and the
folder ``from_pretrained`` reads (:func:`export_hf`). A tool: it uses finished runs and is part of no
run's code version.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..milestones.bert import INIT_STD, LAYER_NORM_EPS, Bert, BertConfig, MaskedLMHead


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
    if config.norm != "post":
        raise ValueError(f"model.norm={config.norm}: Hugging Face's BERT is post-LN only; export a run "
                         "trained with model.norm=post")
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
