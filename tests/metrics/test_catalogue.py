"""The metric catalogue: complete for every evaluator and the registry, the one source of "best", of the
leaderboard's and the plots' unit texts, and of the README metrics table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import TINY
from textbench.engine.loop import Run, resolve_settings, train
from textbench.engine.rundir import summarize
from textbench.metrics import bleu, catalogue, likelihood
from textbench.metrics.catalogue import CATALOGUE, LN2, metric
from textbench.models.lstm import LSTMLM
from textbench.registry import METRICS, SUITES

REPO = Path(__file__).resolve().parents[2]


def test_entries_are_well_formed():
    labels = [e.label for e in CATALOGUE.values()]
    assert len(set(labels)) == len(labels)
    for key, e in CATALOGUE.items():
        assert e.direction in catalogue.DIRECTIONS and e.description and e.unit_text
        lo, hi = e.bounds
        assert lo < hi
        assert e.name == key or e.name == f"{key}-n"
        assert not (e.direction and e.good)  # a good value is stated only where the direction says nothing
    with pytest.raises(ValueError, match="direction"):
        catalogue.MetricInfo("x", "X", "", "min", (0, 1), "d")


def test_registered_metrics_are_the_catalogue():
    assert set(METRICS.names()) == set(CATALOGUE)
    assert all(METRICS.entry(k).description == e.description for k, e in CATALOGUE.items())


def test_one_score_class():
    assert likelihood.Score is bleu.Score is catalogue.Score
    s = likelihood.nll_oracle(torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], dtype=torch.float64))
    assert s.info is metric("nll_oracle") and "(nats/token)" in str(s)


def test_resolved_columns():
    assert metric("bleu-4").label == "BLEU-4" and metric("bleu-4").direction == "higher"
    assert metric("self-bleu-3").label == "Self-BLEU-3" and metric("self-bleu-3").direction is None
    assert metric("rs-bleu-2").good == "≲ 1" and metric("rs-bleu-2").direction is None
    se = metric("jsd_se")
    assert se.unit == "nats" and se.direction is None and se.bounds == (0.0, math.inf)
    for other in ("step", "wall_s", "g_loss", "m_loss", "d_loss", "bleu", "bleu-0", "nll_oracle_se_se", "jsd_x"):
        assert metric(other) is None, other


def _synthetic_columns() -> set[str]:
    s = SUITES.get("synthetic")({**resolve_settings("mle", "synthetic", "quick"), **TINY})
    return set(s.evaluate(s.oracle, seed=1, n=16, full=True)) | set(s.evaluate(s.oracle, seed=1, n=16, full=False))


def _text_columns(tmp_path) -> set[str]:
    lines = [f"a {c} {n} sits on the {p} ." for c in ("red", "big", "old") for n in ("cat", "dog") for p in ("mat", "bench")]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    cls = SUITES.get("coco")
    s = cls({**cls.defaults, "text_train_path": str(tmp_path / "train.txt"), "text_test_path": str(tmp_path / "test.txt")})
    m = LSTMLM(s.vocab_size, 8, 8, s.seq_len, s.start_token).init_normal_(0.5, torch.Generator().manual_seed(0))
    return set(s.evaluate(m, seed=1, n=12, full=True)) | set(s.evaluate(m, seed=1, n=12, full=False))


def test_every_evaluator_column_has_an_entry(tmp_path):
    cols = _synthetic_columns() | _text_columns(tmp_path)
    assert {"nll_oracle_se", "jsd", "cot_jsd_se", "bleu-5", "self-bleu-2", "rs-bleu-4"} <= cols
    assert [c for c in sorted(cols) if metric(c) is None] == []
    # textbench eval's names too (orders 1..9)
    assert all(metric(n) is not None for n in bleu.valid_metric_names())


def test_cot_logs_bnll_and_summary_bests_follow_the_catalogue(tmp_path):
    rd = tmp_path / "cot"
    summary = train(Run("cot", "synthetic", "quick", 0, TINY, rd), progress=False, log=lambda _m: None)
    cols = pd.read_csv(rd / "metrics.csv").columns
    assert metric("bnll") is not None and "bnll" in cols
    ranked = {c for c in cols if catalogue.direction(c) is not None}
    assert set(summary["best"]) == ranked == {"nll_oracle", "nll_test", "jsd", "cot_jsd", "bnll"}


def test_summarize_best_is_the_catalogue_direction():
    cols = ["nll_oracle", "nll_oracle_se", "nll_test", "jsd", "jsd_se", "cot_jsd", "bnll", "g_loss", "m_loss"]
    cols += [f"{k}-{n}" for k in ("bleu", "self-bleu", "rs-bleu") for n in catalogue.ORDERS]
    values = [[0.5, 0.2, 0.9], [0.3, 0.7, 0.4], [0.6, 0.1, 0.8]]
    rows = [{"step": 10 * i, "wall_s": 1.0 + i, **{c: v[j % 3] for j, c in enumerate(cols)}} for i, v in enumerate(values)]
    s = summarize(rows, 20, 3.0, True)
    assert s["final"] == {c: rows[-1][c] for c in cols}
    for c in cols:
        d, series = catalogue.direction(c), [r[c] for r in rows]
        if d is None:
            assert c not in s["best"], c
        else:
            want = min(series) if d == "lower" else max(series)
            assert s["best"][c] == want and s["best_step"][c] == rows[series.index(want)]["step"], c


def test_committed_summaries_agree_with_the_catalogue():
    """Every complete committed run: summary.json's best = min/max of metrics.csv by the catalogue's direction."""
    seen = 0
    for sp in sorted((REPO / "results" / "runs").glob("*/*/*/summary.json")):
        summary = json.loads(sp.read_text())
        if not summary.get("complete"):
            continue
        m = pd.read_csv(sp.with_name("metrics.csv"))
        ranked = {c: catalogue.direction(c) for c in m.columns if catalogue.direction(c) and m[c].notna().any()}
        assert set(summary["best"]) == set(ranked), sp
        for c, d in ranked.items():
            assert summary["best"][c] == pytest.approx(m[c].min() if d == "lower" else m[c].max(), rel=1e-12), (sp, c)
        seen += 1
    if seen == 0:
        pytest.skip("no complete committed runs")


def test_rendered_texts():
    """The leaderboard's and the plots' texts, from the catalogue (the committed tables and figures use them)."""
    from textbench.reports import leaderboard as lb
    from textbench.reports.plots import _label

    assert [f"{c.label} ({c.unit})" for c in lb.TABLE_SPECS[0].cols] == [
        "NLL_oracle final (nats/token)", "NLL_test final (nats/token)", "NLL_test best (nats/token)",
        "best NLL_oracle + NLL_test (nats/token)", "exact JSD final (nats, ≤ ln 2)",
        "CoT-estimator JSD final (nats/sequence)"]
    assert [f"{c.label} ({c.unit})" for c in lb.TABLE_SPECS[1].cols][0] == "BLEU-2 (0–1, ↑)"
    assert [f"{c.label} ({c.unit})" for c in lb.TABLE_SPECS[2].cols][::4] == ["RS-BLEU-2 (ratio, good ≲ 1)", "NLL_test (nats/token)"]
    assert [c.digits for c in lb.TABLE_SPECS[0].cols] == [3, 3, 3, 3, 4, 3]
    assert [_label(m) for m in ("nll_oracle", "jsd", "cot_jsd", "bnll", "bleu-5", "g_loss")] == [
        "NLL_oracle (nats/token)", "exact JSD (nats)", "CoT-estimator JSD (nats/sequence)",
        "mediator balanced NLL (nats/token)", "BLEU-5 (0–1, higher is better)", "g_loss"]
    assert metric("jsd").bounds == (0.0, LN2) and metric("jsd").range_text == "[0, ln 2]"


def test_readme_metrics_table_is_the_catalogue():
    """The README's metrics table is catalogue.markdown_table() (regenerate: python -m textbench.metrics.catalogue)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(ln for ln in section.splitlines() if ln.startswith("|")) + "\n"
    assert table == catalogue.markdown_table()
