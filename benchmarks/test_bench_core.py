"""Speed of the hot paths, as ratios against a simple reference run in the same process.

Run: ``pytest benchmarks/test_bench_core.py --benchmark-only -s`` (prints the ratios; they are also in
``extra_info`` of ``--benchmark-json``). Sizes are the synthetic Turing test's: V=5000, L=20, H=32.
"""

from __future__ import annotations

import time

import pytest
import torch

from textbench.algorithms.cot import CoT
from textbench.algorithms.mle import MLE
from textbench.config import ENGINE_DEFAULTS
from textbench.models.lstm import LSTMLM

V, L, H, N = 5000, 20, 32, 1024


def model() -> LSTMLM:
    return LSTMLM(V, H, H, L).init_normal_(1.0, torch.Generator().manual_seed(0)).eval()


@torch.no_grad()
def naive_sample(m: LSTMLM, n: int, generator: torch.Generator, batch_size: int = 64) -> torch.Tensor:
    """The straightforward sampler: plain nn.LSTM per step and torch.multinomial on the softmax."""
    out = []
    for _ in range(0, n, batch_size):
        tok = torch.zeros((batch_size, 1), dtype=torch.long)
        state, seq = None, []
        for _t in range(L):
            h, state = m.lstm(m.embedding(tok), state)
            probs = torch.softmax(m.output(h[:, 0]), -1)
            tok = torch.multinomial(probs, 1, generator=generator)
            seq.append(tok)
        out.append(torch.cat(seq, 1))
    return torch.cat(out)[:n]


def seconds(fn, repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def report(benchmark, name: str, ours: float, reference: float, unit: str) -> None:
    benchmark.extra_info.update({f"{name}_ours_s": ours, f"{name}_reference_s": reference, f"{name}_ratio": reference / ours})
    print(f"\n{name}: ours {ours:.4f}s, reference {reference:.4f}s per {unit} -> {reference / ours:.1f}x")


def test_sampling_vs_multinomial_loop(benchmark):
    m = model()
    g = torch.Generator().manual_seed(0)
    ours = benchmark.pedantic(lambda: m.sample(N, g), rounds=3, iterations=1)
    assert ours.shape == (N, L)
    t_ours = benchmark.stats.stats.min
    t_ref = seconds(lambda: naive_sample(m, N, g), repeat=1)
    report(benchmark, "sampling", t_ours, t_ref, f"{N} sequences")
    benchmark.extra_info["sequences_per_s_ours"] = N / t_ours
    benchmark.extra_info["sequences_per_s_reference"] = N / t_ref
    print(f"sequences/s: ours {N / t_ours:.0f}, reference {N / t_ref:.0f}")


class _Suite:
    vocab_size, seq_len, start_token = V, L, 0
    train = torch.randint(0, V, (9984, L), generator=torch.Generator().manual_seed(0))


def _algorithm(cls):
    settings = {**ENGINE_DEFAULTS, **cls.defaults}
    return cls(_Suite(), settings, torch.Generator().manual_seed(0))


def test_cot_iteration_vs_mle_step(benchmark):
    """The paper claims CoT costs the same order as MLE per step: report CoT iteration / MLE step at batch 64."""
    cot, mle = _algorithm(CoT), _algorithm(MLE)
    step = iter(range(1, 10**9))
    benchmark.pedantic(lambda: cot.train_step(next(step)), rounds=10, iterations=1, warmup_rounds=2)
    t_cot = benchmark.stats.stats.median
    t_mle = min(seconds(lambda: mle.train_step(next(step)), repeat=10) for _ in range(1))
    benchmark.extra_info.update({"cot_iteration_s": t_cot, "mle_step_s": t_mle, "cot_over_mle": t_cot / t_mle})
    print(f"\nCoT iteration {t_cot * 1000:.1f} ms, MLE step {t_mle * 1000:.1f} ms at batch 64 -> CoT/MLE = {t_cot / t_mle:.2f}")


def test_teacher_forced_scoring_vs_full_softmax(benchmark):
    """token_log_probs in batches of 1024 (inference path) against one plain autograd-enabled pass."""
    from textbench.metrics.likelihood import token_log_probs

    m = model()
    x = m.sample(4096, torch.Generator().manual_seed(1))
    benchmark.pedantic(lambda: token_log_probs(m, x), rounds=3, iterations=1)
    t_ours = benchmark.stats.stats.min

    def reference():
        return torch.log_softmax(m(x), -1).gather(-1, x.unsqueeze(-1))

    report(benchmark, "scoring", t_ours, seconds(reference, repeat=1), "4096 sequences")
