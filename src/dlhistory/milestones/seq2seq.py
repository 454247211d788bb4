"""2014 Encoder/Decoder with attention: neural machine translation, a sequence in and a sequence out.

Sutskever, Vinyals & Le, "Sequence to Sequence Learning with Neural Networks", NeurIPS 2014
(https://arxiv.org/abs/1409.3215); Cho et al., "Learning Phrase Representations using RNN
Encoder-Decoder for Statistical Machine Translation", EMNLP 2014 (https://arxiv.org/abs/1406.1078);
Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and Translate",
ICLR 2015 (arXiv 2014, https://arxiv.org/abs/1409.0473).

An encoder RNN reads the source sentence; a decoder RNN writes the translation one token at a time,
each conditioned on the tokens before it and on the source. In the *encoder-decoder* of Cho et al. and
Sutskever et al. the whole source reaches the decoder as one fixed-length vector, and translation
quality falls as sentences grow longer. Bahdanau et al.'s *attention* lets the decoder look back at
every source position at every step: it scores each encoder annotation h_j against its state,
e_ij = v^T tanh(W s_{i-1} + U h_j), turns the scores into weights alpha_ij = softmax_j(e_ij) and reads
the context c_i = sum_j alpha_ij h_j. The weights are a soft alignment between the two sentences
(``dlhistory translate seq2seq ... --attention-map`` draws them).

Changed vs the baseline (the same encoder-decoder where the context is the encoder's final states at
every step): the model only -- attention. Data (Multi30k German->English, a joint BPE vocabulary),
loss (per-token cross-entropy) and algorithm (Adam, teacher forcing, clipping, and the same budget of
training FLOPs) are the same. This file also draws the comparison's figures; ``dlhistory translate``,
which the Transformer shares, is in tools/translate.py.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..algorithms.translation import TranslationTrainingConfig, adam_translation
from ..comparison import default_judge
from ..data.translation import (
    PAD,
    Multi30kConfig,
    TranslationData,
    multi30k_data,
)
from ..losses.sequence import TokenCrossEntropyConfig, token_cross_entropy
from ..spec import Claim, Component, Metric, Milestone, Recipe, Verdict
from ..tools.translate import TRANSLATE

# ------------------------------------------------------------------------------------------------
# Data: Multi30k task 1, German -> English, 29k caption pairs, one BPE vocabulary for both sides.

DATA = Component("multi30k", multi30k_data, Multi30kConfig())


# ------------------------------------------------------------------------------------------------
# Model: the RNNsearch of Bahdanau et al. (appendix A), and the RNNencdec it was compared with.


@dataclass(frozen=True)
class RecurrentConfig:
    """A bidirectional-encoder, recurrent-decoder translation model, with or without attention."""

    attention: bool = True
    """Additive attention over the encoder's annotations (Bahdanau); False: the fixed context."""
    cell: Literal["gru", "lstm"] = "gru"
    """Gated recurrent unit (Cho et al. 2014) or LSTM (Hochreiter & Schmidhuber 1997; Sutskever)."""
    embedding: int = 256
    hidden: int = 256
    """Units per encoder direction and of the decoder (the paper: 1000)."""
    readout: int = 256
    """Maxout units of the deep output layer (the paper: 500)."""
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if min(self.embedding, self.hidden, self.readout) < 1 or not 0 <= self.dropout < 1:
            raise ValueError("needs positive sizes and 0 <= dropout < 1")


class RecurrentTranslator(nn.Module):
    """Encoder: a bidirectional RNN (one RNN reading the sentence forwards, one backwards) whose
    annotation of word j is h_j = [forward h_j; backward h_j].
    Decoder: s_i = RNN(s_{i-1}, [E y_{i-1}; c_i]) with c_i from attention (or the fixed summary of the
    encoder's final states, for the baseline), and p(y_i) = softmax(W_o maxout(U_o s_{i-1} + V_o E y_{i-1}
    + C_o c_i)), the deep output of Bahdanau et al. appendix A.2.2."""

    def __init__(self, config: RecurrentConfig, vocab_size: int):
        super().__init__()
        self.config = config
        E, H = config.embedding, config.hidden
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        self.source_embedding = nn.Embedding(vocab_size, E, padding_idx=PAD)
        self.target_embedding = nn.Embedding(vocab_size, E, padding_idx=PAD)
        self.encoder_forward = rnn(E, H, batch_first=True)  # reads x_1 .. x_S
        self.encoder_backward = rnn(E, H, batch_first=True)  # reads x_S .. x_1
        self.init_state = nn.Linear(2 * H, H)  # s_0 = tanh(W_s summary)
        self.decoder = rnn(E + 2 * H, H, batch_first=True)
        if config.attention:
            self.W_a = nn.Linear(H, H, bias=False)  # the decoder state's part of the score
            self.U_a = nn.Linear(2 * H, H)  # the annotation's part, computed once per sentence
            self.v_a = nn.Linear(H, 1, bias=False)
        self.readout = nn.Linear(H + E + 2 * H, 2 * config.readout)  # U_o s + V_o E y + C_o c
        self.output = nn.Linear(config.readout, vocab_size)  # W_o
        self.dropout = nn.Dropout(config.dropout)

    @property
    def has_attention(self) -> bool:
        """Whether the decoder attends to the source (so its attention can be drawn)."""
        return self.config.attention

    # --- the encoder ------------------------------------------------------------------------------

    def encode(self, source: torch.Tensor) -> dict[str, torch.Tensor]:
        """Annotations h_j (B, S, 2H), their attention keys U_a h_j, the padding mask and the summary."""
        mask = source != PAD
        lengths = mask.sum(1).clamp(min=1)  # (B,)
        x = self.dropout(self.source_embedding(source))  # (B, S, E)
        # The backward RNN must start at each sentence's last real token, not at its padding: it reads
        # every row with its real tokens reversed in place (padding stays at the end). Both RNNs run over
        # all S positions, padding included (its outputs are masked, and a length-bucketed batch has
        # little of it), so a step's FLOPs depend only on the batch's shape, as the runner counts them.
        reverse = _reversal(lengths, source.shape[1])  # (B, S, 1): position j <-> L - 1 - j
        forward, _ = self.encoder_forward(x)  # (B, S, H): forward h_j
        backward, _ = self.encoder_backward(x.gather(1, reverse.expand_as(x)))
        backward = backward.gather(1, reverse.expand_as(backward))  # (B, S, H): backward h_j, in order
        annotations = torch.cat([forward, backward], -1)  # (B, S, 2H)
        # The summary: the forward RNN's state after the last real token, the backward's after the first.
        last = forward[torch.arange(len(source), device=source.device), lengths - 1]
        memory = {"annotations": annotations, "mask": mask, "summary": torch.cat([last, backward[:, 0]], -1)}
        if self.config.attention:
            memory["keys"] = self.U_a(annotations)
        return memory

    # --- one decoder step (also what beam search calls) -------------------------------------------

    def start(self, memory: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s0 = torch.tanh(self.init_state(memory["summary"]))
        return {"h": s0, "c": torch.zeros_like(s0)} if self.config.cell == "lstm" else {"h": s0}

    def attend(self, memory: dict[str, torch.Tensor],
               s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """c_i and alpha_i (B, S) from s_{i-1} (B, H); without attention the summary and no weights."""
        if not self.config.attention:
            return memory["summary"], None
        scores = self.v_a(torch.tanh(memory["keys"] + self.W_a(s)[:, None])).squeeze(-1)  # e_ij: (B, S)
        alpha = scores.float().masked_fill(~memory["mask"], float("-inf")).softmax(-1)
        context = torch.bmm(alpha.to(memory["annotations"].dtype)[:, None], memory["annotations"])[:, 0]
        return context, alpha

    def recur(self, state: dict[str, torch.Tensor], inputs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Run the decoder RNN over inputs (B, T, E + 2H) from ``state``: outputs (B, T, H), new state."""
        h = state["h"][None].to(inputs.dtype)
        hidden = (h, state["c"][None].to(inputs.dtype)) if self.config.cell == "lstm" else h
        out, hidden = self.decoder(inputs, hidden)
        if self.config.cell == "lstm":
            return out, {"h": hidden[0][0], "c": hidden[1][0]}
        return out, {"h": hidden[0]}

    def logits(self, s_prev: torch.Tensor, embedded: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        t = self.readout(self.dropout(torch.cat([s_prev, embedded, context.to(s_prev.dtype)], -1)))
        t = t.unflatten(-1, (-1, 2)).amax(-1)  # maxout over pairs (Goodfellow et al. 2013)
        return self.output(self.dropout(t))

    def step(self, memory: dict[str, torch.Tensor], state: dict[str, torch.Tensor], previous: torch.Tensor):
        """p(y_i | y_{i-1}, s_{i-1}, c_i) for a batch of previous tokens (B,): (logits, state, alpha_i)."""
        embedded = self.target_embedding(previous)
        context, alpha = self.attend(memory, state["h"])
        logits = self.logits(state["h"], embedded, context)
        _, state = self.recur(state, torch.cat([embedded, context.to(embedded.dtype)], -1)[:, None])
        return logits, state, alpha

    # --- training: teacher forcing over the whole reference ---------------------------------------

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for every position of the reference prefix ``target_in`` (B, T)."""
        memory = self.encode(source)
        state = self.start(memory)
        embedded = self.dropout(self.target_embedding(target_in))  # (B, T, E)
        if not self.config.attention:
            # The context never changes, so the decoder runs over the whole sequence in one call.
            context = memory["summary"][:, None].expand(-1, target_in.shape[1], -1)
            states, _ = self.recur(state, torch.cat([embedded, context.to(embedded.dtype)], -1))
            previous = torch.cat([state["h"][:, None].to(states.dtype), states[:, :-1]], 1)  # s_{i-1}
            return self.logits(previous, embedded, context)
        previous, contexts = [], []
        for i in range(target_in.shape[1]):  # each context needs the state the last step produced
            context, _ = self.attend(memory, state["h"])
            previous.append(state["h"])
            contexts.append(context)
            _, state = self.recur(state, torch.cat([embedded[:, i], context.to(embedded.dtype)], -1)[:, None])
        # The deep output does not feed back into the recurrence: compute it for all steps at once.
        return self.logits(torch.stack(previous, 1), embedded, torch.stack(contexts, 1))


def _reversal(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Per row, the index that reverses its first L positions and keeps the rest: (B, S, 1)."""
    j = torch.arange(width, device=lengths.device)
    L = lengths[:, None]
    return torch.where(j < L, L - 1 - j, j)[..., None]


def recurrent_translator(config: RecurrentConfig, data: TranslationData) -> RecurrentTranslator:
    return RecurrentTranslator(config, data.vocab_size)


MODEL = Component("rnn-search", recurrent_translator, RecurrentConfig())
ENCDEC = Component("rnn-encdec", recurrent_translator, RecurrentConfig(attention=False))

# ------------------------------------------------------------------------------------------------
# Loss: cross-entropy of each reference token given the reference prefix.

LOSS = Component("token-cross-entropy", token_cross_entropy, TokenCrossEntropyConfig())

# ------------------------------------------------------------------------------------------------
# Algorithm: Adam (Bahdanau et al. used Adadelta; Adam, from the same year, trains these models
# faster) with the warm-up and inverse-square-root decay both milestones share, teacher forcing,
# gradient norm clipped at 1, and one budget of training FLOPs for every variant: the encoder-decoder
# without attention costs less per step, so with the same compute it takes more steps.
#
# The cpu budget, 0.04 PFLOPs (4e13), is about the compute the README's 5-minute runs of the attention
# model had on the project's 2-core Xeon (bf16): 652 +- 47 steps there. The first 652 steps of seed 0
# count 3.69e13 FLOPs (57 GFLOPs a step), rounded up to 4e13: 708 steps of the attention model and 740
# of the encoder-decoder (54 GFLOPs a step). Counted with torch.utils.flop_counter, one step of each
# batch shape (37 shapes), by ``TranslationTraining.cost_key``.
#
# The warm-up is 100 steps: a quarter of the shortest run this budget trains (the 2017 Transformer's,
# about 396 steps), so every model's rate peaks early and then decays, as in Vaswani et al. (4% of
# their run). It was 400 steps, longer than the Transformer's whole run: its rate rose until the end.

TRAINING = TranslationTrainingConfig(epochs=30, flops=4e13, batch_size=128, lr=1e-3, warmup_steps=100)
ALGORITHM = Component("adam-teacher-forcing", adam_translation, TRAINING)


# ================================================================================================
# The comparison's figures; the Transformer (2017) draws the same. ``dlhistory translate``, which
# both offer, lives in tools/translate.py.

# The sentence whose attention the comparison draws: the first of test 2016, for illustration only.
EXAMPLE = "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt."


def translation_figures(comparison, out_dir: Path) -> list[Path]:
    """A comparison's figures: test BLEU per variant; validation BLEU against training FLOPs (the
    claim's axis: equal compute) and against training minutes on this machine (equal time, a
    measurement of this machine); the attention of each attending variant's first run for EXAMPLE."""
    from .. import catalogue, records
    from ..report import figures
    from ..tools.translate import Translator

    m, preset = comparison.milestone, comparison.preset
    paths = [out_dir / f"{m.key}{suffix}.png" for suffix in ("", "-bleu-flops", "-bleu-minutes")]
    figures.comparison_figure(comparison, paths[0])
    title = f"{m.year} {m.title}: Multi30k De->En, {preset}"
    figures.validation_curves(comparison.results, "bleu", "train_flops", f"{title}, equal compute", paths[1])
    figures.validation_curves(comparison.results, "bleu", "train_seconds", f"{title}, this machine", paths[2])
    for point, results in comparison.results.items():
        run_dir = next((Path(r["run_dir"]) for r in results if r.get("status") == "complete"), None)
        if run_dir is None:
            continue
        owner = catalogue.get(records.run_config_of(run_dir)["milestone"])  # a borrowed baseline's own
        translator = Translator(owner, run_dir)
        if not translator.model.has_attention:
            continue
        path = out_dir / f"{m.key}-attention-{point}.png"
        result = translator.translate([EXAMPLE])
        translator.attention_map(result, f"{translator.name}: {result.sentences[0]}", path)
        paths.append(path)
    return paths


# ================================================================================================
# Presets and the milestone.

CPU = Recipe(DATA, MODEL, LOSS, ALGORITHM)
SMOKE = CPU.swap(  # a step budget: one epoch of 256 pairs
    data=DATA.with_config(Multi30kConfig(vocab_size=500, train_size=256, val_size=32, test_size=32)),
    model=MODEL.with_config(RecurrentConfig(embedding=32, hidden=32, readout=32)),
    algorithm=ALGORITHM.with_config(dataclasses.replace(TRAINING, epochs=1, flops=None, batch_size=32, beam=2,
                                                        warmup_steps=4)),
)
FULL = CPU.swap(  # 20 epochs, for a GPU
    model=MODEL.with_config(RecurrentConfig(embedding=512, hidden=512, readout=512, dropout=0.3)),
    algorithm=ALGORITHM.with_config(dataclasses.replace(TRAINING, epochs=20, flops=None, warmup_steps=1000)),
)


def _encdec(preset: str) -> dict[str, Component]:
    """The baseline's model: the same network at the same size, attention switched off."""
    model = MILESTONE.presets[preset].model
    return {"model": ENCDEC.with_config(dataclasses.replace(model.config, attention=False))}


# The claim's table: BLEU, and what each run cost: steps, FLOPs (equal by design) and the minutes it
# took on the machine at hand (a measurement beside the claim, not part of it).
REPORT = (Metric("test_bleu", "test BLEU (beam)", 2), Metric("val_bleu", "val BLEU (greedy)", 2),
          Metric("test_perplexity", "test perplexity", 2), Metric("steps", "steps", 0),
          Metric("train_flops", "training FLOPs", 2, scientific=True),
          Metric("train_seconds", "training seconds (this machine)", 0))

def at_equal_flops(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """The claim is judged at equal training FLOPs (the default judge: threshold and baselines). Beside
    it, as a measurement of this machine and not as the claim, the table says what each model had
    reached at equal wall-clock time: its greedy validation BLEU at the last evaluation within the
    training minutes of the variant that trained for the shortest time (mean over seeds)."""
    verdict = default_judge(milestone, preset, results)
    finished = {p: [r for r in runs if r.get("run_dir") and "train_seconds" in r]
                for p, runs in results.items()}
    if not all(finished.values()):
        return verdict
    minutes = min(statistics.fmean(r["train_seconds"] for r in runs) for runs in finished.values()) / 60
    rows = tuple((point, f"{statistics.fmean(r['train_seconds'] for r in runs) / 60:.1f}",
                  f"{statistics.fmean(r['train_flops'] for r in runs):.2e}",
                  f"{statistics.fmean(_bleu_within(r, 60 * minutes) for r in runs):.2f}")
                 for point, runs in finished.items())
    headers = ("variant", "training minutes (this machine)", "training FLOPs",
               f"val BLEU within {minutes:.1f} min (equal time)")
    return dataclasses.replace(verdict, table=(headers, rows))


def _bleu_within(result: dict, seconds: float) -> float:
    """Greedy validation BLEU at the run's last evaluation within ``seconds`` of training (0 before any)."""
    from ..records import read_jsonl

    val = [r for r in read_jsonl(Path(result["run_dir"]) / "metrics.jsonl")
           if r["split"] == "val" and "bleu" in r and r.get("train_seconds", math.inf) <= seconds]
    return val[-1]["bleu"] if val else 0.0


MILESTONE = Milestone(
    key="seq2seq",
    year=2014,
    title="Encoder/Decoder (+ attention)",
    citation="Sutskever, Vinyals & Le. Sequence to Sequence Learning with Neural Networks. NeurIPS 2014; "
             "Bahdanau, Cho & Bengio. Neural Machine Translation by Jointly Learning to Align and "
             "Translate. ICLR 2015.",
    url="https://arxiv.org/abs/1409.0473",
    showed="neural machine translation: a sequence in, a sequence out; attention removes the "
           "fixed-length bottleneck",
    variant="attention",
    presets={"smoke": SMOKE, "cpu": CPU, "full": FULL},
    baselines={"encdec": _encdec},
    changes=("model",),
    claim=Claim(
        statement="the attention encoder-decoder reaches the BLEU threshold on Multi30k test 2016 "
                  "(German->English) and, trained with the same FLOPs, beats the same encoder-decoder "
                  "without attention",
        metric="test_bleu",
        direction="max",
        paper="Bahdanau et al. (WMT14 En->Fr, all sentences): RNNsearch-50 26.75 vs RNNencdec-50 17.82 BLEU; "
              "on Multi30k De->En a published PyTorch attention GRU reaches 28.3",
        report=REPORT,
        thresholds={"cpu": 20.0, "full": 28.0},
        judge=at_equal_flops,
        figures=translation_figures,
    ),
    tools=(TRANSLATE,),
)
