"""The run directory: :class:`RunDir` owns its layout and is the only code that reads or writes its files.

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
        .lock           held (flock) by the one process writing the run; holds its pid

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
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import textbench

from ..errors import TextbenchError
from ..io import atomic_torch_save, atomic_write_json, atomic_write_text, read_json, safe_torch_load
from ..metrics.catalogue import metric

if TYPE_CHECKING:  # pandas, numpy and torch are imported where used: the CLI imports this module at start-up
    import pandas as pd

CONFIG_KEYS = ("algo", "suite", "profile", "seed", "settings")
#: a run directory's name: <profile>-seed<N>, with -set<8 hex> when the run has --set overrides (:func:`default_run_dir`)
RUN_NAME_RE = re.compile(r"^(?P<profile>.+?)-seed(?P<seed>\d+)(?:-set[0-9a-f]{8})?$")


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
    """``<root>/runs/<suite>/<algo>/<profile>-seed<N>[-set<h>]``."""
    name = f"{profile}-seed{seed}" + (f"-set{overrides_hash(overrides)}" if overrides else "")
    return Path(root) / "runs" / suite / algo / name


class RunDir:
    """One run directory: its file names, its state, and every read and write of its files."""

    CONFIG = "config.json"
    METRICS = "metrics.csv"
    SUMMARY = "summary.json"
    SAMPLES = "samples.txt"
    GENERATOR = "generator.pt"
    CHECKPOINTS = "checkpoints"
    CHECKPOINT = f"{CHECKPOINTS}/last.pt"
    LOCK = ".lock"
    #: every name a run directory may hold (``--force`` deletes nothing else, and nothing that has anything else)
    NAMES = frozenset({CONFIG, METRICS, SUMMARY, SAMPLES, GENERATOR, CHECKPOINTS, LOCK})

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def find(cls, root: str | os.PathLike) -> list[RunDir]:
        """Every directory under ``root`` that holds a config.json (none inside checkpoints/), sorted."""
        found = sorted(p.parent for p in Path(root).rglob(cls.CONFIG) if cls.CHECKPOINTS not in p.parts)
        return [cls(d) for d in found]

    # -- paths ---------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def samples_path(self) -> Path:
        return self.path / self.SAMPLES

    @property
    def generator_path(self) -> Path:
        return self.path / self.GENERATOR

    @property
    def checkpoint_path(self) -> Path:
        return self.path / self.CHECKPOINT

    # -- state ---------------------------------------------------------------------------------------
    def status(self) -> str:
        """``absent`` (no directory, or one holding nothing but textbench's ``.lock`` and temporary files: a run
        killed before it wrote config.json), ``foreign`` (other files but no config.json: not a run),
        ``complete`` (summary.json says ``"complete": true``) or ``in progress`` (any other run: running,
        stopped, killed or failed; resumable if it has a checkpoint)."""
        d = self.path
        if not d.is_dir() or all(p.name == self.LOCK or (_is_tmp(p.name) and p.is_file()) for p in d.iterdir()):
            return "absent"
        if not self.config_path.is_file():
            return "foreign"
        if self.summary_path.is_file():
            try:
                if json.loads(self.summary_path.read_text(encoding="utf-8")).get("complete") is True:
                    return "complete"
            except (ValueError, UnicodeDecodeError, AttributeError):
                pass
        return "in progress"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    # -- reading -------------------------------------------------------------------------------------
    def read_config(self) -> dict:
        """config.json, checked to be a textbench run config (one-line error if not)."""
        path = self.config_path
        cfg = read_json(path)
        if not isinstance(cfg, dict):
            raise TextbenchError(f"{path} is not a textbench run config (a {type(cfg).__name__}, not an object)")
        missing = [k for k in CONFIG_KEYS if k not in cfg]
        if missing:
            raise TextbenchError(f"{path} is not a textbench run config (missing {missing[0]!r})")
        if not isinstance(cfg["settings"], dict):
            raise TextbenchError(f"{path} is not a textbench run config ('settings' is not an object)")
        return cfg

    def read_summary(self) -> Any:
        return read_json(self.summary_path)

    def read_metrics(self) -> list[dict[str, float]]:
        """metrics.csv as rows (see :func:`read_metrics`)."""
        return read_metrics(self.metrics_path)

    def read_metrics_frame(self) -> pd.DataFrame:
        """metrics.csv as a checked pandas frame (see :func:`read_metrics_frame`)."""
        return read_metrics_frame(self.metrics_path)

    def read_checkpoint(self) -> Any:
        """checkpoints/last.pt, loaded weights-only; its content is the caller's to check."""
        return safe_torch_load(self.checkpoint_path)

    def read_generator(self) -> Any:
        """generator.pt, loaded weights-only; its content is the caller's to check."""
        return safe_torch_load(self.generator_path)

    def read_weights(self, checkpoint: str | os.PathLike | None = None) -> tuple[Path, Any]:
        """(path, content) of ``checkpoint`` (default: checkpoints/last.pt), or of generator.pt where that
        file does not exist; loaded weights-only, the content is the caller's to check."""
        path = Path(checkpoint) if checkpoint else self.checkpoint_path
        if not path.exists():
            path = self.generator_path
        return path, safe_torch_load(path)

    def inspect(self) -> RunContents:
        """Everything the directory holds, read without raising: its identity from its place
        (``<suite>/<algo>/<profile>-seed<N>[-set<h>]``), config, summary and metrics; every problem is
        recorded in ``errors`` (unreadable or inconsistent) or ``incomplete`` (not finished)."""
        path = self.path
        m = RUN_NAME_RE.match(path.name)
        profile, seed = (m.group("profile"), int(m.group("seed"))) if m else (path.name, None)
        run = RunContents(path=path, suite=path.parent.parent.name, algo=path.parent.name, profile=profile, seed=seed)
        if m is None:
            run.errors.append(f"directory name {path.name!r} is not <profile>-seed<N>[-set<hash>]")
        cfg, err = _try_json(self.config_path)
        if err:
            run.errors.append(err)
        elif not isinstance(cfg, dict):
            run.errors.append(f"{self.CONFIG} is not a JSON object")
        else:
            run.config = cfg
            for key, ours in (("suite", run.suite), ("algo", run.algo), ("profile", run.profile), ("seed", run.seed)):
                if key not in cfg:
                    run.errors.append(f"{self.CONFIG} has no {key!r}")
                elif str(cfg[key]) != str(ours):
                    run.errors.append(f"{self.CONFIG} says {key} = {cfg[key]!r} but the directory says {ours!r}")
        summ, err = _try_json(self.summary_path)
        if err and "missing" in err:
            run.incomplete = f"no {self.SUMMARY} (running, killed or never finished)"
        elif err:
            run.errors.append(err)
        elif not isinstance(summ, dict):
            run.errors.append(f"{self.SUMMARY} is not a JSON object")
        else:
            run.summary = summ
            if summ.get("complete") is not True:
                run.incomplete = f"{self.SUMMARY} complete = {summ.get('complete')!r} (at step {summ.get('steps')})"
        if self.metrics_path.is_file():
            try:
                run.metrics = read_metrics_frame(self.metrics_path)
            except TextbenchError as e:
                run.errors.append(str(e).replace(str(path) + "/", ""))
        elif run.incomplete is None:
            run.errors.append(f"{self.METRICS} missing")
        return run

    # -- writing -------------------------------------------------------------------------------------
    def write_config(self, cfg: dict) -> None:
        atomic_write_json(self.config_path, cfg)

    def write_metrics(self, rows: list[dict[str, float]]) -> None:
        atomic_write_text(self.metrics_path, rows_to_csv(rows))

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.summary_path, summary)

    def read_samples(self) -> list[str]:
        """samples.txt, one sample per line (as ``write_samples`` wrote them)."""
        return self.samples_path.read_text(encoding="utf-8").splitlines()

    def write_samples(self, lines: list[str]) -> None:
        """samples.txt: one sequence per line."""
        atomic_write_text(self.samples_path, "\n".join(lines) + "\n")

    def write_generator(self, state_dict: dict) -> None:
        """generator.pt: the generator's weights, on the CPU."""
        atomic_torch_save({k: v.detach().cpu() for k, v in state_dict.items()}, self.generator_path)

    def write_checkpoint(self, state: dict) -> None:
        atomic_torch_save(state, self.checkpoint_path)

    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on the directory (``.lock``, flock): one writer at a time."""
        import fcntl

        d = self.path
        d.mkdir(parents=True, exist_ok=True)
        path = d / self.LOCK
        for _ in range(10):
            f = open(path, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "?"
                f.close()
                raise TextbenchError(f"{d} is in use by another textbench process (pid {holder}); wait for it or use another --run-dir") from None
            if _same_file(f, path):
                break
            # the holder released and unlinked this file between our open and our flock: a newer .lock may
            # exist (another process's); lock whatever is at the path now
            f.close()
        else:
            raise TextbenchError(f"{d}: could not take its lock (.lock keeps being replaced)")
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

    def clean_tmp(self) -> None:
        """Remove temporary files left by a write that was killed (``.<name>.*.tmp``)."""
        for folder in (self.path, self.path / self.CHECKPOINTS):
            if folder.is_dir():
                for p in folder.iterdir():
                    if _is_tmp(p.name) and p.is_file():
                        p.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the run (``--force``, under :meth:`lock`) only if it is a textbench run directory and holds
        nothing else: its files go; ``.lock`` (the caller's lock) stays, and the directory with it."""
        d = self.path
        self.read_config()
        others = sorted(p.name for p in d.iterdir() if p.name not in self.NAMES and not _is_tmp(p.name))
        if others:
            raise TextbenchError(f"{d}: --force refused, the directory holds files that are not a run's ({', '.join(others[:3])})")
        self.clear()
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty

    def clear(self) -> None:
        """Delete the run's own files and temporary files, nothing else (not ``.lock``, not anyone's other files)."""
        own = self.NAMES - {self.LOCK}
        for p in self.path.iterdir():
            if p.name in own and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.name in own or (_is_tmp(p.name) and p.is_file()):
                p.unlink()


@dataclass
class RunContents:
    """What a run directory holds, read without raising (:meth:`RunDir.inspect`)."""

    path: Path
    suite: str
    algo: str
    profile: str
    seed: int | None
    config: dict | None = None
    summary: dict | None = None
    metrics: pd.DataFrame | None = None
    errors: list[str] = field(default_factory=list)  # unreadable or inconsistent: never counted
    incomplete: str | None = None  # why the run is not finished (if it is not)

    @property
    def complete(self) -> bool:
        return not self.errors and self.incomplete is None

    @property
    def status(self) -> str:
        """``complete``, ``incomplete: <why>`` or ``error: <problems>``."""
        if self.errors:
            return "error: " + "; ".join(self.errors)
        if self.incomplete is not None:
            return "incomplete: " + self.incomplete
        return "complete"


def _same_file(f, path: Path) -> bool:
    """Whether the open file ``f`` is still the file at ``path`` (not unlinked or replaced since it was opened)."""
    try:
        return os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _is_tmp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _try_json(path: Path) -> tuple[Any, str | None]:
    """(content, None), or (None, why not) naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, f"{path.name} missing"
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"{path.name} is not valid JSON ({e})"


def is_timing_column(name: str) -> bool:
    """Timing columns (``wall_s`` and any other ``*_s``) are not reproducible and never compared."""
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
    import numpy as np
    import torch

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
    """One stretch of a run made by one process: its step range, the machine and the code that made it (a run
    resumed after a code change records the new commit here; the config's top-level ``git_commit`` is the one
    that started the run)."""
    env = environment()
    commit, dirty = git_info()
    return {"start_step": start_step, "end_step": None, "torch": env["torch"], "threads": env["torch_threads"],
            "cpu_capability": env["cpu_capability"], "cpu": env["cpu"], "git_commit": commit, "git_dirty": dirty,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def make_config(algo: str, suite: str, profile: str, seed: int, settings: dict, overrides: dict, suite_signature: dict) -> dict:
    """A new run's config.json (without its ``segments``)."""
    import torch

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
    """A metrics.csv as rows: ``step`` an int, every other non-empty cell a float (empty cells left out)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k: (int(v) if k == "step" else float(v)) for k, v in row.items() if v != ""}
            for row in csv.DictReader(f)
        ]


def read_metrics_frame(path: str | Path) -> pd.DataFrame:
    """A metrics.csv as a checked frame: numeric columns, empty cell = NaN, ``step`` a strictly increasing
    integer column (one-line error otherwise)."""
    import numpy as np
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise TextbenchError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise TextbenchError(f"{path}: unreadable CSV ({type(e).__name__}: {e})".replace("\n", " ")) from None
    if "step" not in df.columns:
        raise TextbenchError(f"{path}: no 'step' column")
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            bad = pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()
            if bad.any():
                raise TextbenchError(f"{path}: column {c!r} has a non-numeric value {df.loc[bad, c].iloc[0]!r}")
            df[c] = pd.to_numeric(df[c])
        df[c] = df[c].astype(float)
    if df["step"].isna().any() or (df["step"] != df["step"].round()).any():
        raise TextbenchError(f"{path}: 'step' must be an integer in every row")
    df["step"] = df["step"].astype(np.int64)
    if not df["step"].is_monotonic_increasing or df["step"].duplicated().any():
        raise TextbenchError(f"{path}: steps are not strictly increasing")
    return df


def summarize(rows: list[dict[str, float]], steps: int, wall_s: float, complete: bool, extra: dict | None = None) -> dict:
    """A run's summary.json: final and best (with its step) of every metric, steps, wall time, completeness.

    Best: by the metric's catalogue direction (metrics/catalogue.py); none for a metric without one (Self-BLEU,
    RS-BLEU, standard errors) or a logged loss."""
    final, best, best_step = {}, {}, {}
    for row in rows:
        for k, v in row.items():
            if k in ("step",) or is_timing_column(k):
                continue
            final[k] = v
            info = metric(k)
            if info is not None and info.direction is not None and (k not in best or info.better(v, best[k])):
                best[k], best_step[k] = v, row["step"]
    return {"final": final, "best": best, "best_step": best_step, "steps": steps, "wall_s": wall_s, "complete": complete, **(extra or {})}
