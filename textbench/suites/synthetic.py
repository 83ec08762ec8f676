"""The synthetic Turing test (SeqGAN, CoT Table 1): an oracle LSTM is the true distribution P.

Oracle: SeqGAN's TARGET_LSTM (vocab 5000, emb/hidden 32, length 20, start token 0), loaded from
``synthetic/seqgan_oracle.npz`` of the data directory (protocol §1.1), or ``oracle=seeded``: the same
architecture with N(0, 1) parameters from a fixed seed, embedded and offline (for tests, and for
users without the file; its numbers are not comparable with the paper's).

Data: 9,984 oracle samples for training and an independent 9,984 for NLL_test (protocol §1.3), drawn
from fixed seeds (``data_seed`` and ``data_seed + 1``) and cached. They are drawn from a float64 copy of
the oracle, so that the same seed gives the same tokens on every CPU: in float32 the last-bit differences
between vector kernels (AVX2 / AVX-512) move a uniform across a CDF boundary now and then, and one moved
token changes the rest of its sequence (measured: three different train sets from one seed under
``ATEN_CPU_CAPABILITY`` = avx512 / avx2 / default in float32, one in float64; the same on an AVX2-only CPU).
The uniforms are float64 too (``LSTMLM.sample`` draws them in the model's dtype). The SHA-256 of each token
array is part of the suite signature; a run is resumed or replayed only on data with its fingerprints
(``engine/loop.py``). Cache files are named ``…-f64u64.npy``: entries written by the code of cdffe5d–cd82f87,
which drew float32 uniforms for the float64 oracle (other tokens), are never read.
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
from typing import Any

import numpy as np
import torch

from .. import data
from ..config import COUNT, Spec
from ..errors import TextbenchError
from ..io import atomic_write_bytes
from ..metrics.likelihood import cot_jsd, exact_jsd, nll_oracle, nll_test, token_log_probs
from ..models.lstm import LSTMLM
from ..registry import register_suite
from .base import Suite

SEEDED_ORACLE_SEED = 1234


def seqgan_oracle() -> LSTMLM:
    """The SeqGAN oracle with the exact TF → PyTorch parameter mapping of protocol §1.1."""
    arrays = data.load_oracle_arrays(data.locate("synthetic/seqgan_oracle.npz"))
    t = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()}
    vocab, emb = t["embedding"].shape
    hidden = t["Wi"].shape[1]
    model = LSTMLM(vocab, emb, hidden, seq_len=20, start_token=0)
    with torch.no_grad():
        model.embedding.weight.copy_(t["embedding"])
        model.lstm.weight_ih_l0.copy_(torch.cat([t["Wi"].T, t["Wf"].T, t["Wc"].T, t["Wog"].T]))
        model.lstm.weight_hh_l0.copy_(torch.cat([t["Ui"].T, t["Uf"].T, t["Uc"].T, t["Uog"].T]))
        model.lstm.bias_ih_l0.copy_(torch.cat([t["bi"], t["bf"], t["bc"], t["bog"]]))
        model.lstm.bias_hh_l0.zero_()
        model.output.weight.copy_(t["Wo"].T)
        model.output.bias.copy_(t["bo"])
    return model.eval().requires_grad_(False)


def seeded_oracle(vocab_size: int = 5000, seq_len: int = 20, dim: int = 32, seed: int = SEEDED_ORACLE_SEED) -> LSTMLM:
    """An oracle of the same family with every parameter ~ N(0, 1) (like SeqGAN's), from a fixed seed."""
    model = LSTMLM(vocab_size, dim, dim, seq_len=seq_len, start_token=0)
    model.init_normal_(1.0, torch.Generator().manual_seed(seed))
    return model.eval().requires_grad_(False)


@register_suite("synthetic", "SeqGAN oracle LSTM Turing test (vocab 5000, length 20): NLL_oracle, NLL_test, JSD")
class SyntheticSuite(Suite):
    name = "synthetic"
    defaults = {
        "oracle": "seqgan",  # seqgan (the published oracle file) | seeded (offline N(0,1) oracle)
        "n_train": 9984,
        "n_test": 9984,
        "data_seed": 88,  # SeqGAN's SEED; the test set uses data_seed + 1
        "oracle_vocab": 5000,  # seeded oracle only
        "oracle_len": 20,  # seeded oracle only
    }
    help = {
        "oracle": "seqgan (published oracle file) or seeded (offline N(0,1) oracle, fixed seed)",
        "n_train": "oracle samples in the training set",
        "n_test": "oracle samples in the held-out test set (NLL_test)",
        "data_seed": "seed of the training samples (test set: data_seed + 1)",
        "oracle_vocab": "vocabulary of the seeded oracle",
        "oracle_len": "sequence length of the seeded oracle",
    }
    specs = {
        "oracle": Spec("str", choices=("seqgan", "seeded")),
        "n_train": COUNT,
        "n_test": COUNT,
        "data_seed": Spec("int", ge=0, le=2**31 - 2),  # the test set uses data_seed + 1
        "oracle_vocab": Spec("int", ge=2),
        "oracle_len": COUNT,
    }
    profiles = {"quick": {"eval_samples": 1024, "final_samples": 1024}}

    def __init__(self, settings: dict[str, Any]):
        super().__init__(settings)
        kind = settings["oracle"]
        if kind == "seqgan":
            if (settings["oracle_vocab"], settings["oracle_len"]) != (5000, 20):
                raise TextbenchError("oracle_vocab/oracle_len can only be changed with oracle=seeded")
            self.oracle = seqgan_oracle()
            self.oracle_id = "seqgan"
        elif kind == "seeded":
            self.oracle = seeded_oracle(settings["oracle_vocab"], settings["oracle_len"])
            self.oracle_id = f"seeded{SEEDED_ORACLE_SEED}-v{settings['oracle_vocab']}-l{settings['oracle_len']}"
        else:
            raise TextbenchError(f"unknown oracle {kind!r}; known: seqgan, seeded")
        self.vocab_size = self.oracle.vocab_size
        self.seq_len = self.oracle.seq_len
        self.start_token = 0
        seed = settings["data_seed"]
        self.train = self._oracle_samples(settings["n_train"], seed)
        self.test = self._oracle_samples(settings["n_test"], seed + 1)

    def _oracle_samples(self, n: int, seed: int) -> torch.Tensor:
        """n oracle samples from ``seed``, cached as .npy (validated on load, re-created if bad)."""
        path = data.cache_dir() / "synthetic" / f"{self.oracle_id}-seed{seed}-n{n}-f64u64.npy"
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.shape == (n, self.seq_len) and arr.dtype == np.int64 and (arr >= 0).all() and (arr < self.vocab_size).all():
                    return torch.from_numpy(arr)
            except Exception:
                pass  # corrupt cache entry: regenerate below
        x = copy.deepcopy(self.oracle).double().sample(n, torch.Generator().manual_seed(seed))
        buf = io.BytesIO()
        np.save(buf, x.numpy(), allow_pickle=False)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError:
            pass  # a read-only cache only costs time
        return x

    def signature(self) -> dict[str, Any]:
        return {
            "suite": "synthetic",
            "oracle": self.oracle_id,
            "train": f"{self.train.shape[0]} oracle samples, seed {self.settings['data_seed']}",
            "test": f"{self.test.shape[0]} oracle samples, seed {self.settings['data_seed'] + 1}",
            "train_sha256": _digest(self.train),
            "test_sha256": _digest(self.test),
            "units": "nats/token (jsd: nats/sequence)",
        }

    def evaluate(self, model, seed: int, n: int, full: bool = True) -> dict[str, float]:
        """NLL_oracle, NLL_test, exact JSD (+ s.e.) and CoT's JSD estimator, from n fresh samples each.

        ``full=False``: NLL_oracle and NLL_test only (3 of the 7 sampling/scoring passes). G's samples are
        drawn first in both cases, so the two give the same NLL_oracle and NLL_test for the same seed."""
        rng = torch.Generator().manual_seed(seed)
        g_samples = model.sample(n, rng)
        p_on_g = token_log_probs(self.oracle, g_samples)
        g_on_test = token_log_probs(model, self.test[:n])
        scores = [nll_oracle(p_on_g), nll_test(g_on_test)]
        if full:
            p_samples = self.oracle.sample(n, rng)
            p_on_p = token_log_probs(self.oracle, p_samples)
            g_on_p = token_log_probs(model, p_samples)
            g_on_g = token_log_probs(model, g_samples)
            scores += [exact_jsd(p_on_p, g_on_p, p_on_g, g_on_g), cot_jsd(p_on_p, g_on_p, p_on_g, g_on_g)]
        row: dict[str, float] = {}
        for s in scores:  # each value beside its Monte-Carlo standard error (regress's cross-CPU tolerance)
            row[s.name] = s.value
            row[s.name + "_se"] = s.se if s.se is not None else math.nan
        return row

    def evaluate_samples(self, samples: torch.Tensor) -> dict[str, float]:
        """A samples file alone gives NLL_oracle (JSD and NLL_test need the generator's probabilities)."""
        score = nll_oracle(token_log_probs(self.oracle, samples))
        return {"nll_oracle": score.value, "nll_oracle_se": score.se if score.se is not None else math.nan}


def _digest(tokens: torch.Tensor) -> str:
    """First 16 hex digits of the SHA-256 of a token array (int64, C order): the data's fingerprint."""
    return hashlib.sha256(np.ascontiguousarray(tokens.numpy(), dtype=np.int64).tobytes()).hexdigest()[:16]
