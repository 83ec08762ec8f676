"""Run directories are never lost: collisions, --force, --resume, locks, time-cadence checkpoints,
signals, random kills, non-finite weights, temporary files and file modes (issue 9)."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from textbench.algorithms.mle import MLE
from textbench.engine.loop import Run, train
from textbench.engine.rundir import RunDir, is_timing_column, read_metrics
from textbench.errors import TextbenchError


def untimed(rows):
    return [{k: v for k, v in r.items() if not is_timing_column(k)} for r in rows]


def quiet(run, **kw):
    return train(run, progress=False, log=lambda _m: None, **kw)


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def cli(args, env=None, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "textbench.cli", *args], env=env, capture_output=True, text=True, timeout=timeout)


def sets(settings: dict) -> list[str]:
    return sum((["--set", f"{k}={v}"] for k, v in settings.items()), [])


def test_default_run_dir_is_the_user_results_dir_and_never_the_checkout(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTBENCH_RESULTS", str(tmp_path / "mine"))
    run = Run("mle", "synthetic", "quick", 0, tiny)
    assert run.run_dir.parent == tmp_path / "mine" / "runs" / "synthetic" / "mle"
    assert run.run_dir.name.startswith("quick-seed0-set")  # overrides give their own directory
    assert Run("mle", "synthetic", "quick", 0, {}).run_dir.name == "quick-seed0"
    assert Run("mle", "synthetic", "quick", 0, {**tiny, "g_lr": 0.02}).run_dir != run.run_dir
    assert Run("mle", "synthetic", "quick", 0, tiny, results_root=tmp_path / "r").run_dir.parent == tmp_path / "r" / "runs" / "synthetic" / "mle"


def test_same_command_twice_works_and_keeps_the_run(tiny, tmp_path):
    env = {"TEXTBENCH_RESULTS": str(tmp_path / "res")}
    args = ["run", "--algo", "mle", "--suite", "synthetic", "--no-progress", *sets(tiny)]
    first = cli(args, env)
    assert first.returncode == 0, first.stderr
    (d,) = (tmp_path / "res" / "runs" / "synthetic" / "mle").iterdir()
    before = files(d)
    second = cli(args, env)
    assert second.returncode == 0, second.stderr
    assert "already complete" in second.stdout
    assert files(d) == before


def test_resume_without_checkpoint_or_run_stops(tiny, tmp_path):
    with pytest.raises(TextbenchError, match="nothing to resume"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "none"), resume=True)
    assert not (tmp_path / "none").exists()
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), stop_at_step=5)
    (tmp_path / "r" / "checkpoints" / "last.pt").unlink()
    before = files(tmp_path / "r")
    with pytest.raises(TextbenchError, match="no checkpoint to resume from"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), resume=True)
    with pytest.raises(TextbenchError, match="holds an unfinished run; use --resume"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"))
    assert files(tmp_path / "r") == before


def test_force_deletes_only_textbench_run_directories(tiny, tmp_path):
    p = tmp_path / "p"
    (p / "src").mkdir(parents=True)
    (p / "config.json").write_text("{}")
    (p / "src" / "keep.py").write_text("x = 1\n")
    with pytest.raises(TextbenchError, match="not a textbench run config"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, p), force=True, stop_at_step=0)
    assert (p / "src" / "keep.py").read_text() == "x = 1\n"
    q = tmp_path / "q"
    quiet(Run("mle", "synthetic", "quick", 0, tiny, q), stop_at_step=0)
    (q / "notes.txt").write_text("mine")
    with pytest.raises(TextbenchError, match=r"--force refused.*notes.txt"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, q), force=True)
    assert (q / "notes.txt").read_text() == "mine"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.txt").write_text("x")
    with pytest.raises(TextbenchError, match="not a textbench run directory"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, foreign))


def test_resume_refuses_other_algorithm_checkpoint_and_edited_config(tiny, tmp_path):
    quiet(Run("cot", "synthetic", "quick", 0, tiny, tmp_path / "cot"), stop_at_step=5)
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "mle"), stop_at_step=5)
    mle_cfg = (tmp_path / "mle" / "config.json").read_text()
    # a CoT checkpoint placed in an MLE run
    (tmp_path / "mle" / "checkpoints" / "last.pt").write_bytes((tmp_path / "cot" / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(TextbenchError, match="checkpoint of another run .*algo: 'cot' in the checkpoint"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "mle"), resume=True)
    assert (tmp_path / "mle" / "config.json").read_text() == mle_cfg
    # config.json edited after the checkpoint
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "e"), stop_at_step=5)
    cfg = json.loads((tmp_path / "e" / "config.json").read_text())
    cfg["settings"]["g_lr"] = 0.5
    (tmp_path / "e" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TextbenchError, match="config.json was edited after the checkpoint .*g_lr"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "e"), resume=True)
    # --resume with a different profile or different --set
    with pytest.raises(TextbenchError, match="another kind .*profile"):
        quiet(Run("mle", "synthetic", "paper", 0, tiny, tmp_path / "mle"), resume=True)
    with pytest.raises(TextbenchError, match="--resume with other settings"):
        quiet(Run("mle", "synthetic", "quick", 0, {**tiny, "g_lr": 0.3}, tmp_path / "mle"), resume=True)
    with pytest.raises(TextbenchError, match="not both"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "mle"), resume=True, force=True)


def test_resume_and_replay_refuse_other_oracle_data(tiny, tmp_path, monkeypatch):
    """A synthetic run continued or replayed on oracle samples other than its own (another code version drew
    other tokens from the same seed) stops with one line instead of silently training on other data."""
    from textbench.engine.loop import load_generator
    from textbench.engine.replay import replay_run

    d = tmp_path / "r"
    quiet(Run("mle", "synthetic", "quick", 0, tiny, d), stop_at_step=5)
    cfg = json.loads((d / "config.json").read_text())
    good = cfg["suite_signature"]["train_sha256"]
    load_generator(d)  # its own data: accepted
    cfg["suite_signature"]["train_sha256"] = "0123456789abcdef"
    (d / "config.json").write_text(json.dumps(cfg))
    before = (d / "checkpoints" / "last.pt").read_bytes()
    msg = f"the run's train data has fingerprint 0123456789abcdef, the data made here now has {good}"
    with pytest.raises(TextbenchError, match=msg):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, d), resume=True)
    with pytest.raises(TextbenchError, match=msg):
        load_generator(d)
    import textbench.engine.replay as replay_module

    def no_training(*_a, **_k):
        raise AssertionError("trained before checking the data")

    monkeypatch.setattr(replay_module, "train", no_training)
    with pytest.raises(TextbenchError, match=msg):
        replay_run(d, max_evals=1)  # a replay on other data would prove nothing: refused before training
    assert (d / "checkpoints" / "last.pt").read_bytes() == before  # nothing lost


def test_checkpoint_holding_a_number_is_a_clear_error(tiny, tmp_path):
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), stop_at_step=5)
    torch.save(5, tmp_path / "r" / "checkpoints" / "last.pt")
    with pytest.raises(TextbenchError, match="not a textbench training checkpoint"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), resume=True)


def test_stop_at_step_checkpoints_there_and_resume_has_no_duplicate_rows(tiny, tmp_path):
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "full"))
    for stop in (0, 5, 10):
        d = tmp_path / f"cut{stop}"
        quiet(Run("mle", "synthetic", "quick", 0, tiny, d), stop_at_step=stop)
        assert torch.load(d / "checkpoints" / "last.pt", weights_only=True)["step"] == stop
        quiet(Run("mle", "synthetic", "quick", 0, tiny, d), resume=True)
        assert untimed(read_metrics(d / "metrics.csv")) == untimed(read_metrics(tmp_path / "full" / "metrics.csv"))
        cfg = json.loads((d / "config.json").read_text())
        assert [(s["start_step"], s["end_step"]) for s in cfg["segments"]] == [(0, stop), (stop, 20)]
    with pytest.raises(TextbenchError, match="must be >= 0"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "neg"), stop_at_step=-3)


def test_time_cadence_checkpoint(tiny, tmp_path, monkeypatch):
    """With a tiny time interval every step is checkpointed (between evaluations too)."""
    seen = []
    original = MLE.train_step

    def spy(self, step):
        ckpt = tmp_path / "r" / "checkpoints" / "last.pt"
        if ckpt.exists():
            seen.append(torch.load(ckpt, weights_only=True)["step"])
        return original(self, step)

    monkeypatch.setattr(MLE, "train_step", spy)
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), checkpoint_every_s=1e-9)
    assert seen == list(range(0, 20))


def test_nonfinite_weights_keep_the_last_finite_checkpoint(tiny, tmp_path, monkeypatch):
    """An update that leaves NaN weights behind a finite loss is caught before it is checkpointed."""
    original = MLE.train_step

    def poisoned(self, step):
        logs = original(self, step)
        if step == 2:
            with torch.no_grad():
                self.generator.output.weight.fill_(float("nan"))
        return logs

    monkeypatch.setattr(MLE, "train_step", poisoned)
    run = Run("mle", "synthetic", "quick", 0, {**tiny, "eval_every": 1, "steps": 4}, tmp_path / "r")
    with pytest.raises(TextbenchError, match=r"non-finite weights in generator after step 2; the checkpoint of step 1 is kept"):
        quiet(run)
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 1
    assert all(torch.isfinite(v).all() for v in state["modules"]["generator"].values())


def test_failed_new_run_leaves_nothing(tiny, tmp_path, monkeypatch):
    def boom(self, *a, **k):
        raise TextbenchError("evaluation failed")

    from textbench.suites.synthetic import SyntheticSuite

    monkeypatch.setattr(SyntheticSuite, "evaluate", boom)
    with pytest.raises(TextbenchError, match="evaluation failed"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_lock_refuses_a_second_writer_and_temporary_files_are_removed(tiny, tmp_path):
    d = tmp_path / "r"
    quiet(Run("mle", "synthetic", "quick", 0, tiny, d), stop_at_step=5)
    (d / ".metrics.csv.abc.tmp").write_text("half")
    (d / "checkpoints" / ".last.pt.xyz.tmp").write_bytes(b"half")
    with RunDir(d).lock():
        with pytest.raises(TextbenchError, match="in use by another textbench process"):
            quiet(Run("mle", "synthetic", "quick", 0, tiny, d), resume=True)
    quiet(Run("mle", "synthetic", "quick", 0, tiny, d), resume=True)
    assert not list(d.rglob("*.tmp")) and not (d / ".lock").exists()


def test_files_follow_the_umask(tiny, tmp_path):
    old = os.umask(0o022)
    try:
        quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"))
    finally:
        os.umask(old)
    for p in (tmp_path / "r").rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_and_resumes(tiny, tmp_path, signum):
    tiny.update(steps=4000, eval_every=1000)
    args = ["run", "--algo", "mle", "--suite", "synthetic", "--no-progress", *sets(tiny)]
    d = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "textbench.cli", *args, "--run-dir", str(d)],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (d / "checkpoints" / "last.pt").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert err.count("error:") == 1 and "continue with --resume" in err and "Traceback" not in err
    step = torch.load(d / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert 0 < step < 4000
    assert json.loads((d / "summary.json").read_text())["steps"] == step


@pytest.mark.slow
def test_killed_at_random_points_resumes_to_the_uninterrupted_numbers(tiny, tmp_path):
    """SIGKILL at random moments (several seeds of the kill time), resume each time: the final metrics.csv
    equals an uninterrupted run's apart from wall_s. Checkpoints every step (--checkpoint-minutes tiny)."""
    tiny.update(steps=800, eval_every=50)
    args = ["run", "--algo", "mle", "--suite", "synthetic", "--no-progress", "--checkpoint-minutes", "0.0001", *sets(tiny)]
    quiet(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "clean"))
    clean = untimed(read_metrics(tmp_path / "clean" / "metrics.csv"))
    rng = random.Random(1234)
    for trial in range(3):
        d = tmp_path / f"killed{trial}"
        kills = 0
        for attempt in range(20):
            resume = ["--resume"] if (d / "checkpoints" / "last.pt").exists() else []
            if (d / "config.json").exists() and not resume:
                resume = ["--force"]  # killed before its first checkpoint: nothing to lose
            proc = subprocess.Popen([sys.executable, "-m", "textbench.cli", *args, "--run-dir", str(d), *resume],
                                    env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 60
            while proc.poll() is None and not (d / "config.json").exists() and time.time() < deadline:
                time.sleep(0.01)
            try:  # the kill falls anywhere: in a step, an evaluation, or a checkpoint write
                proc.wait(timeout=rng.uniform(0.05, 1.5) if kills < 4 else 120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                kills += 1
                continue
            assert proc.returncode == 0, proc.stderr.read()
            break
        assert RunDir(d).status() == "complete"
        assert untimed(read_metrics(d / "metrics.csv")) == clean
        assert kills >= 1, "the run was never killed"


def test_threads_option_is_recorded_per_segment(tiny, tmp_path):
    from click.testing import CliRunner

    from textbench.cli import main

    d = tmp_path / "r"
    out = CliRunner().invoke(main, ["run", "--algo", "mle", "--suite", "synthetic", "--no-progress", "--threads", "1",
                                    "--run-dir", str(d), *sets(tiny)])
    assert out.exit_code == 0, out.output
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["segments"][0]["threads"] == 1 and cfg["versions"]["torch_threads"] == 1
    assert cfg["segments"][0]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    from textbench.engine.rundir import git_info

    assert (cfg["segments"][0]["git_commit"], cfg["segments"][0]["git_dirty"]) == git_info()  # the code of each segment
    bad = CliRunner().invoke(main, ["run", "--algo", "mle", "--suite", "synthetic", "--threads", "0", "--run-dir", str(tmp_path / "x")])
    assert bad.exit_code != 0 and not (tmp_path / "x").exists()
