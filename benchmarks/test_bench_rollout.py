"""Batched Monte-Carlo rollout vs SeqGAN's per-position loop, and seconds per adversarial epoch.

Run: ``pytest benchmarks/test_bench_rollout.py --benchmark-only -s`` (several minutes on 2 CPU cores;
``-k rollout`` for the rollout part only). Sizes are SeqGAN's: B = 64 samples, L = 20, V = 5000, K = 16
rollouts, i.e. 64·19·16 = 19,456 completions and 194,560 sampled tokens per generator step.

* ``test_rollout_*``: ``rollout_rewards`` (batched) against ``rollout_rewards_naive`` (for k, for t: re-run
  the policy over the prefix, sample the rest with batch 64 by softmax + cumsum + search, score) in the
  same process, with the same uniforms (so both compute the same rewards — checked), for three reward
  functions: none (a constant: the generation alone), Texygen's discriminator (emb 32, widths [2, 3]) and
  SeqGAN's (emb 64, 12 widths, 1,720 features). The ratio naive/batched is stored in ``extra_info`` and
  printed; for the generation alone it is split into the loop structure (naive loop with the batched
  path's fused sampler) and the sampler. Both sides sample every one of the 194,560 tokens from a full
  5,000-way softmax, so on a CPU the work is the same and the gain is bounded by memory passes and
  per-call overhead; the discriminator's cost on the 19,456 completions is the same on both sides.
* ``test_adversarial_epoch_seconds``: one adversarial epoch of each algorithm at its ``paper`` settings,
  from timed pieces (one G step with its rewards; a few D minibatch updates; sampling) extrapolated to
  the epoch's counts (SeqGAN: 1 G step + 5 D calls × (9,984 negatives, 3 epochs = 936 updates)).
"""

from __future__ import annotations

import time

import pytest
import torch

from textbench.config import ENGINE_DEFAULTS
from textbench.engine.loop import resolve_settings
from textbench.models.discriminator import SEQGAN_FILTERS, TEXYGEN_FILTERS, CNNDiscriminator
from textbench.models.lstm import LSTMLM
from textbench.models.rollout import draw_uniforms, rollout_rewards, rollout_rewards_naive, sequence_reward
from textbench.registry import ALGORITHMS

B, L, V, K = 64, 20, 5000, 16


def policy() -> LSTMLM:
    return LSTMLM(V, 32, 32, L).init_normal_(0.1, torch.Generator().manual_seed(0)).eval()


def discriminator(preset) -> CNNDiscriminator:
    d = CNNDiscriminator(V, preset.emb_dim, preset.filter_sizes, preset.num_filters, 0.25, 0.2, generator=torch.Generator().manual_seed(0))
    return d.eval()


def once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


REWARDS = {
    "generation": lambda: sequence_reward(lambda y: torch.full((y.shape[0],), 0.5)),
    "texygen_d": lambda: sequence_reward(discriminator(TEXYGEN_FILTERS).prob_real),
    "seqgan_d": lambda: sequence_reward(discriminator(SEQGAN_FILTERS).prob_real),
}


@pytest.mark.parametrize("reward", list(REWARDS))
def test_rollout_batched_vs_naive(benchmark, reward):
    g = policy()
    x = g.sample(B, torch.Generator().manual_seed(1))
    u = draw_uniforms(x, K, torch.Generator().manual_seed(2))
    fn = REWARDS[reward]()
    rounds = 2 if reward != "seqgan_d" else 1
    batched = benchmark.pedantic(lambda: rollout_rewards(g, x, K, fn, uniforms=u), rounds=rounds, iterations=1)
    t_batched = benchmark.stats.stats.min
    naive = {}
    t_naive = once(lambda: naive.setdefault("r", rollout_rewards_naive(g, x, K, fn, uniforms=u)))
    # same uniforms: the same rewards, up to rare token flips at float-rounded CDF steps (~1e-4 per token:
    # the reference's float32 cumsum over 5,000 terms), each moving one of 16 averaged completions
    same = ((batched - naive["r"]).abs() <= 1e-5).float().mean().item()
    assert same >= 0.95 and (batched - naive["r"]).abs().mean().item() < 1e-3
    info = {"reward": reward, "batched_s": t_batched, "naive_s": t_naive, "speedup": t_naive / t_batched}
    if reward == "generation":  # split the gain: the loop structure alone (naive loop, same fused sampler)
        t_loop = once(lambda: rollout_rewards_naive(g, x, K, fn, uniforms=u, fused_sampler=True))
        info.update({"naive_fused_sampler_s": t_loop, "speedup_from_batching": t_loop / t_batched, "speedup_from_sampler": t_naive / t_loop})
    info["equal_entries"] = same
    benchmark.extra_info.update({**info, "threads": torch.get_num_threads(), "B_L_V_K": [B, L, V, K]})
    extra = ""
    if "naive_fused_sampler_s" in info:
        extra = f" (naive loop with the fused sampler {info['naive_fused_sampler_s']:.2f}s: batching {info['speedup_from_batching']:.2f}x, sampler {info['speedup_from_sampler']:.2f}x)"
    print(
        f"\nrollout ({reward}, B={B} L={L} V={V} K={K}, {torch.get_num_threads()} threads): batched {t_batched:.2f}s, "
        f"naive {t_naive:.2f}s -> {info['speedup']:.2f}x{extra}"
    )


class _Suite:
    """The synthetic suite's shapes without its oracle (random training data)."""

    vocab_size, seq_len, start_token = V, L, 0
    train = torch.randint(0, V, (9984, L), generator=torch.Generator().manual_seed(0))
    test = train

    def signature(self):
        return {"suite": "bench"}


def _paper_algorithm(name):
    settings = resolve_settings(name, "synthetic", "paper")
    settings = {**ENGINE_DEFAULTS, **settings, "init_from": ""}
    return ALGORITHMS.get(name)(_Suite(), settings, torch.Generator().manual_seed(0))


def _d_update_seconds(a, n=4) -> float:
    b = int(a.settings["batch_size"])
    x = _Suite.train[: b]
    labels = torch.arange(b) % 2
    a.d.train()

    def step():
        a.d_opt.zero_grad(set_to_none=True)
        a.d_batch_loss(x, labels).backward()
        a.d_opt.step()

    step()
    return min(once(step) for _ in range(n))


@pytest.mark.parametrize("name", ["seqgan", "rankgan", "maligan", "gcn"])
def test_adversarial_epoch_seconds(benchmark, name):
    a = _paper_algorithm(name)
    s = a.settings
    b = int(s["batch_size"])
    t_d = _d_update_seconds(a)
    if name == "gcn":
        a.iteration()  # warm-up
        t_iter = benchmark.pedantic(a.iteration, rounds=1, iterations=1) and benchmark.stats.stats.min
        epoch = int(s["adv_g_steps"]) * t_iter
        parts = {"iteration_s": t_iter}
    else:

        def g_step():
            x = a.g.sample(b, a.rng)
            a.pg_update(x, a.rewards(x))

        benchmark.pedantic(g_step, rounds=1, iterations=1)
        t_g = benchmark.stats.stats.min
        n = min(int(s["d_samples"]), 9984)
        t_sample = once(lambda: a.g.sample(n, a.rng))
        updates = int(s["d_epochs"]) * ((2 * n) // b)
        t_call = t_sample + updates * t_d
        epoch = int(s["adv_g_steps"]) * t_g + int(s["d_steps"]) * t_call
        parts = {"g_step_s": t_g, "d_update_s": t_d, "d_call_s": t_call, "d_updates_per_call": updates}
    benchmark.extra_info.update({"algorithm": name, "epoch_s": epoch, **parts, "adv_steps": int(s["adv_steps"]), "threads": torch.get_num_threads()})
    shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in parts.items())
    print(f"\n{name} (paper): {epoch:.1f} s per adversarial epoch ({shown}); x{s['adv_steps']} epochs = {epoch * int(s['adv_steps']) / 3600:.2f} h")
