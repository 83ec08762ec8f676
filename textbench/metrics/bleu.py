r"""Exact, fast sentence-BLEU, Self-BLEU and RS-BLEU (Texygen / TextGAN-PyTorch semantics).

Definitions (protocol.md sections 2.5, 2.6)
--------------------------------------------
Sentence BLEU-N of a hypothesis h against a reference set R (Papineni et al., 2002) with uniform weights
w_n = 1/N::

    BLEU-N(h, R) = BP · exp( Σ_{n=1..N} w_n · log p_n )

* modified n-gram precision p_n = Σ_g min(c_h(g), max_{r∈R} c_r(g)) / max(1, Σ_g c_h(g)), where c_x(g) is the
  count of n-gram g in sentence x: each hypothesis n-gram count is clipped by its largest count in any *single*
  reference;
* smoothing "method1" of Chen & Cherry (2014): a precision with a zero numerator becomes ε / denominator,
  ε = 0.1 (this includes orders n > |h|, where the denominator is 1, so p_n = 0.1);
* brevity penalty BP = 1 if |h| > r, else exp(1 - r/|h|), where r is the reference length closest to |h|
  (ties -> the shorter one);
* if no unigram of h matches (p_1 numerator = 0, which includes the empty hypothesis) the score is 0.

This is exactly ``nltk.translate.bleu_score.sentence_bleu(R, h, weights=(1/N,)*N,
smoothing_function=SmoothingFunction().method1)`` (nltk 3.10): the arithmetic below performs the same floating
point operations in the same order (int/int divisions, ``math.log``, ``math.fsum``, ``math.exp``), so the
per-hypothesis scores are bit-identical to nltk's, not merely close. The corpus score is the arithmetic mean of
the sentence scores (``sum(scores) / len(scores)``, as Texygen does) -- *not* corpus BLEU.

Self-BLEU-N (Texygen ``SelfBleu``, leave-one-out): every sample s_i is a hypothesis against all the *other*
samples, Self-BLEU-N = mean_i BLEU-N(s_i, S \ {s_i}) (by position: a duplicate of s_i elsewhere in S stays a
reference). RS-BLEU-N = Self-BLEU-N(samples) / Self-BLEU-N(test sentences) ("relative Self-BLEU": 1 means the
samples are as diverse as real text, above 1 less diverse).

Speed
-----
nltk recounts the n-grams of every reference for every hypothesis (O(|H|·|R|) Counter constructions). Here a
:class:`ReferenceIndex` is built once: for each order n a dict n-gram -> max count in any single reference, and
the sorted distinct reference lengths (closest length by ``bisect``). Each hypothesis is then scored with one dict
look-up per n-gram, all orders 1..N at once (BLEU-2..5 share the counts).

For Self-BLEU a :class:`SelfBleuIndex` keeps, per n-gram, the two largest per-sentence counts c1 >= c2 (c2 = the
second entry of the sorted multiset of per-sentence counts, 0 if only one sentence has the n-gram). For a
hypothesis s_i with count v of g (v <= c1 since s_i is one of the sentences), the max count of g over the *other*
sentences is c1 if v < c1 (then some other sentence holds c1) and c2 if v == c1 (if another sentence ties with
s_i then c2 == c1, otherwise c2 is the largest among the others). So the sentence holding c1 need not be stored;
the clipped count is min(v, max_others) = v if v < c1 else c2. The closest-length search removes one occurrence of
the hypothesis's own length from the length multiset. Both are exact, not approximations.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left
from collections import Counter
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .. import __version__
from ..errors import TextbenchError
from ..registry import register_metric
from .catalogue import CATALOGUE, Score
from .tokenize import TOKENIZER_LABELS, read_lines, tokenize_lines

__all__ = [
    "EPSILON",
    "MAX_ORDER",
    "ReferenceIndex",
    "SelfBleuIndex",
    "Signature",
    "Score",
    "bleu",
    "self_bleu",
    "rs_bleu",
    "sentence_bleu",
    "parse_metric",
    "score_files",
    "score_corpora",
    "valid_metric_names",
]

#: method1 epsilon (nltk ``SmoothingFunction().epsilon``; Chen & Cherry 2014 use 0.1).
EPSILON = 0.1
#: Highest n-gram order accepted by :func:`score_files` names ("bleu-1" .. "bleu-9").
MAX_ORDER = 9
#: Number of references of Texygen's default "fast" protocol (``get_bleu_fast``: the first 500 test lines).
TEXYGEN_FAST_REFS = 500

Tokens = Sequence[str]


# --------------------------------------------------------------------------------------------------------------
# n-gram helpers
# --------------------------------------------------------------------------------------------------------------


def _grams(toks: list, n: int) -> list:
    """The n-grams of a token list in order: the tokens themselves for n = 1, tuples for n >= 2."""
    if n == 1:
        return toks
    if n == 2:
        return list(zip(toks, toks[1:]))
    if n == 3:
        return list(zip(toks, toks[1:], toks[2:]))
    return list(zip(*[toks[i:] for i in range(n)]))


def _as_token_lists(sentences: Iterable[Tokens], what: str) -> list[list]:
    out = []
    for s in sentences:
        if isinstance(s, str):
            raise TextbenchError(f"{what} must be token lists, got a string ({s[:40]!r}); tokenize it first")
        out.append(list(s))
    return out


def _check_orders(orders: Iterable[int], max_n: int | None = None) -> tuple[int, ...]:
    orders = tuple(int(n) for n in orders)
    if not orders:
        raise TextbenchError("no n-gram order given")
    for n in orders:
        if n < 1:
            raise TextbenchError(f"n-gram order must be >= 1, got {n}")
        if max_n is not None and n > max_n:
            raise TextbenchError(f"order {n} exceeds the index's max_n = {max_n}; rebuild the index with max_n >= {n}")
    return orders


class _LogCache(dict):
    """(numerator, denominator) -> log p_n with nltk's exact arithmetic (method1 for zero numerators)."""

    def __missing__(self, key):
        num, den = key
        # nltk: math.log(Fraction(num, den)) == math.log(num / den) (Rational.__float__ is int / int);
        # method1: (0 + epsilon) / den.
        v = math.log(num / den) if num else math.log((0 + EPSILON) / den)
        self[key] = v
        return v


def _score_rows(nums_rows, lens, closest, orders, max_n) -> dict[int, np.ndarray]:
    """Turn per-hypothesis clipped counts into BLEU-N scores for every N in ``orders`` (nltk-identical floats).

    ``nums_rows[i]`` = clipped counts for orders 1..max_n, ``lens[i]`` = |h_i|, ``closest[i]`` = closest ref length.
    """
    logs = _LogCache()
    weights = {N: 1 / N for N in orders}  # the float nltk gets from weights=(1/N,)*N
    out = {N: np.zeros(len(lens), dtype=np.float64) for N in orders}
    cols = [(N, out[N]) for N in orders]
    for i, (nums, h, r) in enumerate(zip(nums_rows, lens, closest)):
        if nums[0] == 0:  # no unigram match (or empty hypothesis): nltk returns 0
            continue
        # nltk brevity_penalty(r, h): 1 if h > r; (h == 0 cannot happen here) else exp(1 - r / h)
        bp = 1 if h > r else math.exp(1 - r / h)
        lp = [logs[(nums[k], max(1, h - k))] for k in range(max_n)]  # denominator = max(1, |h| - n + 1)
        for N, col in cols:
            w = weights[N]
            col[i] = bp * math.exp(math.fsum([w * lp[k] for k in range(N)]))
    return out


def _mean(a: np.ndarray) -> float:
    """Texygen's ``sum(bleu) / len(bleu)`` (left-to-right float sum)."""
    return sum(a.tolist()) / len(a) if len(a) else float("nan")


# --------------------------------------------------------------------------------------------------------------
# BLEU against a fixed reference set
# --------------------------------------------------------------------------------------------------------------


class _Lengths:
    """Multiset of reference lengths; closest length to h (ties -> shorter), optionally excluding one copy of h."""

    def __init__(self, lengths: Iterable[int]):
        self.counts = Counter(lengths)
        self.sorted = sorted(self.counts)
        self._cache: dict[tuple[int, bool], int] = {}

    def closest(self, h: int, exclude_own: bool = False) -> int:
        key = (h, exclude_own)
        r = self._cache.get(key)
        if r is not None:
            return r
        c = self.counts.get(h, 0) - (1 if exclude_own else 0)
        if c > 0:
            r = h
        else:
            L = self.sorted
            i = bisect_left(L, h)  # L[i-1] < h <= L[i]
            lo = L[i - 1] if i > 0 else None
            j = i + 1 if (i < len(L) and L[i] == h) else i  # skip h itself (its only copy is excluded)
            hi = L[j] if j < len(L) else None
            if lo is None and hi is None:
                raise TextbenchError("no reference left to compare with (need at least one reference)")
            if hi is None or (lo is not None and h - lo <= hi - h):
                r = lo  # tie -> the shorter reference, as nltk's key (|r - h|, r)
            else:
                r = hi
        self._cache[key] = r
        return r


class ReferenceIndex:
    """Everything sentence-BLEU needs from a reference corpus, computed once.

    ``max_counts[n-1]`` maps each n-gram (a token for n = 1, a tuple otherwise) to its largest count in any single
    reference; ``lengths`` holds the reference lengths for the closest-length (brevity penalty) search.
    """

    def __init__(self, references: Iterable[Tokens], max_n: int = 5):
        refs = _as_token_lists(references, "references")
        if not refs:
            raise TextbenchError("BLEU needs at least one reference sentence")
        if max_n < 1:
            raise TextbenchError(f"max_n must be >= 1, got {max_n}")
        self.max_n = int(max_n)
        self.n_refs = len(refs)
        self.lengths = _Lengths(len(r) for r in refs)
        self.max_counts: list[dict] = []
        for n in range(1, self.max_n + 1):
            per_sent = [_grams(r, n) for r in refs]
            m = dict.fromkeys(chain.from_iterable(per_sent), 1)
            for g in per_sent:
                if len(g) != len(set(g)):  # a repeated n-gram in this reference: raise its max count
                    for k, v in Counter(g).items():
                        if v > m[k]:
                            m[k] = v
            self.max_counts.append(m)

    def clipped_counts(self, hyp: Tokens, max_n: int | None = None) -> list[int]:
        """Σ_g min(c_h(g), max_r c_r(g)) for n = 1..max_n (nltk ``modified_precision`` numerators)."""
        toks = list(hyp)
        nums = []
        for n in range(1, (max_n or self.max_n) + 1):
            m = self.max_counts[n - 1]
            g = _grams(toks, n)
            s = set(g)
            if len(s) == len(g):  # every n-gram once: clipped count is 1 iff it occurs in some reference
                nums.append(sum(map(m.__contains__, s)))
            else:
                get = m.get
                nums.append(sum([min(v, get(k, 0)) for k, v in Counter(g).items()]))
        return nums

    def closest_ref_length(self, hyp_len: int) -> int:
        return self.lengths.closest(hyp_len)

    def score(self, hypotheses: Iterable[Tokens], orders: Iterable[int] = (2, 3, 4, 5)) -> dict[int, np.ndarray]:
        """Per-hypothesis BLEU-N for each N in ``orders``: ``{N: float64 array of len(hypotheses)}``."""
        orders = _check_orders(orders, self.max_n)
        hyps = _as_token_lists(hypotheses, "hypotheses")
        max_n = max(orders)
        nums = [self.clipped_counts(h, max_n) for h in hyps]
        lens = [len(h) for h in hyps]
        closest = [self.lengths.closest(h) for h in lens]
        return _score_rows(nums, lens, closest, orders, max_n)


@register_metric("bleu", CATALOGUE["bleu"].description)
def bleu(
    hypotheses: Iterable[Tokens],
    references: Iterable[Tokens] | ReferenceIndex,
    orders: Iterable[int] = (2, 3, 4, 5),
) -> dict[int, np.ndarray]:
    """Per-hypothesis sentence BLEU-N, N in ``orders``, of token lists against a reference corpus.

    BLEU-N = BP · exp(Σ_{n=1..N} (1/N) log p_n) (Papineni et al. 2002), method1 smoothing (Chen & Cherry 2014),
    identical to nltk ``sentence_bleu(references, h, (1/N,)*N, smoothing_function=SmoothingFunction().method1)``.
    The corpus score of Texygen is ``scores[N].mean()``. ``references`` may be a prebuilt :class:`ReferenceIndex`.
    """
    orders = _check_orders(orders)
    index = references if isinstance(references, ReferenceIndex) else ReferenceIndex(references, max(orders))
    return index.score(hypotheses, orders)


def sentence_bleu(references: Iterable[Tokens], hypothesis: Tokens, n: int = 4) -> float:
    """One sentence's BLEU-n (convenience; for many hypotheses build a :class:`ReferenceIndex` once)."""
    return float(bleu([hypothesis], references, (n,))[n][0])


# --------------------------------------------------------------------------------------------------------------
# Self-BLEU (leave-one-out) and RS-BLEU
# --------------------------------------------------------------------------------------------------------------


class SelfBleuIndex:
    """Leave-one-out index of a sample set: per order n, ``top1[n-1]`` = {g: c1} for n-grams whose largest
    per-sentence count c1 is > 1 (absent -> c1 = 1) and ``top2[n-1]`` = {g: c2} for n-grams whose second-largest
    per-sentence count c2 is > 0 (absent -> 0). See the module docstring for why this is exact."""

    def __init__(self, samples: Iterable[Tokens], max_n: int = 5):
        sents = _as_token_lists(samples, "samples")
        if len(sents) < 2:
            raise TextbenchError(f"Self-BLEU needs at least 2 samples (each is scored against the others), got {len(sents)}")
        if max_n < 1:
            raise TextbenchError(f"max_n must be >= 1, got {max_n}")
        self.max_n = int(max_n)
        self.samples = sents
        self.lengths = _Lengths(len(s) for s in sents)
        self.top1: list[dict] = []
        self.top2: list[dict] = []
        self._grams: list[list] = []  # per order, each sample's n-gram list (reused by score())
        for n in range(1, self.max_n + 1):
            per_sent = [_grams(s, n) for s in sents]
            self._grams.append(per_sent)
            uniq = [set(g) for g in per_sent]
            df = Counter(chain.from_iterable(uniq))  # number of sentences containing each n-gram
            repeats: dict = {}  # n-gram -> per-sentence counts > 1
            for g, s in zip(per_sent, uniq):
                if len(g) != len(s):
                    for k, v in Counter(g).items():
                        if v > 1:
                            repeats.setdefault(k, []).append(v)
            top1: dict = {}
            top2 = {k: 1 for k, c in df.items() if c >= 2}
            for k, vs in repeats.items():
                counts = sorted(vs, reverse=True) + [1] * (df[k] - len(vs))
                top1[k] = counts[0]
                if len(counts) > 1:
                    top2[k] = counts[1]
            self.top1.append(top1)
            self.top2.append(top2)

    def clipped_counts(self, sample: Tokens | int, max_n: int | None = None) -> list[int]:
        """Clipped counts of one sample *of this set* (its tokens, or its position) against the other samples,
        orders 1..max_n. (A sentence that is not in the set gives meaningless numbers.)"""
        if isinstance(sample, int):
            per_order = [self._grams[n][sample] for n in range(max_n or self.max_n)]
        else:
            toks = list(sample)
            per_order = [_grams(toks, n) for n in range(1, (max_n or self.max_n) + 1)]
        nums = []
        for n, g in enumerate(per_order, start=1):
            top2 = self.top2[n - 1]
            s = set(g)
            if len(s) == len(g):
                # v = 1 everywhere: clipped = 1 iff another sentence has g, i.e. iff c2 >= 1
                nums.append(sum(map(top2.__contains__, s)))
            else:
                t1 = self.top1[n - 1].get
                t2 = top2.get
                nums.append(sum([v if v < t1(k, 1) else t2(k, 0) for k, v in Counter(g).items()]))
        return nums

    def score(self, orders: Iterable[int] = (2, 3, 4, 5)) -> dict[int, np.ndarray]:
        """Per-sample Self-BLEU-N (each sample vs all the others), ``{N: float64 array of len(samples)}``."""
        orders = _check_orders(orders, self.max_n)
        max_n = max(orders)
        nums = [self.clipped_counts(i, max_n) for i in range(len(self.samples))]
        lens = [len(s) for s in self.samples]
        closest = [self.lengths.closest(h, exclude_own=True) for h in lens]
        return _score_rows(nums, lens, closest, orders, max_n)


@register_metric("self-bleu", CATALOGUE["self-bleu"].description)
def self_bleu(samples: Iterable[Tokens], orders: Iterable[int] = (2, 3, 4, 5)) -> dict[int, np.ndarray]:
    """Per-sample leave-one-out Self-BLEU-N: BLEU-N(s_i, S without s_i), N in ``orders`` (see module docstring).

    Identical to nltk ``sentence_bleu(S[:i] + S[i+1:], S[i], (1/N,)*N, smoothing_function=method1)`` per sample.
    """
    orders = _check_orders(orders)
    return SelfBleuIndex(samples, max(orders)).score(orders)


@register_metric("rs-bleu", CATALOGUE["rs-bleu"].description)
def rs_bleu(samples: Iterable[Tokens], test: Iterable[Tokens], orders: Iterable[int] = (2, 3, 4, 5)) -> dict[int, float]:
    """RS-BLEU-N = mean Self-BLEU-N of ``samples`` / mean Self-BLEU-N of ``test`` for each N in ``orders``.

    Self-BLEU grows with the size of the set, so pass sets of equal size (:func:`score_files` does).
    """
    orders = _check_orders(orders)
    a = self_bleu(samples, orders)
    b = self_bleu(test, orders)
    return {N: _ratio(_mean(a[N]), _mean(b[N])) for N in orders}


def _ratio(a: float, b: float) -> float:
    """a / b, NaN when the test Self-BLEU b is 0 (no sentence of the test set shares a word with another)."""
    return a / b if b else float("nan")


# --------------------------------------------------------------------------------------------------------------
# Results with a signature
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """Settings a score depends on (like sacrebleu's signature). ``str()`` renders a one-line tag, e.g.
    ``bleu-4|refs:10000|hyps:200|smooth:method1|tok:nltk|lc:yes|proto:full|v:0.1.0``.

    For Self-BLEU, ``refs`` names the samples file (the references are the other samples) and
    ``n_refs = n_hyps - 1``; for RS-BLEU, ``refs``/``n_refs`` describe the test sentences of the denominator.
    """

    metric: str  # "bleu" | "self-bleu" | "rs-bleu"
    n: int
    refs: str
    n_refs: int
    n_hyps: int
    hyps: str = ""
    smoothing: str = "method1"
    tokenizer: str = "nltk-treebank"
    lowercase: bool = False
    protocol: str = "full"
    version: str = __version__

    def as_dict(self) -> dict:
        return asdict(self)

    def __getitem__(self, key: str):
        return self.as_dict()[key]

    def __str__(self) -> str:
        tok = self.tokenizer.split("-")[0]
        head = f"{self.metric}-{self.n}"
        if self.metric == "bleu":
            sizes = f"refs:{self.n_refs}|hyps:{self.n_hyps}"
        elif self.metric == "self-bleu":
            sizes = f"samples:{self.n_hyps}|loo:yes"
        else:
            sizes = f"samples:{self.n_hyps}|test:{self.n_refs}|loo:yes"
        lc = "yes" if self.lowercase else "no"
        return f"{head}|{sizes}|smooth:{self.smoothing}|tok:{tok}|lc:{lc}|proto:{self.protocol}|v:{self.version}"


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------------------------------
# Metric names and the file-level entry point (what ``textbench eval`` calls)
# --------------------------------------------------------------------------------------------------------------

_KINDS = ("bleu", "self-bleu", "rs-bleu")


def valid_metric_names() -> list[str]:
    return [f"{k}-{n}" for k in _KINDS for n in range(1, MAX_ORDER + 1)]


def parse_metric(name: str) -> tuple[str, int]:
    """``"bleu-4"`` -> ``("bleu", 4)``; ``"self-bleu-3"``, ``"rs-bleu-2"`` likewise (case-insensitive)."""
    key = str(name).strip().lower().replace("_", "-")
    kind, _, n = key.rpartition("-")
    if kind in _KINDS and n.isdigit() and 1 <= int(n) <= MAX_ORDER:
        return kind, int(n)
    raise TextbenchError(
        f"unknown metric {name!r}; valid: bleu-N, self-bleu-N, rs-bleu-N with N = 1..{MAX_ORDER} "
        f"(e.g. bleu-2, bleu-5, self-bleu-3, rs-bleu-4)"
    )


def _protocol(max_refs: int | None, max_hyps: int | None) -> str:
    if max_refs is None and max_hyps is None:
        return "full"
    if max_refs == TEXYGEN_FAST_REFS and max_hyps is None:
        return "texygen-fast"
    parts = []
    if max_refs is not None:
        parts.append(f"first-{max_refs}-refs")
    if max_hyps is not None:
        parts.append(f"first-{max_hyps}-hyps")
    return ",".join(parts)


def _check_cap(v: int | None, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise TextbenchError(f"{what} must be a positive integer or None, got {v!r}")
    return int(v)


def score_corpora(
    samples: Sequence[str],
    references: Sequence[str] | None,
    metrics: Sequence[str],
    tokenizer: str = "nltk",
    lowercase: bool = False,
    max_refs: int | None = None,
    max_hyps: int | None = None,
    samples_name: str = "samples",
    references_name: str = "references",
    notes: Sequence[str] = (),
) -> dict[str, Score]:
    """Like :func:`score_files` but on in-memory lines (untokenized strings, empty lines already removed)."""
    parsed = [parse_metric(m) for m in metrics]
    if not parsed:
        raise TextbenchError(f"no metric given; valid: bleu-N, self-bleu-N, rs-bleu-N (N = 1..{MAX_ORDER})")
    max_refs = _check_cap(max_refs, "max_refs")
    max_hyps = _check_cap(max_hyps, "max_hyps")
    needs_refs = any(k in ("bleu", "rs-bleu") for k, _ in parsed)
    if needs_refs and not references:
        raise TextbenchError("bleu-N and rs-bleu-N need a references file")
    if not samples:
        raise TextbenchError(f"{samples_name}: no samples")
    proto = _protocol(max_refs, max_hyps)
    tok_label = TOKENIZER_LABELS.get(tokenizer, tokenizer)
    common = dict(smoothing="method1", tokenizer=tok_label, lowercase=bool(lowercase), protocol=proto)
    notes = tuple(notes)

    hyp_lines = list(samples[:max_hyps] if max_hyps else samples)
    ref_lines = list(references[:max_refs] if (max_refs and references) else (references or []))
    out: dict[str, Score] = {}

    bleu_orders = sorted({n for k, n in parsed if k == "bleu"})
    self_orders = sorted({n for k, n in parsed if k in ("self-bleu", "rs-bleu")})
    # Self-BLEU set: the first k samples, k = min(#samples, max_hyps, max_refs) -- Texygen's fast mode takes the
    # first 500 generated lines (is_fast / sample_size = 500). Tokenize only the lines some metric uses.
    k = min(len(hyp_lines), max_refs or len(hyp_lines))
    hyp_toks = tokenize_lines(hyp_lines if bleu_orders else hyp_lines[:k], tokenizer, lowercase)
    if bleu_orders:
        index = ReferenceIndex(tokenize_lines(ref_lines, tokenizer, lowercase), max(bleu_orders))
        per = index.score(hyp_toks, bleu_orders)
        for n in bleu_orders:
            sig = Signature("bleu", n, references_name, len(ref_lines), len(hyp_lines), samples_name, **common)
            out[f"bleu-{n}"] = Score(f"bleu-{n}", _mean(per[n]), signature=sig, per_hypothesis=_readonly(per[n]),
                                     notes=notes)

    if self_orders:
        if k < 2:
            raise TextbenchError(f"{samples_name}: Self-BLEU needs at least 2 samples, got {k}")
        per_s = SelfBleuIndex(hyp_toks[:k], max(self_orders)).score(self_orders)
        for n in sorted({n for kk, n in parsed if kk == "self-bleu"}):
            sig = Signature("self-bleu", n, samples_name, k - 1, k, samples_name, **common)
            out[f"self-bleu-{n}"] = Score(f"self-bleu-{n}", _mean(per_s[n]), signature=sig, per_hypothesis=_readonly(per_s[n]),
                                           notes=notes)
        rs_orders = sorted({n for kk, n in parsed if kk == "rs-bleu"})
        if rs_orders:
            # Denominator: Self-BLEU of the first k' test sentences, k' = the same number as the samples (capped by
            # the test set), because Self-BLEU rises with the set size.
            kt = min(k, len(ref_lines))
            if kt < 2:
                raise TextbenchError(f"{references_name}: RS-BLEU needs at least 2 test sentences, got {kt}")
            if kt < k:
                notes = notes + (f"rs-bleu: only {kt} test sentences for {k} samples; the ratio mixes set sizes",)
            per_t = SelfBleuIndex(tokenize_lines(ref_lines[:kt], tokenizer, lowercase), max(rs_orders)).score(
                rs_orders
            )
            for n in rs_orders:
                den = _mean(per_t[n])
                sig = Signature("rs-bleu", n, references_name, kt, k, samples_name, **common)
                rs_notes = notes if den else notes + (f"rs-bleu-{n}: test Self-BLEU is 0, ratio undefined (NaN)",)
                per = per_s[n] / den if den else np.full(len(per_s[n]), np.nan)
                out[f"rs-bleu-{n}"] = Score(f"rs-bleu-{n}", _ratio(_mean(per_s[n]), den), signature=sig,
                                         per_hypothesis=_readonly(per), notes=rs_notes)
    return {m: out[f"{k}-{n}"] for m, (k, n) in zip(metrics, parsed)}


def score_files(
    references_path: str | os.PathLike | None,
    samples_path: str | os.PathLike,
    metrics: Sequence[str],
    tokenizer: str = "nltk",
    lowercase: bool = False,
    max_refs: int | None = None,
    max_hyps: int | None = None,
) -> dict[str, Score]:
    """Score a samples file (one sentence per line) with BLEU / Self-BLEU / RS-BLEU; returns ``{metric name: Score}``.

    * ``metrics``: e.g. ``["bleu-2", "bleu-5", "self-bleu-3", "rs-bleu-4"]`` (unknown names -> TextbenchError
      listing the valid ones). ``references_path`` may be None when only Self-BLEU is asked for.
    * ``tokenizer``: ``"nltk"`` (Treebank, Texygen's choice) or ``"whitespace"``; ``lowercase`` lower-cases both
      sides first (TextGAN-PyTorch does; Texygen does not).
    * ``max_refs``: use only the first ``max_refs`` reference lines (None = all; 500 = Texygen's default fast
      protocol, labelled ``proto:texygen-fast``). Self-BLEU / RS-BLEU use the first ``min(#samples, max_refs)``
      samples (Texygen fast Self-BLEU: the first 500), and RS-BLEU's denominator the same number of test lines.
    * ``max_hyps``: use only the first ``max_hyps`` samples (TextGAN-PyTorch: 200; RelGAN: 100).

    Empty lines are skipped in both files (counted in ``Score.notes``); BLEU = BP·exp(Σ_n w_n log p_n)
    (Papineni et al. 2002) with method1 smoothing (Chen & Cherry 2014), exactly as nltk.
    """
    kinds = [parse_metric(m)[0] for m in metrics]  # validate names before reading anything
    needs_refs = any(k in ("bleu", "rs-bleu") for k in kinds)
    if needs_refs and references_path is None:
        raise TextbenchError("bleu-N and rs-bleu-N need --references")
    samples = read_lines(samples_path)
    notes = []
    if samples.skipped_empty:
        notes.append(f"{samples_path}: skipped {samples.skipped_empty} empty line(s)")
    refs = None
    if needs_refs:
        refs = read_lines(references_path)
        if refs.skipped_empty:
            notes.append(f"{references_path}: skipped {refs.skipped_empty} empty line(s)")
    return score_corpora(
        samples,
        refs,
        metrics,
        tokenizer=tokenizer,
        lowercase=lowercase,
        max_refs=max_refs,
        max_hyps=max_hyps,
        samples_name=Path(samples_path).name,
        references_name=Path(references_path).name if references_path is not None else "",
        notes=notes,
    )
