"""Turning a trained translation model into sentences: batched beam search (greedy is beam width 1).

A model trained with teacher forcing predicts p(y_i | y_<i, x). At test time the prefix is its own
output, so it must search. Greedy decoding takes the most likely token at each step; beam search
(Sutskever, Vinyals & Le 2014, section 3.2) keeps the ``beam`` most likely prefixes instead. Log
probabilities only fall as a sentence grows, so a raw score prefers short outputs; the finished
hypotheses are compared after dividing by Wu et al.'s (2016, GNMT) length penalty
lp(Y) = ((5 + |Y|) / 6) ** alpha (Vaswani et al. 2017 used beam 4, alpha 0.6).

Every sentence of a batch is searched at once: the (sentence, beam) pairs are the rows of one batch,
and after each step the decoder's state is reordered to follow the surviving prefixes.

The models implement three methods, all batch-first so reordering is a plain ``index_select``:
``encode(source) -> memory`` (a dict of tensors), ``start(memory) -> state`` (a dict of tensors), and
``step(memory, state, previous) -> (logits (N, V), state, attention (N, S) or None)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.translation import BOS, EOS, PAD


@dataclass
class Hypotheses:
    """The best output per sentence: ids (B, L) ending with </s> (or cut at the length limit) and,
    where the model attends, its attention over the source for every output token (B, L, S)."""

    ids: torch.Tensor
    attention: torch.Tensor | None


def select(tensors: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows ``index`` of every tensor (memory or state follow the surviving beams)."""
    return {k: v.index_select(0, index) for k, v in tensors.items()}


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    return ((5 + length.float()) / 6) ** alpha


def settled(scores: torch.Tensor, lengths: torch.Tensor, finished: torch.Tensor, K: int,
            limits: torch.Tensor, alpha: float) -> torch.Tensor:
    """Rows whose sentence is decided: its best finished hypothesis scores at least what any unfinished
    one still could. Extending a hypothesis only lowers its log probability (a negative number), and the
    length penalty grows with length, so an open hypothesis can reach at most score / lp(limit), its
    sentence's length limit. The test is exact, and it stops one wandering low-ranked beam from keeping a
    batch decoding to the length limit (benchmarks/nmt_speed.py: beam 5 over Multi30k validation
    67 s -> 45 s, same BLEU)."""
    final = scores / length_penalty(lengths, alpha)
    best_finished = final.masked_fill(~finished, float("-inf")).view(-1, K).amax(1)
    reachable = scores / length_penalty(limits, alpha)
    reachable = reachable.masked_fill(finished, float("-inf"))
    return (best_finished >= reachable.view(-1, K).amax(1)).repeat_interleave(K)


@torch.no_grad()
def beam_search(model, source: torch.Tensor, beam: int = 5, alpha: float = 0.6, extra_length: int = 50,
                attention: bool = False, settle: bool = True) -> Hypotheses:
    """Translate a batch of source ids (B, S) with beam width ``beam`` (1: greedy).

    Output length is at most the sentence's own source length (its tokens before the padding) +
    ``extra_length`` (Vaswani et al. 2017, section 6.1), so a sentence's translation does not depend on
    which sentences share its batch.
    ``settle`` stops each sentence once it is decided (:func:`settled`); the result is the same.
    A decided sentence leaves the batch, so the steps after it cost only what the open sentences need
    (the attention maps, kept for figures, keep every sentence to the end).
    """
    B = len(source)
    K, device = beam, source.device
    limits = ((source != PAD).sum(1) + extra_length).repeat_interleave(K)  # one per (sentence, beam) row
    memory = select(model.encode(source), torch.arange(B * K, device=device) // K)  # each sentence K times
    state = model.start(memory)
    # Only the first beam is live at the start, or the K beams would be K copies of one hypothesis.
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0
    tokens = torch.full((B * K, 1), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(B * K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B * K, dtype=torch.long, device=device)
    maps = []
    open_sentences = torch.arange(B, device=device)  # which sentence of ``source`` each row block is
    best_ids: list[torch.Tensor | None] = [None] * B
    for length in range(1, int(limits.max()) + 1):  # the hypotheses' length after this step
        n = len(open_sentences)
        logits, state, weights = model.step(memory, state, tokens[:, -1])
        logp = torch.log_softmax(logits.float(), -1)
        # A finished hypothesis only extends with padding, at no cost, so its score stays fixed.
        logp[finished] = float("-inf")
        logp[finished, PAD] = 0.0
        V = logp.shape[-1]
        candidates = (scores.view(n, K, 1) + logp.view(n, K, V)).view(n, K * V)
        scores, flat = candidates.topk(K, dim=1)
        parent = (flat // V + torch.arange(n, device=device)[:, None] * K).view(-1)
        token = (flat % V).view(-1)
        tokens = torch.cat([tokens.index_select(0, parent), token[:, None]], 1)
        state = select(state, parent)
        if attention and weights is not None:
            maps = [m.index_select(0, parent) for m in maps] + [weights.float().index_select(0, parent)]
        was_finished = finished.index_select(0, parent)
        lengths = lengths.index_select(0, parent) + (~was_finished).long()
        finished = was_finished | (token == EOS) | (length >= limits)  # a hypothesis at its limit is cut
        if settle:
            finished |= settled(scores.view(-1), lengths, finished, K, limits, alpha)
        decided = finished.view(n, K).all(1)
        if bool(decided.all()):
            break
        if decided.any() and not attention:
            _keep(best_ids, open_sentences[decided], tokens, _best_rows(scores, lengths, alpha)[decided])
            rows = (~decided).repeat_interleave(K).nonzero().view(-1)
            memory, state = select(memory, rows), select(state, rows)
            tokens, finished, lengths, limits = tokens[rows], finished[rows], lengths[rows], limits[rows]
            scores, open_sentences = scores[~decided], open_sentences[~decided]
    best = _best_rows(scores, lengths, alpha)
    _keep(best_ids, open_sentences, tokens, best)
    ids = torch.nn.utils.rnn.pad_sequence(best_ids, batch_first=True, padding_value=PAD)
    # With maps nothing left the batch, so ``best`` indexes every sentence's rows.
    return Hypotheses(ids, torch.stack(maps, 1).index_select(0, best) if maps else None)


def _best_rows(scores: torch.Tensor, lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """The row of each open sentence's highest length-normalised hypothesis."""
    n, K = scores.shape
    normalised = scores / length_penalty(lengths, alpha).view(n, K)
    return torch.arange(n, device=scores.device) * K + normalised.argmax(1)


def _keep(best_ids: list, sentences: torch.Tensor, tokens: torch.Tensor, rows: torch.Tensor) -> None:
    """Store the hypotheses ``rows`` of ``tokens`` (without the leading <s>) as ``sentences``' output."""
    for sentence, ids in zip(sentences.tolist(), tokens.index_select(0, rows)[:, 1:], strict=True):
        best_ids[sentence] = ids
