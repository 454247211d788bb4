"""Tiny Shakespeare: the character-level language-modelling benchmark of char-rnn and nanoGPT.

A. Karpathy, 2015, "The Unreasonable Effectiveness of Recurrent Neural Networks" (char-rnn): 40,000
lines of Shakespeare's plays, 1,115,394 characters, public-domain text. As in nanoGPT's
``shakespeare_char``, the first 90% is the training split and the last 10% the validation split, and
the vocabulary is the 65 characters of the whole file. The BPE variant learns its subwords on the
training split only.

Training batches are random windows of ``block_size + 1`` tokens, drawn as a pure function of (seed,
step): a resumed run draws exactly the batches the uninterrupted one would. Evaluation reads a split
whole, in consecutive windows, so a validation loss is exact rather than an estimate from random
batches (nanoGPT averages 200 random batches; both average the same per-position losses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from dlhistory.data.download import RemoteFile, fetch
from dlhistory.data.seeds import mix_seeds
from dlhistory.errors import DataError, UsageError

FILE = RemoteFile(
    dataset="tinyshakespeare", name="input.txt",
    urls=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed")
CHARACTERS = 1_115_394


@dataclass(frozen=True)
class ShakespeareConfig:
    """Tiny Shakespeare as characters (nanoGPT's ``shakespeare_char``) or as learnt subwords."""

    tokenizer: Literal["char", "bpe"] = "char"
    vocab_size: int = 1024
    """Subwords the BPE learns (byte-level, on the training split); ignored for characters."""
    block_size: int = 256
    """Context length: tokens a training window holds, and the longest context the model reads."""
    val_fraction: float = 0.1
    """The last part of the text, for validation (nanoGPT: 0.1)."""
    train_eval_tokens: int = 100_000
    """Training tokens, evenly spread windows, on which the training loss is measured at evaluation."""
    val_tokens: int | None = None
    """Validation tokens read at evaluation (None: the whole split; smoke presets read less)."""

    def __post_init__(self) -> None:
        if self.block_size < 2 or self.vocab_size < 260 or self.train_eval_tokens < 1:
            raise ValueError("needs block_size >= 2, vocab_size >= 260 (bytes plus merges) and "
                             "train_eval_tokens >= 1")
        if not 0 < self.val_fraction < 0.5:
            raise ValueError("needs 0 < val_fraction < 0.5")
        if self.val_tokens is not None and self.val_tokens <= self.block_size:
            raise ValueError("needs val_tokens above block_size")


class CharVocabulary:
    """Characters <-> ids, the sorted characters of the whole file (nanoGPT's 65)."""

    def __init__(self, chars: list[str]):
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise UsageError(f"characters outside the vocabulary: {''.join(unknown)[:20]!r}; the model "
                             f"knows {len(self.chars)} characters of Tiny Shakespeare")
        return [self.index[c] for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"kind": "char", "chars": self.chars})


class SubwordVocabulary:
    """Byte-level BPE (GPT-2's kind of tokenizer) learnt with Hugging Face ``tokenizers``: any text
    encodes, and decoding is exact."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def learn(cls, text: str, vocab_size: int) -> SubwordVocabulary:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(text.splitlines(keepends=True), trainer)
        return cls(tokenizer)

    @property
    def size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def to_json(self) -> str:
        return json.dumps({"kind": "bpe", "tokenizer": json.loads(self.tokenizer.to_str())})


Vocabulary = CharVocabulary | SubwordVocabulary


def load_vocabulary(text: str) -> Vocabulary:
    """A vocabulary written by ``to_json`` (a run's ``vocabulary.json``)."""
    try:
        saved = json.loads(text)
        if saved["kind"] == "char":
            return CharVocabulary(list(saved["chars"]))
        return SubwordVocabulary(Tokenizer.from_str(json.dumps(saved["tokenizer"])))
    except Exception as e:  # json, a missing key, a broken tokenizer: the file is not one of ours
        raise UsageError(f"cannot read the vocabulary ({type(e).__name__}); is it a gpt run's "
                         "vocabulary.json?") from None


class TextData:
    """The token ids of each split, the vocabulary, and windows of them."""

    def __init__(self, config: ShakespeareConfig, vocabulary: Vocabulary, splits: dict[str, torch.Tensor],
                 characters: dict[str, int], seed: int, rank: int = 0):
        self.config, self.vocabulary, self.splits = config, vocabulary, splits
        self.characters = characters
        """Characters per split: a BPE model's loss per token becomes a loss per character."""
        self.seed, self.rank = seed, rank

    @property
    def vocab_size(self) -> int:
        return self.vocabulary.size

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def to(self, device: torch.device) -> TextData:
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        return self

    def artifacts(self) -> dict[str, str]:
        return {"vocabulary.json": self.vocabulary.to_json()}

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Training windows for ``step``: inputs and next-token targets, (B, T) each. A pure function
        of (seed, rank, step)."""
        ids = self.splits["train"]
        generator = torch.Generator().manual_seed(mix_seeds(self.seed, self.rank, step))
        starts = torch.randint(len(ids) - self.block_size, (batch_size,), generator=generator)
        rows = starts[:, None].to(ids.device) + torch.arange(self.block_size + 1, device=ids.device)
        windows = ids[rows]
        return windows[:, :-1], windows[:, 1:]

    def evaluation_windows(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Consecutive windows over the split (its whole length, or ``val_tokens``; training: windows
        spread evenly over it, ``train_eval_tokens`` in all): inputs and targets, (N, T) each."""
        ids = self.splits["train" if split == "train" else "val"]
        T = self.block_size
        if split == "train":
            count = max(1, self.config.train_eval_tokens // T)
            starts = torch.linspace(0, len(ids) - T - 1, count).long()
        else:
            usable = len(ids) if self.config.val_tokens is None else min(len(ids), self.config.val_tokens)
            starts = torch.arange(0, usable - T, T)
        rows = starts[:, None].to(ids.device) + torch.arange(T + 1, device=ids.device)
        windows = ids[rows]
        return windows[:, :-1], windows[:, 1:]

    def tokens_per_character(self, split: str) -> float:
        split = "train" if split == "train" else "val"
        return len(self.splits[split]) / self.characters[split]


def load_text(data_dir: str | None = None) -> str:
    path = fetch(FILE, data_dir)
    text = path.read_text(encoding="utf-8")
    if len(text) != CHARACTERS:  # the checksum passed: a programming error, not bad data
        raise DataError(f"{path}: expected {CHARACTERS} characters, found {len(text)}")
    return text


def shakespeare_data(config: ShakespeareConfig, ctx) -> TextData:
    """Build the data component: load the verified text, split it, learn the vocabulary, encode."""
    text = load_text(ctx.data_dir)
    cut = int(len(text) * (1 - config.val_fraction))
    parts = {"train": text[:cut], "val": text[cut:]}
    if config.tokenizer == "char":
        vocabulary: Vocabulary = CharVocabulary(sorted(set(text)))
    else:
        vocabulary = SubwordVocabulary.learn(parts["train"], config.vocab_size)
    splits = {k: torch.tensor(vocabulary.encode(v), dtype=torch.long) for k, v in parts.items()}
    if min(len(v) for v in splits.values()) <= config.block_size + 1:
        raise UsageError(f"data.block_size {config.block_size}: longer than a split; lower it")
    characters = {k: len(v) for k, v in parts.items()}
    return TextData(config, vocabulary, splits, characters, ctx.seed, ctx.rank)


def entropy_of_unigrams(ids: torch.Tensor, vocab_size: int) -> float:
    """The entropy (nats) of the token frequencies: the loss of a model that ignores all context."""
    p = torch.bincount(ids, minlength=vocab_size).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())

