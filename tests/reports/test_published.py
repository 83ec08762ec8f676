"""Published numbers as data: verbatim sources, mapping, tolerances, claims."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from textbench.reports import published as pub

REPO = Path(__file__).resolve().parents[2]
PROTOCOL_CANDIDATES = [REPO / "docs" / "protocol.md", REPO.parent / "shared" / "docs" / "protocol.md",
                       Path("/work/shared/docs/protocol.md")]


def _protocol() -> str | None:
    for p in PROTOCOL_CANDIDATES:
        if p.is_file():
            return p.read_text(encoding="utf-8")
    return None


@pytest.mark.parametrize("section", sorted(pub.VERBATIM_BLOCKS))
def test_sources_are_verbatim_copies_of_protocol(section):
    text = _protocol()
    if text is None:
        pytest.skip("docs/protocol.md not available")
    block = pub.VERBATIM_BLOCKS[section]
    assert block.strip() in text, f"{section} block differs from protocol.md"


def test_row_counts_and_unique_keys():
    df = pub.published_numbers()
    assert df["key"].is_unique
    by = df.groupby("source").size()
    assert by[pub.SRC_T1] == 5 * 5  # 5 algorithms x (oracle final, test final, test best, best-sum pair)
    assert by[pub.SRC_T2] + by[pub.SRC_T3] == 7 * 9 + 4  # alpha row has BLEU only
    assert by[pub.SRC_COT] == 8
    assert by[pub.SRC_SEQGAN] == 24 + 31 + 1
    for col in ("source", "section", "suite", "algo", "metric", "stat", "tolerance_reason", "printed"):
        assert (df[col].astype(str).str.len() > 0).all(), col
    assert (df["tolerance"] > 0).all()


def _one(**kw):
    df = pub.published_numbers()
    for k, v in kw.items():
        df = df[df[k] == v]
    assert len(df) == 1, kw
    return df.iloc[0]


def test_table1_values_and_mle_derived_best():
    assert _one(source=pub.SRC_T1, algo="cot", metric="nll_oracle", stat="final")["value"] == 8.19
    assert _one(source=pub.SRC_T1, algo="mle", metric="nll_test", stat="final")["value"] == 8.97
    assert _one(source=pub.SRC_T1, algo="cot", metric="nll_test", stat="best")["value"] == 7.54
    sg = _one(source=pub.SRC_T1, algo="seqgan", metric="nll_test", stat="best")
    assert sg["value"] == 7.60 and sg["printed"] == "7.60" and "–(MLE)" in sg["note"]
    assert _one(source=pub.SRC_T1, algo="mle", metric="nll_oracle", stat="best_sum")["value"] == 9.43
    assert _one(source=pub.SRC_T1, algo="rankgan", metric="nll_test", stat="best_sum")["value"] == 7.67


def test_tables23_name_mapping():
    basic = _one(source=pub.SRC_T2, paper_name="TextCoT-basic", metric="bleu-5")
    assert basic["algo"] == "cot" and basic["suite"] == "emnlp" and basic["value"] == 0.152
    assert _one(source=pub.SRC_T3, algo="leakgan", metric="rs-bleu-5")["value"] == 2.198
    assert _one(source=pub.SRC_T3, algo="maligan", metric="nll_test")["value"] == 3.240
    alpha = pub.published_numbers()
    alpha = alpha[alpha["variant"] != ""]
    assert len(alpha) == 4 and not alpha["check"].any()


def test_readme_and_log_steps():
    cj = _one(source=pub.SRC_COT, metric="cot_jsd", step=156)
    assert cj["value"] == 7.330582 and cj["stat"] == "at_step"
    assert _one(source=pub.SRC_COT, metric="nll_test", step=100)["printed"] == "7.9382834"
    log = pub.published_numbers()
    log = log[(log["source"] == pub.SRC_SEQGAN) & (log["stat"] == "at_step")]
    assert not log["check"].any()  # epochs / adversarial batches do not map onto textbench steps
    assert log[log["algo"] == "seqgan"]["step"].max() == 150


def test_tolerances_default_and_wider_with_reasons():
    assert pub.tolerance_for("synthetic", "nll_oracle", "final")[0] == 0.15
    assert pub.tolerance_for("coco", "bleu-3", "final")[0] == 0.02
    t, why = pub.tolerance_for("synthetic", "nll_test", "final")
    assert t > 0.15 and "final" in why
    t, why = pub.tolerance_for("emnlp", "rs-bleu-2", "final")
    assert t > 0.02 and "training split" in why
    assert pub.tolerance_for("oracle", "nll_test", "final") == pub.tolerance_for("synthetic", "nll_test", "final")


def test_lookup_prefers_the_paper_table():
    assert pub.lookup("synthetic", "mle", "nll_oracle", "final")["value"] == 9.08  # not the log's 9.07058
    assert pub.lookup("oracle", "cot", "nll_oracle", "final")["value"] == 8.19
    assert pub.lookup("synthetic", "cot", "bleu-2", "final") is None


def test_claims_hold_on_the_published_numbers_themselves():
    cl = pub.qualitative_claims()
    assert cl["id"].is_unique
    assert set(cl["op"]) <= set(pub.OPS)
    checked = 0
    for c in cl.itertuples(index=False):
        assert c.source and c.profiles
        if c.lhs_algo == "*":
            continue
        lhs = pub.lookup(c.suite, c.lhs_algo, c.lhs_metric, c.lhs_stat)
        rhs = c.rhs_value if not math.isnan(c.rhs_value) else pub.lookup(c.suite, c.rhs_algo, c.rhs_metric, c.rhs_stat)["value"]
        assert pub.OPS[c.op](lhs["value"], rhs), c.id
        checked += 1
    assert checked >= 10


def test_paper_claims_are_paper_profile_only():
    cl = pub.qualitative_claims()
    paper_claims = cl[cl["source"].str.contains("CoT paper")]
    assert (paper_claims["profiles"] == "paper").all()
    assert cl["profiles"].str.contains("quick").any()


def test_canonical_suite():
    assert pub.canonical_suite("oracle") == "synthetic"
    assert pub.canonical_suite("EMNLP2017") == "emnlp"
    assert pub.canonical_suite("mysuite") == "mysuite"
