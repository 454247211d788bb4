"""``dlhistory sample gpt``: a finished language-model run writes text after a prompt, token by token.

The model, its vocabulary (``vocabulary.json``) and weights come from a run that completed (the newest,
or ``--checkpoint``), and which one is said on stderr. Decoding reuses the attention keys and values of
earlier tokens (a KV cache), so each new token costs one row of attention. ``--init hf:DIR`` samples
from a GPT-2 checkpoint on disk in Hugging Face's layout instead (the real GPT-2 124M, if you have
it). Used by the milestone, not part of what it computes: a change here keeps its runs.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UsageError
from ..spec import Milestone, Tool
from . import finished_run, load_weights, run_recipe, use_threads, variant_of

MAX_TOKENS = 100_000
"""A long sample is a few thousand tokens; this keeps a typo from running for hours."""


@dataclass(frozen=True)
class Shape:
    """What the model builder reads from its data: the vocabulary and the context length."""

    vocab_size: int
    block_size: int


def load_run(milestone: Milestone, run_dir: Path, weights: Path):
    """(model, vocabulary) of a finished run of ``milestone``."""
    from ..data.shakespeare import load_vocabulary

    _, recipe = run_recipe(milestone, run_dir, "sample")
    path = run_dir / "vocabulary.json"
    if not path.is_file():
        raise UsageError(f"{run_dir} has no vocabulary.json: it is not a language model's run "
                         "(the n-gram baseline keeps no weights)")
    vocabulary = load_vocabulary(path.read_text(encoding="utf-8"))
    model = recipe.model(Shape(vocabulary.size, recipe.data.config.block_size))
    load_weights(model, weights, "model", run_dir)
    return model.eval(), vocabulary


def _arguments(p) -> None:
    p.add_argument("milestone", help="gpt")
    p.add_argument("--prompt", default="\n", help='the text to continue (default: a new line), e.g. "ROMEO:"')
    p.add_argument("--tokens", type=int, default=500, help="tokens to write (default 500)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="softmax temperature: lower is more predictable (default 0.8)")
    p.add_argument("--top-k", type=int, default=40, help="draw only from the k likeliest tokens (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the draws (default 0)")
    p.add_argument("--variant", help="a baseline's run instead of the milestone's, e.g. small")
    p.add_argument("--checkpoint", metavar="RUN",
                   help="a finished run's directory or a weights file in it (default: the newest "
                        "finished run)")
    p.add_argument("--init", metavar="hf:DIR",
                   help="sample from a Hugging Face GPT-2 checkpoint folder instead of a run")
    p.add_argument("--runs-dir", default="runs", help="where runs are (default ./runs)")


def _check(args) -> None:
    if not 1 <= args.tokens <= MAX_TOKENS:
        raise UsageError(f"--tokens {args.tokens}: write 1 to {MAX_TOKENS:,} tokens")
    if not (math.isfinite(args.temperature) and 0 < args.temperature <= 100):
        raise UsageError(f"--temperature {args.temperature}: a number above 0 (and at most 100)")
    if args.top_k < 1:
        raise UsageError(f"--top-k {args.top_k}: at least 1")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed {args.seed}: a whole number from 0 to {2**31 - 1}")
    if not args.prompt:
        raise UsageError('--prompt is empty; give text to continue, e.g. --prompt "ROMEO:"')
    if args.init is not None and not args.init.startswith("hf:"):
        raise UsageError(f"--init {args.init[:80]}: give hf:DIR, a folder holding a Hugging Face GPT-2")


def _sample(milestone: Milestone, args) -> None:
    _check(args)
    use_threads()
    if args.init:
        from .gpt2 import load_hf_gpt2

        model, vocabulary = load_hf_gpt2(Path(args.init[3:]))
        source = args.init
    else:
        run_dir, weights = finished_run(args.runs_dir, milestone, variant_of(milestone, args.variant),
                                        args.checkpoint)
        model, vocabulary = load_run(milestone, run_dir, weights)
        source = str(run_dir)
    prompt = vocabulary.encode(args.prompt)
    if not prompt:
        raise UsageError("--prompt encodes to no tokens; give text to continue")
    print(f"{milestone.key}: {source}", file=sys.stderr, flush=True)
    generator = torch.Generator().manual_seed(args.seed)
    ids = torch.tensor([prompt])
    pending: list[int] = []
    sys.stdout.write(args.prompt)
    for token in model.generate(ids, args.tokens, args.temperature, args.top_k, generator):
        pending.append(token)
        # A byte-level subword may hold half of a character (U+FFFD until the rest comes): hold the
        # tokens back until they decode to whole characters, then print them and start afresh.
        text = vocabulary.decode(pending)
        if not text.endswith("\ufffd"):
            sys.stdout.write(text)
            sys.stdout.flush()
            pending = []
    sys.stdout.write(vocabulary.decode(pending) + "\n")


def review_sample(milestone: Milestone, run_dir: Path, out_dir: Path, tokens: int = 300) -> str:
    """The review page's sample: ``tokens`` tokens after a new line (temperature 0.8, top-k 40, seed 0),
    as ``dlhistory sample`` writes them by default."""
    model, vocabulary = load_run(milestone, run_dir, run_dir / "model.safetensors")
    generator = torch.Generator().manual_seed(0)
    made = list(model.generate(torch.tensor([vocabulary.encode("\n")]), tokens, 0.8, 40, generator))
    return vocabulary.decode(made).strip("\n")


SAMPLE = Tool("sample", "write text with a finished gpt run (or a local GPT-2)", _arguments, _sample,
              review_sample)
