"""RunDir: the one owner of a run directory's layout, state, reads and writes (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from textbench.algorithms.mle import MLE
from textbench.engine.loop import Run, train
from textbench.engine.rundir import RunDir, read_metrics, read_metrics_frame
from textbench.errors import TextbenchError

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "results" / "runs" / "synthetic" / "mle" / "quick-seed0"


def quiet(run, **kw):
    return train(run, progress=False, log=lambda _m: None, **kw)


def tree(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))}


def test_layout_names_every_file(tmp_path):
    rd = RunDir(tmp_path / "r")
    assert rd.path == tmp_path / "r"
    got = {p.relative_to(rd.path).as_posix() for p in (rd.config_path, rd.metrics_path, rd.summary_path,
                                                       rd.samples_path, rd.generator_path, rd.checkpoint_path)}
    assert got == {"config.json", "metrics.csv", "summary.json", "samples.txt", "generator.pt", "checkpoints/last.pt"}
    assert RunDir.NAMES == {"config.json", "metrics.csv", "summary.json", "samples.txt", "generator.pt", "checkpoints", ".lock"}


def test_a_complete_run_holds_the_layout_and_reads_back(tiny, tmp_path):
    d = tmp_path / "r"
    summary = quiet(Run("mle", "synthetic", "quick", 0, tiny, d))
    rd = RunDir(d)
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()) == [
        "checkpoints/last.pt", "config.json", "generator.pt", "metrics.csv", "samples.txt", "summary.json"]
    assert rd.status() == "complete" and rd.has_checkpoint()
    assert rd.read_summary() == json.loads((d / "summary.json").read_text())
    assert rd.read_summary()["final"] == summary["final"]
    cfg = rd.read_config()
    assert (cfg["algo"], cfg["suite"], cfg["seed"]) == ("mle", "synthetic", 0)
    rows = rd.read_metrics()
    assert [r["step"] for r in rows] == [0, 10, 20]
    assert list(read_metrics_frame(rd.metrics_path)["step"]) == [0, 10, 20]
    assert len(rd.samples_path.read_text().splitlines()) == tiny["final_samples"]
    weights = rd.read_generator()
    state = rd.read_checkpoint()
    assert state["step"] == 20
    assert all(torch.equal(weights[k], state["modules"]["generator"][k]) for k in weights)
    assert rd.read_weights()[0] == rd.checkpoint_path
    assert rd.read_weights(d / "elsewhere.pt")[0] == rd.generator_path  # a missing file: the final weights
    rd.checkpoint_path.unlink()
    path, got = rd.read_weights()
    assert path == rd.generator_path and all(torch.equal(got[k], weights[k]) for k in weights)


def test_status_of_absent_foreign_in_progress_failed_and_complete(tiny, tmp_path, monkeypatch):
    assert RunDir(tmp_path / "none").status() == "absent"
    (tmp_path / "empty").mkdir()
    assert RunDir(tmp_path / "empty").status() == "absent"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert RunDir(tmp_path / "other").status() == "foreign"  # not a run: no config.json
    # stopped (resumable): summary.json says complete = false
    stopped = RunDir(tmp_path / "stopped")
    quiet(Run("mle", "synthetic", "quick", 0, tiny, stopped.path), stop_at_step=5)
    assert stopped.status() == "in progress" and stopped.has_checkpoint()
    assert stopped.read_summary()["complete"] is False
    # failed: a non-finite loss stops the run, its last finite checkpoint kept, no summary.json
    original = MLE.train_step

    def poisoned(self, step):
        logs = original(self, step)
        return {**logs, "g_loss": float("nan")} if step == 12 else logs

    monkeypatch.setattr(MLE, "train_step", poisoned)
    failed = RunDir(tmp_path / "failed")
    with pytest.raises(TextbenchError, match="non-finite g_loss = nan at step 12"):
        quiet(Run("mle", "synthetic", "quick", 0, tiny, failed.path))
    assert failed.status() == "in progress" and failed.has_checkpoint() and not failed.summary_path.exists()
    assert failed.read_checkpoint()["step"] == 10
    assert failed.inspect().incomplete == "no summary.json (running, killed or never finished)"
    monkeypatch.undo()
    # complete; a summary.json that is not an object, or not JSON, is not complete
    done = RunDir(tmp_path / "done")
    quiet(Run("mle", "synthetic", "quick", 0, tiny, done.path))
    assert done.status() == "complete"
    text = done.summary_path.read_text()
    for broken in ("[1, 2]", "{not json", json.dumps({**json.loads(text), "complete": "yes"})):
        done.summary_path.write_text(broken)
        assert done.status() == "in progress"
    done.summary_path.write_text(text)
    assert done.status() == "complete"


def test_inspect_records_problems_without_raising(tiny, tmp_path):
    root = tmp_path / "runs" / "synthetic" / "mle"
    good = RunDir(root / "quick-seed0")
    quiet(Run("mle", "synthetic", "quick", 0, tiny, good.path))
    c = good.inspect()
    assert (c.suite, c.algo, c.profile, c.seed) == ("synthetic", "mle", "quick", 0)
    assert c.complete and c.status == "complete" and c.errors == [] and list(c.metrics["step"]) == [0, 10, 20]
    # a run in the wrong place: its config disagrees with its directory
    moved = RunDir(root / "quick-seed3")
    moved.path.mkdir()
    for name in ("config.json", "summary.json", "metrics.csv"):
        (moved.path / name).write_bytes((good.path / name).read_bytes())
    assert moved.inspect().status == "error: config.json says seed = 0 but the directory says 3"
    # unreadable files are errors; a missing summary is an unfinished run
    moved.config_path.write_text("{oops")
    moved.metrics_path.write_text("step,nll\n0,1.0\n0,2.0\n")
    errors = moved.inspect().errors
    assert errors[0].startswith("config.json is not valid JSON")
    assert errors[1] == "metrics.csv: steps are not strictly increasing"
    moved.summary_path.unlink()
    assert moved.inspect().incomplete == "no summary.json (running, killed or never finished)"
    bad_name = RunDir(root / "final")
    bad_name.path.mkdir()
    assert bad_name.inspect().errors[0] == "directory name 'final' is not <profile>-seed<N>[-set<hash>]"


def test_read_config_refuses_what_is_not_a_run_config(tmp_path):
    rd = RunDir(tmp_path)
    with pytest.raises(TextbenchError, match="file not found"):
        rd.read_config()
    rd.config_path.write_text("[1]")
    with pytest.raises(TextbenchError, match=r"not a textbench run config \(a list, not an object\)"):
        rd.read_config()
    rd.config_path.write_text(json.dumps({"algo": "mle", "suite": "synthetic", "profile": "quick", "seed": 0}))
    with pytest.raises(TextbenchError, match="missing 'settings'"):
        rd.read_config()


def test_lock_remove_and_find(tiny, tmp_path):
    rd = RunDir(tmp_path / "runs" / "synthetic" / "mle" / "quick-seed0")
    quiet(Run("mle", "synthetic", "quick", 0, tiny, rd.path))
    with rd.lock():
        assert (rd.path / ".lock").read_text() != ""
        with pytest.raises(TextbenchError, match="in use by another textbench process"):
            with RunDir(rd.path).lock():
                pass
    assert not (rd.path / ".lock").exists()
    # a copy of config.json inside checkpoints/ is not a run
    (rd.path / "checkpoints" / "config.json").write_bytes(rd.config_path.read_bytes())
    assert [r.path for r in RunDir.find(tmp_path / "runs")] == [rd.path]
    (rd.path / "checkpoints" / "config.json").unlink()
    (rd.path / "mine.txt").write_text("keep")
    with pytest.raises(TextbenchError, match=r"--force refused.*mine\.txt"):
        rd.remove()
    (rd.path / "mine.txt").unlink()
    (rd.path / ".metrics.csv.x.tmp").write_text("half")
    rd.remove()
    assert not rd.path.exists()


@pytest.mark.skipif(not (COMMITTED / "config.json").is_file(), reason="the committed results are not in this checkout")
def test_a_committed_run_reads_without_writing():
    before = tree(COMMITTED)
    rd = RunDir(COMMITTED)
    assert rd.status() == "complete" and not rd.has_checkpoint()
    cfg = rd.read_config()
    assert (cfg["algo"], cfg["suite"], cfg["profile"], cfg["seed"]) == ("mle", "synthetic", "quick", 0)
    summary = rd.read_summary()
    rows = rd.read_metrics()
    frame = read_metrics_frame(rd.metrics_path)
    assert rows == read_metrics(COMMITTED / "metrics.csv") and len(rows) == len(frame)
    assert summary["final"]["nll_oracle"] == rows[-1]["nll_oracle"] == frame["nll_oracle"].iloc[-1]
    c = rd.inspect()
    assert c.complete and c.config == cfg and c.summary == summary
    assert set(rd.read_generator()) == set(torch.load(rd.generator_path, weights_only=True))
    assert tree(COMMITTED) == before  # nothing written, nothing left behind


def test_train_reads_a_complete_runs_status_once(tiny, tmp_path, monkeypatch):
    d = tmp_path / "r"
    first = quiet(Run("mle", "synthetic", "quick", 0, tiny, d))
    seen = []
    status = RunDir.status
    monkeypatch.setattr(RunDir, "status", lambda self: seen.append(self.path) or status(self))
    assert quiet(Run("mle", "synthetic", "quick", 0, tiny, d)) == first
    assert seen == [d]
