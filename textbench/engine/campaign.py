"""The campaign's committed checkpoints: a paper run longer than one working period continues from a
fresh clone because its checkpoint travels in the repository.

Rule (``textbench campaign stage``): for every run directory under ``runs`` —

* an **unfinished** run with a checkpoint: ``checkpoints/last.pt`` is staged (``git add -f``; the folder is
  ignored otherwise), replacing the previous commit's copy — at most one checkpoint per run;
* a **complete** run whose checkpoint is tracked: the checkpoint is removed from the index (``git rm
  --cached``; the file stays on disk), leaving config, metrics, summary, samples and generator weights.

The other files of a run directory are not ignored and are committed as usual. ``git`` is run with an
argument list (no shell), in the repository that holds ``runs``.

``textbench campaign status`` lists the unfinished runs with the command that continues each
(:func:`resume_command`: its algorithm, suite, profile, seed and ``--set`` overrides from config.json, the
thread count of its last segment), so a fresh clone needs no notes to carry the campaign on.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ..errors import TextbenchError
from .rundir import RunDir, default_run_dir


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise TextbenchError(f"git {' '.join(args[:2])} failed: {e}") from None


def stage(runs: Path) -> list[str]:
    """Stage or unstage each run's checkpoint as the rule above says; returns one line per action."""
    runs = Path(runs).resolve()
    top = _git(runs, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise TextbenchError(f"{runs} is not inside a git repository")
    repo = Path(top.stdout.strip())
    lines = []
    for rd in RunDir.find(runs):
        ckpt = rd.checkpoint_path
        rel = str(ckpt.relative_to(repo))
        tracked = _git(repo, "ls-files", "--error-unmatch", rel).returncode == 0
        state = rd.status()
        if state == "in progress" and ckpt.is_file():
            out = _git(repo, "add", "-f", rel)
            if out.returncode != 0:
                raise TextbenchError(f"git add {rel}: {out.stderr.strip()}")
            lines.append(f"staged   {rel} ({ckpt.stat().st_size / 1e6:.1f} MB)")
        elif state == "complete" and tracked:
            out = _git(repo, "rm", "--cached", "-q", rel)
            if out.returncode != 0:
                raise TextbenchError(f"git rm --cached {rel}: {out.stderr.strip()}")
            lines.append(f"dropped  {rel} (run complete)")
    return lines


def _set_text(value) -> str:
    """A setting's value as ``--set`` parses it back (lists and numbers as JSON, text as itself)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def resume_command(rd: RunDir, cwd: str | os.PathLike | None = None) -> list[str]:
    """The argument list of the ``textbench run`` that continues the run in ``rd`` (shell-quote it to show it):
    ``--results ROOT`` when ``rd`` is the default directory of its settings under ROOT (else ``--run-dir``), paths
    relative to ``cwd`` (default: the current directory) where they lie under it."""
    cfg = rd.read_config()
    over = cfg.get("overrides") or {}
    here = Path(cwd or Path.cwd()).resolve()

    def shown(p: Path) -> str:
        p = p.resolve()
        return str(p.relative_to(here)) if p.is_relative_to(here) else str(p)

    argv = ["textbench", "run", "--algo", str(cfg["algo"]), "--suite", str(cfg["suite"]),
            "--profile", str(cfg["profile"]), "--seed", str(cfg["seed"])]
    for key in sorted(over):
        argv += ["--set", f"{key}={_set_text(over[key])}"]
    root = rd.path.resolve().parents[3] if len(rd.path.resolve().parents) > 3 else None
    if root is not None and default_run_dir(root, cfg["suite"], cfg["algo"], cfg["profile"], cfg["seed"], over).resolve() == rd.path.resolve():
        argv += ["--results", shown(root)]
    else:
        argv += ["--run-dir", shown(rd.path)]
    argv.append("--resume")
    segments = cfg.get("segments") or []
    threads = segments[-1].get("threads") if segments and isinstance(segments[-1], dict) else None
    if isinstance(threads, int) and threads > 0:
        argv += ["--threads", str(threads)]
    return argv


def unfinished(runs: Path) -> list[RunDir]:
    """The run directories under ``runs`` that are in progress (running, stopped or killed)."""
    return [rd for rd in RunDir.find(runs) if rd.status() == "in progress"]
