"""Two runs of one thread, or one run of two threads? (issue: speed, item 4)

Run on an otherwise idle machine: ``pytest benchmarks/test_bench_threads.py --benchmark-only -s``. Times CoT
iterations at paper settings (the campaign's dominant cost) in fresh processes: two one-thread processes side
by side (each ``N`` iterations; the campaign's way of using two cores) against one two-thread process doing
``2N`` iterations, and one one-thread process alone (the single-core reference). Prints the iterations per
second of the machine in each arrangement. Needs the SeqGAN oracle (``TEXTBENCH_DATA``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from test_bench_eval import needs_oracle

N = 60  # iterations per one-thread process (after 5 warm-up iterations)

WORKER = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from textbench.engine.loop import build, resolve_settings
s = resolve_settings("cot", "synthetic", "paper")
_, cot = build("cot", "synthetic", s, 0)
for step in range(1, 6):
    cot.train_step(step)
t = time.perf_counter()
for step in range(6, 6 + int(sys.argv[2])):
    cot.train_step(step)
print(time.perf_counter() - t)
"""


def _spawn(threads: int, iterations: int) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.Popen([sys.executable, "-c", WORKER, str(threads), str(iterations)], env=env, stdout=subprocess.PIPE, text=True)


def _seconds(procs: list[subprocess.Popen]) -> list[float]:
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=1800)
        assert p.returncode == 0
        out.append(float(stdout.strip().splitlines()[-1]))
    return out


@needs_oracle
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_two_one_thread_runs_or_one_two_thread_run(benchmark):
    def measure():
        alone = _seconds([_spawn(1, N)])[0]
        pair = _seconds([_spawn(1, N), _spawn(1, N)])
        double = _seconds([_spawn(2, 2 * N)])[0]
        return alone, pair, double

    t0 = time.perf_counter()
    alone, pair, double = benchmark.pedantic(measure, rounds=1, iterations=1)
    rates = {
        "one 1-thread process (one core)": N / alone,
        "two 1-thread processes side by side": 2 * N / max(pair),
        "one 2-thread process": 2 * N / double,
    }
    benchmark.extra_info.update({k: round(v, 3) for k, v in rates.items()} | {"iterations": N})
    print(f"\nCoT iterations per second of the machine (paper settings, {N} per one-thread process; "
          f"{time.perf_counter() - t0:.0f} s in all):")
    for k, v in rates.items():
        print(f"  {k}: {v:.2f} it/s ({1000 / v:.0f} ms per iteration of the machine)")
    two = rates["two 1-thread processes side by side"] / rates["one 2-thread process"]
    print(f"  two 1-thread runs / one 2-thread run = {two:.2f}x the throughput")
    assert all(v > 0 for v in rates.values())
