"""Replay a committed run for its first evaluations, to prove its numbers come from this code."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import torch

from ..io import read_json
from .loop import Run, train
from .rundir import read_metrics


def replay_run(run_dir: Path, max_evals: int = 2) -> pd.DataFrame:
    """Re-run ``run_dir`` from its own config.json up to its ``max_evals``-th evaluation after step 0.

    Returns the metrics rows it produces (same columns as the run's metrics.csv).
    """
    cfg = read_json(Path(run_dir) / "config.json")
    settings = cfg["settings"]
    stop = min(int(settings["steps"]), int(settings["eval_every"]) * max_evals)
    # float reductions depend on the number of intra-op threads: replay with the run's own count
    threads = torch.get_num_threads()
    torch.set_num_threads(int(cfg.get("versions", {}).get("torch_threads", threads)))
    try:
        with tempfile.TemporaryDirectory(prefix="textbench-replay-") as tmp:
            run = Run(cfg["algo"], cfg["suite"], cfg["profile"], cfg["seed"], overrides=settings, run_dir=Path(tmp) / "run")
            train(run, progress=False, stop_at_step=stop, log=lambda _msg: None)
            rows = read_metrics(Path(tmp) / "run" / "metrics.csv")
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)
