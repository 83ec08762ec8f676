"""What evaluation costs in a paper run (issue: Table 1 at paper scale, evaluation cadence).

Run: ``OMP_NUM_THREADS=1 pytest benchmarks/test_bench_eval.py --benchmark-only -s``. Needs the SeqGAN oracle
file (``TEXTBENCH_DATA``).

* ``test_scoring_pass_against_whole_batch_reference``: one teacher-forced scoring pass of 9,984 sequences
  (``token_log_probs``: LSTM, output layer, log-softmax, gather) in cache-sized row blocks against the
  reference — the output layer and log-softmax on whole [1024, 20, 5000] batches, as before — in the same
  process; the numbers are the same bit for bit (asserted), and the matrix product alone is the floor.
* ``test_evaluation_share_of_a_cot_paper_run``: one full evaluation of the synthetic suite at 9,984 samples
  (NLL_oracle, NLL_test, exact JSD, CoT's estimator: 7 sampling/scoring passes), one light one (NLL_oracle and
  NLL_test: 3 passes) and one CoT iteration at paper settings, and the share of a 200,000-iteration run that
  evaluation takes at the paper profile's cadence (light every 100 iterations, full every 1,000), at the
  official cadence with every evaluation full, and at full-every-1,000 alone.
"""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from textbench.engine.loop import build, resolve_settings
from textbench.metrics.likelihood import token_log_probs
from textbench.models.kernels import linear_rows

ITERATIONS = 200_000


def _data_available() -> bool:
    from textbench import data

    try:
        data.locate("synthetic/seqgan_oracle.npz")
        return True
    except Exception:
        return False


needs_oracle = pytest.mark.skipif(not _data_available(), reason="needs the SeqGAN oracle (TEXTBENCH_DATA)")


def best_of(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@torch.no_grad()
def whole_batch_log_probs(model, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The reference: log_softmax over the whole [B, L, V] logits of each 1,024-sequence batch, then gather."""
    model.eval()
    out = [model.log_probs(x[i : i + batch_size]).gather(-1, x[i : i + batch_size, :, None]).squeeze(-1).double()
           for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out)


@needs_oracle
def test_scoring_pass_against_whole_batch_reference(benchmark):
    settings = resolve_settings("cot", "synthetic", "paper")
    suite, _ = build("cot", "synthetic", settings, 0)
    oracle, x = suite.oracle, suite.test[: int(settings["eval_samples"])]
    new = token_log_probs(oracle, x)
    assert torch.equal(new, whole_batch_log_probs(oracle, x))
    benchmark.pedantic(lambda: token_log_probs(oracle, x), rounds=3, iterations=1)
    t_new = benchmark.stats.stats.min
    t_ref = best_of(lambda: whole_batch_log_probs(oracle, x), rounds=2)
    with torch.no_grad():
        h = oracle.lstm(oracle.embedding(oracle.inputs_for(x)))[0].reshape(-1, oracle.lstm.hidden_size)
        out = torch.empty(128, oracle.vocab_size)

        def products():
            for r in range(0, h.shape[0] - 127, 128):
                torch.addmm(oracle.output.bias, h[r : r + 128], oracle.output.weight.t(), out=out)

        def kernel_products():  # the kernel the blocks use (oneDNN where it gives addmm's bits: models/kernels.py)
            for r in range(0, h.shape[0] - 127, 128):
                linear_rows(h[r : r + 128], oracle.output.weight, oracle.output.bias)

        t_mm, t_kernel = best_of(products), best_of(kernel_products)
    flops = 2 * h.shape[0] * h.shape[1] * oracle.vocab_size
    benchmark.extra_info.update({"reference_s": t_ref, "blocked_s": t_new, "matmul_s": t_mm, "kernel_matmul_s": t_kernel,
                                 "speedup": t_ref / t_new})
    print(f"\nscoring 9,984 x 20 tokens: reference (whole batches) {t_ref:.2f} s, row blocks {t_new:.2f} s "
          f"({t_ref / t_new:.1f}x); output-layer product alone: addmm {t_mm:.2f} s ({flops / t_mm / 1e9:.0f} GFLOP/s), "
          f"the blocks' kernel {t_kernel:.2f} s ({flops / t_kernel / 1e9:.0f} GFLOP/s) = {t_new / t_kernel:.2f}x its floor")


@needs_oracle
def test_evaluation_share_of_a_cot_paper_run(benchmark):
    settings = resolve_settings("cot", "synthetic", "paper")
    suite, cot = build("cot", "synthetic", settings, 0)
    g, n = cot.modules()["generator"], int(settings["eval_samples"])
    benchmark.pedantic(lambda: suite.evaluate(g, 123, n), rounds=2, iterations=1)
    full_s = benchmark.stats.stats.min
    light_s = best_of(lambda: suite.evaluate(g, 123, n, full=False), rounds=2)
    cot.train_step(1)  # warm-up
    iter_s = best_of(lambda: cot.train_step(2), rounds=5)
    train_h = ITERATIONS * iter_s / 3600
    every, full_every = int(settings["eval_every"]), int(settings["full_eval_every"])
    n_full = ITERATIONS // full_every
    cadences = {
        f"light every {every}, full every {full_every} (paper profile)": (ITERATIONS // every - n_full) * light_s + n_full * full_s,
        "full every 100": ITERATIONS // 100 * full_s,
        "full every 1000 only": ITERATIONS // 1000 * full_s,
    }
    info = {"full_eval_s": full_s, "light_eval_s": light_s, "cot_iteration_s": iter_s, "train_hours": train_h}
    print(f"\nevaluation of {n} samples: full {full_s:.1f} s, light {light_s:.1f} s; CoT iteration {1000 * iter_s:.0f} ms "
          f"({train_h:.1f} h of training for {ITERATIONS:,} iterations)")
    for name, eval_seconds in cadences.items():
        eval_h = eval_seconds / 3600
        info[name] = {"eval_hours": eval_h, "share": eval_h / (eval_h + train_h)}
        print(f"  {name}: {eval_h:.1f} h of evaluation = {100 * eval_h / (eval_h + train_h):.0f} % of the run")
    benchmark.extra_info.update(info)
    assert light_s < full_s
