"""What a killed process leaves, and a directory another process holds: a directory holding only textbench's
.lock and temporary files is no run (the same command starts there, nothing of the user's is deleted), and
--force takes the lock before it deletes anything (a directory in use: one error line, every file kept)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from textbench.engine.loop import Run, train
from textbench.engine.rundir import RunDir
from textbench.errors import TextbenchError

# takes the directory's lock through RunDir.lock, writes the temporary files named after the directory, says so, sleeps
HOLD = """
import sys, time
from pathlib import Path
from textbench.engine.rundir import RunDir
d = Path(sys.argv[1])
held = RunDir(d).lock()
held.__enter__()
for name in sys.argv[2:]:
    (d / name).write_text("half")
print("locked", flush=True)
time.sleep(600)
"""


def hold_lock(d: Path, *tmp: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(d), *tmp], env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def cli(args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "textbench", *args], env=env, capture_output=True, text=True, timeout=timeout)


def run_args(tiny: dict, d: Path) -> list[str]:
    return ["run", "--algo", "mle", "--suite", "synthetic", "--no-progress", "--run-dir", str(d),
            *sum((["--set", f"{k}={v}"] for k, v in tiny.items()), [])]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_directory_left_with_only_the_lock_and_temporary_files_is_no_run(tiny, tmp_path):
    # SIGKILL of a process holding the lock before it wrote config.json (as `textbench run` building its suite)
    dirs = {}
    for name in ("plain", "force"):
        d = dirs[name] = tmp_path / name
        holder = hold_lock(d, ".config.json.k1.tmp")
        holder.kill()
        holder.wait()
        holder.stdout.close()
        assert sorted(p.name for p in d.iterdir()) == [".config.json.k1.tmp", ".lock"]
        assert RunDir(d).status() == "absent"
    # the same command starts the run there, with or without --force; the leftovers are gone
    for name, extra in (("plain", []), ("force", ["--force"])):
        res = cli(run_args(tiny, dirs[name]) + extra)
        assert res.returncode == 0, res.stderr
        assert RunDir(dirs[name]).status() == "complete"
        assert not list(dirs[name].rglob("*.tmp")) and not (dirs[name] / ".lock").exists()
    # anything else of the user's beside those leftovers: not a run, refused with and without --force, kept
    mine = tmp_path / "mine"
    holder = hold_lock(mine, ".metrics.csv.k2.tmp")
    holder.kill()
    holder.wait()
    holder.stdout.close()
    (mine / "notes.txt").write_text("mine")
    before = files(mine)
    assert RunDir(mine).status() == "foreign"
    for extra in ([], ["--force"]):
        res = cli(run_args(tiny, mine) + extra)
        assert res.returncode != 0
        (line,) = error_lines(res.stderr)
        assert line.startswith("error:") and "not a textbench run directory" in line
        assert files(mine) == before


def test_a_failed_new_run_in_an_existing_directory_deletes_only_its_own_files(tiny, tmp_path, monkeypatch):
    from textbench.suites.synthetic import SyntheticSuite

    def boom(self, *a, **k):
        (d / "notes.txt").write_text("mine")  # the user's file, put there while the run starts
        raise TextbenchError("evaluation failed")

    d = tmp_path / "r"
    d.mkdir()
    monkeypatch.setattr(SyntheticSuite, "evaluate", boom)
    with pytest.raises(TextbenchError, match="evaluation failed"):
        train(Run("mle", "synthetic", "quick", 0, tiny, d), progress=False, log=lambda _m: None)
    assert files(d) == {"notes.txt": b"mine"}


def test_force_on_a_directory_in_use_deletes_nothing(tiny, tmp_path):
    d = tmp_path / "r"
    res = cli(run_args(tiny, d) + ["--stop-at-step", "5"])  # a real run stopped mid-way
    assert res.returncode == 0, res.stderr
    holder = hold_lock(d)
    try:
        before = files(d)
        assert ".lock" in before and "checkpoints/last.pt" in before
        res = cli(run_args(tiny, d) + ["--force"])
        assert res.returncode != 0
        (line,) = error_lines(res.stderr)
        assert line.startswith("error:") and "in use by another textbench process" in line
        assert files(d) == before
        # through the Python API too
        with pytest.raises(TextbenchError, match="in use by another textbench process"):
            train(Run("mle", "synthetic", "quick", 0, tiny, d), force=True, progress=False, log=lambda _m: None)
        assert files(d) == before
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # the lock free, --force replaces the run
    res = cli(run_args(tiny, d) + ["--force"])
    assert res.returncode == 0, res.stderr
    assert RunDir(d).status() == "complete" and not (d / ".lock").exists()


def test_the_lock_is_the_file_at_the_path_even_if_it_was_replaced_while_locking(tmp_path, monkeypatch):
    """A holder releases its lock by unlinking .lock: a process that opened the old file just before, and
    flocks it just after, must not think it holds the directory while a third locks the new .lock."""
    import fcntl

    d = tmp_path / "run"
    d.mkdir()
    lock_path = d / RunDir.LOCK
    real_flock = fcntl.flock
    replaced = []

    def flock_after_a_release(f, op):
        if not replaced:  # between our open and our flock: the holder unlinks .lock, another process makes a new one
            lock_path.unlink()
            lock_path.write_text("4242")
            replaced.append(True)
        return real_flock(f, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_release)
    with RunDir(d).lock():
        assert replaced
        with pytest.raises(TextbenchError, match="in use by another textbench process"):
            with RunDir(d).lock():  # the .lock at the path is the one held
                pass
