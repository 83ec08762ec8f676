"""Real-text suites: ``coco`` (Image COCO captions), ``emnlp`` (EMNLP2017 WMT News), protocol §4, and ``text``
(your own corpus).

Data
----
* ``coco``: train = ``coco/train.txt`` (Texygen ``image_coco.txt``, 10,000 lines), test = ``coco/test.txt``
  (``test_coco.txt``, 10,000 lines), both checksummed (``textbench.data.locate``).
* ``emnlp``: test = ``emnlp/test.txt`` (``test_emnlp.txt``, 10,000 lines). The training split (Texygen's
  ``emnlp_news.txt``, ~270,000 lines) is not distributed: give it with ``--set text_train_path=FILE``
  (any readable UTF-8 file, one sentence per line; not checksummed, its SHA-256 goes into the signature).
* ``text``: a user's corpus, ``--set text_train_path=TRAIN --set text_test_path=TEST`` (both required).
* ``text_train_path`` / ``text_test_path`` replace either split of any text suite by a user file (tests,
  other corpora). Empty lines are skipped (counted); ``\\r\\n`` line ends and a BOM are accepted. A user file
  that is missing, empty, binary (a NUL byte) or not UTF-8 is a one-line error naming the setting; so is a
  training file with fewer (usable) sentences than one batch (``batch_size``). The signature records each
  file's full SHA-256, the tokenizer, the casing, the vocabulary (size and fingerprint) and ``seq_len``.

Tokenization and vocabulary (Texygen-compatible defaults)
--------------------------------------------------------
Each line is lower-cased (``text_lowercase``, default on: Texygen and TextGAN-PyTorch both build the vocabulary
from ``word_tokenize(line.lower())``) and tokenized with ``text_tokenizer`` (``nltk``: Treebank
``word_tokenize(line, preserve_line=True)``; or ``whitespace``). The same applies to the BLEU references
(TextGAN-PyTorch; Texygen did not lower-case its references, which matters only for the cased EMNLP test file).
The vocabulary is every word of the training split, ids as in :mod:`textbench.suites.vocab` (0 = ``<bos>``
start input, 1 = ``<eos>`` = padding, 2 = ``<unk>``, words from 3 by frequency, then code point).
Tokenized corpora are cached under ``$TEXTBENCH_CACHE/text`` (keyed by the file's SHA-256, tokenizer, casing
and nltk version).

Sequences: ``seq_len`` = ``text_max_len``, by default (0) the longest training sentence in tokens + 1 (room for
one ``<eos>``; Texygen's seq_len is the longest sentence, its EOF appears only on shorter ones). A sentence is
``w_1 .. w_n <eos>`` padded with ``<eos>``. Sentences with more than ``seq_len - 1`` tokens are **dropped**
(training and NLL_test; counted in the signature; none with the default ``text_max_len``). Training uses every
position, padding included (Texygen), so algorithms need no mask.

Evaluation (``evaluate(model, seed, n)``)
-----------------------------------------
n samples from ``torch.Generator().manual_seed(seed)``; each is decoded up to its first ``<eos>`` (a generated
``<bos>``/``<unk>`` id decodes to the word ``<bos>``/``<unk>``, which matches no reference), and its *tokens*
are scored as they are (no re-tokenization of generated text, as TextGAN-PyTorch; Texygen re-tokenized its
sample file with nltk, which changes ~0.1% of COCO sentences).

* ``bleu-N`` (N = 2..5): mean sentence BLEU-N (nltk method1) of the first ``text_bleu_hyps`` samples (0 = all)
  against the test references: all test lines (``text_bleu_refs=all``, default: TextGAN-PyTorch / RelGAN and,
  per protocol Appendix A, most likely the Texygen README), the first 500 (``texygen_fast``: Texygen code
  default) or the first K (an integer). References are the raw test lines tokenized as above (words outside
  the training vocabulary included; no length limit).
* ``self-bleu-N``: leave-one-out Self-BLEU of the first k = min(#hypotheses, #references) samples (Texygen: the
  first 500 in fast mode), as :func:`textbench.metrics.bleu.score_corpora`.
* ``rs-bleu-N`` = self-bleu-N / Self-BLEU-N of the first k test references (CoT Table 3); the test side is
  computed once per k and cached on the suite.
* ``nll_test``: per-token NLL (nats) of the generator on the test split, counting every position up to and
  including the first ``<eos>``. Test sentences with a word outside the training vocabulary are **dropped**
  (``text_test_unk=drop``, default; Texygen's ``nll_test_coco.txt`` is the same selection, protocol §4.1) or
  kept with ``<unk>`` scored as a token (``keep``; a model trained without ``<unk>`` gives it ~0 probability).
  COCO: 6,815 of 10,000 test sentences kept.

The reference index (n-gram maxima of the references) is built once per suite instance; the samples' BLEU is
one dictionary look-up per n-gram.

Samples files (``textbench eval --suite coco --samples FILE``)
-------------------------------------------------------------
``read_samples`` reads FILE with :func:`textbench.metrics.tokenize.read_lines` (UTF-8, any line end; not UTF-8 /
missing / empty: a one-line error). ``text_samples_format=text`` (default): each line is a raw sentence, cased and
tokenized like the references; empty lines are skipped (counted). ``tokens``: each line is already tokenized
(e.g. a run's ``samples.txt``, written by ``format_samples``: words joined by spaces), split on whitespace;
an empty line is an empty sentence (BLEU 0), exactly as in ``evaluate``. ``evaluate_samples`` gives BLEU,
Self-BLEU and RS-BLEU (no NLL without a model). Words outside the training vocabulary are scored as they are
(scoring text needs no vocabulary, and not the training file: ``emnlp`` samples can be scored without it).
Long sentences are scored in full; how many are longer than every test sentence is in the signature.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from .. import data
from ..config import FLAG, TEXT, Spec
from ..errors import TextbenchError
from ..io import atomic_write_text
from ..metrics.bleu import ReferenceIndex, SelfBleuIndex, TEXYGEN_FAST_REFS
from ..metrics.likelihood import nll_test, token_log_probs
from ..metrics.tokenize import TOKENIZER_LABELS, TOKENIZERS, read_lines, tokenize_lines
from ..registry import register_suite
from .base import Suite
from .vocab import BOS, EOS, UNK, Vocabulary, eos_mask

ORDERS = (2, 3, 4, 5)
CACHE_FORMAT = 1
NLL_BATCH = 512  # test sentences per forward pass of NLL_test

TEXT_DEFAULTS: dict[str, Any] = {
    "text_tokenizer": "nltk",
    "text_lowercase": True,
    "text_max_len": 0,
    "text_train_path": "",
    "text_test_path": "",
    "text_bleu_refs": "all",
    "text_bleu_hyps": 0,
    "text_test_unk": "drop",
    "text_samples_format": "text",
}

TEXT_SPECS: dict[str, Spec] = {
    "text_tokenizer": Spec("str", choices=TOKENIZERS),
    "text_lowercase": FLAG,
    "text_max_len": Spec("int", ge=2, choices=(0,)),
    "text_train_path": TEXT,
    "text_test_path": TEXT,
    "text_bleu_refs": Spec(
        "str", pattern=r"(?i)\s*(all|full|(texygen[_-])?fast|[0-9]*)\s*", describe="all, texygen_fast or a positive integer K"
    ),
    "text_bleu_hyps": Spec("int", ge=0),
    "text_test_unk": Spec("str", choices=("drop", "keep")),
    "text_samples_format": Spec("str", choices=("text", "tokens")),
}

TEXT_HELP: dict[str, str] = {
    "text_tokenizer": "nltk (Treebank word_tokenize, Texygen) or whitespace",
    "text_lowercase": "lower-case every line (training data and BLEU references) before tokenizing",
    "text_max_len": "sequence length incl. one <eos> (0 = longest training sentence + 1); longer sentences are dropped",
    "text_train_path": "training file instead of the suite's (required for emnlp: the EMNLP2017 News training split)",
    "text_test_path": "test file instead of the suite's (BLEU references and NLL_test)",
    "text_bleu_refs": "BLEU references: all (test file), texygen_fast (first 500 lines) or an integer K (first K)",
    "text_bleu_hyps": "samples scored by BLEU: the first K (0 = all)",
    "text_test_unk": "NLL_test on test sentences with a word outside the training vocabulary: drop or keep (<unk> scored)",
    "text_samples_format": "samples files: text (raw sentences, tokenized like the references) or tokens (space-separated tokens)",
}


# ---------------------------------------------------------------------------------------------------------
# tokenized corpora (cached)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Corpus:
    """A tokenized text file: one token list per non-empty line."""

    label: str  # how the signature names it: the data-dir relative path or the user's path
    path: Path
    sha256: str
    sentences: list[list[str]] = field(repr=False)
    skipped_empty: int = 0

    def describe(self) -> dict[str, Any]:
        return {"file": self.label, "sha256": self.sha256, "sentences": len(self.sentences), "skipped_empty_lines": self.skipped_empty}


def _tokenizer_version(tokenizer: str) -> str:
    if tokenizer == "nltk":
        import nltk

        return f"nltk {nltk.__version__}"
    return ""


def tokenizer_label(tokenizer: str) -> str:
    v = _tokenizer_version(tokenizer)
    return f"{TOKENIZER_LABELS.get(tokenizer, tokenizer)}" + (f" ({v}, preserve_line=True)" if v else "")


def user_file(path: str, setting: str) -> tuple[Path, str]:
    """A user-supplied corpus file, checked to be UTF-8 text with at least one non-empty line; returns
    (path, SHA-256 of its bytes). Every problem is a one-line error naming the setting and the file: not
    found, a directory, unreadable, empty (or only empty lines), binary (a NUL byte) or not UTF-8."""
    p = Path(os.path.expanduser(path))
    where = f"{setting}={path}"
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise TextbenchError(f"{where}: file not found (expected a text file, one sentence per line)") from None
    except IsADirectoryError:
        raise TextbenchError(f"{where}: is a directory, expected a text file (one sentence per line)") from None
    except OSError as e:
        raise TextbenchError(f"{where}: cannot read ({e.strerror or e})") from None
    check_text_bytes(raw, where)
    return p, hashlib.sha256(raw).hexdigest()


def check_text_bytes(raw: bytes, where: str) -> None:
    """One-line errors for content that is not a corpus: empty, binary (NUL byte) or not UTF-8."""
    if not raw:
        raise TextbenchError(f"{where}: the file is empty; expected one sentence per line")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise TextbenchError(f"{where}: a binary file (NUL byte on line {line}), not text; expected UTF-8 text, one sentence per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise TextbenchError(f"{where}: line {line}: not UTF-8 text (byte(s) 0x{raw[e.start:e.end].hex(' ')}); "
                             "a binary file, or text in another encoding: re-encode it as UTF-8") from None
    if not text.lstrip("\ufeff").strip():
        raise TextbenchError(f"{where}: the file has only empty lines; expected one sentence per line")


def load_corpus(path: Path, sha256: str, label: str, tokenizer: str, lowercase: bool) -> Corpus:
    """Read and tokenize ``path`` (whose SHA-256 is ``sha256``), through the on-disk cache."""
    key_src = json.dumps([CACHE_FORMAT, sha256, tokenizer, bool(lowercase), _tokenizer_version(tokenizer)])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    cpath = data.cache_dir() / "text" / f"{key}.json"
    if cpath.is_file():
        try:
            obj = json.loads(cpath.read_text(encoding="utf-8"))
            sents = obj["sentences"]
            if obj.get("key") == key and isinstance(sents, list) and len(sents) == obj["n"] and all(
                isinstance(s, list) for s in sents
            ):
                return Corpus(label, path, sha256, sents, int(obj["skipped_empty"]))
        except Exception:
            pass  # corrupt cache entry: re-create below
    lines = read_lines(path)
    sents = tokenize_lines(lines, tokenizer, lowercase)
    corpus = Corpus(label, path, sha256, sents, lines.skipped_empty)
    try:
        obj = {"key": key, "source": label, "n": len(sents), "skipped_empty": lines.skipped_empty, "sentences": sents}
        atomic_write_text(cpath, json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    except OSError:
        pass  # a read-only cache only costs time
    return corpus


class TextSamples(list):
    """Token lists read from a samples file (``read_samples``), with facts about the file for the signature."""

    info: dict[str, Any]

    def __init__(self, sentences=(), info: dict[str, Any] | None = None):
        super().__init__(sentences)
        self.info = dict(info or {})


def _mean(a: np.ndarray) -> float:
    """Texygen's ``sum(scores) / len(scores)`` (as :mod:`textbench.metrics.bleu`), NaN for no scores."""
    return sum(a.tolist()) / len(a) if len(a) else float("nan")


# ---------------------------------------------------------------------------------------------------------
# the suites
# ---------------------------------------------------------------------------------------------------------


class TextSuite(Suite):
    """A real-text suite; subclasses name their files. See the module docstring for every convention."""

    train_file: ClassVar[str | None] = None  # data-dir relative path; None: must be supplied (text_train_path)
    test_file: ClassVar[str] = ""
    missing_train_hint: ClassVar[str] = ""
    defaults = TEXT_DEFAULTS
    help = TEXT_HELP
    specs = TEXT_SPECS
    profiles = {"quick": {"eval_samples": 200, "final_samples": 200}}

    start_token = BOS
    eos_token = EOS

    def __init__(self, settings: dict[str, Any]):
        super().__init__(settings)
        s = {**TEXT_DEFAULTS, **settings}
        self.tokenizer = str(s["text_tokenizer"])
        if self.tokenizer not in TOKENIZERS:
            raise TextbenchError(f"text_tokenizer={self.tokenizer!r}: valid: {', '.join(TOKENIZERS)}")
        self.lowercase = bool(s["text_lowercase"])
        self.max_len = int(s["text_max_len"])
        if self.max_len != 0 and self.max_len < 2:
            raise TextbenchError(f"text_max_len={self.max_len}: must be 0 (auto) or >= 2 (one word and <eos>)")
        self.max_refs = parse_bleu_refs(s["text_bleu_refs"])
        self.max_hyps = int(s["text_bleu_hyps"])
        if self.max_hyps < 0:
            raise TextbenchError(f"text_bleu_hyps={self.max_hyps}: must be >= 0 (0 = all samples)")
        self.test_unk = str(s["text_test_unk"])
        if self.test_unk not in ("drop", "keep"):
            raise TextbenchError(f"text_test_unk={self.test_unk!r}: valid: drop, keep")
        self.samples_format = str(s["text_samples_format"])
        if self.samples_format not in ("text", "tokens"):
            raise TextbenchError(f"text_samples_format={self.samples_format!r}: valid: text, tokens")
        self.train_path_setting = str(s["text_train_path"] or "")
        self.test_path_setting = str(s["text_test_path"] or "")

        # the test split is needed by every use (BLEU references); the training split only by training and
        # NLL_test (so that `eval --suite emnlp` works without the EMNLP training file)
        self.test_corpus = self._load("test")
        if not self.test_corpus.sentences:
            raise TextbenchError(f"{self.test_corpus.label}: no test sentences")
        refs = self.test_corpus.sentences
        self.references = refs[: self.max_refs] if self.max_refs else refs
        self._ref_index: ReferenceIndex | None = None
        self._test_self_bleu: dict[int, dict[int, float]] = {}
        self._train_corpus: Corpus | None = None
        self._vocab: Vocabulary | None = None
        self._seq_len: int | None = None
        self._train: torch.Tensor | None = None
        self._train_dropped = 0
        self._test: torch.Tensor | None = None
        self._test_mask: torch.Tensor | None = None
        self._test_info: dict[str, Any] = {}
        self._samples_info: dict[str, Any] | None = None
        self._nll_batches_cache: tuple[list[torch.Tensor], list[int]] | None = None
        self._longest_ref = max(len(r) for r in refs)

    # -- files ---------------------------------------------------------------------------------------
    def _load(self, split: str) -> Corpus:
        setting, relpath = ("text_train_path", self.train_file) if split == "train" else ("text_test_path", self.test_file)
        user = self.train_path_setting if split == "train" else self.test_path_setting
        if user:
            path, digest = user_file(user, setting)
            label = str(path.resolve())
        elif relpath:
            path = data.locate(relpath)  # verifies the SHA-256
            digest, label = data.FILES[relpath].sha256, relpath
        else:
            raise TextbenchError(self.missing_train_hint or f"{self.name}: no {split} file; set {setting}=FILE")
        return load_corpus(path, digest, label, self.tokenizer, self.lowercase)

    @property
    def train_corpus(self) -> Corpus:
        if self._train_corpus is None:
            self._train_corpus = self._load("train")
            if not self._train_corpus.sentences:
                raise TextbenchError(f"{self._train_corpus.label}: no training sentences")
        return self._train_corpus

    # -- what Suite promises ---------------------------------------------------------------------------
    @property
    def vocab(self) -> Vocabulary:
        if self._vocab is None:
            self._vocab = Vocabulary.build(self.train_corpus.sentences)
        return self._vocab

    @property
    def vocab_size(self) -> int:  # type: ignore[override]
        return self.vocab.size

    @property
    def seq_len(self) -> int:  # type: ignore[override]
        if self._seq_len is None:
            self._seq_len = self.max_len or (max(len(s) for s in self.train_corpus.sentences) + 1)
        return self._seq_len

    @property
    def train(self) -> torch.Tensor:  # type: ignore[override]
        """Training sequences [N, seq_len] (sentences with more than seq_len - 1 tokens dropped)."""
        if self._train is None:
            L = self.seq_len
            kept = [s for s in self.train_corpus.sentences if len(s) < L]
            self._train_dropped = len(self.train_corpus.sentences) - len(kept)
            if not kept:
                raise TextbenchError(f"text_max_len={L}: every training sentence is longer than {L - 1} tokens")
            batch = self.settings.get("batch_size")
            if isinstance(batch, int) and len(kept) < batch:
                dropped = f" after dropping {self._train_dropped} longer than {L - 1} tokens (text_max_len={L})" if self._train_dropped else ""
                raise TextbenchError(f"{self.train_corpus.label}: {len(kept)} training sentences{dropped}, fewer than one batch "
                                     f"(batch_size={batch}); give at least {batch} sentences, or a smaller --set batch_size=N")
            self._train = self.vocab.encode_batch(kept, L)
        return self._train

    @property
    def test(self) -> torch.Tensor:  # type: ignore[override]
        """NLL_test sequences [M, seq_len] (the UNK rule and the length limit applied)."""
        if self._test is None:
            L, stoi = self.seq_len, self.vocab.stoi
            kept, n_unk, n_long = [], 0, 0
            for s in self.test_corpus.sentences:
                if self.test_unk == "drop" and any(stoi.get(t, UNK) == UNK for t in s):
                    n_unk += 1
                elif len(s) >= L:
                    n_long += 1
                else:
                    kept.append(s)
            self._test = self.vocab.encode_batch(kept, L)
            self._test_mask = eos_mask(self._test)
            unk_tokens = int((self._test == UNK).sum()) if self.test_unk == "keep" else 0
            self._test_info = {
                "sentences": len(kept),
                "dropped_unk": n_unk,
                "dropped_over_max_len": n_long,
                "unk_tokens_scored": unk_tokens,
                "tokens_scored": int(self._test_mask.sum()),
            }
        return self._test

    @property
    def test_mask(self) -> torch.Tensor:
        """[M, seq_len] float64: 1 up to and including each test sentence's first ``<eos>``."""
        self.test
        return self._test_mask

    # -- decoding / samples files ----------------------------------------------------------------------
    def decode(self, samples: torch.Tensor) -> list[list[str]]:
        """Token lists of id sequences, cut at the first ``<eos>``."""
        return self.vocab.decode_batch(samples.detach().cpu())

    def format_samples(self, samples: torch.Tensor) -> list[str]:
        """One decoded sentence per sequence: words up to the first ``<eos>``, joined by spaces."""
        return [" ".join(toks) for toks in self.decode(samples)]

    def read_samples(self, path: str | Path) -> TextSamples:
        """Token lists of a samples file (``text_samples_format``: raw sentences or space-separated tokens)."""
        lines = read_lines(path)
        if self.samples_format == "text":
            sents = tokenize_lines(lines, self.tokenizer, self.lowercase)
            empty = f"{lines.skipped_empty} skipped"
        else:
            sents = [(ln.lower() if self.lowercase else ln).split() for ln in lines]
            # an empty line is an empty generated sentence (BLEU 0), as in evaluate(): put them back
            total = len(lines) + lines.skipped_empty
            at = dict(zip(lines.line_numbers, sents))
            sents = [at.get(i, []) for i in range(1, total + 1)]
            empty = f"{lines.skipped_empty} scored as empty sentences"
        info = {
            "file": str(path),
            "format": self.samples_format,
            "sentences": len(sents),
            "empty_lines": empty,
            "longest_tokens": max((len(s) for s in sents), default=0),
            "longer_than_every_test_sentence": sum(len(s) > self._longest_ref for s in sents),
        }
        return TextSamples(sents, info)

    # -- evaluation ----------------------------------------------------------------------------------
    @property
    def reference_index(self) -> ReferenceIndex:
        if self._ref_index is None:
            self._ref_index = ReferenceIndex(self.references, max(ORDERS))
        return self._ref_index

    def _test_self_bleu_means(self, k: int) -> dict[int, float]:
        if k not in self._test_self_bleu:
            per = SelfBleuIndex(self.references[:k], max(ORDERS)).score(ORDERS)
            self._test_self_bleu[k] = {n: _mean(per[n]) for n in ORDERS}
        return self._test_self_bleu[k]

    def bleu_scores(self, hyps: Sequence[Sequence[str]]) -> dict[str, float]:
        """bleu-N, self-bleu-N and rs-bleu-N (N = 2..5) of token lists, under this suite's BLEU protocol."""
        hyps = [list(h) for h in (hyps[: self.max_hyps] if self.max_hyps else hyps)]
        nan = float("nan")
        out: dict[str, float] = {}
        per = self.reference_index.score(hyps, ORDERS) if hyps else {n: np.zeros(0) for n in ORDERS}
        for n in ORDERS:
            out[f"bleu-{n}"] = _mean(per[n])
        # Self-BLEU on the first k samples (Texygen fast: 500), RS-BLEU against the first k test references
        k = min(len(hyps), self.max_refs or len(hyps))
        if k >= 2:
            per_s = SelfBleuIndex(hyps[:k], max(ORDERS)).score(ORDERS)
            self_b = {n: _mean(per_s[n]) for n in ORDERS}
        else:
            self_b = {n: nan for n in ORDERS}
        kt = min(k, len(self.references))
        test_b = self._test_self_bleu_means(kt) if kt >= 2 else {n: nan for n in ORDERS}
        for n in ORDERS:
            out[f"self-bleu-{n}"] = self_b[n]
        for n in ORDERS:
            den = test_b[n]
            out[f"rs-bleu-{n}"] = self_b[n] / den if den and not math.isnan(den) else nan
        return out

    def nll_test_value(self, model) -> float:
        """Per-token NLL of ``model`` on the test split, positions up to and including the first ``<eos>``."""
        x, mask = self.test, self.test_mask
        if x.shape[0] == 0:
            return float("nan")
        try:
            device = next(model.parameters()).device
        except (AttributeError, StopIteration):
            device = torch.device("cpu")
        # The model is autoregressive (position t sees x_<t only), so the scored positions of a batch need
        # only its first max(len + 1) columns: sentences sorted by length and cut to their batch's longest,
        # ~3x less work on COCO (mean 12.2 of 38 positions). Unscored positions stay 0 (masked).
        lp = torch.zeros(x.shape, dtype=torch.float64)
        order, width = self._nll_batches
        for idx, w in zip(order, width):
            lp[idx, :w] = token_log_probs(model, x[idx, :w].to(device), mask=mask[idx, :w].to(device)).cpu()
        return float(nll_test(lp, mask=mask).value)

    @property
    def _nll_batches(self) -> tuple[list[torch.Tensor], list[int]]:
        if self._nll_batches_cache is None:
            lengths = self.test_mask.sum(dim=1).long()  # scored positions = tokens + the first <eos>
            order = torch.argsort(lengths, stable=True)
            chunks = list(torch.split(order, NLL_BATCH))
            self._nll_batches_cache = (chunks, [int(lengths[c].max()) for c in chunks])
        return self._nll_batches_cache

    def evaluate(self, model, seed: int, n: int, full: bool = True) -> dict[str, float]:
        """BLEU-2..5, Self-BLEU-2..5, RS-BLEU-2..5 of n fresh samples, and NLL_test (``full=False``: NLL_test only)."""
        if not full:
            return {"nll_test": self.nll_test_value(model)}
        rng = torch.Generator().manual_seed(seed)
        samples = model.sample(n, rng) if n > 0 else torch.empty((0, self.seq_len), dtype=torch.long)
        out = self.bleu_scores(self.decode(samples))
        out["nll_test"] = self.nll_test_value(model)
        return out

    def evaluate_samples(self, samples) -> dict[str, float]:
        """BLEU / Self-BLEU / RS-BLEU of samples alone: token lists (``read_samples``), raw sentences (str,
        tokenized like the references) or an id tensor [N, L] (decoded). No NLL_test (it needs the model)."""
        if isinstance(samples, torch.Tensor):
            hyps = self.decode(samples)
            self._samples_info = {"source": f"id tensor {tuple(samples.shape)}", "sentences": len(hyps)}
        else:
            samples = list(samples) if not isinstance(samples, TextSamples) else samples
            if samples and isinstance(samples[0], str):
                hyps = tokenize_lines(samples, self.tokenizer, self.lowercase)
                self._samples_info = {"source": "sentences", "sentences": len(hyps)}
            else:
                hyps = [list(s) for s in samples]
                self._samples_info = dict(getattr(samples, "info", {}) or {"sentences": len(hyps)})
        if not hyps:
            raise TextbenchError("no samples to score")
        return self.bleu_scores(hyps)

    # -- signature -----------------------------------------------------------------------------------
    def signature(self) -> dict[str, Any]:
        proto = bleu_protocol(self.max_refs)
        k_note = "all samples" if not self.max_hyps else f"first {self.max_hyps} samples"
        sig: dict[str, Any] = {
            "suite": self.name,
            "test": self.test_corpus.describe(),
            "tokenizer": tokenizer_label(self.tokenizer),
            "lowercase": self.lowercase,
            "bleu": {
                "metrics": "bleu-2..5, self-bleu-2..5, rs-bleu-2..5",
                "protocol": proto,
                "references": len(self.references),
                "hypotheses": k_note,
                "smoothing": "nltk method1, uniform weights, mean of sentence scores",
                "self_bleu": "leave-one-out over the first min(#hypotheses, #references) samples",
                "rs_bleu": "self-bleu / Self-BLEU of as many test references (first k)",
                "generated": "decoded tokens scored as they are (no re-tokenization); <bos>/<unk> match nothing",
            },
        }
        if self._train_corpus is not None:
            self.train
            self.test
            sig["train"] = {**self._train_corpus.describe(), "used": int(self._train.shape[0]), "dropped_over_max_len": self._train_dropped}
            sig["vocab"] = {
                "size": self.vocab.size,
                "words": len(self.vocab.words),
                "specials": "0=<bos> (start input), 1=<eos> (end and padding), 2=<unk>",
                "order": "frequency descending, then code point",
                "sha256": self.vocab.fingerprint(),
            }
            sig["seq_len"] = self.seq_len
            sig["seq_len_rule"] = "text_max_len" if self.max_len else "longest training sentence + 1 (<eos>)"
            sig["over_max_len"] = "dropped"
            sig["nll_test"] = {
                **self._test_info,
                "unk_rule": self.test_unk,
                "positions": "up to and including the first <eos>",
                "units": "nats/token",
            }
        else:
            sig["train"] = "not loaded (not needed to score a samples file)"
        if self._samples_info is not None:
            sig["samples"] = self._samples_info
        return sig


def parse_bleu_refs(value: Any) -> int | None:
    """``all`` -> None (every test line); ``texygen_fast`` -> 500; a positive integer K -> K."""
    v = str(value).strip().lower().replace("-", "_")
    if v in ("all", "full", "0", ""):
        return None
    if v in ("texygen_fast", "fast"):
        return TEXYGEN_FAST_REFS
    if v.isdigit() and int(v) > 0:
        return int(v)
    raise TextbenchError(f"text_bleu_refs={value!r}: valid: all, texygen_fast (first 500) or a positive integer")


def bleu_protocol(max_refs: int | None) -> str:
    if max_refs is None:
        return "full (all test references)"
    if max_refs == TEXYGEN_FAST_REFS:
        return "texygen-fast (first 500 test references)"
    return f"first {max_refs} test references"


@register_suite("coco", "Image COCO captions (Texygen): BLEU-2..5, Self-BLEU, RS-BLEU, NLL_test")
class CocoSuite(TextSuite):
    name = "coco"
    train_file = "coco/train.txt"
    test_file = "coco/test.txt"


@register_suite("text", "your own corpus: --set text_train_path=FILE --set text_test_path=FILE (one sentence per line each)")
class UserTextSuite(TextSuite):
    """A user's corpus: both files are required (no data-dir files), everything else is as coco."""

    name = "text"
    train_file = None
    test_file = ""

    def __init__(self, settings: dict[str, Any]):
        missing = [k for k in ("text_train_path", "text_test_path") if not str(settings.get(k) or "").strip()]
        if missing:
            raise TextbenchError(
                f"suite text needs your corpus: --set text_train_path=TRAIN.txt --set text_test_path=TEST.txt "
                f"(one sentence per line each; missing: {', '.join(missing)})")
        super().__init__(settings)


@register_suite("emnlp", "EMNLP2017 WMT News (CoT Tables 2-3); training split user-supplied (text_train_path)")
class EmnlpSuite(TextSuite):
    name = "emnlp"
    train_file = None
    test_file = "emnlp/test.txt"
    # the CoT paper's "max length 51" (TextGAN-PyTorch's emnlp max_seq_len): sentences of up to 50 tokens + <eos>
    defaults = {**TEXT_DEFAULTS, "text_max_len": 51}
    missing_train_hint = (
        "emnlp: the EMNLP2017 WMT News training split (Texygen's data/emnlp_news.txt, one sentence per line) is "
        "not distributed with the benchmark data; supply it with --set text_train_path=/path/to/emnlp_news.txt"
    )
