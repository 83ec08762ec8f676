"""Committed checkpoints of in-progress runs: staged while unfinished, dropped when complete, and a run
continued from a copy of its directory (a fresh clone elsewhere) reaches the uninterrupted numbers."""

from __future__ import annotations

import shutil
import subprocess

from textbench.engine.campaign import stage
from textbench.engine.loop import Run, train
from textbench.engine.rundir import is_timing_column, read_metrics


def quiet(run, **kw):
    return train(run, progress=False, log=lambda _m: None, **kw)


def untimed(rows):
    return [{k: v for k, v in r.items() if not is_timing_column(k)} for r in rows]


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_stage_tracks_unfinished_checkpoints_only(tiny, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("results/runs/**/checkpoints/\n")
    d = repo / "results" / "runs" / "synthetic" / "mle" / "quick-seed0"
    quiet(Run("mle", "synthetic", "quick", 0, tiny, d), stop_at_step=5)
    lines = stage(repo / "results" / "runs")
    assert len(lines) == 1 and lines[0].startswith("staged")
    assert "results/runs/synthetic/mle/quick-seed0/checkpoints/last.pt" in git(repo, "ls-files", "--cached")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "wip")
    quiet(Run("mle", "synthetic", "quick", 0, tiny, d), resume=True)
    lines = stage(repo / "results" / "runs")
    assert len(lines) == 1 and lines[0].startswith("dropped")
    assert "checkpoints" not in git(repo, "ls-files", "--cached")
    assert (d / "checkpoints" / "last.pt").is_file()  # kept on disk
    assert stage(repo / "results" / "runs") == []


def test_run_continued_from_a_copied_directory_matches_uninterrupted(tiny, tmp_path):
    quiet(Run("cot", "synthetic", "quick", 0, tiny, tmp_path / "full"))
    quiet(Run("cot", "synthetic", "quick", 0, tiny, tmp_path / "here"), stop_at_step=13)
    shutil.copytree(tmp_path / "here", tmp_path / "clone" / "run")  # what a fresh clone holds
    quiet(Run("cot", "synthetic", "quick", 0, tiny, tmp_path / "clone" / "run"), resume=True)
    assert untimed(read_metrics(tmp_path / "clone" / "run" / "metrics.csv")) == untimed(read_metrics(tmp_path / "full" / "metrics.csv"))


def test_status_gives_the_command_that_continues_each_unfinished_run(tiny, tmp_path, monkeypatch):
    """`textbench campaign status` on a fresh clone: the printed command (settings from config.json, including
    list-valued --set overrides, and the last segment's threads) continues the run to the uninterrupted numbers."""
    import shlex

    from click.testing import CliRunner

    from textbench.cli import main
    from textbench.engine.campaign import resume_command, unfinished
    from textbench.engine.rundir import RunDir

    settings = {**tiny, "g_betas": [0.9, 0.99]}
    quiet(Run("cot", "synthetic", "quick", 0, settings, tmp_path / "full"))
    repo = tmp_path / "clone"
    partial = Run("cot", "synthetic", "quick", 0, settings, None, results_root=repo / "results")
    quiet(partial, stop_at_step=13)  # the tests run one thread (conftest): the segment records 1
    custom = repo / "elsewhere" / "run"
    quiet(Run("mle", "synthetic", "quick", 1, tiny, custom), stop_at_step=5)
    monkeypatch.chdir(repo)
    (rd,) = [d for d in unfinished(repo / "results" / "runs")]
    argv = resume_command(rd)
    assert argv[:2] == ["textbench", "run"] and "g_betas=[0.9,0.99]" in argv and "oracle_len=8" in argv
    assert argv[argv.index("--results") + 1] == "results" and argv[-2:] == ["--threads", "1"]
    assert resume_command(RunDir(custom))[-5:-2] == ["--run-dir", "elsewhere/run", "--resume"]

    out = CliRunner().invoke(main, ["campaign", "status", "--runs", "results/runs"])
    assert out.exit_code == 0, out.output
    assert f"continue: {shlex.join(argv)}" in out.output and "step 13 of 20" in out.output
    res = CliRunner().invoke(main, shlex.split(out.output.split("continue: ")[1].splitlines()[0])[1:] + ["--no-progress"])
    assert res.exit_code == 0, res.output
    assert RunDir(rd.path).status() == "complete"
    assert untimed(read_metrics(rd.path / "metrics.csv")) == untimed(read_metrics(tmp_path / "full" / "metrics.csv"))
    assert "no unfinished runs" in CliRunner().invoke(main, ["campaign", "status", "--runs", "results/runs"]).output
