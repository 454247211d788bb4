"""Our GPT at GPT-2's configuration against Hugging Face's ``GPT2LMHeadModel`` with the same weights
(randomly initialised: nothing is downloaded), and ``sample gpt --init hf:DIR`` on a GPT-2-shaped folder
with a tiny byte-level BPE tokenizer. ``transformers`` is a test-only dependency."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from dlhistory.cli import main  # noqa: E402
from dlhistory.errors import UsageError  # noqa: E402
from dlhistory.milestones.gpt import GPT  # noqa: E402
from dlhistory.tools.gpt2 import config_from_hf, from_hf_state_dict, load_hf_gpt2  # noqa: E402

TEXT = ["First Citizen: Before we proceed any further, hear me speak.\n",
        "All: Speak, speak.\n", "First Citizen: You are all resolved rather to die than to famish?\n",
        "All: Resolved. resolved.\n", "Second Citizen: One word, good citizens.\n"]


def hf_gpt2(vocab_size: int = 100, seed: int = 0, **changes) -> transformers.GPT2LMHeadModel:
    """A small random GPT-2 in eval mode, its LayerNorm gains and shifts and every bias random too, so
    that a swapped or dropped bias, or a norm left at 1 and 0, changes the logits."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=32, vocab_size=vocab_size,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                     eos_token_id=0, **changes)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:  # (the only vectors: the norms' gains and shifts, the layers' biases)
                centre = 1.0 if ".ln_" in name and name.endswith("weight") else 0.0
                p.copy_(centre + 0.1 * torch.randn_like(p))
    return model


def ours_from(hf: transformers.GPT2LMHeadModel, state: dict | None = None) -> GPT:
    config, vocab_size, block_size = config_from_hf(hf.config.to_dict())
    model = GPT(config, vocab_size, block_size).eval()
    model.load_state_dict(from_hf_state_dict(state if state is not None else hf.state_dict(), config))
    return model


def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert len(message.splitlines()) == 1, message
    return message


# ------------------------------------------------------------------------------------------------
# The same logits as Hugging Face's GPT-2


@pytest.mark.parametrize("tied", [True, False])
@torch.no_grad()
def test_logits_equal_hugging_faces(tied):
    hf = hf_gpt2(tie_word_embeddings=tied)
    ours = ours_from(hf)
    assert ours.config.tied == tied and ours.config.layers == 2 and ours.config.heads == 4
    ids = torch.randint(0, 100, (3, 32), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-5, rtol=0)


@torch.no_grad()
def test_keys_without_prefix_and_with_mask_buffers_load_the_same():
    """GPT-2's own checkpoints are ``GPT2Model``'s (no ``transformer.``) and older ones keep the causal
    mask as ``attn.bias``/``attn.masked_bias`` buffers: neither is a weight."""
    hf = hf_gpt2()
    state = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    for i in range(2):
        state[f"h.{i}.attn.bias"] = torch.ones(1, 1, 32, 32).tril()
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    ids = torch.randint(0, 100, (2, 20), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(ours_from(hf, state)(ids), hf(ids).logits, atol=1e-5, rtol=0)


def test_conversion_is_strict():
    hf = hf_gpt2()
    config, _, _ = config_from_hf(hf.config.to_dict())
    state = hf.state_dict()
    missing = {k: v for k, v in state.items() if k != "transformer.h.1.mlp.c_fc.bias"}
    with pytest.raises(UsageError) as e:
        from_hf_state_dict(missing, config)
    assert "h.1.mlp.c_fc.bias" in one_line(e)
    with pytest.raises(UsageError) as e:
        from_hf_state_dict({**state, "transformer.h.2.ln_1.weight": torch.ones(64)}, config)
    assert "h.2.ln_1.weight" in one_line(e)
    with pytest.raises(UsageError) as e:  # tied in config.json, but another matrix in the file
        from_hf_state_dict({**state, "lm_head.weight": torch.zeros(100, 64)}, config)
    assert "lm_head.weight" in one_line(e)


# ------------------------------------------------------------------------------------------------
# A GPT-2 folder: load_hf_gpt2 and ``sample gpt --init hf:DIR``


def byte_level_bpe(vocab_size: int = 300) -> tokenizers.Tokenizer:
    """GPT-2's kind of tokenizer, learnt on a few lines: byte-level BPE, no space added in front."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TEXT, trainer)
    return tokenizer


@pytest.fixture(scope="module", params=["vocab.json+merges.txt", "tokenizer.json"])
def gpt2_folder(request, tmp_path_factory):
    """(folder, the Hugging Face model, the tokenizer), as ``save_pretrained`` and ``tokenizers`` write
    them; the tokenizer as GPT-2's two files or as one ``tokenizer.json``."""
    folder = tmp_path_factory.mktemp("gpt2")
    tokenizer = byte_level_bpe()
    hf = hf_gpt2(vocab_size=tokenizer.get_vocab_size())
    hf.save_pretrained(folder, safe_serialization=True)
    if request.param == "tokenizer.json":
        tokenizer.save(str(folder / "tokenizer.json"))
    else:
        tokenizer.model.save(str(folder))
    return folder, hf, tokenizer


@torch.no_grad()
def test_folder_loads_and_samples(gpt2_folder):
    folder, hf, tokenizer = gpt2_folder
    model, vocabulary = load_hf_gpt2(folder)
    assert isinstance(model, GPT) and not model.training and model.block_size == 32
    text = "First Citizen: speak, good citizens.\n<|endoftext|>"
    ids = vocabulary.encode(text)
    assert ids == tokenizer.encode(text).ids and vocabulary.size == tokenizer.get_vocab_size()
    assert vocabulary.decode(vocabulary.encode("All: Speak")) == "All: Speak"
    torch.testing.assert_close(model(torch.tensor([ids])), hf(torch.tensor([ids])).logits, atol=1e-5, rtol=0)
    written = list(model.generate(torch.tensor([vocabulary.encode("All:")]), 40, top_k=10,
                                  generator=torch.Generator().manual_seed(0)))
    assert len(written) == 40 and all(0 <= t < vocabulary.size for t in written)  # past the 32-token context
    assert isinstance(vocabulary.decode(written), str)


def test_sample_command_reads_a_hugging_face_folder(gpt2_folder, capsys):
    folder, _, _ = gpt2_folder
    code = main(["sample", "gpt", "--init", f"hf:{folder}", "--prompt", "All:", "--tokens", "8"])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("All:") and f"hf:{folder}" in err, err


# ------------------------------------------------------------------------------------------------
# One-line errors


def test_missing_folder_is_one_line(tmp_path):
    with pytest.raises(UsageError) as e:
        load_hf_gpt2(tmp_path / "no-such-gpt2")
    assert "no such folder" in one_line(e)


def test_pickle_only_checkpoint_is_refused_unopened(gpt2_folder, tmp_path):
    folder, _, _ = gpt2_folder
    for name in ("config.json", "vocab.json", "merges.txt", "tokenizer.json"):
        if (folder / name).is_file():
            (tmp_path / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even a pickle: it must not be opened")
    with pytest.raises(UsageError) as e:
        load_hf_gpt2(tmp_path)
    message = one_line(e)
    assert "pytorch_model.bin" in message and "safetensors" in message
    code = main(["sample", "gpt", "--init", f"hf:{tmp_path}", "--tokens", "3"])
    assert code == 2


@pytest.mark.parametrize(("change", "said"), [
    ({"activation_function": "relu"}, "activation_function"),
    ({"activation_function": "gelu"}, "activation_function"),  # exact erf GELU: not GPT-2's
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"reorder_and_upcast_attn": True}, "reorder_and_upcast_attn"),
    ({"scale_attn_weights": False}, "scale_attn_weights"),
    ({"n_inner": 100}, "n_inner"),
    ({"n_head": 5}, "n_head"),
    ({"n_layer": "2"}, "n_layer"),
    ({"model_type": "llama"}, "model_type"),
])
def test_unsupported_config_is_one_line(change, said):
    config = {**hf_gpt2().config.to_dict(), **change}
    with pytest.raises(UsageError) as e:
        config_from_hf(config)
    assert said in one_line(e)


def test_missing_files_are_one_line(gpt2_folder, tmp_path):
    folder, _, _ = gpt2_folder
    with pytest.raises(UsageError) as e:
        load_hf_gpt2(tmp_path)
    assert "config.json" in one_line(e)
    (tmp_path / "config.json").write_text(json.dumps(json.loads((folder / "config.json").read_text())))
    with pytest.raises(UsageError) as e:
        load_hf_gpt2(tmp_path)
    assert "tokenizer" in one_line(e)
    byte_level_bpe().save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(UsageError) as e:
        load_hf_gpt2(tmp_path)
    assert "model.safetensors" in one_line(e)
