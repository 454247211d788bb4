"""OpenAI's GPT-2 weights in the 2019 milestone's model: ``dlhistory sample gpt --init hf:DIR``.

Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are Unsupervised Multitask Learners",
OpenAI 2019. The released checkpoints are read here in Hugging Face's layout (``config.json``,
``model.safetensors``, and the byte-level BPE tokenizer as ``vocab.json`` + ``merges.txt`` or
``tokenizer.json``), so a user who has GPT-2 124M on disk can sample from it with our :class:`GPT`. Only
the names differ: GPT-2 is the milestone's model at 12 layers, 12 heads and d_model 768. Nothing is
downloaded, and pickles (``pytorch_model.bin``) are refused: loading one runs arbitrary code.

Used by the milestone's ``sample`` tool, not part of what it computes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.shakespeare import SubwordVocabulary
from ..errors import UsageError
from ..milestones.gpt import GPT, GPTConfig

TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")
"""Hugging Face's names for GELU's tanh approximation (Hendrycks & Gimpel 2016), which GPT-2 uses."""
LAYER_NORM_EPSILON = 1e-5
"""``nn.LayerNorm``'s default, and GPT-2's."""
SIZES = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")
"""The keys of config.json that give the model's shape."""
END_OF_TEXT = "<|endoftext|>"
"""GPT-2's document separator, one token (50256)."""
UNIMPLEMENTED = ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention")
"""Options of Hugging Face's GPT-2 that later models added; GPT-2 itself has them all off."""


# ================================================================================================
# The configuration: config.json's keys to GPTConfig, refusing what the model does not do.


def config_from_hf(hf_config: dict) -> tuple[GPTConfig, int, int]:
    """(our config, vocab_size, block_size) from a GPT-2 ``config.json``; a one-line UsageError for a
    configuration our model would compute differently. Dropout is 0: the model is loaded to sample."""
    model_type = hf_config.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise UsageError(f"config.json: model_type {model_type!r}; only GPT-2 checkpoints ('gpt2') load")
    activation = hf_config.get("activation_function", "gelu_new")
    if activation not in TANH_GELU:
        raise UsageError(f"config.json: activation_function {activation!r} is not implemented; "
                         f"GPT-2's is 'gelu_new' (GELU, tanh approximation)")
    epsilon = hf_config.get("layer_norm_epsilon", LAYER_NORM_EPSILON)
    if epsilon != LAYER_NORM_EPSILON:
        raise UsageError(f"config.json: layer_norm_epsilon {epsilon}; only GPT-2's {LAYER_NORM_EPSILON} "
                         "is implemented")
    if not hf_config.get("scale_attn_weights", True):
        raise UsageError("config.json: scale_attn_weights false is not implemented; attention here "
                         "divides by sqrt(d_k), as GPT-2 does")
    unimplemented = [key for key in UNIMPLEMENTED if hf_config.get(key)]
    if unimplemented:
        raise UsageError(f"config.json: {', '.join(unimplemented)} is set; not implemented (GPT-2 has "
                         "it off)")
    absent = [key for key in SIZES if key not in hf_config]
    if absent:
        raise UsageError(f"config.json has no {', '.join(absent)}: is it a GPT-2 config?")
    for key in (*SIZES, "n_inner"):  # n_inner may be null: 4 * n_embd
        value = hf_config.get(key)
        if (key != "n_inner" or value is not None) and (type(value) is not int or value < 1):
            raise UsageError(f"config.json: {key} {value!r}; needs a whole number >= 1")
    layers, heads, d_model = hf_config["n_layer"], hf_config["n_head"], hf_config["n_embd"]
    vocab_size, block_size = hf_config["vocab_size"], hf_config["n_positions"]
    d_ff = hf_config.get("n_inner") or 4 * d_model
    if d_ff != 4 * d_model:  # GPT-2's MLP is 4 d_model wide; ours is fixed at that
        raise UsageError(f"config.json: n_inner {d_ff}; only 4 * n_embd ({4 * d_model}) is implemented")
    try:
        config = GPTConfig(layers=layers, heads=heads, d_model=d_model, dropout=0.0,
                           tied=hf_config.get("tie_word_embeddings", True))
    except (TypeError, ValueError) as e:
        raise UsageError(f"config.json: n_layer {layers}, n_head {heads}, n_embd {d_model}: {e}") from None
    return config, vocab_size, block_size


# ================================================================================================
# The weights: GPT-2's names and layouts to ours.


def _is_mask_buffer(key: str) -> bool:
    """GPT-2's causal-mask buffers (``attn.bias``, ``attn.masked_bias``), saved by old versions: the
    mask is not a weight, and ours is built in the attention."""
    return key.endswith((".attn.bias", ".attn.masked_bias"))


def from_hf_state_dict(state: dict[str, torch.Tensor], config: GPTConfig) -> dict[str, torch.Tensor]:
    """Our state dict from a ``GPT2LMHeadModel``'s (or ``GPT2Model``'s: the ``transformer.`` prefix is
    optional). GPT-2's layers are ``Conv1D``: a weight (in, out), the transpose of ``nn.Linear``'s;
    ``c_attn`` holds W^Q, W^K and W^V side by side in its output. Strict: a one-line UsageError when one
    of our weights is missing or one of GPT-2's is left over."""
    hf = {key.removeprefix("transformer."): value for key, value in state.items()
          if not _is_mask_buffer(key)}
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in hf:
            raise UsageError(f"the GPT-2 weights have no {key!r} (for a model of {config.layers} layers)")
        used.add(key)
        return hf[key]

    ours = {"wte.weight": take("wte.weight"), "wpe.weight": take("wpe.weight")}
    for i in range(config.layers):
        h, block = f"h.{i}.", f"blocks.{i}."
        for norm in ("ln_1", "ln_2"):
            ours[f"{block}{norm}.weight"], ours[f"{block}{norm}.bias"] = (take(f"{h}{norm}.weight"),
                                                                        take(f"{h}{norm}.bias"))
        # (d, 3d) -> (3d, d): the rows of W^Q, then W^K, then W^V, each (d, d) as nn.Linear stores it.
        w_q, w_k, w_v = take(f"{h}attn.c_attn.weight").t().chunk(3, dim=0)
        b_q, b_k, b_v = take(f"{h}attn.c_attn.bias").chunk(3)
        for name, weight, bias in (("w_q", w_q, b_q), ("w_k", w_k, b_k), ("w_v", w_v, b_v),
                                   ("w_o", take(f"{h}attn.c_proj.weight").t(), take(f"{h}attn.c_proj.bias"))):
            ours[f"{block}attn.attention.{name}.weight"] = weight.contiguous()
            ours[f"{block}attn.attention.{name}.bias"] = bias.contiguous()
        for ours_index, theirs in ((0, "c_fc"), (2, "c_proj")):  # mlp = (Linear, GELU, Linear)
            ours[f"{block}mlp.{ours_index}.weight"] = take(f"{h}mlp.{theirs}.weight").t().contiguous()
            ours[f"{block}mlp.{ours_index}.bias"] = take(f"{h}mlp.{theirs}.bias")
    ours["ln_f.weight"], ours["ln_f.bias"] = take("ln_f.weight"), take("ln_f.bias")
    ours["head.weight"] = _output_layer(hf, ours["wte.weight"], config.tied, used)
    return _strictly(ours, config, sorted(set(hf) - used))


def _output_layer(hf: dict[str, torch.Tensor], wte: torch.Tensor, tied: bool, used: set[str]) -> torch.Tensor:
    """``lm_head.weight``: the input embedding when tied (Press & Wolf 2017), which a checkpoint may
    omit or repeat; its own matrix otherwise."""
    head = hf.get("lm_head.weight")
    if head is not None:
        used.add("lm_head.weight")
    if not tied:
        if head is None:
            raise UsageError("the GPT-2 weights have no 'lm_head.weight', and config.json unties it from "
                             "the embedding (tie_word_embeddings false)")
        return head
    if head is not None and not torch.equal(head, wte):
        raise UsageError("the GPT-2 weights' lm_head.weight differs from wte.weight, but config.json ties "
                         "them (tie_word_embeddings true)")
    return wte


def _strictly(ours: dict[str, torch.Tensor], config: GPTConfig, unused: list[str]) -> dict[str, torch.Tensor]:
    """``ours`` if it has exactly the keys of a GPT of ``config`` and no GPT-2 weight went unused."""
    with torch.device("meta"):  # the names only: no memory, no initialisation
        expected = set(GPT(config, 1, 1).state_dict())
    missing, extra = sorted(expected - set(ours)), sorted(set(ours) - expected)
    if missing:
        raise UsageError(f"no GPT-2 weight for {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if extra or unused:
        left = unused + [f"(ours) {key}" for key in extra]
        raise UsageError(f"GPT-2 weights this model has no place for: {', '.join(left[:3])}"
                         f"{' ...' if len(left) > 3 else ''}")
    return ours


# ================================================================================================
# The folder: config, weights and tokenizer.


def _read_config(directory: Path) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise UsageError(f"{directory} has no config.json: give a Hugging Face GPT-2 folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path} is not JSON ({type(e).__name__})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path} is not a JSON object")
    return config


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """``model.safetensors``, or the shards a ``model.safetensors.index.json`` lists (GPT-2 XL's
    layout in some copies). Pickled checkpoints are refused, never opened."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            shards = json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()
            files = [directory / name for name in sorted(set(shards))]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError, TypeError) as e:
            raise UsageError(f"{index} is not a safetensors index ({type(e).__name__})") from None
    else:
        pickles = sorted(p.name for p in directory.glob("*.bin"))
        if pickles:
            raise UsageError(f"{directory} has only {pickles[0]}, a pickle, which dlhistory never loads "
                             "(it can run code): convert it to model.safetensors")
        raise UsageError(f"{directory} has no model.safetensors: give a Hugging Face GPT-2 folder")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            state.update(load_file(path))
        except (OSError, SafetensorError) as e:
            raise UsageError(f"cannot read {path}: {_first_line(e)}") from None
    return state


def _read_tokenizer(directory: Path) -> SubwordVocabulary:
    """GPT-2's byte-level BPE (Sennrich et al. 2016, on bytes): ``tokenizer.json`` as saved, or
    ``vocab.json`` + ``merges.txt`` with GPT-2's settings (no space added before the text)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    whole, vocab, merges = (directory / name for name in ("tokenizer.json", "vocab.json", "merges.txt"))
    if not (whole.is_file() or (vocab.is_file() and merges.is_file())):
        raise UsageError(f"{directory} has no tokenizer: give vocab.json and merges.txt, or tokenizer.json")
    try:
        if whole.is_file():
            return SubwordVocabulary(Tokenizer.from_file(str(whole)))
        tokenizer = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    except Exception as e:  # tokenizers raises its own exception type for a broken file
        raise UsageError(f"cannot read the tokenizer in {directory}: {_first_line(e)}") from None
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    if tokenizer.token_to_id(END_OF_TEXT) is not None:  # one token, as tokenizer.json marks it
        tokenizer.add_special_tokens([AddedToken(END_OF_TEXT, special=True)])
    return SubwordVocabulary(tokenizer)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def load_hf_gpt2(directory: Path) -> tuple[GPT, SubwordVocabulary]:
    """(our GPT in eval mode, its vocabulary) from a Hugging Face GPT-2 folder; a one-line UsageError
    for a missing folder or file, a pickled checkpoint, or a configuration the model does not do."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such folder; give hf:DIR, a folder holding a Hugging Face GPT-2")
    config, vocab_size, block_size = config_from_hf(_read_config(directory))
    vocabulary = _read_tokenizer(directory)
    if vocabulary.size > vocab_size:  # a token the embedding has no row for
        raise UsageError(f"the tokenizer in {directory} has {vocabulary.size} tokens, the model only "
                         f"{vocab_size} (config.json's vocab_size)")
    state = from_hf_state_dict(_read_weights(directory), config)
    model = GPT(config, vocab_size, block_size)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # a shape that config.json does not describe
        lines = [line.strip() for line in str(e).splitlines() if "size mismatch" in line] or [str(e)]
        raise UsageError(f"the weights in {directory} do not fit its config.json: {lines[0][:200]}") from None
    return model.eval(), vocabulary
