"""Replay a committed run for its first evaluations, to prove its numbers come from this code.

A replay trains the run again from its own config.json, in a temporary directory, up to its K-th evaluation
after step 0, with the intra-op thread count of the process that recorded those steps. Its rows are
bit-identical to the committed ones only on the same float kernels: torch's CPU capability (AVX512, AVX2,
DEFAULT, ...; ``ATEN_CPU_CAPABILITY`` lowers it for a process), the same torch version and the same thread
count. :func:`recorded_machine` says what recorded the replayed steps and :func:`this_machine` what replays
them; ``textbench.reports.regress`` compares exactly when they match and within Monte-Carlo error otherwise.
A replay whose suite data has other fingerprints than the run's (``check_same_data``) is refused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..registry import SUITES
from .loop import Run, check_same_data, train
from .rundir import RunDir


def this_machine() -> dict[str, Any]:
    """What decides bit-identical floats here: torch's CPU capability (as dispatched, after
    ``ATEN_CPU_CAPABILITY``) and the torch version. The replay sets the thread count itself."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def replay_last_step(cfg: dict, max_evals: int) -> int:
    """The last training step a replay of ``max_evals`` evaluation intervals runs (0 = the whole run)."""
    settings = cfg["settings"]
    steps = int(settings["steps"])
    return steps if max_evals <= 0 else min(steps, int(settings["eval_every"]) * int(max_evals))


def recorded_machine(cfg: dict, last_step: int) -> dict[str, Any]:
    """The machine that recorded steps 0..``last_step`` of a run, from its config.json.

    Keys ``cpu_capability``, ``torch``, ``threads`` (None where not recorded: configs older than the field)
    and ``mixed`` (None, or why no single machine made those steps: a run resumed by processes on other
    CPUs, torch versions or thread counts). Runs record one ``segments`` entry per training process (steps
    ``start_step`` < s ≤ ``end_step``; the first also evaluated step 0); older ones only ``versions``.
    """
    versions = cfg.get("versions") if isinstance(cfg.get("versions"), dict) else {}
    segs = [s for s in cfg.get("segments") or [] if isinstance(s, dict)]
    segs = [s for i, s in enumerate(segs) if i == 0 or int(s.get("start_step") or 0) < last_step]
    if not segs:
        return {"cpu_capability": versions.get("cpu_capability"), "torch": versions.get("torch"),
                "threads": versions.get("torch_threads"), "mixed": None}
    kinds = {(s.get("cpu_capability"), s.get("torch"), s.get("threads")) for s in segs}
    first = segs[0]
    out = {"cpu_capability": first.get("cpu_capability", versions.get("cpu_capability")),
           "torch": first.get("torch", versions.get("torch")),
           "threads": first.get("threads", versions.get("torch_threads")), "mixed": None}
    if len(kinds) > 1:
        made = "; ".join(f"steps from {int(s.get('start_step') or 0)}: {s.get('cpu_capability')}, torch {s.get('torch')}, "
                         f"{s.get('threads')} thread(s)" for s in segs)
        out["mixed"] = f"steps 0..{last_step} were made by processes that differ ({made})"
    return out


def replay_run(run_dir: Path, max_evals: int = 2) -> pd.DataFrame:
    """Re-run ``run_dir`` from its own config.json up to its ``max_evals``-th evaluation after step 0
    (0 = the whole run).

    Returns the metrics rows it produces (same columns as the run's metrics.csv).
    """
    cfg = RunDir(run_dir).read_config()
    settings = cfg["settings"]
    stop = replay_last_step(cfg, max_evals)
    # float reductions depend on the number of intra-op threads: replay with the run's own count
    threads = torch.get_num_threads()
    recorded = recorded_machine(cfg, stop)["threads"]
    torch.set_num_threads(int(recorded) if recorded else threads)
    try:
        # the data first: a replay on other data would prove nothing, so refuse it before training, not after
        check_same_data(RunDir(run_dir).config_path, cfg, SUITES.get(cfg["suite"])(settings).signature())
        with tempfile.TemporaryDirectory(prefix="textbench-replay-") as tmp:
            run = Run(cfg["algo"], cfg["suite"], cfg["profile"], cfg["seed"], overrides=settings, run_dir=Path(tmp) / "run")
            train(run, progress=False, stop_at_step=stop, log=lambda _msg: None)
            rows = RunDir(run.run_dir).read_metrics()
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)
