"""Using a trained translation run: translate new sentences and draw where the model attends.

A run directory holds what is needed: ``config.json`` (which recipe), ``tokenizer.json`` (the BPE
vocabulary it learnt) and the weights (``model.safetensors`` when it finished, ``checkpoint.safetensors``
while it trains). ``dlhistory translate seq2seq "Ein Mann fährt Fahrrad."`` uses the newest run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint
from .algorithms.decoding import Hypotheses, beam_search
from .data.translation import EOS, PAD, decode, encode, load_tokenizer
from .errors import UsageError
from .records import runs_of
from .runner import load_recipe


@dataclass(frozen=True)
class Vocabulary:
    """What a translation model's builder reads from its data: only the vocabulary size."""

    vocab_size: int


@dataclass
class Translation:
    source_tokens: list[list[str]]
    output_tokens: list[list[str]]
    sentences: list[str]
    hypotheses: Hypotheses


class Translator:
    """A trained model with its tokenizer."""

    def __init__(self, run_dir: Path, weights: Path | None = None):
        self.run_dir = run_dir
        from . import catalogue  # here, not at the top: the milestones import this module's figures

        config = json.loads((run_dir / "config.json").read_text())
        milestone = catalogue.get(config["milestone"])
        recipe = load_recipe(milestone, config["preset"], config["variant"], tuple(config["overrides"]))
        tokenizer_path = run_dir / "tokenizer.json"
        if not tokenizer_path.exists():
            raise UsageError(f"{run_dir} has no tokenizer.json: not a translation run (milestones: "
                             "seq2seq, transformer)")
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.model = recipe.model(Vocabulary(self.tokenizer.get_vocab_size()))
        try:
            path = weights or _default_weights(run_dir)
            self.model.load_state_dict(checkpoint.module_weights(path, "model"))
        except RuntimeError as e:  # a weights file of another model or size
            raise UsageError(f"the weights do not fit {config['milestone']}/{config['variant']} as "
                             f"configured in {run_dir}: {str(e).splitlines()[0]}") from None
        self.model.eval()
        self.name = f"{config['milestone']}/{config['variant']}"

    @torch.no_grad()
    def translate(self, sentences: list[str], beam: int = 5, alpha: float = 0.6) -> Translation:
        source = encode(self.tokenizer, sentences)
        limit = getattr(self.model.config, "max_length", None)  # the Transformer's position table
        if limit is not None and source.shape[1] + 50 > limit:
            raise UsageError(f"a sentence of {source.shape[1]} subwords is too long for this model "
                             f"(at most {limit - 50}); split it into shorter sentences")
        hypotheses = beam_search(self.model, source, beam, alpha, attention=True)
        output = [_tokens(self.tokenizer, row) for row in hypotheses.ids.tolist()]
        texts = decode(self.tokenizer, hypotheses.ids)
        source_tokens = [_tokens(self.tokenizer, row) for row in source.tolist()]
        return Translation(source_tokens, output, texts, hypotheses)


def _cut(rows: list[list[int]]) -> list[list[int]]:
    """Each row up to and including its first </s>."""
    return [row[: row.index(EOS) + 1] if EOS in row else row for row in rows]


def _tokens(tokenizer, row: list[int]) -> list[str]:
    return [tokenizer.id_to_token(t) for t in _cut([row])[0] if t != PAD]


def find_run(runs_dir: str, milestone: str, variant: str | None,
             checkpoint_path: str | None) -> tuple[Path, Path | None]:
    """(run directory, weights file or None for the run's own) from ``--checkpoint`` or the newest run."""
    if checkpoint_path:
        path = Path(checkpoint_path)
        if path.is_dir():
            return path, None
        if not path.is_file():
            raise UsageError(f"--checkpoint {path}: no such file or run directory")
        return path.parent, path
    from . import catalogue

    m = catalogue.get(milestone)
    runs = [p for p in runs_of(runs_dir, m.key, variant or m.variant)
            if (p / "model.safetensors").exists() or (p / "checkpoint.safetensors").exists()]
    if not runs:
        raise UsageError(f"no trained run of {m.key}/{variant or m.variant} under {runs_dir}; train one with "
                         f"'dlhistory run {m.key}' or pass --checkpoint PATH")
    return runs[-1], None


def _default_weights(run_dir: Path) -> Path:
    for name in ("model.safetensors", "checkpoint.safetensors"):
        if (run_dir / name).exists():
            return run_dir / name
    raise UsageError(f"{run_dir} holds no weights (model.safetensors or checkpoint.safetensors)")


# The sentence the review draws attention for: the first of test 2016, for illustration only.
EXAMPLE = "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt."


def translation_figures(comparison, out_dir: Path) -> list[Path]:
    """A comparison's figures: test BLEU per variant, validation BLEU against training minutes, and
    the attention of the first seed's run of every attending variant for :data:`EXAMPLE`."""
    from .report import figures

    m, preset = comparison.milestone, comparison.preset
    paths = [out_dir / f"{m.key}.png", out_dir / f"{m.key}-bleu-minutes.png"]
    figures.comparison_figure(comparison, paths[0])
    figures.validation_curves(comparison.results, "bleu", f"{m.year} {m.title}: Multi30k De->En, {preset}",
                              paths[1])
    for variant, results in comparison.results.items():
        run_dir = next((Path(r["run_dir"]) for r in results if r.get("status") == "complete"), None)
        if run_dir is None:
            continue
        translator = Translator(run_dir)
        result = translator.translate([EXAMPLE])
        if result.hypotheses.attention is None:
            continue
        source, output = result.source_tokens[0], result.output_tokens[0]
        path = out_dir / f"{m.key}-attention-{variant}.png"
        weights = result.hypotheses.attention[0, : len(output), : len(source)].numpy()
        figures.attention_map(source, output, weights, f"{translator.name}: {result.sentences[0]}", path)
        paths.append(path)
    return paths
