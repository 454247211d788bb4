"""``dlhistory classify bert``, ``dlhistory unmask bert`` and ``dlhistory export bert``: use a finished run.

* classify -- the fine-tuned encoder and classifier label sentences (one, or a file of them);
* unmask -- the *pre-trained* encoder and masked-LM head fill each [MASK] of a sentence;
* export -- the pre-trained model as a Hugging Face ``BertForMaskedLM`` folder (see bert_hf.py).

Each takes a finished run of the milestone (the newest, or ``--checkpoint``), says which on stderr, and
reads the run's own tokenizer (``tokenizer.json``). A run's pre-training is the phase its result names.
Used by the milestone, not part of what it computes: a change here keeps its runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from ..errors import UsageError
from ..spec import Milestone, Tool
from . import finished_run, load_weights, run_recipe, use_threads, variant_of

MAX_SENTENCES = 100_000
"""A file of sentences is classified in batches; this keeps a wrong file from running for hours."""
BATCH = 256


@dataclass(frozen=True)
class Shape:
    """What the model builder reads from its data: the config (max_length), vocabulary and classes."""

    config: Any
    vocab_size: int
    num_classes: int


@dataclass
class Loaded:
    """A finished run's networks (weights loaded, evaluation mode) and its tokenizer; ``source`` is the
    folder the weights came from (the run, or its pre-training)."""

    source: Path
    networks: dict[str, torch.nn.Module]
    tokenizer: Any
    max_length: int


def load(milestone: Milestone, args, tool: str, names: tuple[str, ...], pretrained: bool) -> Loaded:
    """The networks ``names`` of the run ``args`` point to: its own weights, or (``pretrained``) those
    its pre-training phase ended with."""
    from tokenizers import Tokenizer

    from ..data.polarity import CLASSES

    variant = variant_of(milestone, getattr(args, "variant", None))
    if variant == "tfidf":
        raise UsageError("the tfidf baseline keeps no network; use the bert or scratch variant")
    run_dir, weights = finished_run(args.runs_dir, milestone, variant, args.checkpoint, names[0])
    config, recipe = run_recipe(milestone, run_dir, tool)
    source = run_dir
    if pretrained:
        phases = _result(run_dir).get("phases") or {}
        if "pretrain" not in phases:
            raise UsageError(f"{run_dir} was not pre-trained (variant {config['variant']}); use a bert run")
        source = Path(phases["pretrain"])
    path = run_dir / "tokenizer.json"
    if not path.is_file():
        raise UsageError(f"{run_dir} has no tokenizer.json; it is not a finished bert run")
    tokenizer = Tokenizer.from_str(path.read_text(encoding="utf-8"))
    networks = recipe.model(Shape(recipe.data.config, tokenizer.get_vocab_size(), len(CLASSES)))
    for name in names:
        file = weights if source == run_dir and name == names[0] else source / f"{name}.safetensors"
        if not file.is_file():
            raise UsageError(f"{file} is missing; the run's files are incomplete, train it again")
        load_weights(networks[name], file, name, run_dir)
    return Loaded(source, {n: networks[n].eval() for n in names}, tokenizer, recipe.data.config.max_length)


def said(milestone: Milestone, loaded: Loaded) -> None:
    """Which weights were used, on stderr, once the command has succeeded (an error is one line)."""
    print(f"{milestone.key}: {loaded.source}", file=sys.stderr, flush=True)


def _result(run_dir: Path) -> dict:
    from ..records import read_result

    return read_result(run_dir) or {}


def _common(p, what: str) -> None:
    p.add_argument("--checkpoint", metavar="RUN",
                   help=f"a finished run's directory (default: the newest finished run); {what}")
    p.add_argument("--runs-dir", default="runs", help="where runs are (default ./runs)")


# --------------------------------------------------------------------------------------------------
# classify


def _classify_arguments(p) -> None:
    p.add_argument("milestone", help="bert")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help='e.g. "an utterly charming film"')
    p.add_argument("--file", help="a text file, one sentence per line")
    p.add_argument("--variant", help="the scratch baseline's run instead of the pre-trained model's")
    _common(p, "its fine-tuned classifier is used")


def _sentences(args) -> list[str]:
    sentences = list(args.sentences)
    if args.file:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--file {args.file}: cannot read it as UTF-8 text "
                             f"({type(e).__name__})") from None
        sentences += [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences or not all(s.strip() for s in sentences):
        raise UsageError('give a sentence to classify, e.g. "an utterly charming film", or --file FILE')
    if len(sentences) > MAX_SENTENCES:
        raise UsageError(f"{len(sentences):,} sentences: classify at most {MAX_SENTENCES:,} at a time")
    return sentences


@torch.no_grad()
def classify(loaded: Loaded, sentences: list[str]) -> list[tuple[str, float]]:
    """(label, its probability) of each sentence."""
    from ..data.polarity import CLASSES, encode

    out = []
    for start in range(0, len(sentences), BATCH):
        ids, mask = encode(loaded.tokenizer, sentences[start:start + BATCH], loaded.max_length)
        hidden = loaded.networks["encoder"](ids, mask)
        probabilities = loaded.networks["classifier"](hidden).softmax(-1)
        p, label = probabilities.max(-1)
        out += [(CLASSES[i], float(q)) for i, q in zip(label.tolist(), p, strict=True)]
    return out


def _classify(milestone: Milestone, args) -> None:
    sentences = _sentences(args)
    use_threads()
    loaded = load(milestone, args, "classify", ("encoder", "classifier"), pretrained=False)
    labelled = classify(loaded, sentences)
    said(milestone, loaded)
    for sentence, (label, p) in zip(sentences, labelled, strict=True):
        print(f"{label}\t{p:.3f}\t{sentence}")


# --------------------------------------------------------------------------------------------------
# unmask


def _unmask_arguments(p) -> None:
    p.add_argument("milestone", help="bert")
    p.add_argument("sentence", help='a sentence with [MASK] in it, e.g. "the movie was [MASK] ."')
    p.add_argument("--top", type=int, default=5, help="fillers shown per [MASK] (default 5)")
    _common(p, "its pre-training is used")


@torch.no_grad()
def unmask(loaded: Loaded, sentence: str, top: int) -> list[list[tuple[str, float]]]:
    """For each [MASK] of ``sentence``, the ``top`` likeliest tokens and their probabilities."""
    from ..data.polarity import MASK, encode

    ids, mask = encode(loaded.tokenizer, [sentence], loaded.max_length)
    where = (ids[0] == MASK).nonzero().squeeze(1)
    if len(where) == 0:
        raise UsageError(f"no [MASK] in {sentence[:80]!r} (within the first {loaded.max_length - 2} "
                         'tokens); write one where a word should be filled in, e.g. "the movie was [MASK] ."')
    hidden = loaded.networks["encoder"](ids, mask)[0, where]  # (masks, d)
    probabilities = loaded.networks["mlm_head"](hidden).softmax(-1)
    best = probabilities.topk(top, -1)
    return [[(loaded.tokenizer.id_to_token(i), float(p)) for i, p in zip(ids_.tolist(), ps, strict=True)]
            for ids_, ps in zip(best.indices, best.values, strict=True)]


def _unmask(milestone: Milestone, args) -> None:
    if not 1 <= args.top <= 100:
        raise UsageError(f"--top {args.top}: show 1 to 100 fillers")
    if "[MASK]" not in args.sentence:
        raise UsageError(f"no [MASK] in {args.sentence[:80]!r}; write one where a word should be filled "
                         'in, e.g. "the movie was [MASK] ."')
    use_threads()
    loaded = load(milestone, args, "unmask", ("encoder", "mlm_head"), pretrained=True)
    filled = unmask(loaded, args.sentence, args.top)
    said(milestone, loaded)
    for i, fillers in enumerate(filled, 1):
        print(f"[MASK] {i}: " + "  ".join(f"{token} {p:.3f}" for token, p in fillers))


# --------------------------------------------------------------------------------------------------
# export


def _export_arguments(p) -> None:
    p.add_argument("milestone", help="bert")
    p.add_argument("directory", metavar="DIR", help="a new (or empty) folder to write")
    _common(p, "its pre-training is exported")


def _export(milestone: Milestone, args) -> None:
    from .bert_hf import export_hf

    try:
        target = Path(args.directory).expanduser()
        used = target.exists() and (not target.is_dir() or any(target.iterdir()))
    except (OSError, ValueError) as e:  # a name too long, a NUL byte, a folder it may not read
        raise UsageError(f"{args.directory[:80]!r} cannot be a folder here ({type(e).__name__}); give "
                         "another name") from None
    if used:
        raise UsageError(f"{args.directory[:80]}: exists and is not an empty folder; export to a new one")
    loaded = load(milestone, args, "export", ("encoder", "mlm_head"), pretrained=True)
    encoder = loaded.networks["encoder"]
    try:
        path = export_hf(target, encoder, loaded.networks["mlm_head"], encoder.config, encoder.vocab_size,
                         loaded.tokenizer.to_str())
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise UsageError(f"cannot write {args.directory[:80]}: {reason}; nothing was left there") from None
    said(milestone, loaded)
    print(f"wrote {path} (transformers.BertForMaskedLM.from_pretrained reads it)")


EXAMPLES = ("an utterly charming and hilarious film", "a tedious, predictable mess",
            "the acting is fine but the story goes nowhere")
"""Sentences the review page classifies (written for it; none is in the data)."""


def review_sample(milestone: Milestone, run_dir: Path, out_dir: Path) -> str:
    """The review page's sample: the run's labels, with their probabilities, for :data:`EXAMPLES`."""
    args = SimpleNamespace(runs_dir=str(run_dir.parent.parent.parent), checkpoint=str(run_dir), variant=None)
    loaded = load(milestone, args, "classify", ("encoder", "classifier"), pretrained=False)
    return "\n".join(f"{label} ({p:.0%}): {sentence}"
                     for sentence, (label, p) in zip(EXAMPLES, classify(loaded, list(EXAMPLES)), strict=True))


CLASSIFY = Tool("classify", "label sentences with a finished bert run", _classify_arguments, _classify,
                review_sample)
UNMASK = Tool("unmask", "fill in [MASK] with a finished bert run's pre-trained model", _unmask_arguments,
              _unmask)
EXPORT = Tool("export", "write a finished bert run's pre-trained model as a Hugging Face BERT folder",
              _export_arguments, _export)
