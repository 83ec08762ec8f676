"""Replay modes: exact on the recording machine's CPU kernels, within Monte-Carlo error elsewhere.

Unit tests on fake frames and fake run directories, and one real replay of a tiny run in a subprocess whose
torch dispatches to other vector kernels (``ATEN_CPU_CAPABILITY=avx2``, or ``default`` on a machine whose
own capability is AVX2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_leaderboard import write_run  # noqa: E402

from textbench.engine.replay import recorded_machine, replay_last_step, this_machine  # noqa: E402
from textbench.errors import TextbenchError  # noqa: E402
from textbench.reports import regress as rg  # noqa: E402
from textbench.reports.commands import regress_cmd  # noqa: E402
from textbench.engine.rundir import read_metrics_frame  # noqa: E402
from textbench.reports.leaderboard import load_run  # noqa: E402

NAN = np.nan
AVX512 = {"cpu_capability": "AVX512", "torch": "2.13.0+cpu"}
AVX2 = {"cpu_capability": "AVX2", "torch": "2.13.0+cpu"}


def committed() -> pd.DataFrame:
    return pd.DataFrame({
        "step": [0, 10, 20], "wall_s": [0.1, 1.0, 2.0],
        "nll_oracle": [6.0, 5.0, 4.5], "nll_oracle_se": [0.1, 0.1, 0.1],
        "jsd": [0.69, 0.6, 0.5], "jsd_se": [NAN, NAN, 0.01],  # no standard error at steps 0, 10
        "bleu-2": [0.5, 0.6, 0.7],  # no standard error column at all, computed from samples
        "nll_test": [8.46, 7.9, 7.5],  # no standard error column (a text suite's), deterministic at step 0
        "g_loss": [NAN, 3.0, 2.5],  # a training-loss interval mean: empty at step 0
    })


def replayed(**changes) -> pd.DataFrame:
    df = committed().assign(wall_s=[9.0, 9.5, 9.9])
    for col, (i, v) in changes.items():
        df.loc[i, col] = v
    return df


# ------------------------------------------------------------------------------------------------
# The comparison
# ------------------------------------------------------------------------------------------------


def test_tolerance_passes_within_k_se_and_lists_what_it_cannot_compare():
    rep = replayed(nll_oracle=(1, 5.5), **{"bleu-2": (2, 0.2)}, g_loss=(1, 4.0), jsd=(1, 0.3))
    probs, notes = rg.compare_replay_tolerance(committed(), rep, 2)
    assert probs == []
    text = "; ".join(notes)
    # |Δ| = 0.5 = 3.54 · sqrt(0.1² + 0.1²) ≤ 5·se
    assert "within 5·se: jsd, nll_oracle (largest |Δ|/se 3.54, nll_oracle at step 10)" in text
    assert "step 0 within relative 1e-06: jsd, nll_test" in text  # jsd has no standard error at step 0
    assert "step 0 within relative 0.05: bleu-2" in text
    assert "not compared across CPUs (no Monte-Carlo error recorded): bleu-2, g_loss, jsd, nll_test" in text


def test_tolerance_fails_beyond_k_se():
    probs, _ = rg.compare_replay_tolerance(committed(), replayed(nll_oracle=(1, 5.8)), 2)
    assert len(probs) == 1 and probs[0].startswith("step 10, nll_oracle: committed 5.0 vs replayed 5.8")
    assert "5.66·se > 5·se" in probs[0]
    # k is a parameter: the same difference passes at k = 6
    assert rg.compare_replay_tolerance(committed(), replayed(nll_oracle=(1, 5.8)), 2, k=6)[0] == []


def test_nll_test_after_step_0_gets_a_trajectory_margin_of_its_value():
    """NLL_test's standard error is its fixed test set's, shared by both sides: after step 0 it also gets 0.5 %
    of its value (two CPUs' trainings separate); at step 0, and for the other metrics, k·se alone."""
    com = committed().assign(nll_test_se=[0.002, 0.002, 0.002])
    rep = replayed(nll_test=(1, 7.9 * 1.004)).assign(nll_test_se=[0.002, 0.002, 0.002])
    assert rg.compare_replay_tolerance(com, rep, 2)[0] == []  # 0.032 ≤ 5·0.0028 + 0.0395
    rep = replayed(nll_test=(1, 7.9 * 1.008)).assign(nll_test_se=[0.002, 0.002, 0.002])
    probs = rg.compare_replay_tolerance(com, rep, 2)[0]
    assert len(probs) == 1 and probs[0].startswith("step 10, nll_test") and "> 5·se + 0.005 of the value" in probs[0]
    rep = replayed(nll_test=(0, 8.46 * 1.004)).assign(nll_test_se=[0.002, 0.002, 0.002])
    assert rg.compare_replay_tolerance(com, rep, 2)[0][0].startswith("step 0, nll_test")  # no margin at step 0
    # nll_oracle: k·se alone (0.72 > 5·0.141 = 0.707, within it plus 0.5 % of 5.0)
    rep = replayed(nll_oracle=(1, 5.72)).assign(nll_test_se=[0.002, 0.002, 0.002])
    probs = rg.compare_replay_tolerance(com, rep, 2)[0]
    assert len(probs) == 1 and probs[0].startswith("step 10, nll_oracle") and "of the value" not in probs[0]


def test_tolerance_step0_without_se_uses_a_small_relative_tolerance():
    ok = replayed(nll_test=(0, 8.46 * (1 + 0.5 * rg.STEP0_RTOL)), jsd=(0, 0.69 * (1 - 0.5 * rg.STEP0_RTOL)),
                  **{"bleu-2": (0, 0.5 * (1 + 0.5 * rg.STEP0_SAMPLE_RTOL))})
    probs, notes = rg.compare_replay_tolerance(committed(), ok, 2)
    assert probs == []
    bad = replayed(nll_test=(0, 8.4617))
    probs, _ = rg.compare_replay_tolerance(committed(), bad, 2)
    assert len(probs) == 1 and "step 0, nll_test" in probs[0] and "relative |Δ| = 0.000201 > 1e-06" in probs[0]
    # BLEU of the samples: another CPU's sampling moves it a little even at step 0, but not by 10 %
    probs, _ = rg.compare_replay_tolerance(committed(), replayed(**{"bleu-2": (0, 0.55)}), 2)
    assert len(probs) == 1 and "step 0, bleu-2" in probs[0] and "> 0.05" in probs[0]
    # a run of a single step-0 row: the metrics without se are compared there, not listed as skipped
    probs, notes = rg.compare_replay_tolerance(committed().iloc[:1], replayed().iloc[:1], 0)
    assert probs == [] and "step 0 within relative 0.05: bleu-2" in notes
    assert not any("not compared" in n for n in notes)


@pytest.mark.parametrize("col, i", [("g_loss", 1), ("nll_oracle_se", 2), ("nll_oracle", 0), ("bleu-2", 2), ("jsd_se", 1)])
def test_tolerance_empty_cell_on_one_side_always_fails(col, i):
    a, b = committed(), replayed()
    if pd.isna(a.loc[i, col]):
        b.loc[i, col] = 1.0
    else:
        b.loc[i, col] = NAN
    probs, _ = rg.compare_replay_tolerance(a, b, 2)
    assert any(f"step {int(a.loc[i, 'step'])}, {col}" in p and "empty on one side only" in p for p in probs), probs


def test_tolerance_se_of_zero_allows_only_float_noise():
    a = committed().assign(jsd=[0.6931471805599285] * 3, jsd_se=[1e-14] * 3)
    same = a.copy()
    same.loc[2, "jsd"] = np.nextafter(0.6931471805599285, 1.0)
    assert rg.compare_replay_tolerance(a, same, 2)[0] == []
    off = a.copy()
    off.loc[2, "jsd"] = 0.69314
    assert any("step 20, jsd" in p for p in rg.compare_replay_tolerance(a, off, 2)[0])


def test_tolerance_still_checks_steps_and_row_counts():
    b = replayed()
    b.loc[2, "step"] = 21
    assert any("row 3, step" in p for p in rg.compare_replay_tolerance(committed(), b, 2)[0])
    assert any("expected 3" in p for p in rg.compare_replay_tolerance(committed(), replayed().iloc[:2], 2)[0])


# ------------------------------------------------------------------------------------------------
# Choosing the mode
# ------------------------------------------------------------------------------------------------


def test_choose_mode():
    rec = {**AVX512, "threads": 1, "mixed": None}
    assert rg.choose_replay_mode(rec, AVX512) == ("exact", "recorded on AVX512, torch 2.13.0+cpu, 1 thread = "
                                                           "this machine AVX512, torch 2.13.0+cpu")
    mode, why = rg.choose_replay_mode(rec, AVX2)
    assert mode == "tolerance" and "recorded on AVX512" in why and "this machine AVX2" in why
    assert rg.choose_replay_mode(rec, {**AVX512, "torch": "2.14.0"})[0] == "tolerance"
    assert rg.choose_replay_mode({**rec, "cpu_capability": None}, AVX512)[0] == "tolerance"  # older config
    assert rg.choose_replay_mode({**rec, "threads": None}, AVX512)[0] == "tolerance"
    assert rg.choose_replay_mode({**rec, "mixed": "steps made by processes that differ"}, AVX512)[0] == "tolerance"
    assert rg.choose_replay_mode(rec, AVX2, "exact")[0] == "exact"  # forced
    assert rg.choose_replay_mode(rec, AVX512, "tolerance")[0] == "tolerance"
    with pytest.raises(TextbenchError, match="replay mode"):
        rg.choose_replay_mode(rec, AVX512, "fuzzy")


def test_recorded_machine_from_versions_and_segments():
    cfg = {"settings": {"steps": 300, "eval_every": 100},
           "versions": {"torch": "2.13.0+cpu", "torch_threads": 2, "cpu_capability": "AVX2"}}
    assert replay_last_step(cfg, 2) == 200 and replay_last_step(cfg, 0) == 300 and replay_last_step(cfg, 9) == 300
    assert recorded_machine(cfg, 200) == {"cpu_capability": "AVX2", "torch": "2.13.0+cpu", "threads": 2, "mixed": None}
    assert recorded_machine({"versions": {"torch": "2.1", "torch_threads": 1}}, 10)["cpu_capability"] is None
    seg = lambda start, end, cap, threads: {"start_step": start, "end_step": end, "torch": "2.13.0+cpu",  # noqa: E731
                                           "threads": threads, "cpu_capability": cap}
    # resumed at step 250 on another CPU: the first 200 steps were made by the first process only
    cfg["segments"] = [seg(0, 250, "AVX512", 1), seg(250, 300, "AVX2", 4)]
    assert recorded_machine(cfg, 200) == {"cpu_capability": "AVX512", "torch": "2.13.0+cpu", "threads": 1, "mixed": None}
    whole = recorded_machine(cfg, 300)
    assert whole["threads"] == 1 and "differ" in whole["mixed"]


def test_check_replay_auto_picks_exact_on_the_recording_machine_only(tmp_path):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, committed(),
                  config={"versions": {**AVX512, "torch_threads": 1}})
    run = load_run(d)

    def near(run_dir, k):  # another CPU's replay: every number a little off, well within Monte-Carlo error
        df = read_metrics_frame(run_dir / "metrics.csv").iloc[: k + 1]
        return df.assign(nll_oracle=df["nll_oracle"] + 0.01, wall_s=df["wall_s"] + 1)

    here = rg.check_replay(run, 2, near, machine=AVX512)
    assert here.status == "fail" and here.tolerance == "exact" and here.note.startswith("mode exact (recorded on AVX512")
    assert "step 0, nll_oracle: committed 6.0 != replayed 6.01" in here.note
    other = rg.check_replay(run, 2, near, machine=AVX2)
    assert other.status == "pass" and other.tolerance == "tolerance ≤ 5·se" and other.ours == "3 rows within tolerance"
    assert other.note.startswith("mode tolerance (recorded on AVX512, torch 2.13.0+cpu, 1 thread; this machine AVX2")
    assert "not compared across CPUs (no Monte-Carlo error recorded): bleu-2, g_loss, jsd, nll_test" in other.note
    # exact mode is still exact, wherever it runs
    assert rg.check_replay(run, 2, near, mode="exact", machine=AVX2).status == "fail"
    rep = rg.regress(tmp_path / "runs", replay=near, replay_mode="tolerance", machine=AVX512)
    (c,) = [c for c in rep.checks if c.kind == "replay"]
    assert c.status == "pass" and c.note.startswith("mode tolerance (--replay-mode tolerance")


def test_cli_replay_mode_option(tmp_path, monkeypatch):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, committed())
    monkeypatch.setattr(rg, "default_replay", lambda: lambda p, k: read_metrics_frame(Path(p) / "metrics.csv").iloc[: k + 1])
    res = CliRunner().invoke(regress_cmd, ["--runs", str(tmp_path / "runs"), "--replay-mode", "exact",
                                           "--csv", str(tmp_path / "c.csv")])
    checks = pd.read_csv(tmp_path / "c.csv")
    row = checks[checks["kind"] == "replay"].iloc[0]
    assert row["status"] == "pass" and row["tolerance"] == "exact" and row["note"].startswith("mode exact")
    assert d.name in row["check"]
    res = CliRunner().invoke(regress_cmd, ["--runs", str(tmp_path / "runs"), "--replay-mode", "fuzzy"])
    assert res.exit_code == 2 and "fuzzy" in res.output


# ------------------------------------------------------------------------------------------------
# A real replay on other vector kernels
# ------------------------------------------------------------------------------------------------

_OTHER_KERNELS = """
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from textbench.engine.replay import replay_run, this_machine
from textbench.reports import regress as rg
from textbench.reports.leaderboard import load_run
run = load_run(Path(sys.argv[1]))
got = replay_run(run.path, 2)
out = {"machine": this_machine()}
for mode in ("auto", "exact"):
    out[mode] = rg.check_replay(run, 2, lambda p, k: got, mode=mode).__dict__
print(json.dumps(out))
"""


def test_real_tiny_run_exact_here_and_within_tolerance_on_other_kernels(tiny, tmp_path):
    from textbench.engine.loop import Run, train

    here = this_machine()["cpu_capability"]
    other = {"AVX512": "avx2", "AVX2": "default"}.get(here)
    if other is None:
        pytest.skip(f"no lower CPU capability than {here} to replay on")
    run_dir = tmp_path / "runs" / "synthetic" / "mle" / "quick-seed0"
    train(Run("mle", "synthetic", "quick", 0, overrides=tiny, run_dir=run_dir), progress=False, log=lambda _m: None)
    run = load_run(run_dir)
    assert run.complete and json.loads((run_dir / "config.json").read_text())["versions"]["cpu_capability"] == here

    # on the recording machine auto means exact, and the replay is bit-identical
    c = rg.check_replay(run, 2)
    assert c.tolerance == "exact" and c.status == "pass" and c.ours == "3 rows identical", c
    assert c.note.startswith(f"mode exact (recorded on {here}")

    # the same run replayed by a process on other kernels: auto picks the tolerance mode, and passes
    env = {**os.environ, "ATEN_CPU_CAPABILITY": other, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _OTHER_KERNELS, str(run_dir)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["machine"]["cpu_capability"] == other.upper()
    auto = out["auto"]
    assert auto["tolerance"] == "tolerance ≤ 5·se" and auto["status"] == "pass", auto
    assert auto["note"].startswith(f"mode tolerance (recorded on {here}") and f"this machine {other.upper()}" in auto["note"]
    assert "within 5·se: cot_jsd, jsd, nll_oracle, nll_test" in auto["note"]
    assert "not compared across CPUs (no Monte-Carlo error recorded): g_loss" in auto["note"]
    # what the tolerance is for: the other kernels' floats are not the recorded ones (measured on AVX512 vs
    # AVX2: the step-0 NLL_oracle differs in its 8th digit), so the exact comparison fails there
    if here == "AVX512":
        assert out["exact"]["status"] == "fail" and out["exact"]["note"].startswith("mode exact (--replay-mode exact")
