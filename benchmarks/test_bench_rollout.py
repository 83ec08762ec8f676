"""Batched Monte-Carlo rollout vs SeqGAN's per-position loop, and seconds per adversarial epoch.

Run: ``OMP_NUM_THREADS=1 pytest benchmarks/test_bench_rollout.py --benchmark-only -s`` (several minutes
on 2 CPU cores; ``-k rollout`` for the rollout part only). Sizes are SeqGAN's: B = 64 samples, L = 20,
V = 5000, K = 16 rollouts, i.e. 64·19·16 = 19,456 completions and 194,560 sampled tokens per generator
step.

* ``test_rollout_*``: ``rollout_rewards`` (batched) against ``rollout_rewards_naive`` (for k, for t: re-run
  the policy over the prefix, sample the rest with batch 64 by softmax + cumsum + search, score) in the
  same process, interleaved over a few rounds (best of each), with the same uniforms (so both compute
  the same rewards — checked), for three reward functions: none (a constant: the generation alone),
  Texygen's discriminator (emb 32, widths [2, 3]) and SeqGAN's (emb 64, 12 widths, 1,720 features). The
  ratio naive/batched is stored in ``extra_info`` and printed; for the generation alone it is split into
  the loop structure (naive loop with the batched path's fused sampler) and the sampler, the batched
  path without oneDNN (as it was before) is timed too, and so is the **sampling floor**: the logits of
  every sampled row (one matrix product), one exponential per logit and one sum pass — work both sides
  must do, so naive/floor bounds what any batching can gain. ``test_rollout_profile`` prints where the
  batched generation goes. The discriminator's cost on the 19,456 completions is the same on both sides.
* ``test_adversarial_epoch_seconds``: one adversarial epoch of each algorithm at its ``paper`` settings,
  from timed pieces (one G step with its rewards; a few D minibatch updates as ``d_call`` does them; the
  negatives as ``d_call`` samples them) extrapolated to the epoch's counts (SeqGAN: 1 G step + 5 D calls
  × (9,984 negatives, 3 epochs = 936 updates)). ``benchmarks/test_bench_discriminator.py`` has the
  detailed D figures (old vs new, FLOP floor).
"""

from __future__ import annotations

import time

import pytest
import torch

from textbench.algorithms.phases import _adam_step
from textbench.config import ENGINE_DEFAULTS
from textbench.engine.loop import resolve_settings
from textbench.models.discriminator import SEQGAN_FILTERS, TEXYGEN_FILTERS, CNNDiscriminator
from textbench.models.lstm import LSTMLM
from textbench.models.rollout import (
    FusedSampler,
    draw_uniforms,
    rollout_rewards,
    rollout_rewards_naive,
    sequence_reward,
)
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


def sampler_rows(b=B, length=L, k=K) -> int:
    """Rows of logits the batched path samples from: one per (b, t) for the first token after prefix t
    (its K draws share the softmax), then one per (t, k, b) for every later position: 176,320 here."""
    return b * (length - 1) + k * b * sum(s - 1 for s in range(1, length))


def sampling_floor_seconds(g: LSTMLM, rows: int, chunk: int = max(64, (1 << 20) // V)) -> dict[str, float]:
    """The work no exact inverse-CDF sampler of these rows avoids: the logits (one matrix product per
    row, here oneDNN's, the fastest fp32 product on this machine), one exponential per logit and one sum
    pass (block totals), on cache-sized chunks. Both ways of exponentiating are timed: torch's ``exp_`` and
    the fused-sigmoid route of ``FusedSampler``; the floor is the faster. Returns seconds per part."""
    s = FusedSampler(g.output)
    gen = torch.Generator().manual_seed(0)
    h = torch.tanh(torch.randn(chunk, g.lstm.hidden_size, generator=gen))
    x = torch.cat([h, -(h.norm(dim=1, keepdim=True) * s.w_norm + s.b_max)], dim=1)
    lp = torch.ops.mkldnn._linear_pointwise
    parts = {
        "gemm": lambda: lp(x, s.weight_nt, s.bias, "none", [], ""),
        "gemm_exp": lambda: lp(x, s.weight_nt, s.bias, "none", [], "").exp_(),
        "gemm_sigmoid_exp": lambda: lp(x, s.weight_nt, s.bias, "sigmoid", [], "").reciprocal_().sub_(1.0).reciprocal_(),
    }
    p = parts["gemm"]()
    parts["block_sums"] = lambda: p.view(chunk, s.blocks, s.block).sum(-1)
    best = {k: min(once(f) for _ in range(20)) for k, f in parts.items()}
    n_chunks = rows / chunk
    out = {k: v * n_chunks for k, v in best.items()}
    out["floor"] = min(out["gemm_exp"], out["gemm_sigmoid_exp"]) + out["block_sums"]
    return out


@torch.no_grad()
def batched_before(g, x, k, fn, u):
    """The batched path as it was before oneDNN (``FusedSampler`` on torch's addmm + exp_): oneDNN off
    while sampling (the LSTM steps and the sampler's other passes are unchanged)."""
    torch._C._set_mkldnn_enabled(False)
    try:
        return rollout_rewards(g, x, k, fn, uniforms=u)
    finally:
        torch._C._set_mkldnn_enabled(True)


def best_of(fns: dict, rounds: int) -> dict[str, float]:
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            best[k] = min(best[k], once(fn))
    return best


@pytest.mark.parametrize("reward", list(REWARDS))
def test_rollout_batched_vs_naive(benchmark, reward):
    g = policy()
    x = g.sample(B, torch.Generator().manual_seed(1))
    u = draw_uniforms(x, K, torch.Generator().manual_seed(2))
    fn = REWARDS[reward]()
    rounds = {"generation": 3, "texygen_d": 2, "seqgan_d": 1}[reward]
    batched = benchmark.pedantic(lambda: rollout_rewards(g, x, K, fn, uniforms=u), rounds=1, iterations=1)
    naive = rollout_rewards_naive(g, x, K, fn, uniforms=u)
    fns = {"batched": lambda: rollout_rewards(g, x, K, fn, uniforms=u), "naive": lambda: rollout_rewards_naive(g, x, K, fn, uniforms=u)}
    if reward == "generation":  # split the gain: the loop structure alone (naive loop, same fused sampler)
        fns["naive_fused"] = lambda: rollout_rewards_naive(g, x, K, fn, uniforms=u, fused_sampler=True)
        fns["batched_before"] = lambda: batched_before(g, x, K, fn, u)
    t = best_of(fns, rounds)  # interleaved rounds, best of each (a shared machine)
    t_batched, t_naive = t["batched"], t["naive"]
    # same uniforms: the same rewards, up to rare token flips at float-rounded CDF steps (~1e-4 per token:
    # the reference's float32 cumsum over 5,000 terms), each moving one of 16 averaged completions
    same = ((batched - naive).abs() <= 1e-5).float().mean().item()
    assert same >= 0.95 and (batched - naive).abs().mean().item() < 1e-3
    info = {"reward": reward, "batched_s": t_batched, "naive_s": t_naive, "speedup": t_naive / t_batched}
    extra = ""
    if reward == "generation":
        t_loop = t["naive_fused"]
        floor = sampling_floor_seconds(g, sampler_rows())
        info.update({
            "naive_fused_sampler_s": t_loop, "speedup_from_batching": t_loop / t_batched, "speedup_from_sampler": t_naive / t_loop,
            "batched_before_onednn_s": t["batched_before"], "sampler_rows": sampler_rows(),
            **{f"floor_{k}_s": v for k, v in floor.items()},
            "batched_over_floor": t_batched / floor["floor"], "max_speedup_at_floor": t_naive / floor["floor"],
        })
        extra = (
            f" (naive loop with the fused sampler {t_loop:.2f}s: batching {info['speedup_from_batching']:.2f}x, sampler {info['speedup_from_sampler']:.2f}x;"
            f" batched before oneDNN {t['batched_before']:.2f}s)"
            f"\n  sampling floor for the {sampler_rows():,} rows of logits: {floor['floor']:.2f}s = product {floor['gemm']:.2f}s"
            f" + exp {min(floor['gemm_exp'], floor['gemm_sigmoid_exp']) - floor['gemm']:.2f}s (torch exp_ {floor['gemm_exp'] - floor['gemm']:.2f}s,"
            f" fused sigmoid {floor['gemm_sigmoid_exp'] - floor['gemm']:.2f}s) + block sums {floor['block_sums']:.2f}s;"
            f" batched / floor {info['batched_over_floor']:.2f}; naive / floor {info['max_speedup_at_floor']:.2f} = the most batching can gain"
        )
    info["equal_entries"] = same
    benchmark.extra_info.update({**info, "threads": torch.get_num_threads(), "B_L_V_K": [B, L, V, K]})
    print(
        f"\nrollout ({reward}, B={B} L={L} V={V} K={K}, {torch.get_num_threads()} threads): batched {t_batched:.2f}s, "
        f"naive {t_naive:.2f}s -> {info['speedup']:.2f}x{extra}"
    )


def test_rollout_profile(benchmark):
    """Where the batched generation goes (torch.profiler self CPU time, top ops), next to the floor."""
    from torch.profiler import ProfilerActivity, profile

    g = policy()
    x = g.sample(B, torch.Generator().manual_seed(1))
    u = draw_uniforms(x, K, torch.Generator().manual_seed(2))
    fn = REWARDS["generation"]()
    rollout_rewards(g, x, K, fn, uniforms=u)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        rollout_rewards(g, x, K, fn, uniforms=u)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    top = [(e.key, e.self_cpu_time_total / 1e6, e.count) for e in events[:12]]
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({"total_s": total, "top": [[k, s, c] for k, s, c in top]})
    print(f"\nbatched rollout (generation only) under the profiler: {total:.2f}s self CPU time; top ops:")
    for k, sec, c in top:
        print(f"  {k:36s} {sec:6.3f}s  {100 * sec / total:5.1f}%  ({c} calls)")


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
        _adam_step(a.d_opt)

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
