"""The CoT iteration at paper sizes: ours against the straightforward PyTorch iteration, against its FLOP
floor, against an MLE step, and in bf16.

Run: ``OMP_NUM_THREADS=1 pytest benchmarks/test_bench_cot.py --benchmark-only -s`` (prints the figures; they
are also in ``extra_info`` of ``--benchmark-json``). Sizes are the paper's: batch 64, V=5000, L=20, G emb/hidden
32, M emb/hidden 64, one thread.

* **reference**: the straightforward iteration: ``torch.multinomial`` sampling with ``nn.LSTM`` one step at a
  time, the full [B, L, V] log-softmaxes of G and M materialised and differentiated by autograd, separate
  mediator passes for the real and the generated batch (logged balanced NLL without dropout, then the
  training passes with dropout).
* **floor**: the matrix products one iteration needs (below, ``products``), run as plain fp32 ``torch.mm``
  calls of the same shapes, timed in the same rounds as the iterations; measured/floor is what everything
  else costs on top. A second floor runs each product on the faster of ``torch.mm`` and oneDNN's inner product
  (ours uses oneDNN for the output-layer forward products, where it gives ``torch.mm``'s bits: ``models/kernels.py``),
  so that the ratio is also stated against the fastest fp32 kernel of this build.
* Timings are the best (and the median) of interleaved rounds, as wall time and as this thread's CPU time
  (the machine may be shared: CPU time leaves out the time other processes hold the core). No assertions on
  speed.
"""

from __future__ import annotations

import statistics
import time

import torch

from textbench.algorithms.cot import CoT
from textbench.algorithms.mle import MLE
from textbench.config import ENGINE_DEFAULTS
from textbench.metrics.likelihood import balanced_nll

V, L, B = 5000, 20, 64
G_EMB = G_HID = 32
M_EMB = M_HID = 64
ROUNDS = 7


class _Suite:
    vocab_size, seq_len, start_token = V, L, 0
    train = torch.randint(0, V, (9984, L), generator=torch.Generator().manual_seed(0))


def _algorithm(cls, **overrides):
    settings = {**ENGINE_DEFAULTS, **cls.defaults, **overrides}
    return cls(_Suite(), settings, torch.Generator().manual_seed(0))


# -- the straightforward iteration -------------------------------------------------------------------------
@torch.no_grad()
def multinomial_sample(model, n: int, generator: torch.Generator) -> torch.Tensor:
    """Ancestral sampling with ``nn.LSTM`` one step at a time and ``torch.multinomial`` on the softmax."""
    tok = torch.full((n, 1), model.start_token, dtype=torch.long)
    state, seq = None, []
    for _t in range(model.seq_len):
        h, state = model.lstm(model.embedding(tok), state)
        tok = torch.multinomial(torch.softmax(model.output(h[:, 0]), -1), 1, generator=generator)
        seq.append(tok)
    return torch.cat(seq, 1)


def reference_iteration(cot: CoT) -> dict[str, float]:
    g, m, b = cot.g, cot.m, cot.settings["batch_size"]
    s = multinomial_sample(g, b, cot.rng)
    m.eval()
    with torch.no_grad():
        m_lp = torch.log_softmax(m(s), -1)
    g.train()
    cot.g_opt.zero_grad(set_to_none=True)
    g_lp = torch.log_softmax(g(s), -1)
    g_loss = (g_lp.exp() * (g_lp - m_lp)).sum(-1).mean()
    g_loss.backward()
    cot.g_opt.step()
    real, fake = cot.batches.next(), multinomial_sample(g, b, cot.rng)

    def token_lp(x):
        return torch.log_softmax(m(x), -1).gather(-1, x.unsqueeze(-1)).squeeze(-1)

    with torch.no_grad():
        bnll = balanced_nll(token_lp(real), token_lp(fake))
    m.train()
    cot.m_opt.zero_grad(set_to_none=True)
    m_loss = -0.5 * (token_lp(real).mean() + token_lp(fake).mean())
    m_loss.backward()
    cot.m_opt.step()
    m.eval()
    return {"g_loss": g_loss.item(), "bnll": bnll, "m_loss": m_loss.item()}


# -- the FLOP floor ----------------------------------------------------------------------------------------
def products(b: int = B, length: int = L, v: int = V) -> list[tuple[str, int, int, int, int]]:
    """The matrix products of one CoT iteration as (what, m, k, n, count): ``count`` products [m, k]·[k, n].

    Output layers: sampling (s and the mediator's fake batch, one product per step), G's backward (its
    logits on s are the sampler's), M's logits on s, M's logged (dropout off) and trained (dropout on) logits
    on real and fake, M's backward. LSTMs: the input and recurrent products of every pass (sampling step by
    step; G's training pass; M on s; M on real+fake, whose states serve both of M's passes), a backward pass
    counting twice its forward (gradients of inputs and of weights).
    """
    rows = b * length
    out = [
        ("sampling: output layer", b, G_HID, v, 2 * length),
        ("G output layer: dW", G_HID, rows, v, 1),
        ("G output layer: dh", rows, v, G_HID, 1),
        ("M output layer on s", rows, M_HID, v, 1),
        ("M output layer on real, fake (logged, trained)", rows, M_HID, v, 4),
        ("M output layer: dW", M_HID, rows, v, 2),
        ("M output layer: dh", rows, v, M_HID, 2),
    ]
    for what, emb, hid, batch, passes, stepwise in (
        ("sampling: G LSTM", G_EMB, G_HID, b, 2, True),
        ("G LSTM (fwd + bwd)", G_EMB, G_HID, b, 3, False),
        ("M LSTM on s", M_EMB, M_HID, b, 1, False),
        ("M LSTM on real+fake (fwd + bwd)", M_EMB, M_HID, 2 * b, 3, False),
    ):
        # the input product covers all steps at once, except while sampling (the inputs are drawn step by step)
        if stepwise:
            out.append((f"{what}: input", batch, emb, 4 * hid, passes * length))
        else:
            out.append((f"{what}: input", batch * length, emb, 4 * hid, passes))
        out.append((f"{what}: recurrent", batch, hid, 4 * hid, passes * length))
    return out


def flops(prods) -> float:
    return float(sum(2 * m * k * n * count for _w, m, k, n, count in prods))


def plain_products(prods):
    """A function that runs ``prods`` as plain fp32 ``torch.mm`` calls on random operands of their shapes."""
    ops = [(torch.randn(m, k), torch.randn(k, n), count) for _what, m, k, n, count in prods]

    def run():
        for a, b, count in ops:
            for _ in range(count):
                torch.mm(a, b)

    return run


def fastest_products(prods):
    """``plain_products`` with each product on the faster of ``torch.mm`` and oneDNN's inner product for its
    shape (chosen by timing both before the rounds): the floor against the fastest fp32 kernel this build has
    (``models/kernels.py``; oneDNN runs the output-layer products ~2x faster than ``torch.mm`` on AMD AVX-512)."""
    from textbench.models.kernels import HAS_ONEDNN_LINEAR

    ops = []
    for _what, m, k, n, count in prods:
        a, b = torch.randn(m, k), torch.randn(k, n)
        bt = b.t().contiguous()
        candidates = [lambda a=a, b=b: torch.mm(a, b)]
        if HAS_ONEDNN_LINEAR:
            candidates.append(lambda a=a, bt=bt: torch.ops.mkldnn._linear_pointwise(a, bt, None, "none", [], ""))
        timed = []
        for fn in candidates:
            fn()
            c = time.thread_time()
            for _ in range(5):
                fn()
            timed.append((time.thread_time() - c, len(timed), fn))
        ops.append((min(timed)[2], count))

    def run():
        for fn, count in ops:
            for _ in range(count):
                fn()

    return run


def matmul_gflops(dtype: torch.dtype, m: int = B * L, k: int = M_HID, n: int = V, repeat: int = 9) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        c = time.thread_time()
        torch.mm(a, b)
        best = min(best, time.thread_time() - c)
    return 2 * m * k * n / best / 1e9


# -- timing ------------------------------------------------------------------------------------------------
class _Timer:
    """Interleaved rounds: wall and CPU seconds of each named function, one call per round."""

    def __init__(self, fns: dict):
        self.fns, self.wall, self.cpu = fns, {k: [] for k in fns}, {k: [] for k in fns}

    def run(self, rounds: int, warmup: int = 2) -> "_Timer":
        for r in range(warmup + rounds):
            for name, fn in self.fns.items():
                w, c = time.perf_counter(), time.thread_time()
                fn()
                if r >= warmup:
                    self.wall[name].append(time.perf_counter() - w)
                    self.cpu[name].append(time.thread_time() - c)
        return self

    def best(self, name: str, cpu: bool = False) -> float:
        return min((self.cpu if cpu else self.wall)[name])

    def median(self, name: str, cpu: bool = False) -> float:
        return statistics.median((self.cpu if cpu else self.wall)[name])


def test_cot_iteration_at_its_floor(benchmark):
    ours, ref, bf16, mle = _algorithm(CoT), _algorithm(CoT), _algorithm(CoT, precision="bf16"), _algorithm(MLE)
    step = iter(range(1, 10**9))
    benchmark.pedantic(lambda: ours.train_step(next(step)), rounds=ROUNDS, iterations=1, warmup_rounds=2)
    t = _Timer(
        {
            "ours": lambda: ours.train_step(next(step)),
            "reference": lambda: reference_iteration(ref),
            "bf16": lambda: bf16.train_step(next(step)),
            "mle": lambda: mle.train_step(next(step)),
            "floor": plain_products(products()),
            "fastest floor": fastest_products(products()),
        }
    ).run(ROUNDS)
    total = flops(products())
    floor_w, floor_c = t.best("floor"), t.best("floor", cpu=True)
    gf32, gf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    info = {
        "ours_s": t.best("ours"),
        "ours_median_s": t.median("ours"),
        "reference_s": t.best("reference"),
        "reference_median_s": t.median("reference"),
        "reference_over_ours": t.best("reference") / t.best("ours"),
        "ours_cpu_s": t.best("ours", cpu=True),
        "reference_cpu_s": t.best("reference", cpu=True),
        "reference_over_ours_cpu": t.best("reference", cpu=True) / t.best("ours", cpu=True),
        "mle_step_s": t.best("mle"),
        "cot_over_mle": t.best("ours") / t.best("mle"),
        "cot_over_mle_cpu": t.best("ours", cpu=True) / t.best("mle", cpu=True),
        "matmul_gflop_per_iteration": total / 1e9,
        "floor_s": floor_w,
        "floor_cpu_s": floor_c,
        "floor_gflops": total / floor_w / 1e9,
        "ours_over_floor": t.best("ours") / floor_w,
        "ours_over_floor_cpu": t.best("ours", cpu=True) / floor_c,
        "fastest_floor_s": t.best("fastest floor"),
        "fastest_floor_cpu_s": t.best("fastest floor", cpu=True),
        "ours_over_fastest_floor": t.best("ours") / t.best("fastest floor"),
        "ours_over_fastest_floor_cpu": t.best("ours", cpu=True) / t.best("fastest floor", cpu=True),
        "matmul_1280x64x5000_fp32_gflops": gf32,
        "matmul_1280x64x5000_bf16_gflops": gf16,
        "bf16_s": t.best("bf16"),
        "bf16_cpu_s": t.best("bf16", cpu=True),
        "fp32_over_bf16": t.best("ours") / t.best("bf16"),
        "fp32_over_bf16_cpu": t.best("ours", cpu=True) / t.best("bf16", cpu=True),
    }
    benchmark.extra_info.update(info)
    print(
        f"\nCoT iteration (batch {B}, V={V}, L={L}, G {G_HID}, M {M_HID}; best of {ROUNDS}, wall | CPU):"
        f"\n  ours       {info['ours_s'] * 1e3:7.1f} ms | {info['ours_cpu_s'] * 1e3:7.1f} ms   (median wall {info['ours_median_s'] * 1e3:.1f})"
        f"\n  reference  {info['reference_s'] * 1e3:7.1f} ms | {info['reference_cpu_s'] * 1e3:7.1f} ms   (median wall {info['reference_median_s'] * 1e3:.1f})"
        f"\n  reference/ours = {info['reference_over_ours']:.2f}x | {info['reference_over_ours_cpu']:.2f}x"
        f"\n  MLE step {info['mle_step_s'] * 1e3:.1f} ms -> CoT/MLE = {info['cot_over_mle']:.2f} | {info['cot_over_mle_cpu']:.2f}"
        f"\n  floor: {total / 1e9:.2f} GFLOP of matrix products, plain fp32 matmuls {floor_w * 1e3:.1f} ms | {floor_c * 1e3:.1f} ms"
        f" ({info['floor_gflops']:.0f} GFLOP/s) -> measured/floor = {info['ours_over_floor']:.2f} | {info['ours_over_floor_cpu']:.2f}"
        f"\n  floor on the fastest fp32 kernel per product (torch.mm or oneDNN): {info['fastest_floor_s'] * 1e3:.1f} ms |"
        f" {info['fastest_floor_cpu_s'] * 1e3:.1f} ms -> measured/floor = {info['ours_over_fastest_floor']:.2f} | {info['ours_over_fastest_floor_cpu']:.2f}"
        f"\n  bf16: [1280x64]x[64x5000] {gf16:.0f} GFLOP/s vs fp32 {gf32:.0f} GFLOP/s ({gf16 / gf32:.1f}x);"
        f" iteration {info['bf16_s'] * 1e3:.1f} ms | {info['bf16_cpu_s'] * 1e3:.1f} ms -> fp32/bf16 = {info['fp32_over_bf16']:.2f} | {info['fp32_over_bf16_cpu']:.2f}"
    )
