"""Count-based n-gram language models: the pre-neural baseline a GPT must beat.

An n-gram model predicts the next token from the n-1 tokens before it, p(w | h), by counting how often
each n-gram occurred in the training text (Shannon 1948 built one for English letters by hand). Raw
relative frequencies give probability 0 to everything unseen, so the counts are smoothed:

* **add-k** (Lidstone 1920; Chen & Goodman 1998, section 2.1, "additive smoothing") adds a
  pseudo-count k to every n-gram: p(w | h) = (c(hw) + k) / (c(h) + k V).
* **interpolated modified Kneser-Ney** (Kneser & Ney 1995, "Improved backing-off for m-gram language
  modeling"; Chen & Goodman 1998, "An Empirical Study of Smoothing Techniques for Language Modeling",
  TR-10-98, section 3, the best smoother of their study). It subtracts a discount D(c) from every
  seen count and gives the freed mass gamma(h) to the next lower order, recursively down to the
  uniform distribution over the vocabulary::

      p_m(w | h) = max(c_m(hw) - D_m(c_m(hw)), 0) / sum_v c_m(hv)  +  gamma_m(h) p_{m-1}(w | h')
      gamma_m(h) = (D_m1 N1(h.) + D_m2 N2(h.) + D_m3+ N3+(h.)) / sum_v c_m(hv)
      p_0(w) = 1 / V

  where h' is h without its oldest token, N_i(h.) counts the tokens that followed h exactly i times
  (3 or more for N3+), and a context never seen falls straight through (gamma = 1). The highest order
  uses raw counts c; every lower order uses *continuation counts* c_m(g) = N1+(.g), the number of
  distinct tokens seen before g: a lower order only matters when the higher one has little evidence,
  so it should ask in how many contexts a token appears, not how often ("Francisco" is frequent
  but nearly always after "San"). Each order m has three discounts estimated from its count-of-counts
  n_i (the number of m-grams with count exactly i):
  Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3.

Both smoothers share one form, p_m(w | h) = alpha(hw) + gamma(h) p_lower(w), with p_lower the next
order (Kneser-Ney) or uniform (add-k: alpha = c(hw) / (c(h) + kV), gamma = kV / (c(h) + kV)), so one
:class:`Level` per order holds everything a query needs.

Everything is vectorised numpy: an m-gram (x_1..x_m) is one int64 key sum_i x_i V^(m-i), so counting
is ``np.unique`` and looking up is ``np.searchsorted`` on sorted keys; the m-grams sharing a context
are a contiguous run of keys, because key(hw) = key(h) V + w.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

INT64_MAX = np.iinfo(np.int64).max


def largest_order(vocab_size: int) -> int:
    """The longest n-gram whose key, a number in base ``vocab_size`` (at least 2), fits in an int64: a
    subword vocabulary allows shorter n-grams than characters do."""
    order = 1
    while int(vocab_size) ** (order + 1) <= INT64_MAX:
        order += 1
    return order


@dataclass(frozen=True)
class NGramConfig:
    """An n-gram model's hyper-parameters."""

    order: int = 5
    """n: the model conditions on the n-1 previous tokens (1 is a unigram model)."""
    smoothing: Literal["kneser-ney", "add-k"] = "kneser-ney"
    """Interpolated modified Kneser-Ney (Chen & Goodman 1998) or add-k (Lidstone) of the full-order counts."""
    k: float = 0.01
    """add-k's pseudo-count added to every n-gram (ignored by Kneser-Ney)."""

    def __post_init__(self) -> None:
        if not isinstance(self.order, int | np.integer) or self.order < 1:
            raise ValueError(f"NGramConfig.order must be an integer >= 1, got {self.order!r}")
        if self.smoothing not in ("kneser-ney", "add-k"):
            raise ValueError(f"NGramConfig.smoothing must be 'kneser-ney' or 'add-k', got {self.smoothing!r}")
        if not self.k > 0:
            raise ValueError(f"NGramConfig.k must be > 0, got {self.k!r}")


# ---------------------------------------------------------------------------------------------- counting


def as_ids(ids: np.ndarray | torch.Tensor, vocab_size: int, what: str = "ids") -> np.ndarray:
    """A 1-D int64 numpy copy of a token sequence, checked to lie in [0, vocab_size)."""
    if hasattr(ids, "detach"):  # a torch.Tensor; the module itself needs only numpy
        ids = ids.detach().cpu().numpy()
    x = np.asarray(ids)
    if x.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of token ids, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{what} must hold integer token ids, got dtype {x.dtype}")
    x = x.astype(np.int64)
    if x.min() < 0 or x.max() >= vocab_size:
        raise ValueError(f"{what} must lie in [0, {vocab_size}), got values in [{x.min()}, {x.max()}]")
    return x


def modified_kn_discounts(counts: np.ndarray) -> np.ndarray:
    """(D1, D2, D3+) from the count-of-counts n_i of one order (Chen & Goodman 1998, section 3).

    Y = n1 / (n1 + 2 n2) is Ney, Essen & Kneser's (1994) single discount; D_i = i - (i+1) Y n_{i+1} / n_i.
    On tiny corpora the formula can be undefined (n_i = 0) or give D_i <= 0, which would leave no mass
    for the lower orders; such a D_i falls back to Y (and Y to 1/2 when there are no singletons)."""
    n = [np.count_nonzero(counts == i) for i in range(1, 5)]  # n1, n2, n3, n4
    Y = n[0] / (n[0] + 2 * n[1]) if n[0] > 0 else 0.5
    D = []
    for i in (1, 2, 3):
        d = i - (i + 1) * Y * n[i] / n[i - 1] if n[i - 1] > 0 else Y
        D.append(d if d > 0 else Y)
    return np.array(D)


@dataclass(frozen=True)
class Level:
    """One order m: p_m(w | h) = alpha(hw) + gamma(h) p_lower(w) for every context h it has seen."""

    grams: np.ndarray
    """(G,) sorted int64 keys of the m-grams hw with a count > 0."""
    alpha: np.ndarray
    """(G,) the count-based part of p_m(w | h) of each of those m-grams."""
    contexts: np.ndarray
    """(H,) sorted keys of the contexts h (the m-grams' first m-1 tokens; 0 for the empty one)."""
    gamma: np.ndarray
    """(H,) the probability mass each context leaves to p_lower; unseen contexts leave all of it."""
    discounts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Kneser-Ney's (D1, D2, D3+) of this order; empty for add-k."""


def build_level(grams: np.ndarray, counts: np.ndarray, vocab_size: int, smoothing: str, k: float) -> Level:
    """The alpha and gamma of one order from its sorted m-gram keys and their counts c(hw) > 0."""
    if grams.size == 0:  # the training text is shorter than m
        empty = np.zeros(0, np.int64)
        return Level(empty, np.zeros(0), empty, np.zeros(0))
    V = vocab_size
    contexts, start, followers = np.unique(grams // V, return_index=True, return_counts=True)
    c = counts.astype(np.float64)
    c_h = np.add.reduceat(c, start)  # (H,) sum_v c(hv): the context's count *as a context*
    if smoothing == "kneser-ney":
        D = modified_kn_discounts(counts)
        d = D[np.minimum(counts, 3) - 1]  # (G,) D(c(hw)); D1 <= 1 etc., so c - D(c) >= 0
        alpha = (c - d) / np.repeat(c_h, followers)
        gamma = np.add.reduceat(d, start) / c_h  # = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / c(h)
        return Level(grams, alpha, contexts, gamma, D)
    denominator = c_h + k * V  # add-k: (c(hw) + k) / (c(h) + kV) = c(hw)/(...) + kV/(...) * 1/V
    return Level(grams, c / np.repeat(denominator, followers), contexts, k * V / denominator)


def lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray, default: float) -> np.ndarray:
    """values[i] where keys[i] == query (keys sorted), else ``default``."""
    if keys.size == 0:
        return np.full(queries.shape, default)
    i = np.minimum(np.searchsorted(keys, queries), keys.size - 1)
    return np.where(keys[i] == queries, values[i], default)


def context_keys(contexts: np.ndarray, vocab_size: int) -> np.ndarray:
    """(B, c) tokens, oldest first -> (B,) int64 keys sum_j x_j V^(c-j) (0 for the empty context)."""
    keys = np.zeros(contexts.shape[0], np.int64)
    for j in range(contexts.shape[1]):  # Horner's rule over the (few) context positions
        keys = keys * vocab_size + contexts[:, j]
    return keys


# ------------------------------------------------------------------------------------------------ model


class NGramModel:
    """An n-gram language model over token ids 0..vocab_size-1, smoothed as ``config.smoothing`` says.

    A context shorter than n-1 tokens (the start of a text) is predicted by the model of its own length:
    Kneser-Ney uses the lower-order distribution p_m it interpolates down to, add-k its m-gram counts.
    """

    def __init__(self, config: NGramConfig, vocab_size: int):
        if not isinstance(vocab_size, int | np.integer) or vocab_size < 1:
            raise ValueError(f"vocab_size must be an integer >= 1, got {vocab_size!r}")
        vocab_size = int(vocab_size)  # a Python int: numpy's ** would overflow silently below
        if vocab_size > 1 and config.order > largest_order(vocab_size):
            raise ValueError(f"order {config.order} with vocab_size {vocab_size} overflows int64 n-gram keys "
                             f"(vocab_size**order > 2**63-1); the largest order is "
                             f"{largest_order(vocab_size)}")
        self.config = config
        self.vocab_size = vocab_size
        self.levels: list[Level] = []  # levels[m-1] is order m

    # ----------------------------------------------------------------------------------------- fitting

    def fit(self, ids: np.ndarray | torch.Tensor) -> NGramModel:
        """Count every m-gram of ``ids`` for m = 1..n and build each order's :class:`Level`; returns self."""
        x = as_ids(ids, self.vocab_size)
        n, V, cfg = self.config.order, self.vocab_size, self.config
        grams: list[tuple[np.ndarray, np.ndarray]] = []  # grams[m-1]: sorted unique m-gram keys, counts
        keys = x
        for m in range(1, n + 1):
            if m > 1:
                keys = keys[:-1] * V + x[m - 1:]  # (N-m+1,) key of x[i..i+m-1], from the (m-1)-gram keys
            grams.append(np.unique(keys, return_counts=True))
        if cfg.smoothing == "add-k":
            self.levels = [build_level(g, c, V, "add-k", cfg.k) for g, c in grams]
            return self
        self.levels = []
        for m in range(1, n):
            # Continuation count N1+(.g) of an m-gram g: how many distinct (m+1)-grams vg end with it.
            suffixes = grams[m][0] % V ** m  # grams[m] holds the (m+1)-grams
            g, c = np.unique(suffixes, return_counts=True)
            self.levels.append(build_level(g, c, V, "kneser-ney", cfg.k))
        self.levels.append(build_level(*grams[n - 1], V, "kneser-ney", cfg.k))  # the top order: raw counts
        return self

    def _check_fitted(self) -> None:
        if not self.levels:
            raise ValueError("NGramModel is not fitted: call fit(train_ids) first")

    def _orders(self, context_length: int) -> list[int]:
        """The orders, lowest first, whose levels predict after ``context_length`` (< n) tokens:
        Kneser-Ney interpolates 1..m, add-k uses order m alone (m = context_length + 1)."""
        if self.config.smoothing == "kneser-ney":
            return list(range(1, context_length + 2))
        return [context_length + 1]

    # -------------------------------------------------------------------------------------- prediction

    def probabilities(self, contexts: np.ndarray) -> np.ndarray:
        """(B, order-1) int contexts (most recent last) -> (B, vocab_size) next-token distributions, each
        row summing to 1. Only the last order-1 columns are used; fewer columns (the start of a text)
        give the shorter context's prediction."""
        self._check_fitted()
        V, n = self.vocab_size, self.config.order
        contexts = np.asarray(contexts)
        if contexts.ndim != 2 or (contexts.size and not np.issubdtype(contexts.dtype, np.integer)):
            raise ValueError(f"contexts must be a (B, order-1) integer array, got {contexts.dtype} "
                             f"{contexts.shape}")
        if contexts.size and (contexts.min() < 0 or contexts.max() >= V):
            raise ValueError(f"contexts must lie in [0, {V}), got values in "
                             f"[{contexts.min()}, {contexts.max()}]")
        contexts = contexts[:, max(contexts.shape[1] - (n - 1), 0):].astype(np.int64)
        B, c = contexts.shape
        P = np.full((B, V), 1.0 / V)  # p_0, the uniform distribution
        for m in self._orders(c):
            level = self.levels[m - 1]
            h = context_keys(contexts[:, c - (m - 1):], V)  # (B,) key of the last m-1 tokens
            P *= lookup(level.contexts, level.gamma, h, 1.0)[:, None]
            # The seen followers of h are the contiguous keys [hV, hV + V) of the sorted m-grams.
            lo, hi = np.searchsorted(level.grams, h * V), np.searchsorted(level.grams, h * V + V)
            runs = hi - lo
            rows = np.repeat(np.arange(B), runs)
            idx = np.arange(runs.sum()) - np.repeat(np.cumsum(runs) - runs, runs) + np.repeat(lo, runs)
            P[rows, level.grams[idx] % V] += level.alpha[idx]
        return P

    def log_probabilities(self, ids: np.ndarray | torch.Tensor) -> np.ndarray:
        """(len-1,) ln p(x_t | x_{t-n+1..t-1}) for t = 1..len-1; early positions use the context they have."""
        self._check_fitted()
        x = as_ids(ids, self.vocab_size)
        if x.size < 2:
            raise ValueError("ids must hold at least 2 tokens: the first one is not predicted")
        V, n = self.vocab_size, self.config.order
        t = np.arange(1, x.size)
        w = x[1:]  # (T,) the predicted tokens
        p = np.full(t.size, 1.0 / V)
        h = np.zeros(t.size, np.int64)  # key of the m-1 tokens before each position
        for m in range(1, n + 1):
            if m > 1:  # prepend the next older token: key(x_{t-m+1} .. x_{t-1})
                h = x[np.maximum(t - m + 1, 0)] * V ** (m - 2) + h
            level = self.levels[m - 1]
            has_context = t >= m - 1  # positions near the start keep the shorter context's p
            lower = p if self.config.smoothing == "kneser-ney" else 1.0 / V
            alpha = lookup(level.grams, level.alpha, h * V + w, 0.0)  # (T,) 0 where hw was never seen
            gamma = lookup(level.contexts, level.gamma, h, 1.0)  # (T,) 1 where h was never seen
            p_m = alpha + gamma * lower
            p = np.where(has_context, p_m, p)
        return np.log(p)

    def cross_entropy(self, ids: np.ndarray | torch.Tensor) -> float:
        """Mean -ln p(x_t | x_{t-n+1..t-1}) over t = 1..len-1 of ``ids`` (the first token is not
        predicted; positions near the start use the shorter context they have, as a model reading the
        text from its beginning would). Nats per token."""
        return float(-self.log_probabilities(ids).mean())

    def sample(self, context: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """``length`` tokens drawn one at a time from p(. | the last n-1 tokens), after ``context``."""
        self._check_fitted()
        out = [int(v) for v in np.asarray(context).ravel()]
        keep = self.config.order - 1
        for _ in range(length):
            recent = np.array(out[len(out) - keep:] if keep else [], np.int64)[None, :]
            out.append(int(rng.choice(self.vocab_size, p=self.probabilities(recent)[0])))
        return np.array(out[len(out) - length:] if length else [], np.int64)


# ---------------------------------------------------------------------------------------------- select


def select(train_ids: np.ndarray | torch.Tensor, val_ids: np.ndarray | torch.Tensor, vocab_size: int,
           orders: tuple[int, ...] = (2, 3, 4, 5, 6, 7),
           smoothings: tuple[str, ...] = ("kneser-ney", "add-k"),
           ks: tuple[float, ...] = (1.0, 0.1, 0.01)) -> tuple[NGramConfig, dict[NGramConfig, float]]:
    """Fit every config on train, measure cross-entropy on val; return the best config and all scores.
    (Selection uses validation only.) Kneser-Ney has no k, so it is tried once per order."""
    best, scores = select_model(train_ids, val_ids, vocab_size, orders, smoothings, ks)
    return best.config, scores


def select_model(train_ids: np.ndarray | torch.Tensor, val_ids: np.ndarray | torch.Tensor, vocab_size: int,
                 orders: tuple[int, ...] = (2, 3, 4, 5, 6, 7),
                 smoothings: tuple[str, ...] = ("kneser-ney", "add-k"),
                 ks: tuple[float, ...] = (1.0, 0.1, 0.01)) -> tuple[NGramModel, dict[NGramConfig, float]]:
    """As :func:`select`, returning the best model already fitted rather than its config."""
    train = as_ids(train_ids, vocab_size, "train_ids")
    val = as_ids(val_ids, vocab_size, "val_ids")
    scores: dict[NGramConfig, float] = {}
    best: NGramModel | None = None
    for order in orders:
        for smoothing in smoothings:
            for k in ks if smoothing == "add-k" else (NGramConfig.k,):
                config = NGramConfig(order, smoothing, k)  # type: ignore[arg-type]
                model = NGramModel(config, vocab_size).fit(train)
                scores[config] = model.cross_entropy(val)
                if best is None or scores[config] < scores[best.config]:
                    best = model
    if best is None:
        raise ValueError("select needs at least one order and smoothing")
    return best, scores


# ================================================================================================
# As a baseline component: the family searched (the "model"), counting and choosing (the "algorithm").


@dataclass(frozen=True)
class NGramSearchConfig:
    """The n-gram family searched: orders 1 to ``max_order``, interpolated Kneser-Ney (Kneser & Ney
    1995; Chen & Goodman 1998) and add-k (Lidstone) smoothing; the best on validation is kept."""

    max_order: int = 7
    smoothing: Literal["kneser-ney", "add-k", "either"] = "either"

    def __post_init__(self) -> None:
        if not 1 <= self.max_order <= 10:
            raise ValueError("needs 1 <= max_order <= 10")


@dataclass(frozen=True)
class NGramFamily:
    """What the n-gram 'model' component builds: the family to search, sized for the vocabulary."""

    config: NGramSearchConfig
    vocab_size: int


def ngram_family(config: NGramSearchConfig, data) -> NGramFamily:
    return NGramFamily(config, data.vocab_size)


@dataclass(frozen=True)
class CountConfig:
    """Counting has no hyper-parameters: the order and smoothing are chosen on validation."""


class NGramFit:
    """Count on the training split, choose order and smoothing on validation; no gradient steps."""

    total_steps = 0
    samples_per_step = 0

    def __init__(self, family: NGramFamily, data):
        self.data, self.modules = data, {}
        smoothings = ("kneser-ney", "add-k") if family.config.smoothing == "either" else (
            family.config.smoothing,)
        orders = range(1, min(family.config.max_order, largest_order(family.vocab_size)) + 1)
        train, val = (data.splits[s].cpu().numpy() for s in ("train", "val"))
        self.model, self.scores = select_model(train, val, family.vocab_size, orders=tuple(orders),
                                               smoothings=smoothings)
        self.chosen = self.model.config

    def update(self, step: int) -> dict:
        raise AssertionError("an n-gram model takes no steps")

    def evaluate(self, split: str) -> dict[str, float]:
        if split == "test":
            return {}
        # Training: the same evenly spread windows a GPT's training loss is measured on.
        train = split == "train"
        ids = self.data.evaluation_windows("train")[1].flatten() if train else self.data.splits["val"]
        loss = self.model.cross_entropy(ids.cpu().numpy())
        return {"loss": loss, "loss_per_char": loss * self.data.tokens_per_character(split)}

    def provenance(self) -> dict[str, Any]:
        c = self.chosen
        k = f" k={c.k:g}" if c.smoothing == "add-k" else ""
        return {"ngram": f"order {c.order}, {c.smoothing}{k}"}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def count_and_select(config: CountConfig, family: NGramFamily, loss, data, ctx) -> NGramFit:
    return NGramFit(family, data)
