"""The run directory: config.json, metrics.csv, summary.json, samples.txt, checkpoints/.

Where runs go: ``--run-dir`` if given, else ``<results>/runs/<suite>/<algo>/<profile>-seed<N>[-set<h>]/``
where ``<results>`` is ``--results``, else ``$TEXTBENCH_RESULTS``, else the user data directory
(``~/.local/share/textbench/results``). The repository's committed results (``results/``) are therefore
only written when a command names them (``--results results``): an ad-hoc run never lands on a committed
one. ``-set<h>`` (8 hex digits of the SHA-256 of the ``--set`` overrides) keeps runs with different
settings apart.

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

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import textbench

from ..errors import TextbenchError
from ..io import atomic_write_json, atomic_write_text, read_json

LOWER_IS_BETTER = {"nll_oracle", "nll_test", "jsd", "cot_jsd", "bnll"}
HIGHER_IS_BETTER = {f"bleu-{n}" for n in range(2, 6)}


#: every name a run directory may hold (``--force`` deletes nothing else, and nothing that has anything else)
RUN_FILES = {"config.json", "metrics.csv", "summary.json", "samples.txt", "generator.pt", "checkpoints", ".lock"}
CONFIG_KEYS = ("algo", "suite", "profile", "seed", "settings")


def user_results_dir() -> Path:
    """``$TEXTBENCH_RESULTS``, else ``<user data dir>/results``: where runs go unless a command names a place."""
    if os.environ.get("TEXTBENCH_RESULTS"):
        return Path(os.environ["TEXTBENCH_RESULTS"])
    import platformdirs

    return Path(platformdirs.user_data_dir("textbench")) / "results"


def overrides_hash(overrides: dict) -> str:
    """8 hex digits identifying a set of ``--set`` overrides (their resolved values)."""
    text = json.dumps(overrides, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def default_run_dir(root: str | Path, suite: str, algo: str, profile: str, seed: int, overrides: dict | None = None) -> Path:
    name = f"{profile}-seed{seed}" + (f"-set{overrides_hash(overrides)}" if overrides else "")
    return Path(root) / "runs" / suite / algo / name


def read_config(run_dir: Path) -> dict:
    """config.json of a run directory, checked to be a textbench run config (one-line error if not)."""
    path = Path(run_dir) / "config.json"
    cfg = read_json(path)
    if not isinstance(cfg, dict):
        raise TextbenchError(f"{path} is not a textbench run config (a {type(cfg).__name__}, not an object)")
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise TextbenchError(f"{path} is not a textbench run config (missing {missing[0]!r})")
    if not isinstance(cfg["settings"], dict):
        raise TextbenchError(f"{path} is not a textbench run config ('settings' is not an object)")
    return cfg


def status(run_dir: Path) -> str:
    """``absent`` (no directory or empty), ``complete``, ``in progress`` (config.json, not complete) or
    ``foreign`` (a directory with files but no textbench config.json)."""
    d = Path(run_dir)
    if not d.is_dir() or not any(d.iterdir()):
        return "absent"
    if not (d / "config.json").is_file():
        return "foreign"
    summary = d / "summary.json"
    if summary.is_file():
        try:
            if json.loads(summary.read_text(encoding="utf-8")).get("complete") is True:
                return "complete"
        except (ValueError, UnicodeDecodeError, AttributeError):
            pass
    return "in progress"


def remove_run(run_dir: Path) -> None:
    """Delete a run directory (``--force``) only if it is a textbench run directory and holds nothing else."""
    d = Path(run_dir)
    read_config(d)
    others = sorted(p.name for p in d.iterdir() if p.name not in RUN_FILES and not _is_tmp(p.name))
    if others:
        raise TextbenchError(f"{d}: --force refused, the directory holds files that are not a run's ({', '.join(others[:3])})")
    shutil.rmtree(d)


def _is_tmp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def clean_tmp(run_dir: Path) -> None:
    """Remove temporary files left by a write that was killed (``.<name>.*.tmp``)."""
    for folder in (Path(run_dir), Path(run_dir) / "checkpoints"):
        if folder.is_dir():
            for p in folder.iterdir():
                if _is_tmp(p.name) and p.is_file():
                    p.unlink(missing_ok=True)


@contextlib.contextmanager
def lock(run_dir: Path):
    """Hold an exclusive lock on a run directory (``.lock``, flock): one writer at a time."""
    import fcntl

    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / ".lock"
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise TextbenchError(f"{d} is in use by another textbench process (pid {holder}); wait for it or use another --run-dir") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        f.close()


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
        # the vector kernels torch dispatches to (AVX512 / AVX2 / DEFAULT ...): float results, and so the
        # sampled tokens, are bit-identical only between machines (and threads counts) that match
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def segment(start_step: int) -> dict[str, Any]:
    """One stretch of a run made by one process: its step range and the machine that made it."""
    env = environment()
    return {"start_step": start_step, "end_step": None, "torch": env["torch"], "threads": env["torch_threads"],
            "cpu_capability": env["cpu_capability"], "cpu": env["cpu"],
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}


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
        "command": shlex.join(["textbench"] + sys.argv[1:]) if Path(sys.argv[0]).name == "textbench" else None,
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
