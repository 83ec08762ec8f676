"""BLEU / Self-BLEU / RS-BLEU: hand-computed cases, property-based parity with nltk, Appendix A anchors, bad input.

Parity target: nltk 3.10 ``sentence_bleu(refs, hyp, weights=(1/N,)*N, smoothing_function=method1)``, per
hypothesis, |Δ| <= 1e-9 (the engine actually reproduces nltk's floats bit for bit; the tests allow 1e-9).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

import textbench
from textbench.errors import TextbenchError
from textbench.metrics.bleu import (
    ReferenceIndex,
    Score,
    SelfBleuIndex,
    Signature,
    bleu,
    parse_metric,
    rs_bleu,
    score_corpora,
    score_files,
    self_bleu,
    sentence_bleu,
    valid_metric_names,
)
from textbench.metrics.tokenize import read_lines, tokenize_lines

TOL = 1e-9
METHOD1 = SmoothingFunction().method1
REPO_ROOT = Path(__file__).resolve().parents[2]


def nltk_bleu(refs, hyp, n):
    return nltk_sentence_bleu(refs, hyp, (1 / n,) * n, smoothing_function=METHOD1)


def nltk_self_bleu(samples, n):
    return [nltk_bleu(samples[:i] + samples[i + 1 :], s, n) for i, s in enumerate(samples)]


def toks(*sentences):
    return [s.split() for s in sentences]


# ---------------------------------------------------------------------------------------------- hand-computed


def test_hand_computed_textbook_example():
    # hyp "the cat sat on the mat" (6 tokens); refs r1 "the cat is on the mat" (6), r2 "there is a cat on the mat" (7)
    # p1: the x2 (max in one ref: r1 has 2) -> 2, cat 1, sat 0, on 1, mat 1           = 5/6
    # p2: the-cat 1, cat-sat 0, sat-on 0, on-the 1, the-mat 1                          = 3/5
    # p3: the-cat-sat 0, cat-sat-on 0, sat-on-the 0, on-the-mat 1                      = 1/4
    # p4: no match -> method1: 0.1 / 3
    # closest ref length 6 = |h| -> BP = exp(1 - 6/6) = 1
    # BLEU-2 = sqrt(5/6 * 3/5) = sqrt(1/2); BLEU-3 = (5/6 * 3/5 * 1/4)^(1/3) = (1/8)^(1/3) = 1/2
    # BLEU-4 = (1/8 * 0.1/3)^(1/4) = (1/240)^(1/4)
    refs = toks("the cat is on the mat", "there is a cat on the mat")
    hyp = "the cat sat on the mat".split()
    out = bleu([hyp], refs, (2, 3, 4))
    assert out[2][0] == pytest.approx(math.sqrt(0.5), abs=1e-12)
    assert out[3][0] == pytest.approx(0.5, abs=1e-12)
    assert out[4][0] == pytest.approx(240 ** -0.25, abs=1e-12)
    for n in (2, 3, 4):
        assert abs(out[n][0] - nltk_bleu(refs, hyp, n)) <= TOL


def test_hand_computed_brevity_penalty_and_short_hypothesis():
    # hyp "the cat" (2) vs ref "the cat sat on" (4): p1 = 2/2, p2 = 1/1, BP = exp(1 - 4/2) = e^-1
    # BLEU-2 = e^-1; BLEU-4: |h| < 3 so p3 = p4 = 0/1 -> 0.1/1: e^-1 * (1 * 1 * 0.1 * 0.1)^(1/4) = e^-1 * sqrt(0.1)
    refs = toks("the cat sat on")
    hyp = "the cat".split()
    assert sentence_bleu(refs, hyp, 2) == pytest.approx(math.exp(-1), abs=1e-12)
    assert sentence_bleu(refs, hyp, 4) == pytest.approx(math.exp(-1) * math.sqrt(0.1), abs=1e-12)


def test_hand_computed_closest_length_tie_goes_to_the_shorter_reference():
    # hyp "a b c d" (4); refs of length 3 and 5 are equally close -> r = 3 -> |h| > r -> BP = 1
    # (choosing 5 would give BP = exp(1 - 5/4) = 0.7788). p1 = 4/4, p2 = 3/3 (all in ref 2) -> BLEU-2 = 1
    refs = toks("a b c", "a b c d e")
    assert sentence_bleu(refs, "a b c d".split(), 2) == 1.0
    assert ReferenceIndex(refs).closest_ref_length(4) == 3


def test_hand_computed_clipping_by_max_count_in_a_single_reference():
    # hyp "the the the the" vs ref "the cat the": p1 = min(4, 2)/4 = 1/2; p2: the-the never in ref -> 0.1/3
    # BP: |h| = 4 > 3 -> 1.  BLEU-2 = sqrt(1/2 * 1/30) = sqrt(1/60)
    assert sentence_bleu(toks("the cat the"), "the the the the".split(), 2) == pytest.approx(60**-0.5, abs=1e-12)
    # refs "the cat", "the dog": "the" occurs once in each -> clip at 1 (max), not 2 (sum): p1 = 1/2,
    # p2 = 0.1/1, BP = 1 (closest length 2) -> sqrt(0.05)
    assert sentence_bleu(toks("the cat", "the dog"), "the the".split(), 2) == pytest.approx(0.05**0.5, abs=1e-12)


def test_no_unigram_match_and_empty_hypothesis_score_zero():
    refs = toks("a b c")
    out = bleu([["x", "y"], [], ["x"]], refs, (1, 2, 5))
    for n in (1, 2, 5):
        assert out[n].tolist() == [0.0, 0.0, 0.0]
        assert [nltk_bleu(refs, h, n) for h in (["x", "y"], [], ["x"])] == [0, 0, 0]


def test_hand_computed_self_bleu_with_duplicate_samples():
    # A = "a b", B = "a b", C = "c d".  A vs {B, C}: p1 = 2/2, p2 = 1/1, BP 1 -> 1;  B vs {A, C} -> 1;
    # C vs {A, B}: no unigram match -> 0.  Self-BLEU-2 = 2/3. (A duplicate stays a reference: exclusion is by
    # position, as in Texygen's reference[:i] + reference[i+1:].)
    samples = toks("a b", "a b", "c d")
    out = self_bleu(samples, (2,))[2]
    assert out.tolist() == [1.0, 1.0, 0.0]
    assert out.tolist() == nltk_self_bleu(samples, 2)


def test_self_bleu_own_length_excluded_once():
    # lengths 3, 5, 5: the 3-token sample's closest *other* length is 5 (BP < 1); each 5-token sample still has
    # the other 5-token sample (BP = 1). Sample 0 vs {1, 2}: p1 = 3/3, p2 = 2/2, BP = exp(1 - 5/3).
    samples = toks("a b c", "a b c d e", "a b c d f")
    out = self_bleu(samples, (2,))[2]
    assert out[0] == pytest.approx(math.exp(1 - 5 / 3), abs=1e-12)
    assert out.tolist() == nltk_self_bleu(samples, 2)


# ---------------------------------------------------------------------------------------------- property-based parity

ALPHABETS = st.sampled_from(["a", "ab", "abc", "abcd", "abcdefgh"])


@st.composite
def corpora(draw, max_refs=8, short=False):
    alphabet = draw(ALPHABETS)
    word = st.sampled_from(list(alphabet))
    sentence = st.lists(word, min_size=0, max_size=10)
    short_sentence = st.lists(word, min_size=0, max_size=3)
    refs = draw(st.lists(sentence, min_size=1, max_size=max_refs))
    hyps = draw(st.lists(short_sentence if short else st.one_of(short_sentence, sentence), min_size=1, max_size=6))
    return refs, hyps


def _assert_bleu_parity(refs, hyps, orders=(1, 2, 3, 4, 5)):
    out = bleu(hyps, refs, orders)
    for n in orders:
        for i, h in enumerate(hyps):
            want = nltk_bleu(refs, h, n)
            assert abs(out[n][i] - want) <= TOL, (n, refs, h, out[n][i], want)


# database=None: do not leave a .hypothesis/ folder in the shared working tree
PROP = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROP
@given(corpora())
def test_bleu_matches_nltk(data):
    _assert_bleu_parity(*data)


@PROP
@given(corpora(short=True))
def test_bleu_matches_nltk_very_short_hypotheses(data):
    _assert_bleu_parity(*data)


@PROP
@given(corpora(max_refs=1))
def test_bleu_matches_nltk_single_reference(data):
    _assert_bleu_parity(*data)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora(max_refs=60))
def test_bleu_matches_nltk_many_references(data):
    refs, hyps = data
    _assert_bleu_parity(refs, hyps, (2, 3, 4, 5))


@st.composite
def sample_sets(draw, max_size=12):
    alphabet = draw(ALPHABETS)
    word = st.sampled_from(list(alphabet))
    sentence = st.one_of(st.lists(word, max_size=3), st.lists(word, max_size=10))
    samples = draw(st.lists(sentence, min_size=2, max_size=max_size))
    if draw(st.booleans()):  # force exact duplicates (ties for the largest per-sentence count)
        samples = samples + [list(samples[draw(st.integers(0, len(samples) - 1))])]
    return samples


@PROP
@given(sample_sets())
def test_self_bleu_matches_nltk_leave_one_out(samples):
    orders = (1, 2, 3, 4, 5)
    out = self_bleu(samples, orders)
    for n in orders:
        want = nltk_self_bleu(samples, n)
        for i in range(len(samples)):
            assert abs(out[n][i] - want[i]) <= TOL, (n, i, samples, out[n][i], want[i])


@settings(max_examples=40, deadline=None, database=None)
@given(sample_sets(max_size=8), sample_sets(max_size=8))
def test_rs_bleu_is_the_ratio_of_self_bleus(a, b):
    got = rs_bleu(a, b, (2, 3))
    for n in (2, 3):
        sa, sb = np.mean(nltk_self_bleu(a, n)), np.mean(nltk_self_bleu(b, n))
        if sb == 0:
            assert math.isnan(got[n])
        else:
            assert got[n] == pytest.approx(sa / sb, abs=1e-9)


def test_bit_identical_to_nltk_on_a_fixed_random_corpus():
    rng = np.random.default_rng(0)
    sents = [[str(t) for t in rng.integers(0, 5, size=rng.integers(0, 12))] for _ in range(60)]
    refs, hyps = sents[:40], sents[40:]
    out = bleu(hyps, refs, (2, 3, 4, 5))
    for n in (2, 3, 4, 5):
        assert out[n].tolist() == [nltk_bleu(refs, h, n) for h in hyps]
    s = self_bleu(sents[:25], (2, 5))
    assert s[5].tolist() == nltk_self_bleu(sents[:25], 5)


# ---------------------------------------------------------------------------------------------- API details


def test_index_reuse_and_order_checks():
    refs = toks("a b c d", "b c d e")
    idx = ReferenceIndex(refs, max_n=3)
    a = idx.score(toks("a b c"), (2, 3))
    b = bleu(toks("a b c"), idx, (2,))
    assert a[2].tolist() == b[2].tolist()
    with pytest.raises(TextbenchError, match="max_n"):
        idx.score(toks("a b"), (4,))
    with pytest.raises(TextbenchError, match="at least one reference"):
        ReferenceIndex([])
    with pytest.raises(TextbenchError, match="at least 2 samples"):
        SelfBleuIndex(toks("a b"))
    with pytest.raises(TextbenchError, match="token lists"):
        bleu(["a b c"], refs)


def test_metric_names():
    assert parse_metric("bleu-4") == ("bleu", 4)
    assert parse_metric("Self-BLEU-3") == ("self-bleu", 3)
    assert parse_metric("rs-bleu-2") == ("rs-bleu", 2)
    assert "self-bleu-5" in valid_metric_names()
    for bad in ("blue-4", "bleu", "bleu-0", "bleu-10", "self-bleu-x", ""):
        with pytest.raises(TextbenchError, match=r"unknown metric .*valid: bleu-N, self-bleu-N, rs-bleu-N"):
            parse_metric(bad)


def test_registered_for_textbench_list():
    from textbench.registry import METRICS

    # look at the entries this module registered without importing every other metrics module
    for name in ("bleu", "self-bleu", "rs-bleu"):
        assert name in METRICS._entries and METRICS._entries[name].description


def test_score_signature_and_per_hypothesis(tmp_path):
    refs = tmp_path / "test.txt"
    refs.write_text("The cat sat on the mat.\nA dog is on the mat.\n", encoding="utf-8")
    samples = tmp_path / "gen.txt"
    samples.write_text("the cat is on the mat .\na cat sat .\nthe dog\n", encoding="utf-8")
    res = score_files(refs, samples, ["bleu-4", "self-bleu-2", "rs-bleu-2"], lowercase=True, max_refs=500)
    s = res["bleu-4"]
    assert isinstance(s, Score) and s.name == "bleu-4"
    sig = s.signature
    assert sig.as_dict() == {
        "metric": "bleu", "n": 4, "refs": "test.txt", "n_refs": 2, "n_hyps": 3, "hyps": "gen.txt",
        "smoothing": "method1", "tokenizer": "nltk-treebank", "lowercase": True, "protocol": "texygen-fast",
        "version": textbench.__version__,
    }
    assert sig["n_refs"] == 2
    assert str(sig) == f"bleu-4|refs:2|hyps:3|smooth:method1|tok:nltk|lc:yes|proto:texygen-fast|v:{textbench.__version__}"
    assert str(res["self-bleu-2"].signature).startswith("self-bleu-2|samples:3|loo:yes|")
    assert str(res["rs-bleu-2"].signature).startswith("rs-bleu-2|samples:3|test:2|loo:yes|")
    assert s.per_hypothesis.shape == (3,) and s.value == pytest.approx(s.per_hypothesis.mean(), abs=1e-15)
    with pytest.raises(ValueError):
        s.per_hypothesis[0] = 1.0  # read-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.value = 1.0  # type: ignore[misc]
    assert hash(sig) == hash(Signature(**sig.as_dict()))
    # the numbers are nltk's on the same (lower-cased Treebank) tokens
    r_t = tokenize_lines(read_lines(refs), lowercase=True)
    h_t = tokenize_lines(read_lines(samples), lowercase=True)
    assert s.per_hypothesis.tolist() == [nltk_bleu(r_t, h, 4) for h in h_t]
    sb = np.mean(nltk_self_bleu(h_t, 2))
    assert res["self-bleu-2"].value == pytest.approx(sb, abs=1e-12)
    assert res["rs-bleu-2"].value == pytest.approx(sb / np.mean(nltk_self_bleu(r_t, 2)), abs=1e-12)
    assert "bleu-4 = " in str(s)


def test_protocol_labels_and_caps():
    lines = ["a b c d", "a b c", "b c d", "a c d", "d c b a"]
    full = score_corpora(lines, lines, ["bleu-2", "self-bleu-2"])
    assert full["bleu-2"].signature.protocol == "full"
    capped = score_corpora(lines, lines, ["bleu-2", "self-bleu-2"], max_refs=2, max_hyps=3)
    assert capped["bleu-2"].signature.protocol == "first-2-refs,first-3-hyps"
    assert capped["bleu-2"].signature.n_refs == 2 and capped["bleu-2"].signature.n_hyps == 3
    assert capped["self-bleu-2"].signature.n_hyps == 2  # Self-BLEU set = first min(#samples, max_refs) samples
    with pytest.raises(TextbenchError, match="max_refs"):
        score_corpora(lines, lines, ["bleu-2"], max_refs=0)


# ---------------------------------------------------------------------------------------------- bad input via files


def test_unknown_metric_before_reading_files(tmp_path):
    with pytest.raises(TextbenchError, match="unknown metric 'bleu-four'.*valid"):
        score_files(tmp_path / "missing-refs.txt", tmp_path / "missing.txt", ["bleu-2", "bleu-four"])


def test_empty_samples_file(tmp_path):
    refs = tmp_path / "refs.txt"
    refs.write_text("a b c\n", encoding="utf-8")
    empty = tmp_path / "samples.txt"
    empty.write_bytes(b"")
    with pytest.raises(TextbenchError, match="samples.txt.*empty"):
        score_files(refs, empty, ["bleu-2"])


def test_non_utf8_samples(tmp_path):
    refs = tmp_path / "refs.txt"
    refs.write_text("a b c\n", encoding="utf-8")
    bad = tmp_path / "samples.txt"
    bad.write_bytes(b"a b\nc \x80 d\n")
    with pytest.raises(TextbenchError, match="samples.txt: line 2"):
        score_files(refs, bad, ["bleu-2"])


def test_crlf_and_empty_lines_give_the_same_scores(tmp_path):
    r_lf, r_crlf = tmp_path / "r_lf.txt", tmp_path / "r_crlf.txt"
    s_lf, s_crlf = tmp_path / "s_lf.txt", tmp_path / "s_crlf.txt"
    r_lf.write_bytes(b"a man rides a bike .\na dog on a mat .\n")
    r_crlf.write_bytes(b"a man rides a bike .\r\n\r\na dog on a mat .\r\n")
    s_lf.write_bytes(b"a man on a bike .\nthe dog .\na cat on a mat")
    s_crlf.write_bytes(b"\r\na man on a bike .\r\nthe dog .\r\n  \r\na cat on a mat\r\n")
    metrics = ["bleu-2", "bleu-3", "self-bleu-2"]
    a = score_files(r_lf, s_lf, metrics)
    b = score_files(r_crlf, s_crlf, metrics)
    for m in metrics:
        assert a[m].value == b[m].value
        assert a[m].per_hypothesis.tolist() == b[m].per_hypothesis.tolist()
    assert a["bleu-2"].notes == ()
    assert any("skipped 2 empty" in n for n in b["bleu-2"].notes)  # samples: line 1 and line 4
    assert any("skipped 1 empty" in n for n in b["bleu-2"].notes)  # references


def test_self_bleu_only_needs_no_references(tmp_path):
    s = tmp_path / "s.txt"
    s.write_text("a b c\na b d\n", encoding="utf-8")
    res = score_files(None, s, ["self-bleu-2"])
    assert res["self-bleu-2"].value == pytest.approx(np.mean(nltk_self_bleu(toks("a b c", "a b d"), 2)))
    with pytest.raises(TextbenchError, match="references"):
        score_files(None, s, ["bleu-2"])
    one = tmp_path / "one.txt"
    one.write_text("a b c\n", encoding="utf-8")
    with pytest.raises(TextbenchError, match="at least 2 samples"):
        score_files(None, one, ["self-bleu-2"])


# ---------------------------------------------------------------------------------------------- Appendix A anchors


def find_data_dir() -> Path | None:
    """The shared data folder: ``$TEXTBENCH_DATA`` first, else ``../shared/data`` next to the repository."""
    env = os.environ.get("TEXTBENCH_DATA")
    for cand in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared" / "data"]:
        if (cand / "coco" / "train.txt").is_file() and (cand / "coco" / "test.txt").is_file():
            return cand
    return None


@pytest.fixture(scope="module")
def coco():
    d = find_data_dir()
    if d is None:
        pytest.skip("COCO data not found: set $TEXTBENCH_DATA or provide ../shared/data/coco/{train,test}.txt")
    train, test = read_lines(d / "coco" / "train.txt"), read_lines(d / "coco" / "test.txt")
    assert len(train) == 10_000 and len(test) == 10_000  # test.txt: 10,000 lines without a final newline
    return d, train, test


ORDERS = (2, 3, 4, 5)


def _rounded(res, prefix):
    return [round(res[f"{prefix}-{n}"].value, 4) for n in ORDERS]


@pytest.mark.needs_data
def test_anchor_texygen_fast_bleu(coco):
    d, train, test = coco
    res = score_files(d / "coco" / "test.txt", d / "coco" / "train.txt", [f"bleu-{n}" for n in ORDERS], max_refs=500)
    assert _rounded(res, "bleu") == [0.5176, 0.2837, 0.1625, 0.1030]
    assert res["bleu-4"].signature.n_hyps == 10_000 and res["bleu-4"].signature.protocol == "texygen-fast"
    # nltk agrees on a subsample (every 500th hypothesis)
    refs = tokenize_lines(test[:500])
    idx = list(range(0, 10_000, 500))
    hyps = tokenize_lines([train[i] for i in idx])
    for n in ORDERS:
        got = res[f"bleu-{n}"].per_hypothesis[idx]
        want = [nltk_bleu(refs, h, n) for h in hyps]
        assert np.max(np.abs(got - want)) <= TOL


@pytest.mark.needs_data
def test_anchor_textgan_pytorch_bleu(coco):
    d, train, test = coco
    res = score_files(
        d / "coco" / "test.txt", d / "coco" / "train.txt", [f"bleu-{n}" for n in ORDERS], lowercase=True, max_hyps=200
    )
    assert _rounded(res, "bleu") == [0.7332, 0.5128, 0.3206, 0.2065]
    assert res["bleu-2"].signature.n_refs == 10_000 and res["bleu-2"].signature.n_hyps == 200
    # nltk on 2 hypotheses against all 10,000 lower-cased references (one call computes all four weights)
    refs = tokenize_lines(test, lowercase=True)
    for i in (0, 137):
        h = tokenize_lines([train[i]], lowercase=True)[0]
        want = nltk_sentence_bleu(refs, h, [(1 / n,) * n for n in ORDERS], smoothing_function=METHOD1)
        got = [res[f"bleu-{n}"].per_hypothesis[i] for n in ORDERS]
        assert np.max(np.abs(np.subtract(got, want))) <= TOL


@pytest.mark.needs_data
def test_anchor_texygen_fast_self_bleu(coco):
    d, train, test = coco
    res = score_files(None, d / "coco" / "train.txt", [f"self-bleu-{n}" for n in ORDERS], max_refs=500)
    assert _rounded(res, "self-bleu") == [0.7108, 0.4870, 0.3094, 0.2016]
    assert res["self-bleu-2"].signature.n_hyps == 500
    # the test-side anchor of Appendix A, and RS-BLEU = ratio of the two
    res_t = score_files(None, d / "coco" / "test.txt", [f"self-bleu-{n}" for n in ORDERS], max_refs=500)
    assert _rounded(res_t, "self-bleu") == [0.7167, 0.4880, 0.3153, 0.2046]
    rs = score_files(d / "coco" / "test.txt", d / "coco" / "train.txt", ["rs-bleu-2"], max_refs=500)["rs-bleu-2"]
    assert rs.value == pytest.approx(res["self-bleu-2"].value / res_t["self-bleu-2"].value, rel=1e-12)
    # nltk, the slow way (each sample vs the list of the 499 others), on a subsample
    samples = tokenize_lines(train[:500])
    for i in (0, 1, 250, 499):
        others = samples[:i] + samples[i + 1 :]
        for n in ORDERS:
            assert abs(res[f"self-bleu-{n}"].per_hypothesis[i] - nltk_bleu(others, samples[i], n)) <= TOL


@pytest.mark.needs_data
def test_anchor_other_appendix_a_rows(coco):
    d, train, test = coco
    # Texygen fast, hypotheses = test lines 500..9,999 (same distribution as the 500 references)
    res = score_corpora(test[500:], test[:500], [f"bleu-{n}" for n in ORDERS])
    assert _rounded(res, "bleu") == [0.6937, 0.4587, 0.2861, 0.1837]
    emnlp = d / "emnlp" / "test.txt"
    if not emnlp.is_file():
        pytest.skip(f"{emnlp} not found")
    # EMNLP split-half, lower-cased: hypotheses = lines 5,000..5,199, references = lines 0..4,999
    em = read_lines(emnlp)
    res = score_corpora(em[5000:5200], em[:5000], [f"bleu-{n}" for n in ORDERS], lowercase=True)
    assert _rounded(res, "bleu") == [0.8177, 0.5431, 0.3094, 0.1747]
