"""What evaluation costs in a paper run (issue: Table 1 at paper scale, evaluation cadence).

Run: ``OMP_NUM_THREADS=1 pytest benchmarks/test_bench_eval.py --benchmark-only -s``. Times one evaluation of
the synthetic suite at the paper's 9,984 samples (NLL_oracle, NLL_test, exact JSD, CoT's estimator) and one
CoT iteration at paper settings in the same process, and prints the share of a 200,000-iteration CoT run
that evaluation takes at the official cadence (every 100 iterations) and at textbench's paper profile's
(every 1,000). Needs the SeqGAN oracle file (``TEXTBENCH_DATA``).
"""

from __future__ import annotations

import time

import pytest
import torch

from textbench.engine.loop import build, resolve_settings

ITERATIONS = 200_000


def _data_available() -> bool:
    from textbench import data

    try:
        data.locate("synthetic/seqgan_oracle.npz")
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _data_available(), reason="needs the SeqGAN oracle (TEXTBENCH_DATA)")
def test_evaluation_share_of_a_cot_paper_run(benchmark):
    settings = resolve_settings("cot", "synthetic", "paper")
    suite, cot = build("cot", "synthetic", settings, 0)
    g = cot.modules()["generator"]

    def evaluate():
        suite.evaluate(g, 123, int(settings["eval_samples"]))

    eval_s = benchmark.pedantic(evaluate, rounds=2, iterations=1)
    eval_s = min(benchmark.stats.stats.data)
    cot.train_step(1)  # warm-up
    times = []
    for step in range(2, 7):
        t = time.perf_counter()
        cot.train_step(step)
        times.append(time.perf_counter() - t)
    iter_s = min(times)
    train_h = ITERATIONS * iter_s / 3600
    info = {"eval_s": eval_s, "cot_iteration_s": iter_s, "train_hours": train_h}
    for every in (100, 1000):
        eval_h = ITERATIONS // every * eval_s / 3600
        info[f"eval_hours_every_{every}"] = eval_h
        info[f"eval_share_every_{every}"] = eval_h / (eval_h + train_h)
    benchmark.extra_info.update(info)
    print(f"\none evaluation of {settings['eval_samples']} samples: {eval_s:.1f} s; CoT iteration {1000 * iter_s:.0f} ms "
          f"({train_h:.1f} h of training for {ITERATIONS:,} iterations)")
    for every in (100, 1000):
        print(f"  every {every:>4} iterations: {info[f'eval_hours_every_{every}']:.1f} h of evaluation = "
              f"{100 * info[f'eval_share_every_{every}']:.0f} % of the run")
    assert eval_s > 0 and torch.isfinite(torch.tensor(iter_s))
