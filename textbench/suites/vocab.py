"""Vocabulary and sequence encoding of the real-text suites (``coco``, ``emnlp``).

Ids (deterministic, independent of ``PYTHONHASHSEED`` and of the order of the corpus lines):

* ``0`` = ``<bos>``: the generator's start input (``Suite.start_token``). It never occurs in the data;
  a generator may still emit it (it is an output class like any other): it decodes to ``<bos>``.
* ``1`` = ``<eos>``: end of sentence, and the padding (``Suite.eos_token``). Decoding stops at the first one.
* ``2`` = ``<unk>``: a word outside the training vocabulary (only the test split can have them). A generator
  emitting it decodes to ``<unk>``.
* ``3 ..``: the training words, sorted by frequency (descending), ties by code point (``sorted`` on ``str``).
  No frequency cut-off (as Texygen and TextGAN-PyTorch). A data token spelled exactly like one of the three
  specials is reserved: it encodes to ``<unk>`` (so a corpus with ``<unk>`` tokens keeps their meaning).

Texygen instead used ``list(set(tokens))`` (ids depend on the hash seed), EOF/pad = V and the start input =
id 0, an ordinary word (protocol §2.9-12/13, §4.4); TextGAN-PyTorch used 0 = EOS/pad, 1 = BOS. The id layout
changes no metric: BLEU is computed on words, NLL on the same events (words and EOS).

A sentence of n tokens is encoded as ``w_1 .. w_n <eos>`` right-padded with ``<eos>`` to ``seq_len`` (so every
encoded sentence ends with at least one ``<eos>``: n + 1 <= seq_len).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
import torch

from ..errors import TextbenchError

BOS, EOS, UNK = 0, 1, 2
SPECIALS = ("<bos>", "<eos>", "<unk>")
N_SPECIALS = len(SPECIALS)


class Vocabulary:
    """Word <-> id maps: ids 0..2 are the specials, the words follow from id 3 in the given order."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if len(set(words)) != len(words):
            raise ValueError("duplicate word in vocabulary")
        if set(words) & set(SPECIALS):
            raise ValueError("a vocabulary word is spelled like a special token")
        self.words = words
        self.itos: list[str] = list(SPECIALS) + words
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        for s in SPECIALS:  # data tokens spelled like a special are reserved -> <unk>
            self.stoi[s] = UNK
        self.counts: dict[str, int] | None = None

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]]) -> "Vocabulary":
        """Every token of ``sentences``, most frequent first, ties broken by code point (deterministic)."""
        counts = Counter()
        for s in sentences:
            counts.update(s)
        for s in SPECIALS:
            counts.pop(s, None)
        vocab = cls(sorted(counts, key=lambda w: (-counts[w], w)))
        vocab.counts = dict(counts)
        return vocab

    @property
    def size(self) -> int:
        """Number of ids (specials included): the generator's output size."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.size

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the id -> word table: equal fingerprints, equal ids."""
        return hashlib.sha256("\n".join(self.itos).encode("utf-8")).hexdigest()[:16]

    # -- encoding ------------------------------------------------------------------------------------
    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Word ids of ``tokens`` (no EOS); unknown words -> ``UNK``."""
        get = self.stoi.get
        return [get(t, UNK) for t in tokens]

    def encode_batch(self, sentences: Sequence[Sequence[str]], seq_len: int) -> torch.Tensor:
        """[N, seq_len] LongTensor: each sentence's ids, then ``EOS`` up to ``seq_len`` (at least one).

        Every sentence must have at most ``seq_len - 1`` tokens (drop or filter longer ones first)."""
        out = np.full((len(sentences), seq_len), EOS, dtype=np.int64)
        for i, s in enumerate(sentences):
            if len(s) >= seq_len:
                raise TextbenchError(f"sentence {i} has {len(s)} tokens; at most seq_len - 1 = {seq_len - 1} fit")
            out[i, : len(s)] = self.encode(s)
        return torch.from_numpy(out)

    # -- decoding ------------------------------------------------------------------------------------
    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to (not including) the first ``EOS``; ``BOS``/``UNK`` -> ``<bos>``/``<unk>``.

        Ids outside [0, size) are an error (a generator cannot produce them)."""
        itos, out = self.itos, []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i < 0 or i >= len(itos):
                raise TextbenchError(f"token id {i} out of range [0, {len(itos)})")
            out.append(itos[i])
        return out

    def decode_batch(self, ids: torch.Tensor) -> list[list[str]]:
        if ids.dim() != 2:
            raise TextbenchError(f"expected token ids of shape [N, L], got {tuple(ids.shape)}")
        return [self.decode(row) for row in ids.tolist()]


def eos_mask(x: torch.Tensor) -> torch.Tensor:
    """[N, L] float64 mask: 1 at every position up to and including the first ``EOS`` of each row
    (every position if a row has no ``EOS``)."""
    is_eos = x == EOS
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # number of EOS strictly before t
    return (before == 0).double()
