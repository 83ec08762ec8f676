"""Sweeps (textbench/sweeps.py, `textbench sweep`): a grid of tiny runs on the real executors — local
processes, a real local Ray instance and submitit's local executor — landing in the usual run directories,
equal to the runs made one by one, skipping complete points, resuming interrupted ones, and going on past a
failing point. Ray and submitit tests skip only where the package is missing, and fail instead under CI=true."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TINY

import textbench
from textbench.cli import main
from textbench.engine.rundir import RunDir, read_metrics
from textbench.errors import TextbenchError
from textbench.sweeps import make_grid

SETS = [f"--set={k}={v}" for k, v in TINY.items()]


def optional(module: str):
    """The optional package, or a skip where it is missing; under CI=true a missing package fails the test."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed, and CI=true must exercise it (pip install -e '.[test]')")
        pytest.skip(f"{module} is not installed")


def metrics_without_time(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in read_metrics(run_dir / "metrics.csv")]


def run_dirs(root: Path) -> list[str]:
    return sorted(str(rd.path.relative_to(root)) for rd in RunDir.find(root / "runs"))


def snapshot(run_dir: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(run_dir.rglob("*")) if p.is_file()}


# -------------------------------------------------------------------------------------------- the grid


def test_a_typo_or_bad_value_fails_before_anything_is_written(tmp_path):
    root = tmp_path / "res"
    cases = [
        (["--grid", "stepz=10"], "unknown setting 'stepz'; did you mean steps?"),
        (["--grid", "steps=10", "--grid", "steps=-3"], "setting steps=-3: expected int >= 1"),
        (["--grid", "steps=10", "--grid", "steps=1e1"], "are the same run"),
        (["--grid", "steps=10", "--set", "steps=20"], "given both by --set and by --grid"),
        (["--seed", "0,x"], "seed 'x'"),
    ]
    for extra, message in cases:
        out = CliRunner().invoke(main, ["sweep", "--algo", "mle,cot", "--suite", "synthetic", "--results", str(root), *SETS[:-2], *extra])
        assert out.exit_code == 2, out.output
        assert out.output.startswith("error: ") and len(out.output.strip().splitlines()) == 1 and message in out.output, out.output
    out = CliRunner().invoke(main, ["sweep", "--algo", "mle,nope", "--suite", "synthetic", "--results", str(root), *SETS])
    assert out.exit_code == 2 and "nope" in out.output
    assert not root.exists()


def test_the_grid_is_the_product_with_list_values_and_usual_run_dirs(tmp_path):
    grid = make_grid("seqgan", "synthetic", profiles="quick,paper", seeds="0-1", settings={**TINY, "steps": 4, "d_num_filters": [9, 9]},
                     grid=["d_filter_sizes=2,3", "d_filter_sizes=[2, 4]"], results=tmp_path)
    assert len(grid) == 8 and len({p.run_dir for p in grid}) == 8
    assert [p.overrides["d_filter_sizes"] for p in grid[:2]] == [[2, 3], [2, 4]]
    assert grid[0].label == "seqgan synthetic quick seed0 d_filter_sizes=[2, 3]"
    from textbench.engine.loop import Run

    one = Run("seqgan", "synthetic", "paper", 1, {**TINY, "steps": 4, "d_num_filters": [9, 9], "d_filter_sizes": [2, 4]}, None, tmp_path)
    assert str(one.run_dir) in {p.run_dir for p in grid}  # the directory `textbench run` would use
    with pytest.raises(TextbenchError, match="d_num_filters"):  # the rules across settings, before anything runs
        make_grid("seqgan", "synthetic", settings=TINY, grid={"d_filter_sizes": [[2, 3], [2, 3, 4]]}, results=tmp_path)
    with pytest.raises(TextbenchError, match="^mle on synthetic .* unknown setting 'd_filter_sizes'"):  # a key of every algorithm
        make_grid("seqgan,mle", "synthetic", settings=TINY, grid={"d_filter_sizes": [[2, 3]]}, results=tmp_path)
    dry = textbench.sweep("mle", "synthetic", seeds=[0, 1], settings=TINY, results=tmp_path / "dry", dry_run=True)
    assert [r.status for r in dry] == ["not started"] * 2 and not (tmp_path / "dry").exists()


def test_missing_extras_and_no_slurm_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(TextbenchError, match=r"pip install 'textbench\[ray\]'"):
        textbench.sweep("mle", "synthetic", settings=TINY, results=tmp_path, executor="ray")
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(TextbenchError, match=r"pip install 'textbench\[slurm\]'"):
        textbench.sweep("mle", "synthetic", settings=TINY, results=tmp_path, executor="slurm")
    assert not tmp_path.joinpath("runs").exists()


def test_slurm_options_are_checked_by_submitit(tmp_path, monkeypatch):
    optional("submitit")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")  # submitit looks for srun only
    out = CliRunner().invoke(main, ["sweep", "--algo", "mle", "--suite", "synthetic", "--results", str(tmp_path / "r"), *SETS,
                                    "--executor", "slurm", "--slurm-partition", "cpu", "--slurm-param", "acount=me"])
    assert out.exit_code == 2 and "error: submitit (slurm): Unknown argument 'acount'" in out.output, out.output
    assert not (tmp_path / "r" / "runs").exists()


# ------------------------------------------------------------------------------------- local executor


def test_local_sweep_equals_runs_made_one_by_one(tmp_path):
    swept, single = tmp_path / "swept", tmp_path / "single"
    out = CliRunner().invoke(main, ["sweep", "--algo", "mle", "--algo", "cot", "--suite", "synthetic", "--seed", "0,1",
                                    *SETS, "--results", str(swept), "--jobs", "2"])
    assert out.exit_code == 0, out.output
    assert out.output.count(" trained") == 4 + 4  # four progress lines and four table rows
    for algo in ("mle", "cot"):
        for seed in ("0", "1"):
            res = CliRunner().invoke(main, ["run", "--algo", algo, "--suite", "synthetic", "--seed", seed, *SETS,
                                            "--results", str(single), "--threads", "1", "--no-progress"])
            assert res.exit_code == 0, res.output
    assert run_dirs(swept) == run_dirs(single) and len(run_dirs(swept)) == 4
    for rel in run_dirs(swept):
        assert metrics_without_time(swept / rel) == metrics_without_time(single / rel), rel
        cfg = RunDir(swept / rel).read_config()
        assert cfg["segments"][0]["threads"] == 1 and cfg["command"].startswith("textbench run --algo ")
        assert (swept / "sweeps" / "logs" / Path(rel).relative_to("runs").parent / f"{Path(rel).name}.log").is_file()


def test_a_failing_point_does_not_stop_the_others(tmp_path):
    (foreign,) = [p for p in make_grid("mle", "synthetic", seeds=2, settings=TINY, results=tmp_path)]
    Path(foreign.run_dir).mkdir(parents=True)
    Path(foreign.run_dir, "notes.txt").write_text("mine\n")
    out = CliRunner().invoke(main, ["sweep", "--algo", "mle", "--suite", "synthetic", "--seed", "2,3", *SETS,
                                    "--results", str(tmp_path), "--jobs", "1"])
    assert out.exit_code == 1, out.output
    rows = out.output.strip().splitlines()[-2:]
    assert "seed2" in rows[0] and "failed: " in rows[0] and "not a textbench run directory" in rows[0]
    assert "seed3" in rows[1] and rows[1].endswith("trained")
    assert [rd.status() for rd in RunDir.find(tmp_path / "runs")] == ["complete"]


def test_an_interrupted_sweep_resumes_to_the_uninterrupted_numbers(tmp_path):
    settings = {**TINY, "steps": 300}
    sets = [f"--set={k}={v}" for k, v in settings.items()]
    cmd = [sys.executable, "-m", "textbench", "sweep", "--algo", "mle", "--suite", "synthetic", "--seed", "0,1", *sets,
           "--results", str(tmp_path / "res"), "--jobs", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first, second = make_grid("mle", "synthetic", seeds=[0, 1], settings=settings, results=tmp_path / "res")
    sweep = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    metrics = Path(second.run_dir) / "metrics.csv"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 4):  # seed 1 past step 20
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()[0]
        time.sleep(0.02)
    sweep.send_signal(signal.SIGTERM)
    output = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 1, output
    assert "interrupted: SIGTERM at step" in output and "skipped" not in output
    assert RunDir(first.run_dir).status() == "complete" and RunDir(second.run_dir).status() == "in progress"
    assert RunDir(second.run_dir).has_checkpoint()

    before = snapshot(Path(first.run_dir))
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    table = again.stdout.strip().splitlines()[-2:]
    assert table[0].endswith("skipped (already complete)") and table[1].endswith("resumed")
    assert snapshot(Path(first.run_dir)) == before  # the complete point was not touched
    cfg = RunDir(second.run_dir).read_config()
    assert len(cfg["segments"]) == 2 and 0 < cfg["segments"][1]["start_step"] < 300

    ref = textbench.run("mle", "synthetic", seed=1, settings=settings, results=tmp_path / "ref", threads=1)
    assert metrics_without_time(Path(second.run_dir)) == metrics_without_time(ref.path)


# ----------------------------------------------------------------------------------- Ray and submitit


@pytest.fixture(scope="module")
def local_ray():
    """One real local Ray instance (2 CPUs, no dashboard) for the module, shut down at the end."""
    ray = optional("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_runs_a_grid_on_a_local_ray_instance(local_ray, tmp_path):
    lines = []
    results = textbench.sweep(["mle", "cot"], "synthetic", seeds=0, settings=TINY, results=tmp_path, executor="ray", log=lines.append)
    assert [r.status for r in results] == ["trained", "trained"], [r.error for r in results]
    assert local_ray.is_initialized()  # the sweep used the running instance and left it running
    assert [RunDir(r.point.run_dir).status() for r in results] == ["complete", "complete"]
    assert RunDir(results[0].point.run_dir).read_config()["segments"][0]["threads"] == 1
    assert any(line.startswith("[2/2] trained") for line in lines)
    again = textbench.sweep(["mle", "cot"], "synthetic", seeds=0, settings=TINY, results=tmp_path, executor="ray")
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_submitit_local_executor_runs_a_grid(tmp_path):
    optional("submitit")
    out = CliRunner().invoke(main, ["sweep", "--algo", "mle", "--suite", "synthetic", "--seed", "0,1", *SETS,
                                    "--results", str(tmp_path), "--executor", "submitit-local", "--jobs", "2"])
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines()[-2].endswith("trained") and out.output.strip().splitlines()[-1].endswith("trained")
    assert [rd.status() for rd in RunDir.find(tmp_path / "runs")] == ["complete", "complete"]
    assert any((tmp_path / "sweeps" / "submitit").glob("*_result.pkl"))  # submitit's own files, under the results folder
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("summary.json")]
    assert len(summaries) == 2 and all(s["complete"] for s in summaries)
