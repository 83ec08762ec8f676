"""GPU smoke check: every algorithm trains a few steps on the device, then CoT iterations per second.

    python benchmarks/gpu_smoke.py                 # on a machine with CUDA (device cuda)
    python benchmarks/gpu_smoke.py --device cpu    # the same checks on the CPU (tests this script)

Prints one line per algorithm (ok, with seconds, or the error's first line) and the CoT rate at paper
settings; exits 1 if any algorithm failed. Uses the offline seeded oracle at small sizes, so no data is
needed; the CoT rate uses paper sizes (V = 5000, L = 20, batch 64) on the same seeded oracle.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from textbench.engine.loop import Run, build, resolve_settings, train
from textbench.registry import ALGORITHMS

TINY = {"oracle": "seeded", "oracle_vocab": 50, "oracle_len": 8, "n_train": 256, "n_test": 256, "eval_samples": 128,
        "final_samples": 64, "batch_size": 32, "eval_every": 2}


def smoke(algo: str, device: str, root: Path) -> str:
    settings = dict(TINY, device=device)
    full = resolve_settings(algo, "synthetic", "quick", settings)
    steps = min(3, int(full["steps"]))
    t = time.perf_counter()
    train(Run(algo, "synthetic", "quick", 0, {**settings, "steps": full["steps"]}, root / algo), progress=False,
          stop_at_step=steps, log=lambda _m: None)
    return f"ok   {algo:<10} {steps} steps in {time.perf_counter() - t:.1f} s"


def cot_rate(device: str, iterations: int) -> float:
    settings = resolve_settings("cot", "synthetic", "paper", {"oracle": "seeded", "device": device})
    _suite, cot = build("cot", "synthetic", settings, 0)
    cot.train_step(1)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for step in range(2, iterations + 2):
        cot.train_step(step)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return iterations / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--cot-iterations", type=int, default=50)
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"no CUDA device (torch {torch.__version__}); run with --device cpu to check the script itself")
        return 2
    failed = 0
    with tempfile.TemporaryDirectory(prefix="textbench-gpu-smoke-") as tmp:
        for algo in sorted(e.name for e in ALGORITHMS.entries()):
            try:
                print(smoke(algo, args.device, Path(tmp)), flush=True)
            except Exception as e:  # report and go on: the point is the list of what works on the device
                failed += 1
                print(f"FAIL {algo:<10} {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
    rate = cot_rate(args.device, args.cot_iterations)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"CoT paper settings on {name}: {rate:.1f} iterations/s ({1000 / rate:.0f} ms each)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
