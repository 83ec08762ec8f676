"""The campaign's committed checkpoints: a paper run longer than one working period continues from a
fresh clone because its checkpoint travels in the repository.

Rule (``textbench campaign stage``): for every run directory under ``runs`` —

* an **unfinished** run with a checkpoint: ``checkpoints/last.pt`` is staged (``git add -f``; the folder is
  ignored otherwise), replacing the previous commit's copy — at most one checkpoint per run;
* a **complete** run whose checkpoint is tracked: the checkpoint is removed from the index (``git rm
  --cached``; the file stays on disk), leaving config, metrics, summary, samples and generator weights.

The other files of a run directory are not ignored and are committed as usual. ``git`` is run with an
argument list (no shell), in the repository that holds ``runs``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import TextbenchError
from .rundir import RunDir


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
