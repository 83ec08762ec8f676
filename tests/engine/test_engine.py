import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textbench.algorithms.mle import MLE
from textbench.engine.loop import Run, resolve_settings, train
from textbench.engine.replay import replay_run
from textbench.engine.rundir import is_timing_column, read_metrics
from textbench.errors import TextbenchError


def untimed(rows):
    return [{k: v for k, v in r.items() if not is_timing_column(k)} for r in rows]


def quiet(run, **kw):
    return train(run, progress=False, log=lambda _m: None, **kw)


def test_run_directory_contents(tiny, tmp_path):
    run = Run("mle", "synthetic", "quick", 3, tiny, tmp_path / "r")
    summary = quiet(run)
    d = tmp_path / "r"
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["settings"]["oracle"] == "seeded" and cfg["settings"]["g_lr"] == 0.01
    assert {"python", "torch", "numpy"} <= set(cfg["versions"]) and "git_commit" in cfg and cfg["device"] == "cpu"
    rows = read_metrics(d / "metrics.csv")
    assert [r["step"] for r in rows] == [0, 10, 20]
    assert {"nll_oracle", "nll_test", "jsd", "jsd_se", "cot_jsd", "wall_s"} <= set(rows[0])
    assert "g_loss" in rows[1] and "g_loss" not in rows[0]
    assert summary["complete"] and summary["steps"] == 20
    assert summary["final"]["nll_oracle"] == rows[-1]["nll_oracle"]
    assert summary["best"]["nll_test"] == min(r["nll_test"] for r in rows)
    assert len((d / "samples.txt").read_text().splitlines()) == 64
    assert (d / "generator.pt").is_file() and (d / "checkpoints" / "last.pt").is_file()


def test_same_seed_same_metrics_and_other_seed_differs(tiny, tmp_path):
    a = quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "a"))
    b = quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "b"))
    c = quiet(Run("mle", "synthetic", "quick", 1, tiny, tmp_path / "c"))
    ra, rb, rc = (untimed(read_metrics(tmp_path / n / "metrics.csv")) for n in "abc")
    assert ra == rb
    assert ra != rc
    assert (tmp_path / "a" / "samples.txt").read_text() == (tmp_path / "b" / "samples.txt").read_text()
    assert a["final"] == b["final"]


def test_full_eval_every_computes_all_metrics_only_on_its_cadence_with_the_same_tracked_numbers(tiny, tmp_path):
    """Evaluations every 5 steps, full ones every 10 (and at 0 and the end): the light rows hold NLL_oracle and
    NLL_test only, equal to the full evaluation's for the same seed (an every-evaluation-full run)."""
    full = dict(tiny, eval_every=5)
    light = dict(full, full_eval_every=10, steps=25)
    quiet(Run("mle", "synthetic", "quick", 0, dict(full, steps=25), tmp_path / "full"))
    summary = quiet(Run("mle", "synthetic", "quick", 0, light, tmp_path / "light"))
    a = untimed(read_metrics(tmp_path / "full" / "metrics.csv"))
    b = untimed(read_metrics(tmp_path / "light" / "metrics.csv"))
    assert [r["step"] for r in b] == [0, 5, 10, 15, 20, 25]
    with_jsd = [r["step"] for r in b if "jsd" in r]
    assert with_jsd == [0, 10, 20, 25]
    for ra, rb in zip(a, b):
        if rb["step"] in with_jsd:
            assert ra == rb
        else:
            assert set(rb) == {"step", "nll_oracle", "nll_oracle_se", "nll_test", "nll_test_se", "g_loss"}
            assert {k: ra[k] for k in rb} == rb
    assert summary["final"]["jsd"] == b[-1]["jsd"]
    assert summary["best"]["nll_oracle"] == min(r["nll_oracle"] for r in b)


@pytest.mark.parametrize("algo", ["mle", "cot"])
def test_resume_equals_uninterrupted(algo, tiny, tmp_path):
    tiny.update(steps=30)
    quiet(Run(algo, "synthetic", "quick", 0, tiny, tmp_path / "full"))
    run = Run(algo, "synthetic", "quick", 0, tiny, tmp_path / "cut")
    partial = quiet(run, stop_at_step=10)
    assert not partial["complete"]
    quiet(Run(algo, "synthetic", "quick", 0, tiny, tmp_path / "cut"), resume=True)
    assert untimed(read_metrics(tmp_path / "cut" / "metrics.csv")) == untimed(read_metrics(tmp_path / "full" / "metrics.csv"))
    assert (tmp_path / "cut" / "samples.txt").read_text() == (tmp_path / "full" / "samples.txt").read_text()


def test_resume_after_kill_9(tiny, tmp_path):
    """A run killed with SIGKILL mid-training resumes from its last checkpoint to the same numbers."""
    tiny.update(steps=400, eval_every=40)
    sets = sum((["--set", f"{k}={v}"] for k, v in tiny.items()), [])
    cmd = [sys.executable, "-m", "textbench.cli", "run", "--algo", "mle", "--suite", "synthetic", "--no-progress", *sets]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # float results depend on the thread count; match this process
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--run-dir", str(killed)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / "metrics.csv").exists() and len((killed / "metrics.csv").read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists() or not json.loads((killed / "summary.json").read_text())["complete"]
    subprocess.run(cmd + ["--run-dir", str(killed), "--resume"], env=env, check=True, capture_output=True)
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "clean"))
    assert untimed(read_metrics(killed / "metrics.csv")) == untimed(read_metrics(tmp_path / "clean" / "metrics.csv"))


def test_existing_run_is_not_overwritten(tiny, tmp_path):
    first = quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.is_file()}
    # the same command again reports the complete run and changes nothing; so does --resume
    assert quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r")) == first
    assert quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), resume=True) == first
    with pytest.raises(TextbenchError, match="holds a complete run with other settings"):
        quiet(Run("mle", "synthetic", "quick", 0, {**tiny, "g_lr": 0.02}, tmp_path / "r"))
    with pytest.raises(TextbenchError, match="holds a run of another kind"):
        quiet(Run("cot", "synthetic", "quick", 0, tiny, tmp_path / "r"), resume=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.is_file()} == before
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), force=True)


def test_corrupt_checkpoint_is_a_clear_error(tiny, tmp_path):
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), stop_at_step=10)
    (tmp_path / "r" / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TextbenchError, match="corrupt or unreadable checkpoint"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), resume=True)


def test_nan_loss_stops_and_keeps_last_checkpoint(tiny, tmp_path, monkeypatch):
    original = MLE.train_step

    def poisoned(self, step):
        logs = original(self, step)
        return {"g_loss": float("nan")} if step == 15 else logs

    monkeypatch.setattr(MLE, "train_step", poisoned)
    with pytest.raises(TextbenchError, match=r"non-finite g_loss = nan at step 15; the checkpoint of step 10 "):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"))
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 10
    assert [r["step"] for r in read_metrics(tmp_path / "r" / "metrics.csv")] == [0, 10]


def test_settings_resolution_and_errors():
    s = resolve_settings("cot", "synthetic", "paper")
    assert s["steps"] == 200_000 and s["m_hidden"] == 64 and s["m_dropout"] == 0.5 and s["g_betas"] == [0.9, 0.95]
    s = resolve_settings("cot", "synthetic", "quick", ["m_lr=0.01", "g_betas=0.5,0.9", "shuffle=true"])
    assert s["m_lr"] == 0.01 and s["g_betas"] == [0.5, 0.9] and s["shuffle"] is True
    with pytest.raises(TextbenchError, match="did you mean m_lr"):
        resolve_settings("cot", "synthetic", "quick", ["m_lrr=1"])
    with pytest.raises(TextbenchError, match="expected int"):
        resolve_settings("cot", "synthetic", "quick", ["steps=many"])
    with pytest.raises(TextbenchError, match="unknown algorithm 'nope'"):
        resolve_settings("nope", "synthetic", "quick")
    with pytest.raises(TextbenchError, match="unknown suite"):
        resolve_settings("mle", "nope", "quick")
    with pytest.raises(TextbenchError, match="unknown profile"):
        resolve_settings("mle", "synthetic", "huge")


def test_replay_reproduces_committed_rows(tiny, tmp_path):
    quiet(Run("cot", "synthetic", "quick", 5, tiny, tmp_path / "r"))
    committed = untimed(read_metrics(tmp_path / "r" / "metrics.csv"))
    replayed = replay_run(tmp_path / "r", max_evals=1)
    rows = untimed(replayed.to_dict("records"))
    assert len(rows) == 2
    assert [{k: v for k, v in r.items() if v == v} for r in rows] == committed[:2]
