"""Movie-review sentence polarity (MR) for BERT: pre-train on unlabeled text, fine-tune on a few labels.

B. Pang & L. Lee, 2005, "Seeing stars: Exploiting class relationships for sentiment categorization with
respect to rating scales", ACL (sentence polarity dataset v1.0): 5,331 positive and 5,331 negative
one-line snippets of Rotten Tomatoes reviews, the "MR" benchmark. Research use.

One split is fixed for every run, stratified with a seed of its own (never the run's): 8,530 training,
1,066 validation and 1,066 test sentences, 533 of each class in validation and in test. A label budget
is a class-balanced subset of the training split, drawn per run seed and *nested*: the 250 labels of a
seed are among its 1,000, which are among all 8,530, so a curve over budgets changes only the budget.

The unlabeled pre-training corpus (Devlin et al. 2018, "BERT: Pre-training of Deep Bidirectional
Transformers for Language Understanding", section 3.1, pre-trains on unlabeled text) is the MR training
sentences without their labels, the lines of Tiny Shakespeare and the English side of Multi30k train:
never a validation or test sentence, so pre-training cannot see what fine-tuning is scored on.

Words are split by WordPiece (Schuster & Nakajima 2012; Wu et al. 2016, "Google's Neural Machine
Translation System", section 4.1), BERT's tokenizer: lowercased, BERT's normaliser and pre-tokeniser,
continuation pieces marked '##', learnt by Hugging Face ``tokenizers`` on the pre-training corpus only
(and, for a model that sees no unlabeled text, ``corpus=False``, on the MR training sentences alone).
Every sentence is read as ``[CLS] sentence [SEP]`` (BERT section 3, single-sentence inputs).

Batches are drawn as a pure function of (seed, step), so a resumed run sees the batches the
uninterrupted one would. Masking tokens for the masked-LM objective is the algorithm's job, not this
file's: ``pretraining_batch`` returns clean sentences.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from dlhistory.data import multi30k, shakespeare
from dlhistory.data.download import RemoteFile, fetch
from dlhistory.data.seeds import label_subset, mix_seeds
from dlhistory.errors import DataError

_HOME = "https://raw.githubusercontent.com/dennybritz/cnn-text-classification-tf/master/data/rt-polaritydata/"
FILES = {  # label -> file; SHA-256 from ../shared/data/README.md
    0: RemoteFile(dataset="rt-polarity", name="rt-polarity.neg", urls=(_HOME + "rt-polarity.neg",),
                  sha256="2d11cfbc790f1cd96d78339f41ce53ced1efa83cd22d37d6788fa3fe3d17e2fd"),
    1: RemoteFile(dataset="rt-polarity", name="rt-polarity.pos", urls=(_HOME + "rt-polarity.pos",),
                  sha256="4134882974a28d0c7b5151256f0e33a6169984ee7372c279e673f1114f475d58"),
}
CLASSES = ("negative", "positive")
PER_CLASS = 5331
"""Sentences in each file."""
HELD_OUT_PER_CLASS = 533
"""Sentences of each class in validation and in test (10% of the 10,662, stratified)."""
SIZES = {"train": 2 * (PER_CLASS - 2 * HELD_OUT_PER_CLASS), "val": 2 * HELD_OUT_PER_CLASS,
         "test": 2 * HELD_OUT_PER_CLASS}  # 8,530 / 1,066 / 1,066

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # BERT's names, at fixed ids 0..4


@dataclass(frozen=True)
class PolarityConfig:
    """MR sentence polarity (Pang & Lee 2005) with a WordPiece vocabulary, and unlabeled text."""

    vocab_size: int = 8000
    """WordPiece vocabulary size (specials included), learnt on the pre-training corpus only."""
    max_length: int = 64
    """Tokens of ``[CLS] sentence [SEP]``: longer sentences are cut (MR averages ~25 WordPieces)."""
    corpus: bool = True
    """Include the unlabeled pre-training corpus, on which the tokenizer is then learnt. False: no
    unlabeled text at all, and the tokenizer is learnt on the MR training sentences alone (what a model
    trained from scratch on the labels has)."""
    split_seed: int = 0
    """Seed of the one train/validation/test split; fixed so every run shares it."""
    in_domain_weight: int = 1
    """Times the MR training sentences appear in the pre-training stream, against once for the other
    text: a mixture weight for the in-domain part (as the Pile weights its sources; Gururangan et al.
    2020, "Don't Stop Pretraining", pre-train on the task's own unlabeled text). The tokenizer and the
    corpus's size are those of the text itself, each sentence once."""

    def __post_init__(self) -> None:
        if self.vocab_size < 256 or self.max_length < 3:
            raise ValueError("needs vocab_size >= 256 (characters plus pieces) and max_length >= 3 "
                             "([CLS], a token, [SEP])")
        if self.in_domain_weight < 1:
            raise ValueError(f"in_domain_weight {self.in_domain_weight}: the times the MR training "
                             "sentences appear in the pre-training stream, an integer >= 1")


# --------------------------------------------------------------------------------------------------
# The sentences, the fixed split and the label budgets


def _decode(raw: bytes) -> list[str]:
    """Lines of a polarity file. The verified copies are UTF-8; the original 2005 release was latin-1,
    so a line that is not valid UTF-8 is read as latin-1 (which decodes any byte) instead of failing."""
    lines = []
    for line in raw.splitlines():
        try:
            lines.append(line.decode("utf-8").strip())
        except UnicodeDecodeError:
            lines.append(line.decode("latin-1").strip())
    return lines


def load_sentences(data_dir: str | None = None) -> tuple[list[str], torch.Tensor]:
    """All 10,662 sentences, verified, negatives then positives in file order, and their labels (N,)
    int64: 0 negative, 1 positive."""
    sentences, labels = [], []
    for label, remote in FILES.items():
        path = fetch(remote, data_dir)
        lines = _decode(path.read_bytes())
        if len(lines) != PER_CLASS:  # the checksum passed: a programming error, not bad data
            raise DataError(f"{path}: expected {PER_CLASS} sentences, found {len(lines)}")
        sentences += lines
        labels += [label] * len(lines)
    return sentences, torch.tensor(labels, dtype=torch.long)


def split_indices(labels: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """The fixed stratified split: indices (ascending) of 'train', 'val' and 'test'.

    Each class is shuffled by Python's ``random.Random(seed)`` (its shuffles are reproducible across
    Python versions) and its first 533 go to test, the next 533 to validation, the rest to training.
    """
    rng = random.Random(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in sorted(set(labels.tolist())):
        members = (labels == c).nonzero().squeeze(1).tolist()
        rng.shuffle(members)
        parts["test"] += members[:HELD_OUT_PER_CLASS]
        parts["val"] += members[HELD_OUT_PER_CLASS:2 * HELD_OUT_PER_CLASS]
        parts["train"] += members[2 * HELD_OUT_PER_CLASS:]
    return {k: torch.tensor(sorted(v), dtype=torch.long) for k, v in parts.items()}


def pretraining_sentences(train_sentences: list[str], data_dir: str | None = None) -> list[str]:
    """The unlabeled pre-training corpus: ``train_sentences`` (the MR training split, without labels),
    the non-empty lines of Tiny Shakespeare, then the English sentences of Multi30k train."""
    lines = [line for line in shakespeare.load_text(data_dir).splitlines() if line.strip()]
    return list(train_sentences) + lines + multi30k.load_sentences("train", "en", data_dir)


# --------------------------------------------------------------------------------------------------
# The WordPiece tokenizer


def learn_wordpiece(sentences: list[str], vocab_size: int) -> Tokenizer:
    """Learn BERT's uncased WordPiece vocabulary of ``vocab_size`` on ``sentences``.

    BERT's normaliser (clean control characters, split CJK, strip accents, lowercase) and pre-tokeniser
    (split on whitespace and punctuation); the specials come first, at ids 0..4. The saved tokenizer adds
    ``[CLS] .. [SEP]`` by itself, as BERT's does; :func:`encode` adds them explicitly to cut first.

    Determinism: ``tokenizers``' trainer gives the '##'-continuation characters ids in hash-map order, and
    ties between merges are broken by those ids, so two trainings on the same corpus can differ
    (huggingface/tokenizers#1794). Handing them to the trainer up front, sorted, fixes their ids; the
    trainer marks them special, so the tokenizer is then rebuilt from the learnt vocabulary with only
    BERT's five specials.
    """
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, show_progress=False,
                                        special_tokens=[*SPECIALS, *_continuations(sentences)])
    learnt = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")))
    learnt.train_from_iterator(sentences, trainer, length=len(sentences))
    tokenizer = _bert_pipeline(Tokenizer(models.WordPiece(learnt.get_vocab(), unk_token="[UNK]")))
    tokenizer.add_special_tokens(list(SPECIALS))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)])
    if [tokenizer.token_to_id(s) for s in SPECIALS] != list(range(len(SPECIALS))):
        raise DataError(f"WordPiece specials are not at ids 0..{len(SPECIALS) - 1}")  # a tokenizers change
    return tokenizer


def _bert_pipeline(tokenizer: Tokenizer) -> Tokenizer:
    """BERT's uncased normaliser, pre-tokeniser and WordPiece decoder ('##' pieces glued back on)."""
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def _continuations(sentences: list[str]) -> list[str]:
    """'##c' for every character c that continues a word of ``sentences``, sorted."""
    text = normalizers.BertNormalizer(lowercase=True).normalize_str("\n".join(sentences))
    chunks = " ".join(sorted(set(text.split())))  # each distinct chunk once: 10x fewer words to split
    words = pre_tokenizers.BertPreTokenizer().pre_tokenize_str(chunks)
    return ["##" + c for c in sorted({c for word, _ in words for c in word[1:]})]


def pieces(tokenizer: Tokenizer, sentences: list[str]) -> list[list[int]]:
    """WordPiece ids of each sentence, without [CLS]/[SEP] and uncut."""
    return [e.ids for e in tokenizer.encode_batch(sentences, add_special_tokens=False)]


def encode(tokenizer: Tokenizer, sentences: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] sentence [SEP]`` of each sentence, cut to ``max_length`` tokens ([SEP] is kept), padded
    with [PAD]: ids (N, L) int64 and mask (N, L) bool, True at real tokens; L is the longest row."""
    return _padded(pieces(tokenizer, sentences), max_length)


def _padded(rows: list[list[int]], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`encode` from WordPiece ids: one tensor built from padded lists (fast for 70k rows)."""
    rows = [[CLS, *row[: max_length - 2], SEP] for row in rows]
    width = max(map(len, rows), default=2)
    ids = torch.tensor([row + [PAD] * (width - len(row)) for row in rows], dtype=torch.long)
    ids = ids.reshape(len(rows), width)  # (N, L), also when N is 0
    return ids, ids != PAD


def _trim(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the columns that are padding in every row: no compute is spent on them."""
    length = int(mask.sum(1).max()) if len(mask) else 1
    return ids[:, :length], mask[:, :length]


# --------------------------------------------------------------------------------------------------
# The data component


@dataclass
class Labelled:
    """Encoded sentences of one split: ids (N, L) int64, mask (N, L) bool, labels (N,) int64."""

    ids: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> Labelled:
        return Labelled(self.ids.to(device), self.mask.to(device), self.labels.to(device))

    def rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = index.to(self.ids.device)
        return (*_trim(self.ids[index], self.mask[index]), self.labels[index])


class PolarityData:
    """The tokenizer, the labelled splits (``train`` is the run's label budget) and the unlabeled
    pre-training corpus, all as tensors, and batches of them."""

    def __init__(self, config: PolarityConfig, tokenizer: Tokenizer, text: dict[str, list[str]],
                 labels: dict[str, torch.Tensor], corpus_pieces: list[list[int]], seed: int, rank: int = 0,
                 world_size: int = 1, in_domain: int = 0):
        self.config, self.tokenizer, self.text = config, tokenizer, text
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.splits = {k: Labelled(*encode(tokenizer, text[k], config.max_length), labels[k]) for k in text}
        self.corpus_size = len(corpus_pieces)
        """Sentences in the pre-training corpus."""
        self.corpus_tokens = sum(map(len, corpus_pieces))
        """WordPiece tokens in the pre-training corpus (without [CLS]/[SEP], uncut)."""
        # The corpus as one stream of text, each sentence followed by [SEP]; pre-training reads windows.
        # The first ``in_domain`` sentences (MR's training split) appear ``in_domain_weight`` times.
        weighted = corpus_pieces[:in_domain] * config.in_domain_weight + corpus_pieces[in_domain:]
        self.stream = torch.tensor([t for row in weighted for t in (*row, SEP)], dtype=torch.long)
        self._epoch: tuple = (None, -1)  # (budget, epoch) of the cached order below
        self._epoch_order = torch.empty(0, dtype=torch.long)
        self._budgets: dict[int, torch.Tensor] = {}

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def num_classes(self) -> int:
        return len(CLASSES)

    def size(self, split: str) -> int:
        return len(self.splits[split])

    def to(self, device: torch.device) -> PolarityData:
        """Move every split and the corpus to ``device`` once, so batches are indexed where the model runs."""
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        self.stream = self.stream.to(device)
        return self

    def artifacts(self) -> dict[str, str]:
        """Files the run directory keeps: the tokenizer, so a trained model can be used later."""
        return {"tokenizer.json": self.tokenizer.to_str()}

    def encode(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``[CLS] sentence [SEP]`` ids (N, L) padded with [PAD] = 0, and mask (N, L), True at tokens."""
        return encode(self.tokenizer, sentences, self.config.max_length)

    def pretraining_batch(self, step: int, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unlabeled text for pre-training ``step``: ids and mask, (B, max_length) each, drawn as a pure
        function of (seed, rank, step).

        Each row is ``[CLS]`` and then a window of the corpus stream at a random start: contiguous text
        that may span several sentences, separated by [SEP], and start or end inside one. BERT's
        "sentence" is "an arbitrary span of contiguous text" too (section 3), packed up to its sequence
        length: no token is padding, so no compute is spent on padding.
        """
        width = self.config.max_length - 1  # after [CLS]
        if len(self.stream) < width:
            raise ValueError("this data has no unlabeled corpus (data.corpus=false), or too little for one "
                             "window: pre-training needs it")
        generator = torch.Generator().manual_seed(mix_seeds(seed, self.rank, step))
        starts = torch.randint(len(self.stream) - width + 1, (batch_size, 1), generator=generator)
        windows = self.stream[(starts + torch.arange(width)).to(self.stream.device)]  # (B, width)
        ids = torch.cat([torch.full_like(windows[:, :1], CLS), windows], 1)
        return ids, torch.ones_like(ids, dtype=torch.bool)

    def budget(self, labels: int | None) -> torch.Tensor:
        """Indices into the training split of a label budget of ``labels`` sentences (None: all of
        them): class-balanced, nested (a smaller budget is part of a larger one) and fixed per seed."""
        if labels is None:
            return torch.arange(self.size("train"))
        check_budget(labels)
        if labels not in self._budgets:
            self._budgets[labels] = label_subset(self.splits["train"].labels.cpu(), labels, self.seed)
        return self._budgets[labels]

    def steps_per_epoch(self, batch_size: int, labels: int | None = None) -> int:
        return max(1, len(self.budget(labels)) // batch_size)

    def train_batch(self, step: int, batch_size: int,
                    labels: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Labelled sentences of the budget ``labels`` for fine-tuning ``step``: ids (B, L), mask (B, L),
        labels (B,).

        The epoch's order is a permutation seeded by (seed, epoch), so the batch is a pure function of
        (seed, budget, step); each of ``world_size`` processes takes every world_size-th example of it.
        """
        budget = self.budget(labels)
        epoch, i = divmod(step, self.steps_per_epoch(batch_size, labels))
        if self._epoch != (labels, epoch):
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._epoch_order = (labels, epoch), torch.randperm(len(budget), generator=generator)
        index = budget[self._epoch_order[i * batch_size:(i + 1) * batch_size]][self.rank::self.world_size]
        return self.splits["train"].rows(index)

    def eval_batches(self, split: str, batch_size: int,
                     labels: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(ids, mask, labels) over every sentence of ``split`` once (of 'train': the budget ``labels``),
        ``batch_size`` sentences at a time, shortest first: a batch is cut to its longest sentence, so
        sentences of similar length together spend about half the compute of the split's order."""
        index = self.budget(labels) if split == "train" else torch.arange(self.size(split))
        lengths = self.splits[split].mask[index.to(self.splits[split].mask.device)].sum(1).cpu()
        for batch in index[torch.argsort(lengths, stable=True)].split(batch_size):
            yield self.splits[split].rows(batch)


def check_budget(labels: int) -> None:
    """A label budget is 2 (one per class) to the whole training split."""
    if not 2 <= labels <= SIZES["train"]:
        raise ValueError(f"label budget {labels}: a budget is 2 to {SIZES['train']} (the training split), "
                         "or none for all")


def polarity_data(config: PolarityConfig, ctx) -> PolarityData:
    """Build the data component: load (verified), split, learn WordPiece on the unlabeled corpus (or,
    without one, on the training sentences), encode."""
    sentences, labels = load_sentences(ctx.data_dir)
    parts = split_indices(labels, config.split_seed)
    text = {k: [sentences[i] for i in index.tolist()] for k, index in parts.items()}
    corpus = pretraining_sentences(text["train"], ctx.data_dir) if config.corpus else []
    tokenizer, corpus_pieces = tokenised(tuple(corpus or text["train"]), config.vocab_size)
    split_labels = {k: labels[index] for k, index in parts.items()}
    return PolarityData(config, tokenizer, text, split_labels, corpus_pieces if corpus else [], ctx.seed,
                        ctx.rank, getattr(ctx, "world_size", 1), in_domain=len(text["train"]))


@functools.lru_cache(maxsize=4)
def tokenised(sentences: tuple[str, ...], vocab_size: int) -> tuple[Tokenizer, list[list[int]]]:
    """WordPiece learnt on ``sentences`` and the sentences in its pieces (6 s for the 70k-sentence
    corpus). Both are deterministic, so a process that builds the data again (the runs of a comparison,
    the tests) reuses them."""
    tokenizer = learn_wordpiece(list(sentences), vocab_size)
    return tokenizer, pieces(tokenizer, list(sentences))
