"""``dlhistory translate``: a finished translation run (2014 seq2seq, 2017 Transformer) translates
sentences, and draws the first one's attention.

The model, the tokenizer it was trained with (``tokenizer.json``) and its weights come from a run that
completed; which one is said on stderr. Limits keep a careless request from running for hours or
exhausting memory: a beam of at most :data:`MAX_BEAM` and sentences of at most :data:`MAX_SUBWORDS`
subwords. Used by the milestones, not part of what they compute: a change here keeps their runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import records
from ..algorithms.decoding import Hypotheses, beam_search
from ..data.translation import (
    EOS,
    PAD,
    _trim,  # the evaluation's own trim; renaming it would move the runs' code versions
    decode,
    encode,
    load_tokenizer,
)
from ..errors import UsageError
from ..records import writable_file
from ..spec import Milestone, Tool
from . import finished_run, load_weights, run_recipe, use_threads, variant_of

MAX_BEAM = 32
"""Wider beams do not translate better (Koehn & Knowles 2017 measured them worse) and their memory grows
with the width: a beam of 100,000 was killed by the OS."""
MAX_SUBWORDS = 200
"""The models learnt single captions; a 5,000-word text given as one sentence still ran after two
minutes. Longer input is to be split into sentences."""
BATCH = 100
"""Sentences searched together, those of similar length side by side. The 1,000 test sentences as one
batch, every hypothesis's attention kept, took 198 s on 2 cores with 45% of the CPU time in the kernel
(tensors of 5,000 hypotheses re-allocated at each step); batches of 100 keep the tensors small."""


@dataclass(frozen=True)
class Vocabulary:
    """What a translation model's builder reads from its data: only the vocabulary size."""

    vocab_size: int


@dataclass
class Translation:
    source_tokens: list[list[str]]
    output_tokens: list[list[str]]
    sentences: list[str]
    first_attention: torch.Tensor | None
    """The first sentence's attention (output x source subwords); None for a model without attention."""


class Translator:
    """A finished run's model with the tokenizer it was trained with (``tokenizer.json``)."""

    def __init__(self, milestone: Milestone, run_dir: Path, weights: Path | None = None):
        config, recipe = run_recipe(milestone, run_dir, "translate")
        self.tokenizer = load_tokenizer(run_dir / "tokenizer.json")
        self.model = recipe.model(Vocabulary(self.tokenizer.get_vocab_size()))
        load_weights(self.model, weights or run_dir / "model.safetensors", "model", run_dir)
        self.model.eval()
        self.name = f"{config['milestone']}/{config['variant']}"

    def encode(self, sentences: list[str]) -> torch.Tensor:
        """The sentences as a batch of subword ids, each at most :data:`MAX_SUBWORDS` long."""
        source = encode(self.tokenizer, sentences)
        for i, n in enumerate((source != PAD).sum(dim=1).tolist()):
            if n > MAX_SUBWORDS:
                raise UsageError(f"sentence {i + 1} is {n} subwords long, over the {MAX_SUBWORDS} this tool "
                                 "takes; split it into shorter sentences")
        return source

    @torch.no_grad()
    def translate(self, sentences: list[str], beam: int = 5, alpha: float = 0.6) -> Translation:
        """Beam search over batches of :data:`BATCH` sentences of similar length, as the evaluation
        batches them; only the first sentence's batch keeps its attention, for :meth:`attention_map`."""
        source = self.encode(sentences)
        output: list[list[str]] = [[] for _ in sentences]
        translated = [""] * len(sentences)
        first_attention = None
        for index in torch.argsort((source != PAD).sum(1), stable=True).split(BATCH):
            positions = index.tolist()
            hypotheses = self._search(_trim(source[index]), beam, alpha, attention=0 in positions)
            rows = hypotheses.ids.tolist()
            for i, row, sentence in zip(positions, rows, decode(self.tokenizer, hypotheses.ids), strict=True):
                output[i], translated[i] = _tokens(self.tokenizer, row), sentence
            if 0 in positions and hypotheses.attention is not None:
                first_attention = hypotheses.attention[positions.index(0)]
        source_tokens = [_tokens(self.tokenizer, row) for row in source.tolist()]
        return Translation(source_tokens, output, translated, first_attention)

    def _search(self, source: torch.Tensor, beam: int, alpha: float, attention: bool) -> Hypotheses:
        try:
            return beam_search(self.model, source, beam, alpha, attention=attention)
        except ValueError as e:  # the Transformer's position table is too short for the sentence
            raise UsageError(f"{e}; split it into shorter sentences") from None

    def attention_map(self, translation: Translation, title: str, out: Path) -> None:
        """Draw the first sentence's attention: which source subwords each output subword read."""
        from ..report.figures import attention_map

        source, output = translation.source_tokens[0], translation.output_tokens[0]
        weights = translation.first_attention[: len(output), : len(source)].numpy()
        attention_map(source, output, weights, title, out)


def _tokens(tokenizer, row: list[int]) -> list[str]:
    """The subwords of one output row, up to and including its first </s>."""
    row = row[: row.index(EOS) + 1] if EOS in row else row
    return [tokenizer.id_to_token(t) for t in row if t != PAD]


def _translate_arguments(p) -> None:
    p.add_argument("milestone", help="seq2seq or transformer")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE",
                   help='source sentences, e.g. "Ein Mann fährt Rad."')
    p.add_argument("--file", help="a text file of source sentences, one per line")
    p.add_argument("--variant", help="a baseline's run instead of the milestone's, e.g. encdec")
    p.add_argument("--checkpoint", metavar="RUN",
                   help="a finished run's directory or a weights file in it (default: the newest "
                        "finished run)")
    p.add_argument("--beam", type=int, default=5, help="beam width, 1 for greedy (default 5)")
    p.add_argument("--alpha", type=float, default=0.6, help="length-penalty exponent (default 0.6)")
    p.add_argument("--attention-map", metavar="PNG", help="draw the first sentence's attention as a heat map")
    p.add_argument("--runs-dir", default="runs", help="where runs are (default ./runs)")
    p.set_defaults(rest="sentences")  # sentences may come after the options


def _translate(milestone: Milestone, args) -> None:
    use_threads()
    sentences = list(args.sentences)
    if args.file:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--file {args.file}: cannot read it ({e.__class__.__name__}); "
                             "give a UTF-8 text file, one sentence per line") from None
        sentences += [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise UsageError('nothing to translate: give sentences ("Ein Mann fährt Rad.") or --file in.txt')
    empty = [i + 1 for i, s in enumerate(sentences) if not s.strip()]
    if empty:
        raise UsageError(f"sentence {empty[0]} is empty; give words to translate")
    if not 1 <= args.beam <= MAX_BEAM:
        raise UsageError(f"--beam {args.beam}: the beam width is 1 (greedy) to {MAX_BEAM}")
    if not 0 <= args.alpha <= 5:  # NaN fails too
        raise UsageError(f"--alpha {args.alpha}: the length-penalty exponent is 0 to 5 (Wu et al. use 0.6-1)")
    if args.attention_map:
        writable_file(args.attention_map, "--attention-map", ".png")
    variant = variant_of(milestone, args.variant)
    run_dir, weights = finished_run(args.runs_dir, milestone, variant, args.checkpoint)
    translator = Translator(milestone, run_dir, weights)
    if args.attention_map and not translator.model.has_attention:
        raise UsageError(f"{translator.name} has no attention to draw (it reads the source as one fixed "
                         "vector); drop --attention-map")
    translator.encode(sentences)  # too long a sentence is said before anything else
    print(f"{translator.name}: {run_dir}", file=sys.stderr)
    result = translator.translate(sentences, args.beam, args.alpha)
    for sentence in result.sentences:
        print(sentence)
    if args.attention_map:
        translator.attention_map(result, f"{translator.name}: {sentences[0]}", Path(args.attention_map))
        print(f"attention map: {args.attention_map}", file=sys.stderr)


def review_sample(milestone: Milestone, run_dir: Path, out_dir: Path, n: int = 3) -> str:
    """The review page's sample: the first ``n`` test sentences, the run's beam-5 translations and the
    references."""
    from ..data.multi30k import load_sentences

    translator = Translator(milestone, run_dir)
    data = records.run_config_of(run_dir)["components"]["data"]["config"]
    sources = load_sentences("test", data["source"])[:n]
    references = load_sentences("test", data["target"])[:n]
    outputs = translator.translate(sources).sentences
    return "\n\n".join(f"{data['source']}: {s}\nours: {o}\nreference: {r}"
                       for s, o, r in zip(sources, outputs, references, strict=True))


TRANSLATE = Tool("translate", "translate sentences with a finished seq2seq or transformer run",
                 _translate_arguments, _translate, review_sample)
