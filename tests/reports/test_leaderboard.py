"""Leaderboard: run discovery, aggregation over seeds, table layouts.

This module also holds the fixture that fabricates run directories in the engine's format
(``write_run`` / ``make_runs``); the other report tests import it from here.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # lets the sibling test modules import this one

from textbench.errors import TextbenchError  # noqa: E402
from textbench.metrics import catalogue  # noqa: E402
from textbench.reports import leaderboard as lb  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Fixture: fabricated run directories
# ------------------------------------------------------------------------------------------------


def summarize(df: pd.DataFrame, complete: bool = True) -> dict:
    """summary.json as the engine writes it: final, best (min NLL/JSD, max bleu-n), best_step, steps, wall_s."""
    final, best, best_step = {}, {}, {}
    for c in df.columns:
        if c == "step" or c.endswith("_s"):
            continue
        s = df.set_index("step")[c].dropna()
        if s.empty:
            continue
        final[c] = float(s.iloc[-1])
        d = catalogue.direction(c)
        if d is not None:
            st = s.idxmin() if d == "lower" else s.idxmax()
            best[c], best_step[c] = float(s.loc[st]), int(st)
    return {"final": final, "best": best, "best_step": best_step, "steps": int(df["step"].iloc[-1]),
            "wall_s": float(df["wall_s"].iloc[-1]), "complete": complete}


def write_run(root: Path, suite: str, algo: str, profile: str, seed: int, metrics: pd.DataFrame | dict,
              complete: bool = True, settings: dict | None = None, summary: dict | None = None,
              config: dict | None = None) -> Path:
    """One run directory <root>/<suite>/<algo>/<profile>-seed<seed>/ with config.json, metrics.csv, summary.json.

    ``config``: keys merged into config.json (e.g. ``overrides``, ``suite_signature``, ``versions``)."""
    df = pd.DataFrame(metrics)
    d = Path(root) / suite / algo / f"{profile}-seed{seed}"
    (d / "checkpoints").mkdir(parents=True, exist_ok=True)
    steps = int(df["step"].iloc[-1])
    try:  # the profile's settings as the code defines them (a run made under another definition drifts)
        from textbench.engine.loop import resolve_settings

        base = resolve_settings(algo, suite, profile)
    except Exception:  # noqa: BLE001 - an algorithm or profile the tests make up
        base = {"steps": steps, "eval_every": int(df["step"].iloc[1]) if len(df) > 1 else steps, "g_lr": 0.001}
    cfg = {
        "algo": algo, "suite": suite, "profile": profile, "seed": seed,
        "settings": {**base, **({"oracle": "seqgan"} if suite == "synthetic" else {}), **(settings or {})},
        "textbench_version": "0.1.0", "git_commit": None, "git_dirty": False,
        "versions": {"python": "3.11", "torch": "2.x", "numpy": "2.x"}, "device": "cpu",
        "command": f"textbench run {suite} {algo} --profile {profile} --seed {seed}",
        "created": "2026-01-01T00:00:00+00:00",
        **(config or {}),
    }
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    df.to_csv(d / "metrics.csv", index=False)
    (d / "summary.json").write_text(json.dumps(summary if summary is not None else summarize(df, complete), indent=2))
    (d / "samples.txt").write_text("1 2 3\n")
    return d


def synthetic_curve(algo: str, seed: int, steps: int = 2000, every: int = 200) -> pd.DataFrame:
    """Plausible curves ending near the paper's Table 1 values (seed-dependent offsets)."""
    t = np.arange(0, steps + 1, every, dtype=float)
    u = t / steps
    off = 0.03 * (seed - 2)
    if algo == "mle":
        o = 9.08 + (10.2 - 9.08) * np.exp(-t / 300) + off
        te = 7.60 + (8.52 - 7.60) * np.exp(-t / 200) + 1.37 * u**2 + off
    elif algo == "seqgan":
        o = 8.68 + (10.2 - 8.68) * np.exp(-t / 400) + off
        te = 7.60 + (8.52 - 7.60) * np.exp(-t / 200) + 2.5 * u**2 + off
    elif algo == "maligan":
        o = 8.73 + (10.2 - 8.73) * np.exp(-t / 400) + off
        te = 7.60 + (8.52 - 7.60) * np.exp(-t / 200) + 2.47 * u**2 + off
    else:  # cot
        o = 8.19 + (11.43 - 8.19) * np.exp(-t / 500) + off
        te = 8.03 + (8.52 - 8.03) * np.exp(-t / 400) + off
    floor = {"mle": 0.12, "seqgan": 0.15, "maligan": 0.16, "cot": 0.07}[algo]
    jsd = floor + (math.log(2) - floor - 0.01) * np.exp(-t / 600) + 0.004 * (seed - 2)
    rate = {"mle": 0.05, "seqgan": 0.4, "maligan": 0.3, "cot": 0.12}[algo]
    df = pd.DataFrame({"step": t.astype(int), "wall_s": t * rate * (1 + 0.05 * seed),
                       "nll_oracle": o, "nll_test": te, "jsd": jsd, "jsd_se": 0.003 + 0 * t})
    if algo == "cot":
        cj = 8.37 * np.exp(-t / 700) + 1.0
        cj[1::2] = np.nan  # computed every other evaluation: empty cells
        df["cot_jsd"] = cj
        bnll = 6.6 + 2.0 * jsd + 0.01 * seed
        bnll[0] = np.nan
        df["bnll"] = bnll
    return df


def text_curve(algo: str, seed: int) -> pd.DataFrame:
    t = np.arange(0, 1001, 250)
    base = {"mle": (0.781, 0.482, 0.225, 0.105, 2.365), "cot": (0.785, 0.489, 0.261, 0.152, 2.247)}[algo]
    df = pd.DataFrame({"step": t, "wall_s": t * 0.5, "nll_test": base[4] + 3.0 * np.exp(-t / 200) + 0.005 * seed})
    for n, b in zip(range(2, 6), base[:4]):
        v = np.full(len(t), np.nan)
        v[-2:] = [b - 0.01, b + 0.001 * seed]
        df[f"bleu-{n}"] = v
        sb = np.full(len(t), np.nan)
        sb[-2:] = [0.8 - 0.1 * n, 0.8 - 0.1 * n]
        df[f"self-bleu-{n}"] = sb
        rs = np.full(len(t), np.nan)
        rs[-2:] = [0.95, 0.96 if algo == "mle" else 0.97]
        df[f"rs-bleu-{n}"] = rs
    return df


def make_runs(root: Path) -> Path:
    """A runs tree: synthetic mle/seqgan/maligan/cot (paper, several seeds), quick runs, an incomplete run,
    and an emnlp text suite. Returns the runs directory."""
    root = Path(root)
    for algo, seeds in (("mle", (1, 2, 3)), ("seqgan", (1, 2)), ("maligan", (1,)), ("cot", (1, 2, 3))):
        for s in seeds:
            write_run(root, "synthetic", algo, "paper", s, synthetic_curve(algo, s))
    for algo in ("mle", "cot"):
        write_run(root, "synthetic", algo, "quick", 1, synthetic_curve(algo, 1, steps=400, every=50))
    # killed after 3 evaluations: summary says complete = false
    write_run(root, "synthetic", "cot", "paper", 4, synthetic_curve("cot", 4).iloc[:3], complete=False)
    for algo in ("mle", "cot"):
        write_run(root, "emnlp", algo, "paper", 1, text_curve(algo, 1))
    return root


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return make_runs(tmp_path / "results" / "runs")


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------


def _hand_runs(root: Path) -> Path:
    """mle paper seeds 1..3 with final NLL_oracle 9.0, 9.1, 9.3 (hand-checked aggregation)."""
    for seed, final, wall in ((1, 9.0, 100.0), (2, 9.1, 110.0), (3, 9.3, 150.0)):
        write_run(root, "synthetic", "mle", "paper", seed, {
            "step": [0, 100, 200], "wall_s": [0.0, wall / 2, wall],
            "nll_oracle": [10.0, 8.5 + seed, final],  # best of seed 1 is 9.0 at step 200; seeds 2, 3 too
            "nll_test": [8.5, 7.7, 7.9]})
    return root


def test_load_runs_discovers_complete_and_incomplete(runs_dir):
    runs = lb.load_runs(runs_dir)
    names = [r.name for r in runs]
    assert "synthetic/cot/paper-seed4" in names
    inc = [r for r in runs if not r.complete]
    assert [r.name for r in inc] == ["synthetic/cot/paper-seed4"]
    assert "complete = False" in inc[0].status
    assert sum(r.complete for r in runs) == 13


def test_aggregation_mean_std_n_by_hand(tmp_path):
    root = _hand_runs(tmp_path / "runs")
    agg = lb.aggregate(lb.stats_frame(lb.load_runs(root)))
    assert len(agg) == 1
    row = agg.iloc[0]
    assert row["n_runs"] == 3 and row["seeds"] == "1,2,3"
    assert row["nll_oracle:final:mean"] == pytest.approx((9.0 + 9.1 + 9.3) / 3)
    # sample std (ddof=1): deviations -0.1333, -0.0333, +0.1667 -> sqrt(0.046667 / 2) = 0.152753
    assert row["nll_oracle:final:std"] == pytest.approx(0.152753, abs=1e-6)
    assert row["nll_oracle:final:n"] == 3
    # best = min over evaluations: seed1 min(10, 9.5, 9.0)=9.0, seed2 min(10, 10.5, 9.1)=9.1, seed3 9.3
    assert row["nll_oracle:best:mean"] == pytest.approx(9.1333333)
    assert row["nll_oracle:initial:mean"] == pytest.approx(10.0)
    # best NLL_oracle + NLL_test: seed1 (9.5+7.7=17.2 vs 9.0+7.9=16.9) -> step 200; seed3 (10.5+7.7 vs 9.3+7.9)
    assert row["nll_oracle:best_sum:mean"] == pytest.approx((9.0 + 9.1 + 9.3) / 3)
    assert row["nll_test:best_sum:mean"] == pytest.approx(7.9)
    assert row["wall_s:mean"] == pytest.approx(120.0)
    assert row["wall_s:std"] == pytest.approx(math.sqrt(((100 - 120) ** 2 + (110 - 120) ** 2 + 30**2) / 2))


def test_single_run_std_is_empty_and_metric_n_counts_recorded_runs(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "synthetic", "cot", "paper", 1, {"step": [0, 10], "wall_s": [0, 1], "nll_oracle": [10, 9],
                                                       "jsd": [0.6, 0.5]})
    write_run(root, "synthetic", "cot", "paper", 2, {"step": [0, 10], "wall_s": [0, 1], "nll_oracle": [10, 8]})
    row = lb.aggregate(lb.stats_frame(lb.load_runs(root))).iloc[0]
    assert row["jsd:final:n"] == 1 and math.isnan(row["jsd:final:std"])
    assert row["nll_oracle:final:n"] == 2


def test_best_sum_picks_the_argmin_of_the_sum():
    df = pd.DataFrame({"step": [0, 1, 2, 3], "nll_oracle": [10, 9.0, 8.5, np.nan], "nll_test": [8, 7.5, 8.2, 1.0]})
    assert lb.best_sum(df) == (9.0, 7.5, 1)


def test_broken_runs_are_not_counted(tmp_path):
    root = _hand_runs(tmp_path / "runs")
    bad = write_run(root, "synthetic", "mle", "paper", 7, {"step": [0, 1], "wall_s": [0, 1], "nll_oracle": [1, 2]})
    cfg = json.loads((bad / "config.json").read_text())
    cfg["algo"] = "cot"
    (bad / "config.json").write_text(json.dumps(cfg))
    (root / "synthetic" / "mle" / "paper-seed8").mkdir()  # started, nothing written yet
    runs = lb.load_runs(root)
    by = {r.name: r for r in runs}
    assert "config.json says algo = 'cot'" in by["synthetic/mle/paper-seed7"].status
    assert by["synthetic/mle/paper-seed8"].status.startswith("error") or not by["synthetic/mle/paper-seed8"].complete
    agg = lb.aggregate(lb.stats_frame(runs))
    assert agg.iloc[0]["n_runs"] == 3


def test_missing_runs_dir_is_a_textbench_error(tmp_path):
    with pytest.raises(TextbenchError, match="not found"):
        lb.load_runs(tmp_path / "nope")


def test_tables_written_with_published_values_and_links(runs_dir, tmp_path):
    out = tmp_path / "results" / "leaderboard"
    written = lb.write_leaderboard(runs_dir, out, "both")
    names = sorted(p.name for p in written)
    assert names == sorted(f"{t}.{e}" for t in ("table1", "table2", "table3", "coco", "runs", "temperature") for e in ("csv", "md"))
    t1 = pd.read_csv(out / "table1.csv")
    cot = t1[(t1["algo"] == "cot") & (t1["profile"] == "paper")].iloc[0]
    assert cot["n_runs"] == 3  # the incomplete seed 4 is not counted
    assert cot["nll_oracle_final_paper"] == 8.19
    assert cot["nll_oracle_final_diff"] == pytest.approx(cot["nll_oracle_final_mean"] - 8.19)
    quick = t1[(t1["algo"] == "cot") & (t1["profile"] == "quick")].iloc[0]
    assert math.isnan(quick["nll_oracle_final_diff"])  # no Δ for quick runs
    rankgan = t1[t1["algo"] == "rankgan"].iloc[0]  # published, no runs: the gap is shown
    assert rankgan["n_runs"] == 0 and rankgan["nll_oracle_final_paper"] == 8.37
    md = (out / "table1.md").read_text()
    assert "NLL_oracle final (nats/token)" in md
    assert "at sampling temperature T = 1" in md and "[temperature.md](temperature.md)" in md  # the page beside it
    assert "(../runs/synthetic/cot/paper-seed1/config.json)" in md
    assert "synthetic/cot/paper-seed4" in md
    paper_part, rest = md.split("### In progress — not results")
    progress, quick_part = rest.split("### Quick and other runs — not comparable with the paper")
    assert "synthetic/cot/paper-seed4" in progress and " of " in progress  # shown as in progress, not as a result
    assert "| cot | paper |" in paper_part and "| cot | quick |" in quick_part and "| cot | quick |" not in paper_part
    assert math.isnan(quick["nll_oracle_final_paper"])  # no published value beside a quick row
    for link in [s.split("](")[1].split(")")[0] for s in md.split("[config")[1:]]:
        assert (out / link).resolve().is_file(), link
    t2 = pd.read_csv(out / "table2.csv")
    assert set(t2["algo"]) >= {"mle", "cot", "leakgan"}
    assert t2.loc[t2["algo"] == "cot", "bleu-2_final_paper"].iloc[0] == 0.785
    t3 = pd.read_csv(out / "table3.csv")
    assert "rs-bleu-2_final_mean" in t3.columns and "nll_test_final_paper" in t3.columns
    runs_md = (out / "runs.md").read_text()
    assert "incomplete" in runs_md


def test_format_and_suite_filter(runs_dir, tmp_path):
    out = tmp_path / "lb"
    written = lb.write_leaderboard(runs_dir, out, "csv", suite="emnlp")
    assert all(p.suffix == ".csv" for p in written)
    t1 = pd.read_csv(out / "table1.csv") if (out / "table1.csv").stat().st_size > 1 else pd.DataFrame()
    assert t1.empty
    with pytest.raises(TextbenchError):
        lb.write_leaderboard(runs_dir, out, "html")


def test_markdown_table_escapes_pipes():
    md = lb.markdown_table(["a", "b"], [["x|y", 1]], ["l", "r"])
    assert md.splitlines()[1] == "| --- | ---: |"
    assert "x\\|y" in md


def test_other_oracle_rows_show_no_published_values(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "synthetic", "cot", "paper", 1, synthetic_curve("cot", 1), settings={"oracle": "seeded"})
    t1 = lb.build_leaderboard(root, out_dir=tmp_path / "lb")["table1"]
    cot = t1.frame[t1.frame["algo"] == "cot"]
    ours = cot[cot["n_runs"] == 1].iloc[0]
    assert ours["oracle"] == "seeded" and pd.isna(ours["nll_oracle_final_paper"])
    assert cot[cot["n_runs"] == 0].iloc[0]["nll_oracle_final_paper"] == 8.19  # the published row stays visible
    assert "| paper · oracle seeded |" in t1.markdown


# ------------------------------------------------------------------------------------------------
# Signatures: runs that are not comparable are never averaged
# ------------------------------------------------------------------------------------------------

SEQGAN_SIG = {"suite": "synthetic", "oracle": "seqgan", "train": "9984 oracle samples, seed 88",
              "test": "9984 oracle samples, seed 89", "train_sha256": "aaaa", "test_sha256": "bbbb",
              "units": "nats/token (jsd: nats/sequence)"}


def _final_rows(final: float) -> dict:
    return {"step": [0, 100, 200], "wall_s": [0.0, 1.0, 2.0], "nll_oracle": [10.2, 9.6, final],
            "nll_test": [8.5, 7.8, 7.9], "jsd": [0.69, 0.4, 0.3]}


def _sig_run(root, algo, seed, final, overrides=None, ssig=None, settings=None, profile="paper", suite="synthetic"):
    return write_run(root, suite, algo, profile, seed, _final_rows(final), settings=settings,
                     config={"overrides": overrides or {}, "suite_signature": ssig if ssig is not None else SEQGAN_SIG})


def test_run_signature_is_stable_short_and_ignores_seed_and_units():
    cfg = {"settings": {"oracle": "seqgan"}, "overrides": {"g_lr": 0.02, "batch_size": 32}, "seed": 1,
           "suite_signature": dict(SEQGAN_SIG)}
    sig = lb.run_signature("synthetic", "mle", "paper", cfg)
    assert len(sig.key) == 8 and all(ch in "0123456789abcdef" for ch in sig.key)
    reordered = {"seed": 7, "suite_signature": dict(reversed(list({**SEQGAN_SIG, "units": "nats"}.items()))),
                 "overrides": {"batch_size": 32, "g_lr": 0.02}, "settings": {"oracle": "seqgan"}}
    assert lb.run_signature("oracle", "mle", "paper", reordered).key == sig.key  # alias, key order, seed, units
    assert sig.label == "mle (paper) · set batch_size=32, g_lr=0.02" and not sig.published_setting
    for changed in ({"overrides": {"g_lr": 0.021, "batch_size": 32}},
                    {"suite_signature": {**SEQGAN_SIG, "train_sha256": "cccc"}},
                    {"settings": {"oracle": "seeded"}}):
        assert lb.run_signature("synthetic", "mle", "paper", {**cfg, **changed}).key != sig.key, changed
    assert lb.run_signature("synthetic", "cot", "paper", cfg).key != sig.key
    assert lb.run_signature("synthetic", "mle", "quick", cfg).key != sig.key
    seeded = lb.run_signature("synthetic", "cot", "paper", {"settings": {"oracle": "seeded"}, "overrides": {"oracle": "seeded"}})
    assert seeded.label == "cot (paper) · oracle seeded" and not seeded.published_setting
    default = lb.run_signature("synthetic", "cot", "paper", {"settings": {"oracle": "seqgan"}, "overrides": {}})
    assert default.label == "cot (paper)" and default.published_setting
    # EMNLP's training split must be supplied: that override alone keeps the paper's setting
    assert lb.run_signature("emnlp", "cot", "paper", {"overrides": {"text_train_path": "/x/news.txt"}}).published_setting
    assert not lb.run_signature("coco", "cot", "paper", {"overrides": {"text_train_path": "/x/mine.txt"}}).published_setting


def test_same_signature_different_seeds_are_merged(tmp_path):
    root = tmp_path / "runs"
    for seed, final in ((1, 9.0), (2, 9.2), (3, 9.4)):
        _sig_run(root, "mle", seed, final, ssig={**SEQGAN_SIG, "units": f"label {seed}"})  # units: descriptive
    agg = lb.aggregate(lb.stats_frame(lb.load_runs(root)))
    assert len(agg) == 1
    row = agg.iloc[0]
    assert row["n_runs"] == 3 and row["seeds"] == "1,2,3" and row["label"] == "mle (paper)"
    assert row["nll_oracle:final:mean"] == pytest.approx(9.2) and bool(row["published_setting"])


@pytest.mark.parametrize("other, setting", [
    (dict(overrides={"g_lr": 0.02}), "set g_lr=0.02"),
    (dict(settings={"oracle": "seeded"}, overrides={"oracle": "seeded"},
          ssig={**SEQGAN_SIG, "oracle": "seeded", "train_sha256": "dddd"}), "oracle seeded"),
    (dict(ssig={**SEQGAN_SIG, "train_sha256": "cccc"}), None),  # same visible setting, other data
])
def test_different_signatures_are_never_merged(tmp_path, other, setting):
    root = tmp_path / "runs"
    _sig_run(root, "mle", 1, 9.0)
    _sig_run(root, "mle", 2, 9.1)
    _sig_run(root, "mle", 3, 12.0, **other)  # would drag the mean far off if it were averaged in
    agg = lb.aggregate(lb.stats_frame(lb.load_runs(root)))
    assert len(agg) == 2 and sorted(agg["n_runs"]) == [1, 2]
    default = agg[agg["seeds"] == "1,2"].iloc[0]
    odd = agg[agg["seeds"] == "3"].iloc[0]
    assert default["nll_oracle:final:mean"] == pytest.approx(9.05) and odd["nll_oracle:final:mean"] == 12.0
    assert default["signature"] != odd["signature"]
    assert default["label"] != odd["label"]
    if setting is not None:
        assert odd["label"] == f"mle (paper) · {setting}" and not odd["published_setting"]
        assert default["label"] == "mle (paper)"
    else:  # two rows that would read the same carry their signature
        assert default["label"] == f"mle (paper) · signature {default['signature']}"
        assert odd["label"] == f"mle (paper) · signature {odd['signature']}"
    # the tables: the published value stands beside the paper's setting only, Δ from its own mean
    t1 = lb.build_leaderboard(root, out_dir=tmp_path / "lb")["table1"]
    mle = t1.frame[(t1.frame["algo"] == "mle") & (t1.frame["n_runs"] > 0)]
    assert len(mle) == 2
    row_default = mle[mle["seeds"] == "1,2"].iloc[0]
    assert row_default["nll_oracle_final_diff"] == pytest.approx(9.05 - 9.08)
    row_odd = mle[mle["seeds"] == "3"].iloc[0]
    if setting is not None:
        assert pd.isna(row_odd["nll_oracle_final_paper"]) and pd.isna(row_odd["nll_oracle_final_diff"])
        assert f"| paper · {setting} |" in t1.markdown
    assert row_odd["signature"] == odd["signature"]


def _write_run(d, cfg, complete=True):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "summary.json").write_text(json.dumps({"complete": complete, "final": {}, "steps": cfg["settings"]["steps"]}))


@pytest.mark.parametrize("source_profile, source_complete, steps, published", [
    ("texygen", True, 180, True),   # Texygen's pre-training (80 MLE epochs) taken from an MLE run of that length
    ("paper", True, 180, False),    # MLE's paper profile is SeqGAN's 120 epochs: not MaliGAN's pre-training
    ("quick", True, 180, False),    # a quick MLE run is not the paper's pre-training
    ("texygen", False, 180, False),  # an unfinished source
    ("texygen", True, 100, False),  # a truncated schedule
])
def test_pretraining_from_the_mle_paper_run_keeps_the_paper_setting(tmp_path, source_profile, source_complete, steps, published):
    from textbench.engine.loop import resolve_settings

    ssig = {"suite": "synthetic", "oracle": "seqgan", "train_sha256": "ab"}
    root = tmp_path / "results" / "runs" / "synthetic"
    mle_settings = resolve_settings("mle", "synthetic", source_profile)
    _write_run(root / "mle" / f"{source_profile}-seed0", {"algo": "mle", "suite": "synthetic", "profile": source_profile, "seed": 0,
                                                         "settings": mle_settings, "overrides": {}, "suite_signature": ssig},
               complete=source_complete)
    src = f"results/runs/synthetic/mle/{source_profile}-seed0"
    settings = resolve_settings("maligan", "synthetic", "paper", {"init_from": src, "steps": steps})
    cfg = {"algo": "maligan", "suite": "synthetic", "profile": "paper", "seed": 0, "settings": settings,
           "overrides": {"init_from": src, "steps": steps}, "suite_signature": ssig}
    d = root / "maligan" / "paper-seed0-set12345678"
    _write_run(d, cfg)
    sig = lb.run_signature("synthetic", "maligan", "paper", cfg, d)
    assert sig.published_setting is published
    assert (f"pre-trained by mle {source_profile}-seed0 (80 epochs)" in sig.setting) is published
    plain = lb.run_signature("synthetic", "maligan", "paper", {**cfg, "overrides": {}, "settings": resolve_settings("maligan", "synthetic", "paper")})
    assert (sig.fields["overrides"] == plain.fields["overrides"]) is published
    assert lb.RUN_NAME_RE.match(d.name).group("profile") == "paper"


def test_progress_line_projects_the_remaining_hours():
    run = lb.Run(path=Path("x/paper-seed0"), suite="synthetic", algo="cot", profile="paper", seed=0,
                 config={"settings": {"steps": 1000}},
                 metrics=pd.DataFrame({"step": [0, 100, 200], "wall_s": [10.0, 1810.0, 3610.0],
                                       "nll_oracle": [11.4, 10.0, 9.5], "nll_test": [8.5, 8.0, 7.9]}),
                 summary={"complete": False, "steps": 250, "wall_s": 3600.0 * 1.25})
    line = lb.progress_line(run)
    assert line.startswith("step 250 of 1000 (25.0 %)")
    assert "last evaluation (step 200): nll_oracle 9.500, nll_test 7.900" in line
    assert "1.25 h so far, ≈ 3.8 h left at its recent pace (18.00 s/step)" in line  # 1,800 s per 100 steps, 750 left
    # the pace of the last intervals, not the average: a run that sped up (fewer runs sharing the machine)
    faster = pd.DataFrame({"step": [0, 100, 200, 300], "wall_s": [10.0, 1810.0, 3610.0, 3710.0],
                           "nll_oracle": [11.4, 10.0, 9.5, 9.4], "nll_test": [8.5, 8.0, 7.9, 7.9]})
    assert lb.recent_pace(faster, intervals=1) == 1.0 and lb.recent_pace(faster) == (3710.0 - 10.0) / 300
    assert lb.recent_pace(faster.head(1)) is None
    single = lb.Run(path=Path("x/paper-seed0"), suite="synthetic", algo="cot", profile="paper", seed=0,
                    config={"settings": {"steps": 1000}}, metrics=faster.head(1), summary={"complete": False, "steps": 50, "wall_s": 100.0})
    assert "≈ 0.5 h left at its average pace" in lb.progress_line(single)  # one evaluation: 2 s/step x 950 steps


def test_a_runs_signature_is_computed_once(runs_dir, monkeypatch):
    run = lb.load_runs(runs_dir)[0]
    calls = []
    real = lb.run_signature
    monkeypatch.setattr(lb, "run_signature", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert run.signature is run.signature
    assert len(calls) == 1


def test_coco_table_puts_texygen_values_beside_ours(tmp_path, monkeypatch):
    """A COCO run lands in the COCO table (not in the EMNLP Tables 2-3), beside Texygen's published values."""
    import random

    from textbench.engine.loop import Run, train

    monkeypatch.setenv("TEXTBENCH_CACHE", str(tmp_path / "cache"))
    rng = random.Random(0)
    words = "a man dog cat rides sits on the red bus with small big street near".split()
    for name, n in (("train.txt", 200), ("test.txt", 60)):
        (tmp_path / name).write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(n)) + "\n")
    settings = {"text_train_path": str(tmp_path / "train.txt"), "text_test_path": str(tmp_path / "test.txt"), "steps": 2,
                "eval_every": 2, "eval_samples": 32, "final_samples": 8, "batch_size": 32}
    train(Run("mle", "coco", "quick", 0, settings, tmp_path / "runs" / "coco" / "mle" / "quick-seed0"),
          progress=False, log=lambda _m: None)
    out = tmp_path / "lb"
    lb.write_leaderboard(tmp_path / "runs", out, "both")
    coco = pd.read_csv(out / "coco.csv")
    ours = coco[(coco["algo"] == "mle") & (coco["n_runs"] == 1)]
    assert len(ours) == 1 and "self-bleu-5_final_mean" in coco.columns
    assert coco.loc[coco["algo"] == "mle", "bleu-2_final_paper"].max() == 0.731  # Texygen's MLE, test-set BLEU-2
    assert coco.loc[coco["algo"] == "leakgan", "self-bleu-5_final_paper"].max() == 0.780
    assert "Texygen" in (out / "coco.md").read_text()
    assert (pd.read_csv(out / "table2.csv")["n_runs"] == 0).all()  # the COCO run is not an EMNLP row


@pytest.mark.parametrize("algo, source_epochs, published", [
    ("seqgan", 120, True),   # SeqGAN pre-trains 120 epochs: an MLE paper run lengthened to 120 epochs is its pre-training
    ("seqgan", 80, False),   # the 80-epoch (Texygen) MLE run is not SeqGAN's pre-training
    ("maligan", 120, False),  # nor is the 120-epoch one Texygen's MaliGAN's
])
def test_pretraining_source_must_have_the_algorithms_pretraining_length(tmp_path, algo, source_epochs, published):
    from textbench.engine.loop import resolve_settings

    ssig = {"suite": "synthetic", "oracle": "seqgan", "train_sha256": "ab"}
    root = tmp_path / "results" / "runs" / "synthetic"
    over = {} if source_epochs == 120 else {"steps": source_epochs * 156}  # MLE's paper profile: 120 epochs
    name = "paper-seed0" if not over else "paper-seed0-setaaaaaaaa"
    src_settings = resolve_settings("mle", "synthetic", "paper", over)
    del src_settings["full_eval_every"]  # a source made before a setting existed (its default then applied)
    _write_run(root / "mle" / name, {"algo": "mle", "suite": "synthetic", "profile": "paper", "seed": 0,
                                     "settings": src_settings, "overrides": over, "suite_signature": ssig})
    src = f"results/runs/synthetic/mle/{name}"
    paper = resolve_settings(algo, "synthetic", "paper")
    steps = int(paper["steps"]) - int(paper["pretrain_steps"])
    cfg = {"algo": algo, "suite": "synthetic", "profile": "paper", "seed": 0,
           "settings": resolve_settings(algo, "synthetic", "paper", {"init_from": src, "steps": steps}),
           "overrides": {"init_from": src, "steps": steps}, "suite_signature": ssig}
    d = root / algo / "paper-seed0-set12345678"
    _write_run(d, cfg)
    sig = lb.run_signature("synthetic", algo, "paper", cfg, d)
    assert sig.published_setting is published
    assert (f"pre-trained by mle paper-seed0 ({source_epochs} epochs)" in sig.setting) is published


COCO_SIG = {"suite": "coco", "train": {"path": "coco/train.txt", "sha256": "ab", "sentences": 10000, "used": 10000},
            "vocab": {"size": 4662}, "seq_len": 38}


@pytest.mark.parametrize("algo", ["seqgan", "rankgan", "maligan"])
@pytest.mark.parametrize("source_over, steps, published", [
    ({}, 180, True),                           # MLE's COCO paper run = Texygen's 80 epochs = the GANs' pre-training
    ({"steps": 120 * 156}, 180, False),        # 120 epochs (SeqGAN's synthetic pre-training) is not Texygen's
    ({"steps": 80 * 156, "g_lr": 0.02}, 180, False),  # not MLE's paper setting
    ({}, 100, False),                          # a truncated adversarial schedule
])
def test_coco_pretraining_from_the_mle_coco_paper_run(tmp_path, algo, source_over, steps, published):
    """On COCO, MLE's paper profile (Texygen's Mle.train_real, 80 epochs of ⌊10,000/64⌋ = 156 minibatches) is the
    Texygen GANs' pre-training: a GAN taking it with init_from stays in the paper's setting. The epoch comes from
    the suite signature (text suites have no n_train setting)."""
    from textbench.engine.loop import resolve_settings

    root = tmp_path / "results" / "runs" / "coco"
    name = "paper-seed0" if not source_over else "paper-seed0-setaaaaaaaa"
    _write_run(root / "mle" / name, {"algo": "mle", "suite": "coco", "profile": "paper", "seed": 0,
                                     "settings": resolve_settings("mle", "coco", "paper", source_over),
                                     "overrides": source_over, "suite_signature": COCO_SIG})
    src = f"results/runs/coco/mle/{name}"
    over = {"init_from": src, "steps": steps}
    cfg = {"algo": algo, "suite": "coco", "profile": "paper", "seed": 0, "settings": resolve_settings(algo, "coco", "paper", over),
           "overrides": over, "suite_signature": COCO_SIG}
    d = root / algo / "paper-seed0-set12345678"
    _write_run(d, cfg)
    sig = lb.run_signature("coco", algo, "paper", cfg, d)
    assert sig.published_setting is published
    assert ("pre-trained by mle paper-seed0 (80 epochs)" in sig.setting) is (published and not source_over)
    if published:  # the same row as a GAN run that pre-trained itself
        plain = lb.run_signature("coco", algo, "paper", {**cfg, "overrides": {}, "settings": resolve_settings(algo, "coco", "paper")})
        assert sig.fields["overrides"] == plain.fields["overrides"] == {}


def test_coco_pretraining_source_must_be_the_same_suite_and_seed(tmp_path):
    from textbench.engine.loop import resolve_settings

    root = tmp_path / "results" / "runs" / "coco"
    src_cfg = {"algo": "mle", "suite": "coco", "profile": "paper", "seed": 1, "settings": resolve_settings("mle", "coco", "paper"),
               "overrides": {}, "suite_signature": COCO_SIG}
    _write_run(root / "mle" / "paper-seed1", src_cfg)
    over = {"init_from": "results/runs/coco/mle/paper-seed1", "steps": 180}
    cfg = {"algo": "seqgan", "suite": "coco", "profile": "paper", "seed": 0,
           "settings": resolve_settings("seqgan", "coco", "paper", over), "overrides": over, "suite_signature": COCO_SIG}
    d = root / "seqgan" / "paper-seed0-set12345678"
    _write_run(d, cfg)
    assert lb.pretrained_from(d, cfg) is None  # another seed
    cfg1 = {**cfg, "seed": 1, "suite_signature": {**COCO_SIG, "train": {**COCO_SIG["train"], "sha256": "cd"}}}
    assert lb.pretrained_from(d, cfg1) is None  # other training data
    found = lb.pretrained_from(d, {**cfg, "seed": 1})
    assert found.pop("path").name == "paper-seed1"
    assert found == {"algo": "mle", "profile": "paper", "seed": 1, "run": "paper-seed1", "epochs": 80}


def test_emnlp_pretraining_allows_the_training_file_override(tmp_path):
    """EMNLP's paper setting needs --set text_train_path on both runs; 80 epochs of its 270,000 sentences."""
    from textbench.engine.loop import resolve_settings

    ssig = {"suite": "emnlp", "train": {"path": "/data/emnlp_news.txt", "sha256": "ef", "sentences": 270000, "used": 270000}}
    root = tmp_path / "results" / "runs" / "emnlp"
    data = {"text_train_path": "/data/emnlp_news.txt"}
    _write_run(root / "mle" / "paper-seed0-setbbbbbbbb", {"algo": "mle", "suite": "emnlp", "profile": "paper", "seed": 0,
                                                          "settings": resolve_settings("mle", "emnlp", "paper", data),
                                                          "overrides": data, "suite_signature": ssig})
    over = {**data, "init_from": "results/runs/emnlp/mle/paper-seed0-setbbbbbbbb", "steps": 180}
    cfg = {"algo": "rankgan", "suite": "emnlp", "profile": "paper", "seed": 0,
           "settings": resolve_settings("rankgan", "emnlp", "paper", over), "overrides": over, "suite_signature": ssig}
    d = root / "rankgan" / "paper-seed0-set12345678"
    _write_run(d, cfg)
    sig = lb.run_signature("emnlp", "rankgan", "paper", cfg, d)
    assert sig.published_setting and "pre-trained by mle paper-seed0 (80 epochs)" in sig.setting


def test_a_run_made_under_an_earlier_profile_definition_is_its_own_setting(tmp_path):
    """MLE's paper profile became 120 epochs: the 80-epoch run made as 'paper' is labelled, not compared."""
    root = tmp_path / "runs"
    curve = {"step": [0, 780], "wall_s": [0.0, 1.0], "nll_oracle": [10.0, 9.1], "nll_test": [8.5, 8.8]}
    write_run(root, "synthetic", "mle", "paper", 0, curve, settings={"steps": 80 * 156})
    write_run(root, "synthetic", "mle", "paper", 1, curve)  # the current definition (120 epochs)
    t1 = lb.build_leaderboard(root, out_dir=tmp_path / "lb")["table1"]
    mle = t1.frame[(t1.frame["algo"] == "mle") & (t1.frame["n_runs"] == 1)]
    assert len(mle) == 2
    old = mle[mle["label"].str.contains("earlier 'paper' profile: steps=12480")].iloc[0]
    new = mle[~mle["label"].str.contains("earlier")].iloc[0]
    assert pd.isna(old["nll_oracle_final_paper"]) and new["nll_oracle_final_paper"] == 9.08
    # a --set equal to the profile's value changes nothing
    sig = lb.run_signature("synthetic", "mle", "paper", {"settings": {"steps": 120 * 156}, "overrides": {"steps": 120 * 156}})
    assert sig.published_setting and sig.setting == ""


@pytest.mark.parametrize("pretrained", [True, False])
def test_best_covers_the_mle_pretraining_of_a_pretrained_run(tmp_path, pretrained):
    """The paper's '–(MLE)': a GAN row's best NLL_test (and best NLL_oracle + NLL_test) was reached during its
    MLE pre-training. For a run pre-trained by an MLE paper run the best is taken over that run's evaluations
    and its own; a run whose init_from is not the paper's pre-training keeps its own history only."""
    from textbench.engine.loop import resolve_settings

    ssig = {"suite": "synthetic", "oracle": "seqgan", "train_sha256": "ab"}
    root = tmp_path / "results" / "runs" / "synthetic"
    mle = root / "mle" / "texygen-seed0"
    _write_run(mle, {"algo": "mle", "suite": "synthetic", "profile": "texygen", "seed": 0,
                     "settings": resolve_settings("mle", "synthetic", "texygen"), "overrides": {}, "suite_signature": ssig})
    pd.DataFrame({"step": [0, 780, 12480], "nll_oracle": [11.4, 9.3, 9.1], "nll_test": [8.5, 7.6, 8.8]}).to_csv(mle / "metrics.csv", index=False)
    steps = 180 if pretrained else 100  # 100: a truncated schedule, not the paper's
    src = "results/runs/synthetic/mle/texygen-seed0"
    cfg = {"algo": "maligan", "suite": "synthetic", "profile": "paper", "seed": 0, "overrides": {"init_from": src, "steps": steps},
           "settings": resolve_settings("maligan", "synthetic", "paper", {"init_from": src, "steps": steps}), "suite_signature": ssig}
    d = root / "maligan" / "paper-seed0-set12345678"
    _write_run(d, cfg)
    pd.DataFrame({"step": [0, 5, steps], "nll_oracle": [9.1, 8.5, 11.4], "nll_test": [8.8, 10.0, 18.1]}).to_csv(d / "metrics.csv", index=False)
    run = lb.load_run(d)
    row = lb.run_stats(run)
    assert row["nll_oracle:final"] == 11.4 and row["nll_test:final"] == 18.1
    if pretrained:
        assert (row["nll_test:best"], row["nll_test:best_step"]) == (7.6, 780 - 12480)  # during the pre-training
        assert (row["nll_oracle:best_sum"], row["nll_test:best_sum"]) == (9.3, 7.6)
    else:
        assert (row["nll_test:best"], row["nll_test:best_step"]) == (8.8, 0)
        assert (row["nll_oracle:best_sum"], row["nll_test:best_sum"]) == (9.1, 8.8)  # its own step 0


def test_an_explained_failure_is_marked_in_table1_never_as_a_pass(tmp_path, monkeypatch):
    """A cell beyond tolerance reads ✗; with an entry in published.EXPLAINED_CSV (and enough seeds) it reads
    '✗ explained‡' with the footnote — as regress reports it — and a cell within tolerance is never touched."""
    # mle paper seeds: final NLL_oracle 9.133 vs the published 9.08 (within 0.15), NLL_test 7.9 vs 8.97 (beyond 0.5)
    root = _hand_runs(tmp_path / "runs")
    md = lb.build_leaderboard(root, out_dir=tmp_path / "lb")["table1"].markdown
    row = next(line for line in md.splitlines() if line.startswith("| mle | paper"))
    assert "-1.070 ✗ |" in row and "explained" not in md
    rule = {"min_seeds": "3", "evidence": "docs/protocol.md", "reason": "a reason"}
    monkeypatch.setattr(lb.pub, "explanation_for", lambda suite, algo, metric, stat: rule if (algo, metric, stat) == ("mle", "nll_test", "final") else None)
    md = lb.build_leaderboard(root, out_dir=tmp_path / "lb")["table1"].markdown
    row = next(line for line in md.splitlines() if line.startswith("| mle | paper"))
    assert "-1.070 ✗ explained‡ |" in row and "+0.053 ✓ |" in row
    assert "‡ a failure explained with evidence" in md
    rule["min_seeds"] = "4"  # more seeds than the group has: not explained
    md = lb.build_leaderboard(root, out_dir=tmp_path / "lb")["table1"].markdown
    assert "explained‡" not in md


def test_held_back_runs_are_listed_apart_never_counted(tmp_path):
    """A complete run in results/pending (its published comparison fails, unexplained) is named under its
    suite with its final numbers and a link, and is in no table row; an unfinished one there is not listed."""
    runs = tmp_path / "results" / "runs"
    write_run(runs, "synthetic", "mle", "paper", 0, synthetic_curve("mle", 0))
    pending = tmp_path / "results" / "pending"
    held = write_run(pending, "synthetic", "rankgan", "paper", 0, synthetic_curve("maligan", 0),
                     config={"overrides": {"steps": 180}})
    write_run(pending, "synthetic", "seqgan", "paper", 0, synthetic_curve("seqgan", 0), complete=False)
    out = tmp_path / "results" / "leaderboard"
    lb.write_leaderboard(runs, out, "both")
    md = (out / "table1.md").read_text()
    part = md.split("### Held back — complete, not counted in the tables above")[1]
    final = pd.read_csv(held / "metrics.csv").iloc[-1]
    line = next(s for s in part.splitlines() if s.startswith("- ["))
    assert line.startswith("- [synthetic/rankgan/paper-seed0](../pending/synthetic/rankgan/paper-seed0/)")
    assert f"final nll_oracle {final['nll_oracle']:.3f}, nll_test {final['nll_test']:.3f}; set steps=180" in line
    assert "seqgan" not in part.split("###")[0]
    t1 = pd.read_csv(out / "table1.csv")
    assert t1.loc[t1["algo"] == "rankgan", "n_runs"].tolist() == [0]  # the published row alone: its gap shown


def test_progress_line_projects_only_the_phase_it_has_measured():
    """SeqGAN's 50 D pre-training calls, then 200 adversarial epochs of five calls' work each (stored progress
    phases): the leaderboard projected the whole run at the D pre-training pace (≈ 6.5 h left, where the
    adversarial epochs measured 404 s each on the same CPU: ≈ 22 h). Now only the measured phase is projected."""
    prog = {"unit": "epoch", "measures": ["generator_updates", "real_sequences"], "offset": [0, 0],
            "segments": [[1, 50, 0, 29952], [51, 250, 1, 149760]]}
    steps = [0, 10, 20, 30, 40, 50, 55, 60]
    wall = [0.0, 800, 1600, 2400, 3200, 4000, 6000, 8000]  # 80 s per D call, 400 s per adversarial epoch

    def run(k: int, n_evals: int) -> lb.Run:
        return lb.Run(path=Path("x/paper-seed0"), suite="synthetic", algo="seqgan", profile="paper", seed=0,
                      config={"settings": {"steps": 250}, "progress": prog},
                      metrics=pd.DataFrame({"step": steps[:n_evals], "wall_s": wall[:n_evals],
                                            "nll_oracle": 9.1, "nll_test": 8.9}),
                      summary={"complete": False, "steps": k, "wall_s": wall[n_evals - 1]})

    during_d = lb.progress_line(run(40, 5))  # 10 D calls left at 80 s; the adversarial phase not measured
    assert "≈ 0.2 h left in its current phase (to step 50) at that phase's recent pace (80.00 s/step)" in during_d
    assert "the 200 steps after it do other work per step, not measured yet" in during_d
    assert "no projection" in lb.progress_line(run(50, 6))  # adversarial phase begun, no interval measured in it
    adv = lb.progress_line(run(60, 8))  # two adversarial intervals: 400 s per epoch, 190 epochs left
    assert "≈ 21.1 h left at its recent pace (400.00 s/step)" in adv
    assert lb.run_phases(run(60, 8)) == [(1, 50), (51, 250)]
