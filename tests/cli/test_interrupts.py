"""Ctrl-C (KeyboardInterrupt) outside the training loop: one line saying how to continue, exit status 130;
`run` continues with --resume, a sweep by running the same sweep command again."""

from __future__ import annotations

from click.testing import CliRunner

import textbench.api
import textbench.sweeps
from textbench.cli import main


def interrupted(*_a, **_k):
    raise KeyboardInterrupt


def test_ctrl_c_in_a_sweep_says_to_run_the_same_sweep_command_again(monkeypatch, tmp_path):
    monkeypatch.setattr(textbench.sweeps, "sweep", interrupted)
    res = CliRunner().invoke(main, ["sweep", "--algo", "mle", "--suite", "synthetic", "--results", str(tmp_path)])
    assert res.exit_code == 130
    assert res.stderr == "interrupted; run the same textbench sweep command again to continue it\n"
    assert "--resume" not in res.output


def test_ctrl_c_in_run_says_resume_with_resume(monkeypatch, tmp_path):
    monkeypatch.setattr(textbench.api, "run", interrupted)
    res = CliRunner().invoke(main, ["run", "--algo", "mle", "--suite", "synthetic", "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 130
    assert res.stderr == "interrupted; resume with --resume\n"
