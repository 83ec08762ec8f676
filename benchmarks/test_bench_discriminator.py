"""SeqGAN's discriminator training at paper settings: the new D against a copy of the old one, the FLOP
floor, and the projected seconds per SeqGAN adversarial epoch.

Run: ``OMP_NUM_THREADS=1 pytest benchmarks/test_bench_discriminator.py --benchmark-only -s`` (~2 min on
a busy 2-core machine; everything is printed and stored in ``extra_info``). Set
``TEXTBENCH_BENCH_FULL_CALL=1`` to also time one real D call of the SeqGAN algorithm (~1 min) and compare
it with the projection.

Sizes are SeqGAN's paper settings (``seqgan --profile paper``): D = emb 64, widths 1..10, 15, 20 with
100–200 filters (1,720 features), highway, dropout 0.25; a D call = 9,984 fresh G samples + 9,984 real,
shuffled, 3 epochs of 312 minibatches of 64 = 936 Adam steps; an adversarial epoch = 1 G step (64 samples,
rollout K = 16 scored by D, one policy-gradient Adam step) + 5 D calls.

* ``OldDiscriminator`` is the module as it was (its forward copied here: ``conv1d`` per width on [B, E, L],
  ReLU, ``amax``, ``nn.Linear`` highway), trained as ``d_call`` trained it (``g.sample`` for the negatives,
  ``opt.step()``; ``whole_batch_sample``: ``LSTMLM.sample`` as it was, the output layer on the whole
  batch); the new side is ``CNNDiscriminator`` with ``LSTMLM.sample`` (cache-sized row blocks, the same
  tokens) and ``_adam_step``. Both start from the same weights. Old and new minibatch steps are interleaved over
  several rounds in one process and the best of each is kept (the machine is shared).
* D call = sampling + data preparation + 936 × one minibatch step (the steps are the same work every
  time, so the call is projected from the best step; ``TEXTBENCH_BENCH_FULL_CALL=1`` checks it).
* FLOP floor: the conv and linear FLOPs of one minibatch step, forward + backward (weights and inputs:
  the embedding is trained), divided by the best rate of a plain fp32 matrix product of comparable shape
  on this machine (MKL's ``torch.mm`` and oneDNN's inner product, both timed here). "dense" is the plain
  formulation's count (the conv backward over every window); "new" counts the gathered max-pool backward
  of ``models/discriminator.py`` (only the argmax windows), which is what the new code has to do.
* ``test_d_step_profile`` prints where the time of one step goes (conv forward/backward per width,
  max-pool, highway, embedding, Adam, the rest) for the old and the new module.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F

from textbench.algorithms.adversarial import pg_loss
from textbench.algorithms.base import clip_and_step
from textbench.algorithms.phases import _adam_step
from textbench.models.discriminator import SEQGAN_FILTERS, CNNDiscriminator
from textbench.models.lstm import LSTMLM, sample_categorical
from textbench.models.rollout import rollout_completions, rollout_rewards, sequence_reward

V, L, B, H = 5000, 20, 64, 32
D_SAMPLES, D_EPOCHS, D_STEPS, K = 9984, 3, 5, 16
STEPS_PER_CALL = D_EPOCHS * (2 * D_SAMPLES // B)  # 936


class OldDiscriminator(CNNDiscriminator):
    """The discriminator before the fast path: the same parameters and initialisation, its forward as it was
    (``conv1d`` on [B, E, L] per width, ReLU, ``amax`` over time — the module keeps that formulation as
    ``_pooled_plain`` —; ``nn.Linear`` highway, copied below)."""

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self._pooled_plain(self.embedding(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        z = self.pooled(x)
        hw = self.highway
        t = torch.sigmoid(hw.gate(z) + hw.gate_bias)
        z = t * F.relu(hw.lin(z)) + (1.0 - t) * z
        return F.dropout(z, self.dropout, training=self.training) if self.dropout > 0 else z


def make_d(cls):
    p = SEQGAN_FILTERS
    return cls(V, p.emb_dim, p.filter_sizes, p.num_filters, 0.25, 0.2, generator=torch.Generator().manual_seed(0)).train()


@torch.no_grad()
def whole_batch_sample(g: LSTMLM, n: int, rng: torch.Generator, batch_size: int = 2048) -> torch.Tensor:
    """``LSTMLM.sample`` as it was before its row blocks (softmax, cumulative sum and search on [2048, V])."""
    out = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        tok, state, seq = torch.full((b, 1), g.start_token, dtype=torch.long), None, torch.empty((b, g.seq_len), dtype=torch.long)
        for t in range(g.seq_len):
            h, state = g._lstm(g.embedding(tok), state)
            tok = sample_categorical(g.output(h[:, 0]), rng).unsqueeze(1)
            seq[:, t] = tok[:, 0]
        out.append(seq)
    return torch.cat(out)


def generator() -> LSTMLM:
    return LSTMLM(V, H, H, L).init_normal_(0.1, torch.Generator().manual_seed(0))


SIDES = {
    # name: (discriminator class, optimizer step, negatives sampler)
    "old": (OldDiscriminator, lambda opt: opt.step(), lambda g, n, rng: whole_batch_sample(g, n, rng)),
    "new": (CNNDiscriminator, _adam_step, lambda g, n, rng: g.sample(n, rng)),
}


def d_step(d, opt, step, x, y) -> float:
    """One minibatch update exactly as ``d_call`` does it."""
    opt.zero_grad(set_to_none=True)
    loss = d.loss(x, y)
    loss.backward()
    step(opt)
    return loss.item()


def once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best_interleaved(fns: dict, rounds: int, repeat: int = 1) -> dict[str, float]:
    """min over ``rounds`` × ``repeat`` timings of each function, the functions interleaved every round."""
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            for _ in range(repeat):
                best[k] = min(best[k], once(fn))
    return best


# -- FLOPs and the floor ---------------------------------------------------------------------------
def step_flops(batch=B, length=L, preset=SEQGAN_FILTERS) -> dict[str, float]:
    """FLOPs (2 per multiply-add) of one D minibatch update: forward; dense backward (weights + inputs);
    the new gathered backward (each (b, filter) pair only through its argmax window)."""
    e = preset.emb_dim
    conv = batch * e * sum(n * f * max(length - f + 1, 1) for f, n in zip(preset.filter_sizes, preset.num_filters))
    conv_gathered = batch * e * sum(n * f for f, n in zip(preset.filter_sizes, preset.num_filters))
    feat = sum(preset.num_filters)
    linear = 2 * batch * feat * feat + batch * feat * 2  # highway (2 layers) + output
    fwd = conv + linear
    return {
        "forward": 2 * fwd,
        "dense": 2 * 3 * fwd,  # backward = gradients w.r.t. weights + w.r.t. inputs, each = forward
        "new": 2 * (fwd + 2 * linear + 2 * conv_gathered),
        "conv_forward": 2 * conv,
        "highway_train": 2 * 3 * linear,
    }


def matmul_rates() -> dict[str, float]:
    """GFLOP/s of plain fp32 matrix products shaped like the work: the highway [64, 1720] x [1720, 1720]
    and a mid-width conv as a product [1024, 320] x [320, 200], by MKL (``torch.mm``) and oneDNN."""
    rates = {}
    for name, (m, k, n) in {"highway": (64, 1720, 1720), "conv5": (1024, 320, 200)}.items():
        a, w = torch.randn(m, k), torch.randn(n, k) * 0.03
        wt = w.t().contiguous()
        fns = {f"mkl_{name}": lambda a=a, wt=wt: torch.mm(a, wt)}
        if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
            fns[f"onednn_{name}"] = lambda a=a, w=w: torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
        for k2, v in best_interleaved(fns, rounds=15, repeat=2).items():
            rates[k2] = 2 * m * k * n / v / 1e9
    return rates


# -- pieces of an epoch ----------------------------------------------------------------------------
def g_step(g, g_opt, d, rng, old: bool) -> None:
    """One adversarial G step: 64 samples, rollout rewards (K = 16, D in eval mode), PG update."""
    x = g.sample(B, rng)
    d.eval()
    if old:  # the old sampler path (addmm + exp, no oneDNN) for the completions, then the old D
        torch._C._set_mkldnn_enabled(False)
        try:
            y = rollout_completions(g, x, K, rng)
        finally:
            torch._C._set_mkldnn_enabled(True)
        fn = sequence_reward(d.prob_real)
        with torch.no_grad():
            scores = fn(y.reshape((L - 1) * K, B, L))
        r = torch.empty((B, L))
        r[:, : L - 1] = scores.view(L - 1, K, B).mean(1).T
        r[:, L - 1] = fn(x.unsqueeze(0))[0]
    else:
        r = rollout_rewards(g, x, K, sequence_reward(d.prob_real), rng)
    g.train()
    g_opt.zero_grad(set_to_none=True)
    pg_loss(g.token_log_probs(x), r).backward()
    clip_and_step(g_opt, g.parameters(), 5.0)
    d.train()


def prep_seconds(neg: torch.Tensor, train: torch.Tensor, rng) -> float:
    """d_call's data preparation: concatenate, labels, one shuffle."""

    def prep():
        n = neg.shape[0]
        data = torch.cat([train, neg])
        labels = torch.cat([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)])
        perm = torch.randperm(2 * n, generator=rng)
        return data[perm], labels[perm]

    return min(once(prep) for _ in range(3))


def test_d_call_old_vs_new(benchmark):
    threads = torch.get_num_threads()
    gen = torch.Generator().manual_seed(1)
    train = torch.randint(0, V, (D_SAMPLES, L), generator=gen)
    sides = {}
    for name, (cls, step, _) in SIDES.items():
        d = make_d(cls)
        sides[name] = (d, torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8), step)
    batches = [(torch.randint(0, V, (B, L), generator=gen), torch.randperm(B, generator=gen) % 2) for _ in range(4)]
    for name, (d, opt, step) in sides.items():  # warm-up (first-call allocations, oneDNN primitives)
        d_step(d, opt, step, *batches[0])
    counter = iter(range(10**9))

    def stepper(name):
        d, opt, step = sides[name]
        return lambda: d_step(d, opt, step, *batches[next(counter) % len(batches)])

    t_step = best_interleaved({k: stepper(k) for k in sides}, rounds=6, repeat=3)
    benchmark.pedantic(stepper("new"), rounds=5, iterations=1)

    g = generator()
    t_sample = best_interleaved(
        {k: (lambda s=SIDES[k][2]: s(g, D_SAMPLES, torch.Generator().manual_seed(2))) for k in SIDES}, rounds=2
    )
    t_prep = prep_seconds(g.sample(64, gen).repeat(D_SAMPLES // 64, 1), train, gen)
    gs = {k: generator() for k in SIDES}
    g_opts = {k: torch.optim.Adam(gs[k].parameters(), lr=0.01) for k in SIDES}
    t_g = best_interleaved(
        {k: (lambda k=k: g_step(gs[k], g_opts[k], sides[k][0], torch.Generator().manual_seed(3), old=(k == "old"))) for k in SIDES},
        rounds=2,
    )

    flops = step_flops()
    rates = matmul_rates()
    best_rate = max(rates.values()) * 1e9
    floor_step = {kind: flops[kind] / best_rate for kind in ("dense", "new")}
    info = {"threads": threads, "steps_per_call": STEPS_PER_CALL}
    for k in SIDES:
        call = t_sample[k] + t_prep + STEPS_PER_CALL * t_step[k]
        info.update({
            f"{k}_step_s": t_step[k], f"{k}_sample_s": t_sample[k], f"{k}_d_call_s": call,
            f"{k}_g_step_s": t_g[k], f"{k}_epoch_s": D_STEPS * call + t_g[k],
            f"{k}_d_training_per_epoch_s": D_STEPS * STEPS_PER_CALL * t_step[k],
        })
    info.update({
        "prep_s": t_prep,
        "speedup_step": t_step["old"] / t_step["new"],
        "speedup_d_call": info["old_d_call_s"] / info["new_d_call_s"],
        "speedup_epoch": info["old_epoch_s"] / info["new_epoch_s"],
        "flops_per_step_dense": flops["dense"], "flops_per_step_new": flops["new"],
        **{f"matmul_gflops_{k}": v for k, v in rates.items()},
        "floor_step_dense_s": floor_step["dense"], "floor_step_new_s": floor_step["new"],
        "floor_d_training_per_epoch_dense_s": D_STEPS * STEPS_PER_CALL * floor_step["dense"],
        "floor_d_training_per_epoch_new_s": D_STEPS * STEPS_PER_CALL * floor_step["new"],
        "new_over_floor_dense": t_step["new"] / floor_step["dense"],
        "new_over_floor_new": t_step["new"] / floor_step["new"],
        "old_over_floor_dense": t_step["old"] / floor_step["dense"],
    })
    benchmark.extra_info.update(info)
    rate_s = ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
    print(
        f"\nSeqGAN D at paper settings ({threads} thread(s)), best of interleaved rounds:"
        f"\n  minibatch step: old {t_step['old'] * 1e3:.1f} ms, new {t_step['new'] * 1e3:.1f} ms -> {info['speedup_step']:.2f}x"
        f"\n  9,984 negatives: old {t_sample['old']:.2f} s (g.sample), new {t_sample['new']:.2f} s (row blocks); data prep {t_prep * 1e3:.0f} ms"
        f"\n  one D call ({STEPS_PER_CALL} steps): old {info['old_d_call_s']:.1f} s, new {info['new_d_call_s']:.1f} s -> {info['speedup_d_call']:.2f}x"
        f"\n  FLOPs per step: dense {flops['dense'] / 1e9:.2f} G, new (gathered conv backward) {flops['new'] / 1e9:.2f} G;"
        f" fp32 matmul GFLOP/s: {rate_s}"
        f"\n  floor per step: dense {floor_step['dense'] * 1e3:.1f} ms, new {floor_step['new'] * 1e3:.1f} ms;"
        f" new step / floor: {info['new_over_floor_dense']:.2f} (dense), {info['new_over_floor_new']:.2f} (new); old / dense floor {info['old_over_floor_dense']:.2f}"
        f"\n  D training per epoch ({D_STEPS} calls): old {info['old_d_training_per_epoch_s']:.0f} s, new {info['new_d_training_per_epoch_s']:.0f} s;"
        f" floor {info['floor_d_training_per_epoch_dense_s']:.0f} s (dense), {info['floor_d_training_per_epoch_new_s']:.0f} s (new)"
        f"\n  G step (rollout K={K}): old {t_g['old']:.1f} s, new {t_g['new']:.1f} s"
        f"\n  projected SeqGAN adversarial epoch: old {info['old_epoch_s']:.0f} s, new {info['new_epoch_s']:.0f} s -> {info['speedup_epoch']:.2f}x"
    )


@pytest.mark.skipif(not os.environ.get("TEXTBENCH_BENCH_FULL_CALL"), reason="set TEXTBENCH_BENCH_FULL_CALL=1 (about a minute)")
def test_full_d_call_seconds(benchmark):
    """One real ``d_call`` of the SeqGAN algorithm at paper settings (new code), against the projection."""
    from textbench.config import ENGINE_DEFAULTS
    from textbench.engine.loop import resolve_settings
    from textbench.registry import ALGORITHMS

    class Suite:
        vocab_size, seq_len, start_token = V, L, 0
        train = torch.randint(0, V, (D_SAMPLES, L), generator=torch.Generator().manual_seed(0))
        test = train

        def signature(self):
            return {"suite": "bench"}

    settings = {**ENGINE_DEFAULTS, **resolve_settings("seqgan", "synthetic", "paper"), "init_from": ""}
    a = ALGORITHMS.get("seqgan")(Suite(), settings, torch.Generator().manual_seed(0))
    benchmark.pedantic(a.d_call, rounds=1, iterations=1)
    t = benchmark.stats.stats.min
    benchmark.extra_info.update({"d_call_s": t, "per_step_s": t / STEPS_PER_CALL, "threads": torch.get_num_threads()})
    print(f"\nreal SeqGAN d_call (paper settings, new code): {t:.1f} s ({t / STEPS_PER_CALL * 1e3:.1f} ms per minibatch step incl. sampling)")


# -- where the time of one step goes ---------------------------------------------------------------
# (event, category): whole-op CPU time (children included) of these events, which do not nest in each
# other within one column; conv ops are split by width through their weight shape [n, E, (1,) f]
EVENTS = {
    "old": {
        "aten::conv1d": "conv forward",
        "aten::convolution_backward": "conv backward",
        "aten::relu": "relu + max-pool (amax)", "aten::amax": "relu + max-pool (amax)",
        "ReluBackward0": "relu + max-pool (amax)", "AmaxBackward0": "relu + max-pool (amax)",
        "aten::linear": "highway + output forward", "AddmmBackward0": "highway + output backward",
        "aten::embedding": "embedding", "EmbeddingBackward0": "embedding",
    },
    "new": {
        "_ConvMaxPool": "conv forward + max-pool", "_ConvMaxPoolBackward": "conv backward (gathered)",
        "_OneDNNLinear": "highway + output forward", "aten::linear": "highway + output forward",
        "_OneDNNLinearBackward": "highway + output backward", "AddmmBackward0": "highway + output backward",
        "aten::embedding": "embedding", "EmbeddingBackward0": "embedding",
    },
}
PHASES = {"zero_grad": "zero_grad", "forward": "forward (all)", "backward": "backward (all)", "adam": "Adam"}


def _width(ev, preset) -> int | None:
    for s in ev.input_shapes or []:
        if len(s) in (3, 4) and s[0] in preset.num_filters and s[-1] in preset.filter_sizes and s[1] == preset.emb_dim:
            return s[-1]
    return None


def test_d_step_profile(benchmark):
    """Where one minibatch step goes (torch.profiler, CPU time per step, mean of 5 steps; the profiler
    adds some overhead). Conv forward/backward per width for the old module, per-width forward for the
    new one (its backward is one gathered pass over all widths)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    gen = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, V, (B, L), generator=gen), torch.arange(B) % 2
    preset = SEQGAN_FILTERS
    report = {}
    for name, (cls, step, _) in SIDES.items():
        d = make_d(cls)
        opt = torch.optim.Adam(d.parameters(), lr=1e-4)
        d_step(d, opt, step, x, y)

        def run():
            with record_function("zero_grad"):
                opt.zero_grad(set_to_none=True)
            with record_function("forward"):
                loss = d.loss(x, y)
            with record_function("backward"):
                loss.backward()
            with record_function("adam"):
                step(opt)

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(5):
                run()
        totals = defaultdict(float)
        for ev in prof.key_averages(group_by_input_shape=True):
            ms = ev.cpu_time_total / 5 / 1e3
            if ev.key in PHASES:
                totals[PHASES[ev.key]] += ms
            cat = EVENTS[name].get(ev.key)
            if cat:
                totals[cat] += ms
            if ev.key in ("aten::conv1d", "aten::convolution_backward", "aten::conv2d"):
                f = _width(ev, preset)
                if f is not None:
                    kind = "backward" if "backward" in ev.key else "forward"
                    totals[f"  conv {kind} width {f:2d}"] += ms
        report[name] = dict(totals)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k}_ms": v for k, v in report.items()})
    keys = sorted(set(report["old"]) | set(report["new"]), key=lambda k: (k.startswith(" "), k))
    print("\nms per minibatch step (CPU time under the profiler; indented rows are parts of the rows above):")
    for k in keys:
        print(f"  {k:32s} old {report['old'].get(k, 0.0):7.2f}   new {report['new'].get(k, 0.0):7.2f}")
