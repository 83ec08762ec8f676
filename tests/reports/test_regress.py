"""Regress: tolerances, missing runs, claims, integrity (hand edits), replay (with a fake replay), CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_leaderboard import SEQGAN_SIG, make_runs, write_run  # noqa: E402

from textbench.errors import TextbenchError  # noqa: E402
from textbench.reports import regress as rg  # noqa: E402
from textbench.reports.commands import regress_cmd  # noqa: E402
from textbench.engine.replay import recorded_machine, this_machine  # noqa: E402
from textbench.engine.rundir import read_metrics_frame  # noqa: E402
from textbench.reports.leaderboard import load_run, load_runs  # noqa: E402

NAN = np.nan


def cot_rows(final_oracle: float = 8.19) -> dict:
    """A CoT run matching every checked published CoT value (Table 1 and the README points)."""
    return {
        "step": [0, 100, 156, 200, 1000, 2000],
        "wall_s": [0.0, 10.0, 15.6, 20.0, 100.0, 200.0],
        "nll_oracle": [11.43, 10.48, NAN, 10.39, 9.0, final_oracle],
        "nll_test": [8.52, 7.94, NAN, 7.87, 7.54, 8.03],
        "cot_jsd": [8.37, NAN, 7.33, NAN, NAN, NAN],
        "jsd": [0.68, 0.5, NAN, 0.45, 0.2, 0.1],
        "bnll": [NAN, 7.5, NAN, 7.4, 7.0, 6.9],
    }


def mle_rows() -> dict:
    return {
        "step": [0, 100, 200, 300],
        "wall_s": [0.0, 5.0, 10.0, 15.0],
        "nll_oracle": [10.17, 9.43, 9.6, 9.08],  # best sum at step 100: 9.43 + 7.67
        "nll_test": [8.52, 7.67, 7.60, 8.97],
        "jsd": [0.68, 0.4, 0.38, 0.3],
    }


def matched_runs(root: Path, cot_final_oracle: float = 8.19, profile: str = "paper", **kw) -> Path:
    for seed in (1, 2):
        write_run(root, "synthetic", "cot", profile, seed, cot_rows(cot_final_oracle), **kw)
    write_run(root, "synthetic", "mle", profile, 1, mle_rows(), **kw)
    return root


def identity_replay(run_dir: Path, max_evals: int) -> pd.DataFrame:
    """A fake replay that reproduces the committed rows of steps 0..K evaluations like the engine's does:
    timing columns differ, and columns that are empty throughout the replayed rows are absent."""
    df = read_metrics_frame(run_dir / "metrics.csv").iloc[: max_evals + 1]
    return df.assign(wall_s=df["wall_s"] * 1.7 + 0.3).dropna(axis=1, how="all")


def by_check(report: rg.RegressReport, kind: str, contains: str) -> list[rg.Check]:
    return [c for c in report.checks if c.kind == kind and contains in c.check]


def test_within_tolerance_edges():
    assert rg.within(8.34, 8.19, 0.15)  # upper edge passes despite float rounding
    assert rg.within(8.04, 8.19, 0.15)  # lower edge
    assert not rg.within(8.3401, 8.19, 0.15)
    assert not rg.within(8.0399, 8.19, 0.15)


def test_matched_runs_pass_and_absent_ones_are_missing(tmp_path):
    root = matched_runs(tmp_path / "runs")
    rep = rg.regress(root, replay=identity_replay)
    assert not rep.failed, rep.format()
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert c.status == "pass" and c.published == "8.19" and c.ours.startswith("8.190")
    assert by_check(rep, "published", "synthetic/cot cot_jsd at_step@156")[0].status == "pass"
    assert by_check(rep, "published", "synthetic/mle nll_oracle best_sum")[0].status == "pass"
    rank = by_check(rep, "published", "synthetic/rankgan")
    assert rank and all(c.status == "missing" and c.ours == "—" for c in rank)
    assert all(c.status == "missing" for c in by_check(rep, "published", "emnlp/"))
    assert by_check(rep, "claim", "cot < mle, nll_oracle final")[0].status == "pass"
    assert by_check(rep, "claim", "cot < seqgan")[0].status == "missing"
    assert all(c.status == "pass" for c in rep.checks if c.kind in ("integrity", "replay"))
    assert rep.exit_code() == 0 and rep.exit_code(fail_on_missing=True) == 1
    text = rep.format()
    assert "missing" in text and "pass" in text and "fail" in text.splitlines()[-1]


@pytest.mark.parametrize("final, status", [(8.34, "pass"), (8.04, "pass"), (8.35, "fail"), (8.03, "fail")])
def test_tolerance_applied_to_runs(tmp_path, final, status):
    root = matched_runs(tmp_path / "runs", cot_final_oracle=final)
    rep = rg.regress(root, do_replay=False)
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert c.status == status, c


def test_quick_runs_never_pass_published_numbers(tmp_path):
    root = matched_runs(tmp_path / "runs", profile="quick")
    rep = rg.regress(root, do_replay=False)
    pubs = [c for c in rep.checks if c.kind == "published"]
    assert pubs and all(c.status == "missing" for c in pubs)
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert "paper-scale run absent" in c.note
    claim = by_check(rep, "claim", "cot < mle, nll_oracle final")[0]
    assert claim.status == "missing" and "paper-scale run absent" in claim.note
    assert not rep.failed


def test_profile_quick_checks_only_the_scale_free_claims(tmp_path):
    root = matched_runs(tmp_path / "runs", profile="quick")
    # a quick MaliGAN run that got worse than the untrained model: the learning claim fails
    write_run(root, "synthetic", "maligan", "quick", 1, {"step": [0, 10], "wall_s": [0, 1],
                                                          "nll_oracle": [10.0, 10.5], "nll_test": [8.5, 8.4]})
    rep = rg.regress(root, profile="quick", do_replay=False)
    assert not [c for c in rep.checks if c.kind == "published"]
    assert any("paper-scale" in n for n in rep.notes)
    claims = [c for c in rep.checks if c.kind == "claim"]
    assert claims and not any("cot < mle" in c.check for c in claims)
    (bad,) = by_check(rep, "claim", "maligan: nll_oracle final < nll_oracle initial")
    assert bad.status == "fail" and rep.exit_code() == 1
    assert by_check(rep, "claim", "cot: nll_oracle final < nll_oracle initial")[0].status == "pass"


def test_claim_fails_when_ordering_is_reversed(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "synthetic", "cot", "paper", 1, cot_rows(9.5))
    write_run(root, "synthetic", "mle", "paper", 1, mle_rows())
    rep = rg.regress(root, do_replay=False)
    (c,) = by_check(rep, "claim", "cot < mle, nll_oracle final")
    assert c.status == "fail" and c.published == "8.19 < 9.08" and c.ours == "9.500 < 9.080"


def test_other_oracle_is_not_compared(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "synthetic", "cot", "paper", 1, cot_rows(), settings={"oracle": "texygen"})
    rep = rg.regress(root, do_replay=False)
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert c.status == "missing" and "oracle" in c.note


@pytest.mark.parametrize("seeds, evidence, status", [
    ((1, 2), "docs/protocol.md", "explained"),   # enough seeds, evidence present: explained, not failed
    ((1,), "docs/protocol.md", "fail"),          # fewer seeds than the explanation needs
    ((1, 2), "docs/no-such-file.md", "fail"),    # its evidence is missing
])
def test_explained_deviation_needs_its_seeds_and_evidence(tmp_path, monkeypatch, seeds, evidence, status):
    from textbench.reports import published as pub

    csv = pub.EXPLAINED_CSV + f'synthetic,cot,nll_oracle,final,2,{evidence},"a seed spread, shown in the evidence"\n'
    monkeypatch.setattr(pub, "EXPLAINED_CSV", csv)
    pub.explained_deviations.cache_clear()
    try:
        root = tmp_path / "runs"
        for seed in seeds:
            write_run(root, "synthetic", "cot", "paper", seed, cot_rows(8.60))
        write_run(root, "synthetic", "mle", "paper", 1, mle_rows())
        rep = rg.regress(root, do_replay=False)
        (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
        assert c.status == status, c
        if status == "explained":
            assert "explained: a seed spread" in c.note and "1 explained" in rep.format().splitlines()[-1]
        else:
            assert rep.failed and "explained" not in rep.format().splitlines()[-1]
        # the explanation matches its own cell only
        assert by_check(rep, "published", "synthetic/cot nll_test final [T1]")[0].status == "pass"
    finally:
        pub.explained_deviations.cache_clear()


def test_cot_readme_at_100_is_explained_at_that_step_only(tmp_path):
    """The CoT README's iteration-100 values fail for a faithful paper run (the final code's optimisers are about
    100 iterations slower at the start, protocol Part I): that cell is *explained*; the same miss at 200 fails."""
    root = tmp_path / "runs"
    rows = cot_rows()
    rows["nll_oracle"][1], rows["nll_test"][1] = 11.031, 8.117  # our seed 0 at 100: Δ +0.56 / +0.18
    write_run(root, "synthetic", "cot", "paper", 1, rows)
    write_run(root, "synthetic", "mle", "paper", 1, mle_rows())
    rep = rg.regress(root, do_replay=False)
    for metric in ("nll_oracle", "nll_test"):
        (c,) = by_check(rep, "published", f"synthetic/cot {metric} at_step@100")
        assert c.status == "explained" and "6bd8ffe" in c.note, c
        assert by_check(rep, "published", f"synthetic/cot {metric} at_step@200")[0].status == "pass"
    assert not rep.failed
    rows["nll_oracle"][3] = 10.60  # 0.21 behind the README at 200: not covered by the step-100 explanation
    write_run(root, "synthetic", "cot", "paper", 1, rows)
    rep = rg.regress(root, do_replay=False)
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle at_step@200")
    assert c.status == "fail" and "explained" not in c.note and rep.failed


def test_published_comparison_never_averages_across_signatures(tmp_path):
    root = tmp_path / "runs"
    default = {"overrides": {}, "suite_signature": SEQGAN_SIG}
    for seed in (1, 2):
        write_run(root, "synthetic", "cot", "paper", seed, cot_rows(8.19), config=default)
    # a paper-profile run with a learning-rate override: far off, and not the published setting
    write_run(root, "synthetic", "cot", "paper", 3, cot_rows(9.9), config={**default, "overrides": {"g_lr": 0.05}})
    write_run(root, "synthetic", "mle", "paper", 1, mle_rows(), config=default)
    rep = rg.regress(root, do_replay=False)
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert c.status == "pass" and c.ours.startswith("8.190") and "(n=2)" in c.ours
    # the claims use the same groups: CoT (default) vs MLE; the override run has its own sanity claims
    (claim,) = by_check(rep, "claim", "cot < mle, nll_oracle final")
    assert claim.status == "pass" and claim.ours.startswith("8.190")
    tagged = by_check(rep, "claim", ": set g_lr=0.05]")
    assert tagged and all(t.published == "—" and "[signature " in t.check for t in tagged)
    assert by_check(rep, "claim", "synthetic/cot: nll_oracle final < nll_oracle initial [signature")[0].status == "pass"
    learns = by_check(rep, "claim", "synthetic/cot: nll_oracle final < nll_oracle initial [signature")
    assert len(learns) == 2 and learns[0].check.endswith(": default setting]")

    # two signatures in the paper's setting whose data differ: one check each, never their mean
    other = {"overrides": {}, "suite_signature": {**SEQGAN_SIG, "train_sha256": "ffff"}}
    write_run(root, "synthetic", "cot", "paper", 4, cot_rows(8.60), config=other)
    rep = rg.regress(root, do_replay=False)
    checks = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert sorted(c.status for c in checks) == ["fail", "pass"]  # the mean 8.327 would pass: not taken
    assert all("signature" in c.check and "2 signatures in the paper's setting" in c.note for c in checks)
    claims = by_check(rep, "claim", "cot < mle, nll_oracle final")
    assert len(claims) == 1 and claims[0].ours.startswith("8.190")  # only the CoT runs on MLE's data


def test_other_oracle_claims_are_not_paired_with_the_paper_setting(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "synthetic", "cot", "paper", 1, cot_rows(), settings={"oracle": "seeded"},
              config={"overrides": {"oracle": "seeded"}})
    write_run(root, "synthetic", "mle", "paper", 1, mle_rows())
    rep = rg.regress(root, do_replay=False)
    (claim,) = by_check(rep, "claim", "cot < mle, nll_oracle final")
    assert claim.status == "missing" and "not in the paper's setting" in claim.note and "oracle seeded" in claim.note
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert c.status == "missing" and "cot (paper) · oracle seeded" in c.note


def test_missing_metric_and_step_are_missing(tmp_path):
    root = tmp_path / "runs"
    rows = cot_rows()
    del rows["cot_jsd"]
    write_run(root, "synthetic", "cot", "paper", 1, rows)
    rep = rg.regress(root, do_replay=False)
    c = by_check(rep, "published", "cot_jsd at_step@156")[0]
    assert c.status == "missing" and "no evaluation" in c.note


# ------------------------------------------------------------------------------------------------
# Integrity and replay
# ------------------------------------------------------------------------------------------------


def test_replay_matching_fake_passes_and_timing_is_ignored(tmp_path):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, cot_rows())
    c = rg.check_replay(load_run(d), 2, identity_replay, mode="exact")
    assert c.status == "pass" and c.ours == "3 rows identical" and c.tolerance == "exact"
    assert rg.check_replay(load_run(d), 0, identity_replay, mode="exact").ours == "6 rows identical"  # 0 = whole run
    # the fake config records no CPU capability: auto cannot claim the same kernels
    auto = rg.check_replay(load_run(d), 2, identity_replay)
    assert auto.status == "pass" and auto.ours == "3 rows within tolerance" and auto.tolerance.startswith("tolerance")
    assert auto.note.startswith("mode tolerance (recording CPU capability unknown")


def test_replay_changed_number_fails(tmp_path):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, cot_rows())

    def drifting(run_dir, k):
        df = identity_replay(run_dir, k)
        df.loc[1, "nll_test"] = np.nextafter(df.loc[1, "nll_test"], 100.0)  # one ulp: still a mismatch
        return df

    c = rg.check_replay(load_run(d), 2, drifting, mode="exact")
    assert c.status == "fail" and "step 100, nll_test" in c.note


@pytest.mark.parametrize("mode", ["exact", "tolerance"])
def test_replay_nan_vs_number_columns_and_short_replays_fail(tmp_path, mode):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, cot_rows())
    run = load_run(d)
    assert rg.check_replay(run, 2, lambda p, k: identity_replay(p, k).assign(cot_jsd=1.0), mode=mode).status == "fail"
    dropped = rg.check_replay(run, 2, lambda p, k: identity_replay(p, k).drop(columns="bnll"), mode=mode)
    assert dropped.status == "fail" and "bnll: committed 7.5 != replayed empty" in dropped.note
    assert "expected 4" in rg.check_replay(run, 3, lambda p, k: identity_replay(p, 1), mode=mode).note

    def boom(p, k):
        raise RuntimeError("CUDA error")

    c = rg.check_replay(run, 2, boom)
    assert c.status == "fail" and "RuntimeError: CUDA error" in c.note


def test_replay_unavailable_is_missing_not_pass(tmp_path, monkeypatch):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, cot_rows())

    def no_engine():
        raise ImportError("No module named 'textbench.engine.replay'")

    monkeypatch.setattr(rg, "default_replay", no_engine)
    c = rg.check_replay(load_run(d), 2)
    assert c.status == "missing" and "unavailable" in c.note


def test_hand_edited_metrics_fail(tmp_path):
    root = tmp_path / "runs"
    # recorded on this machine: auto replays exactly
    d = write_run(root, "synthetic", "cot", "paper", 1, cot_rows(), config={"versions": {**this_machine(), "torch_threads": 1}})
    original = {d: read_metrics_frame(d / "metrics.csv")}

    def honest_replay(run_dir, k):  # what re-running the config really gives: the original numbers
        return original[Path(run_dir)].iloc[: k + 1]

    text = (d / "metrics.csv").read_text().replace("7.94", "7.91")  # step 100 nll_test, within the replay window
    (d / "metrics.csv").write_text(text)
    rep = rg.regress(root, replay=honest_replay)
    (c,) = [c for c in rep.checks if c.kind == "replay"]
    assert c.status == "fail" and "step 100, nll_test" in c.note and c.note.startswith("mode exact")
    assert rep.exit_code() == 1


def test_hand_edited_final_metric_fails_integrity(tmp_path):
    root = tmp_path / "runs"
    d = write_run(root, "synthetic", "cot", "paper", 1, cot_rows())
    text = (d / "metrics.csv").read_text().replace("8.19", "8.18")  # final nll_oracle
    (d / "metrics.csv").write_text(text)
    rep = rg.regress(root, replay=identity_replay)
    (c,) = [c for c in rep.checks if c.kind == "integrity"]
    assert c.status == "fail" and "summary final nll_oracle = 8.19" in c.note
    assert rep.failed


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["final"].__setitem__("nll_test", 8.0), "summary final nll_test"),
    (lambda s: s["best"].__setitem__("nll_test", 7.5), "summary best nll_test"),
    (lambda s: s["best_step"].__setitem__("nll_test", 100), "at step 100"),
    (lambda s: s["final"].__setitem__("bleu-2", 0.5), "absent from metrics.csv"),
    (lambda s: s["final"].pop("jsd"), "summary final has no 'jsd'"),
    (lambda s: s.__setitem__("steps", 10), "summary steps = 10"),
])
def test_summary_metrics_disagreement_fails(tmp_path, edit, message):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, cot_rows())
    s = json.loads((d / "summary.json").read_text())
    edit(s)
    (d / "summary.json").write_text(json.dumps(s))
    c = rg.check_integrity(load_run(d))
    assert c.status == "fail" and message in c.note, c.note


def test_moved_run_directory_fails(tmp_path):
    d = write_run(tmp_path / "runs", "synthetic", "cot", "paper", 1, cot_rows())
    d.rename(d.parent / "paper-seed2")
    rep = rg.regress(tmp_path / "runs", do_replay=False)
    (c,) = [c for c in rep.checks if c.kind == "integrity"]
    assert c.status == "fail" and "seed" in c.note


def test_incomplete_runs_are_noted_not_checked(runs_dir):
    rep = rg.regress(runs_dir, replay=identity_replay)
    assert any("paper-seed4" in n and "in progress, not a result" in n and " of " in n for n in rep.notes)
    assert not [c for c in rep.checks if "paper-seed4" in c.check]


@pytest.fixture
def runs_dir(tmp_path):
    return make_runs(tmp_path / "runs")


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def test_cli_regress_exit_status(tmp_path, monkeypatch):
    monkeypatch.setattr(rg, "default_replay", lambda: identity_replay)
    good = matched_runs(tmp_path / "good")
    res = CliRunner().invoke(regress_cmd, ["--runs", str(good), "--csv", str(tmp_path / "checks.csv")])
    assert res.exit_code == 0, res.output
    assert "synthetic/cot nll_oracle final [T1]" in res.output
    checks = pd.read_csv(tmp_path / "checks.csv")
    assert set(checks["status"]) <= {"pass", "fail", "missing"} and (checks["status"] == "pass").any()
    assert CliRunner().invoke(regress_cmd, ["--runs", str(good), "--fail-on-missing", "--no-replay"]).exit_code == 1
    bad = matched_runs(tmp_path / "bad", cot_final_oracle=8.5)
    res = CliRunner().invoke(regress_cmd, ["--runs", str(bad), "--no-replay"])
    assert res.exit_code == 1 and "fail" in res.output
    res = CliRunner().invoke(regress_cmd, ["--runs", str(good), "--no-replay", "--profile", "quick"])
    assert res.exit_code == 0 and "paper-scale" in res.output
    # --jobs 2: the same report (identity_replay is module level: the spawned workers import it)
    res2 = CliRunner().invoke(regress_cmd, ["--runs", str(good), "--jobs", "2", "--csv", str(tmp_path / "checks2.csv")])
    assert res2.exit_code == 0, res2.output
    assert "replayed synthetic/mle/paper-seed1 (paper-seed1): pass in " in res2.output  # progress (stderr)
    assert pd.read_csv(tmp_path / "checks2.csv").equals(checks)
    res = CliRunner().invoke(regress_cmd, ["--runs", str(good), "--jobs", "0"])
    assert res.exit_code == 2 and "--jobs" in res.output


def test_cli_errors_are_textbench_errors(tmp_path):
    res = CliRunner().invoke(regress_cmd, ["--runs", str(tmp_path / "nope")])
    assert isinstance(res.exception, TextbenchError) and "\n" not in str(res.exception)
    res = CliRunner().invoke(regress_cmd, ["--runs", str(tmp_path), "--replay-evals", "-1"])
    assert isinstance(res.exception, TextbenchError)


def test_load_runs_suite_filter_uses_aliases(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "oracle", "cot", "paper", 1, {**cot_rows()})
    assert [r.suite for r in load_runs(root, "synthetic")] == ["oracle"]
    rep = rg.regress(root, do_replay=False)
    (c,) = by_check(rep, "published", "synthetic/cot nll_oracle final [T1]")
    assert c.status == "pass"


def test_learning_claims_do_not_apply_to_runs_that_start_pretrained_and_bounds_allow_rounding(tmp_path):
    """A GAN started from an MLE run (init_from) has a trained model at step 0: "final < initial" does not apply;
    an exact JSD at ln 2 computed as ln 2 + 2e-15 respects its bound."""
    import math

    root = tmp_path / "runs"
    rows = {"step": [0, 5], "wall_s": [0.0, 1.0], "nll_oracle": [9.1, 9.4], "nll_test": [8.78, 10.4],
            "jsd": [math.log(2), math.log(2) + 2e-15]}
    write_run(root, "synthetic", "gcn", "paper", 0, rows, settings={"init_from": "results/runs/synthetic/mle/x"})
    write_run(root, "synthetic", "maligan", "paper", 0, rows)  # the same numbers from an untrained start: a failure
    rep = rg.regress(root, do_replay=False)
    (gcn,) = by_check(rep, "claim", "synthetic/gcn: nll_oracle final < nll_oracle initial")
    assert gcn.status == "missing" and "not applicable" in gcn.note
    (mal,) = by_check(rep, "claim", "synthetic/maligan: nll_oracle final < nll_oracle initial")
    assert mal.status == "fail"
    assert all(c.status == "pass" for c in by_check(rep, "claim", "jsd final <= 0.693147"))


# ------------------------------------------------------------------------------------------------
# Replays in worker processes (--jobs)
# ------------------------------------------------------------------------------------------------


def dying_replay(run_dir: Path, max_evals: int) -> pd.DataFrame:
    """A replay whose worker process dies (as when killed for memory): module level, so a spawned worker can import it."""
    import os

    os._exit(3)


def test_replays_in_two_processes_match_one_process_in_order(tmp_path):
    root = tmp_path / "runs"
    for seed, wall in ((1, 5.0), (2, 50.0), (3, 20.0)):
        rows = cot_rows()
        rows["wall_s"] = [0.0, wall, wall, 2 * wall, 3 * wall, 4 * wall]
        write_run(root, "synthetic", "cot", "paper", seed, rows)
    runs = load_runs(root)
    assert [rg._replay_cost(r, 1) for r in runs] == [5.0, 50.0, 20.0]  # the committed wall time to the first evaluation
    assert rg._replay_cost(runs[1], 0) == 200.0  # 0 = the whole run
    one = rg.replay_checks(runs, 2, identity_replay, mode="exact", jobs=1)
    seen = []
    two = rg.replay_checks(runs, 2, identity_replay, mode="exact", jobs=2,
                           on_done=lambda run, check, s: seen.append((run.name, check.status, s >= 0)))
    assert sorted(seen) == sorted((r.name, "pass", True) for r in runs)  # each reported as it finishes
    assert [c.__dict__ for c in two] == [c.__dict__ for c in one]  # same checks, in the runs' order
    assert [c.status for c in two] == ["pass"] * 3 and [c.check.split()[0] for c in two] == [r.name for r in runs]
    with pytest.raises(TextbenchError, match="--jobs must be >= 1"):
        rg.replay_checks(runs, 2, identity_replay, jobs=0)


def test_a_dead_replay_worker_fails_its_check(tmp_path):
    root = tmp_path / "runs"
    for seed in (1, 2):
        write_run(root, "synthetic", "cot", "paper", seed, cot_rows())
    checks = rg.replay_checks(load_runs(root), 1, dying_replay, mode="exact", jobs=2)
    assert [c.status for c in checks] == ["fail", "fail"]
    assert all(c.ours == "replay worker error" and "BrokenProcessPool" in c.note for c in checks)


def test_real_replays_in_two_processes_are_exact(tiny, tmp_path):
    """The engine's own replay in spawned workers: bit-identical rows on this machine, as in one process."""
    from textbench.engine.loop import Run, train

    root = tmp_path / "runs"
    for algo, seed in (("mle", 0), ("cot", 1)):
        train(Run(algo, "synthetic", "quick", seed, tiny, root / "synthetic" / algo / f"quick-seed{seed}"),
              progress=False, log=lambda _m: None)
    checks = rg.replay_checks(load_runs(root), 1, None, mode="auto", jobs=2)
    assert [c.status for c in checks] == ["pass", "pass"]
    assert all(c.ours == "2 rows identical" and c.note.startswith("mode exact") for c in checks)


# ------------------------------------------------------------------------------------------------
# A replay budget (--replay-budget): CI's time stays bounded however many runs are committed
# ------------------------------------------------------------------------------------------------


def _runs_for_budget(root: Path) -> list:
    """paper cot seeds 0-2 (first evaluation after 5, 50, 20 s), paper mle seed 1 (40 s), quick cot seed 0 (90 s)."""
    def rows(wall):
        r = cot_rows()
        r["wall_s"] = [0.0, wall, wall, 2 * wall, 3 * wall, 4 * wall]
        return r

    for seed, wall in ((0, 5.0), (1, 50.0), (2, 20.0)):
        write_run(root, "synthetic", "cot", "paper", seed, rows(wall))
    write_run(root, "synthetic", "mle", "paper", 1, rows(40.0))
    write_run(root, "synthetic", "cot", "quick", 0, rows(90.0))
    return load_runs(root)


def test_replay_order_puts_each_settings_first_seed_first_paper_before_quick(tmp_path):
    runs = _runs_for_budget(tmp_path / "runs")
    names = [runs[i].name for i in rg.replay_order(runs, 1)]
    # tier 0: the paper settings' lowest seeds, longest first (mle seed 1 is its setting's only seed: 40 s > 5 s);
    # tier 1: quick's first seed, however long; tier 2: the second and third cot seeds, longest first
    assert names == ["synthetic/mle/paper-seed1", "synthetic/cot/paper-seed0", "synthetic/cot/quick-seed0",
                     "synthetic/cot/paper-seed1", "synthetic/cot/paper-seed2"]


class _StepClock:
    """A clock that stands still for the first ``still`` readings, then jumps past any budget."""

    def __init__(self, still: int):
        self.reads = 0
        self.still = still

    def __call__(self) -> float:
        self.reads += 1
        return 0.0 if self.reads <= self.still else 1e9


@pytest.mark.parametrize("jobs", [1, 2])
def test_replays_after_the_budget_are_missing_never_passed(tmp_path, jobs):
    runs = _runs_for_budget(tmp_path / "runs")
    seen = []
    # the start reading, then one reading per replay started: the clock allows exactly two replays
    checks = rg.replay_checks(runs, 1, identity_replay, mode="exact", jobs=jobs, budget_s=60.0,
                              clock=_StepClock(still=3), on_done=lambda r, c, s: seen.append((r.name, c.ours)))
    status = {r.name: (c.status, c.ours) for r, c in zip(runs, checks)}
    assert status == {
        "synthetic/mle/paper-seed1": ("pass", "2 rows identical"),
        "synthetic/cot/paper-seed0": ("pass", "2 rows identical"),
        "synthetic/cot/quick-seed0": ("missing", "not replayed"),
        "synthetic/cot/paper-seed1": ("missing", "not replayed"),
        "synthetic/cot/paper-seed2": ("missing", "not replayed"),
    }
    assert sorted(seen) == sorted((name, ours) for name, (_status, ours) in status.items())  # each reported
    skipped = [c for c in checks if c.ours == "not replayed"]
    assert all("replay budget of 1 min was spent" in c.note and "--suite synthetic" in c.note for c in skipped)
    # without a budget every run is replayed, in the same checks
    full = rg.replay_checks(runs, 1, identity_replay, mode="exact", jobs=jobs, clock=_StepClock(still=0))
    assert [c.status for c in full] == ["pass"] * len(runs)
    with pytest.raises(TextbenchError, match="--replay-budget must be > 0"):
        rg.replay_checks(runs, 1, identity_replay, budget_s=0.0)


def test_regress_cli_replay_budget_notes_what_was_left(tmp_path):
    root = tmp_path / "runs"
    _runs_for_budget(root)
    out = CliRunner().invoke(regress_cmd, ["--runs", str(root), "--replay-budget", "1e-9", "--replay-evals", "1"])
    assert out.exception is None or isinstance(out.exception, SystemExit), out.output  # made-up runs fail Table 1
    # a budget spent before the first start: no replay runs, each run is named on stderr and counted in the notes
    assert sorted(ln.split()[2] for ln in out.stderr.splitlines() if ln.startswith("not replayed")) == sorted(
        r.name for r in load_runs(root))
    assert "1e-09 min: 5 complete run(s) not replayed (listed as missing)" in out.stdout
    assert "replayed synthetic" not in out.stderr.replace("not replayed synthetic", "")
    bad = CliRunner().invoke(regress_cmd, ["--runs", str(root), "--replay-budget", "0"])
    assert bad.exit_code == 2 and "--replay-budget" in bad.output


def test_replay_cost_of_a_bf16_run_counts_the_emulation_where_the_cpu_has_no_bf16(tmp_path):
    rows = cot_rows()
    write_run(tmp_path / "runs", "synthetic", "cot", "quick", 0, rows, settings={"precision": "bf16"})
    write_run(tmp_path / "runs", "synthetic", "cot", "quick", 1, rows)
    bf16, fp32 = load_runs(tmp_path / "runs")
    assert rg._replay_cost(bf16, 1, native_bf16=True) == rg._replay_cost(fp32, 1, native_bf16=False) == 10.0
    assert rg._replay_cost(bf16, 1, native_bf16=False) == pytest.approx(10.0 * rg.BF16_EMULATED_SLOWDOWN)
