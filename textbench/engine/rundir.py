"""The run directory: config.json, metrics.csv, summary.json, samples.txt, checkpoints/.

    results/runs/<suite>/<algo>/<profile>-seed<N>/
        config.json     fully resolved settings, seed, versions, git commit, device, command
        metrics.csv     one row per evaluation: step, wall_s, every metric (full float precision)
        summary.json    final and best value of every metric, wall time, completeness
        samples.txt     the final generator samples, one sequence per line
        generator.pt    the final generator's weights (small; for ``textbench generate``)
        checkpoints/last.pt   full training state (models, optimizers, RNGs, data position, history)

Every file is written atomically. ``wall_s`` (and any column ending in ``_s``) is a timing column:
the only one that differs between two runs with the same seed on the same device.
"""

from __future__ import annotations

import csv
import io
import math
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import textbench

from ..io import atomic_write_json, atomic_write_text

LOWER_IS_BETTER = {"nll_oracle", "nll_test", "jsd", "cot_jsd", "bnll"}
HIGHER_IS_BETTER = {f"bleu-{n}" for n in range(2, 6)}


def default_run_dir(root: str | Path, suite: str, algo: str, profile: str, seed: int) -> Path:
    return Path(root) / "runs" / suite / algo / f"{profile}-seed{seed}"


def is_timing_column(name: str) -> bool:
    return name.endswith("_s")


def git_info() -> tuple[str | None, bool | None]:
    """(commit, whether the package's code differs from it) of the checkout textbench runs from."""
    root = Path(textbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "textbench"],
            cwd=root, capture_output=True, text=True, timeout=10,
        )
        return commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }


def make_config(algo: str, suite: str, profile: str, seed: int, settings: dict, overrides: dict, suite_signature: dict) -> dict:
    commit, dirty = git_info()
    device = settings.get("device", "cpu")
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name()})"
    return {
        "algo": algo,
        "suite": suite,
        "profile": profile,
        "seed": seed,
        "settings": settings,
        "overrides": overrides,
        "suite_signature": suite_signature,
        "textbench_version": textbench.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": environment(),
        "device": device,
        "command": " ".join(["textbench"] + sys.argv[1:]) if Path(sys.argv[0]).name == "textbench" else None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def rows_to_csv(rows: list[dict[str, float]]) -> str:
    """metrics.csv text: columns step, wall_s, then every other key in first-seen order; full precision."""
    columns: list[str] = ["step", "wall_s"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_fmt(row.get(c)) for c in columns])
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k: (int(v) if k == "step" else float(v)) for k, v in row.items() if v != ""}
            for row in csv.DictReader(f)
        ]


def summarize(rows: list[dict[str, float]], steps: int, wall_s: float, complete: bool, extra: dict | None = None) -> dict:
    final, best, best_step = {}, {}, {}
    for row in rows:
        for k, v in row.items():
            if k in ("step",) or is_timing_column(k):
                continue
            final[k] = v
            better = (k in LOWER_IS_BETTER and (k not in best or v < best[k])) or (
                k in HIGHER_IS_BETTER and (k not in best or v > best[k])
            )
            if better:
                best[k], best_step[k] = v, row["step"]
    return {"final": final, "best": best, "best_step": best_step, "steps": steps, "wall_s": wall_s, "complete": complete, **(extra or {})}


def write_metrics(run_dir: Path, rows: list[dict[str, float]]) -> None:
    atomic_write_text(run_dir / "metrics.csv", rows_to_csv(rows))


def write_summary(run_dir: Path, summary: dict) -> None:
    atomic_write_json(run_dir / "summary.json", summary)
