"""Sentence pairs for machine translation: subword vocabulary, padded batches bucketed by length.

Words are split into subwords by byte-pair encoding (Sennrich, Haddow & Birch 2016, "Neural Machine
Translation of Rare Words with Subword Units"): start from characters and repeatedly merge the most
frequent adjacent pair, so frequent words become one token and rare ones are spelled from pieces; no
word is ever out of vocabulary. One vocabulary is learnt jointly on the source and target sides of the
*training* split only (never validation or test), which lets the Transformer share its embeddings
(Vaswani et al. 2017, section 3.4). Hugging Face ``tokenizers`` does the learning; the tokenizer is
saved with every run so ``dlhistory translate`` reads exactly the vocabulary the model was trained on.

Batches hold sentences of similar length (length bucketing), so little compute is spent on padding.
The batch of a step is a pure function of (seed, step), so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from ..errors import UsageError
from . import multi30k

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")

Language = Literal["de", "en", "fr"]


@dataclass(frozen=True)
class Multi30kConfig:
    """Multi30k task 1 (Elliott et al. 2016) as a translation direction with a joint BPE vocabulary."""

    source: Language = "de"
    target: Language = "en"
    vocab_size: int = 8000
    """Size of the joint BPE vocabulary (specials included), learnt on the training split."""
    max_length: int = 64
    """Training sentences are cut to this many subwords (Multi30k captions average ~15)."""
    train_size: int | None = None
    """Use only the first N training pairs (None: all 29,000)."""
    val_size: int | None = None
    """Use only the first N validation pairs (smoke presets; reported numbers use all 1,014)."""
    test_size: int | None = None
    """Use only the first N test pairs (smoke presets; reported numbers use all 1,000)."""
    bucket: int = 50
    """Batches per length-sorted pool: larger pools waste less padding but shuffle less."""

    def __post_init__(self) -> None:
        if self.source == self.target:
            raise ValueError("source and target must be different languages")
        sizes = [n for n in (self.train_size, self.val_size, self.test_size) if n is not None]
        if self.vocab_size < len(SPECIALS) + 32 or self.max_length < 2 or min(sizes, default=1) < 1 \
                or self.bucket < 1:
            raise ValueError("needs vocab_size >= 36, max_length >= 2, bucket >= 1 and positive sizes")
        for split, size in (("train", self.train_size), ("val", self.val_size), ("test", self.test_size)):
            if size is not None and size > multi30k.SIZES[split]:
                raise ValueError(f"{split}_size {size}: Multi30k's {split} split has "
                                 f"{multi30k.SIZES[split]} pairs")


# --------------------------------------------------------------------------------------------------
# The subword tokenizer


def train_bpe(sentences: list[str], vocab_size: int) -> Tokenizer:
    """Learn a BPE vocabulary of ``vocab_size`` on ``sentences``.

    Words are marked by a leading '▁' (as in SentencePiece) and punctuation is split off, so decoding
    is exact detokenization: joining the pieces and turning '▁' back into spaces gives the sentence.
    """
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation(behavior="isolated")])
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), min_frequency=2,
                                  show_progress=False)
    tokenizer.train_from_iterator(sentences, trainer, length=len(sentences))
    return tokenizer


def encode(tokenizer: Tokenizer, sentences: list[str], max_length: int | None = None) -> torch.Tensor:
    """Subword ids of ``sentences``, each followed by </s>, padded into one (N, L) int64 tensor."""
    ids = [e.ids[: max_length - 1] if max_length else e.ids for e in tokenizer.encode_batch(sentences)]
    ids = [[*s, EOS] for s in ids]
    out = torch.full((len(ids), max(map(len, ids), default=1)), PAD, dtype=torch.long)
    for i, s in enumerate(ids):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def decode(tokenizer: Tokenizer, ids: torch.Tensor) -> list[str]:
    """Detokenized sentences from (N, L) ids, each cut at its first </s>."""
    rows = []
    for row in ids.tolist():
        if EOS in row:
            row = row[: row.index(EOS)]
        rows.append([t for t in row if t not in (PAD, BOS)])
    return tokenizer.decode_batch(rows)


# --------------------------------------------------------------------------------------------------
# Batches


@dataclass
class Batch:
    """Padded id tensors: ``source`` (B, S) and ``target`` (B, T); both end each sentence with </s>.

    The decoder reads ``<s> y_1 .. y_n`` (``target_in``) and predicts ``y_1 .. y_n </s>`` (``target``).
    """

    source: torch.Tensor
    target: torch.Tensor

    @property
    def source_mask(self) -> torch.Tensor:
        """True at real source tokens, False at padding: (B, S)."""
        return self.source != PAD

    @property
    def target_in(self) -> torch.Tensor:
        bos = torch.full_like(self.target[:, :1], BOS)
        return torch.cat([bos, self.target[:, :-1]], 1).masked_fill(self.target == PAD, PAD)


def _trim(ids: torch.Tensor) -> torch.Tensor:
    """Drop the columns that are padding in every row."""
    length = int((ids != PAD).sum(1).max()) if len(ids) else 1
    return ids[:, : max(1, length)]


class TranslationData:
    """Source and target id tensors per split, the tokenizer, and the reference sentences for BLEU."""

    def __init__(self, config: Multi30kConfig, tokenizer: Tokenizer,
                 text: dict[str, tuple[list[str], list[str]]], seed: int, rank: int = 0, world_size: int = 1):
        self.config, self.tokenizer, self.text = config, tokenizer, text
        self.seed, self.rank, self.world_size = seed, rank, world_size
        limit = {"train": config.max_length}
        self.splits = {split: tuple(encode(tokenizer, side, limit.get(split)) for side in pair)
                       for split, pair in text.items()}
        self._epoch, self._batches = -1, []
        source, target = self.splits["train"]  # each side's length, for bucketing and shapes: once
        self._lengths = (source != PAD).sum(1), (target != PAD).sum(1)
        self._length = torch.maximum(*self._lengths)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def size(self, split: str) -> int:
        return len(self.text[split][0])

    def references(self, split: str) -> list[str]:
        return self.text[split][1]

    def to(self, device: torch.device) -> TranslationData:
        self.splits = {k: (s.to(device), t.to(device)) for k, (s, t) in self.splits.items()}
        return self

    def artifacts(self) -> dict[str, str]:
        """Files the run directory keeps: the tokenizer, so a trained model can be used later."""
        return {"tokenizer.json": self.tokenizer.to_str()}

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, math.ceil(self.size("train") / batch_size))

    def train_batch(self, step: int, batch_size: int) -> Batch:
        """The training batch of global ``step``: a pure function of (seed, step)."""
        source, target = self.splits["train"]
        index = self._index(step, batch_size).to(source.device)
        return Batch(_trim(source[index]), _trim(target[index]))

    def train_shape(self, step: int, batch_size: int) -> tuple[int, int, int]:
        """(sentences, source width, target width) of :meth:`train_batch` without building it."""
        index = self._index(step, batch_size)
        source, target = (max(1, int(lengths[index].max())) if len(index) else 1
                          for lengths in self._lengths)
        return len(index), source, target

    def _index(self, step: int, batch_size: int) -> torch.Tensor:
        """The training pairs of global ``step`` (this process's share of them)."""
        epoch, i = divmod(step, self.steps_per_epoch(batch_size))
        if self._epoch != epoch:
            self._epoch, self._batches = epoch, self._bucketed(epoch, batch_size)
        return self._batches[i][self.rank::self.world_size]

    def _bucketed(self, epoch: int, batch_size: int) -> list[torch.Tensor]:
        """This epoch's batches: shuffle, sort pools of ``bucket`` batches by length, shuffle batches."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size("train"), generator=generator)
        pool = batch_size * self.config.bucket
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[torch.argsort(self._length[chunk], stable=True)]
            batches += list(chunk.split(batch_size))
        shuffle = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[j] for j in shuffle]

    def eval_batches(self, split: str, batch_size: int,
                     limit: int | None = None) -> Iterator[tuple[torch.Tensor, Batch]]:
        """(indices, batch) over ``split`` (its first ``limit`` pairs) sorted by length: little padding."""
        source, target = self.splits[split]
        source, target = source[:limit], target[:limit]
        order = torch.argsort((source != PAD).sum(1).cpu(), stable=True)
        for index in order.split(batch_size):
            index = index.to(source.device)
            yield index, Batch(_trim(source[index]), _trim(target[index]))

    def decode(self, ids: torch.Tensor) -> list[str]:
        return decode(self.tokenizer, ids)


def multi30k_data(config: Multi30kConfig, ctx) -> TranslationData:
    """Build the Multi30k data component: load (verified), learn BPE on the training split, encode."""
    text = {}
    for split, size in (("train", config.train_size), ("val", config.val_size), ("test", config.test_size)):
        src = multi30k.load_sentences(split, config.source, ctx.data_dir)[:size]
        tgt = multi30k.load_sentences(split, config.target, ctx.data_dir)[:size]
        text[split] = (src, tgt)
    tokenizer = train_bpe(text["train"][0] + text["train"][1], config.vocab_size)
    return TranslationData(config, tokenizer, text, ctx.seed, ctx.rank, ctx.world_size)


def load_tokenizer(path) -> Tokenizer:
    """The tokenizer a run saved; a missing or broken file is a one-line UsageError."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a plain Exception for a bad file
        raise UsageError(f"cannot read the tokenizer {path}: {e}; "
                         "is it a dlhistory translation run?") from None
