"""Real-text suites (coco, emnlp): vocabulary, encoding, length and UNK rules, evaluation, a tiny MLE run.

Most tests use a tiny generated corpus (``text_train_path`` / ``text_test_path``) and need no data; the ones
marked ``needs_data`` use the shared data folder ($TEXTBENCH_DATA or ../shared/data) and skip without it.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textbench.engine.loop import Run, resolve_settings, train
from textbench.engine.rundir import read_metrics
from textbench.errors import TextbenchError
from textbench.metrics.bleu import score_corpora
from textbench.metrics.likelihood import nll_test, token_log_probs
from textbench.models.lstm import LSTMLM
from textbench.registry import SUITES
from textbench.suites.text import TEXT_DEFAULTS, parse_bleu_refs
from textbench.suites.vocab import BOS, EOS, UNK, Vocabulary, eos_mask

REPO_ROOT = Path(__file__).resolve().parents[2]
BLEU_KEYS = [f"{k}-{n}" for k in ("bleu", "self-bleu", "rs-bleu") for n in (2, 3, 4, 5)]


def find_data_dir() -> Path | None:
    env = os.environ.get("TEXTBENCH_DATA")
    for cand in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared" / "data"]:
        if (cand / "coco" / "train.txt").is_file() and (cand / "coco" / "test.txt").is_file():
            return cand
    return None


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # one tokenization cache per pytest session (shared with test_text_eval_cli.py), never the user's
    monkeypatch.setenv("TEXTBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "textbench-cache"))


@pytest.fixture
def data_dir(monkeypatch):
    d = find_data_dir()
    if d is None:
        pytest.skip("shared data not found: set $TEXTBENCH_DATA (needs coco/train.txt, coco/test.txt)")
    monkeypatch.setenv("TEXTBENCH_DATA", str(d))
    return d


# ------------------------------------------------------------------------------------------- a tiny corpus

ADJ = ["red", "big", "small", "old"]
NOUN = ["cat", "dog", "bus", "man"]
VERB = ["sits", "stands", "waits"]
PLACE = ["table", "street", "bench"]


def tiny_sentences(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    out = []
    for _ in range(n):
        s = f"a {r.choice(ADJ)} {r.choice(NOUN)} {r.choice(VERB)} on the {r.choice(PLACE)}"
        if r.random() < 0.3:
            s += f" near a {r.choice(NOUN)}"
        out.append(s + ".")
    return out


@pytest.fixture
def tiny(tmp_path):
    train_p, test_p = tmp_path / "train.txt", tmp_path / "test.txt"
    train_p.write_text("\n".join(tiny_sentences(160, 1)) + "\n", encoding="utf-8")
    test = tiny_sentences(40, 2) + ["a purple cat sits on the table.", "A Big Dog waits on the moon."]
    test_p.write_text("\n".join(test) + "\n", encoding="utf-8")
    return {"text_train_path": str(train_p), "text_test_path": str(test_p)}


def make_suite(name="coco", **overrides):
    cls = SUITES.get(name)
    return cls({**cls.defaults, **overrides})


def random_model(suite, seed=0, std=0.1):
    return LSTMLM(suite.vocab_size, 16, 16, suite.seq_len, suite.start_token).init_normal_(std, torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- vocabulary


def test_vocabulary_ids_are_frequency_then_code_point():
    v = Vocabulary.build([["b", "a", "c"], ["c", "a"], ["c", "z", "y"]])
    assert v.itos == ["<bos>", "<eos>", "<unk>", "c", "a", "b", "y", "z"]
    assert (v.stoi["<bos>"], v.stoi["<eos>"]) == (UNK, UNK)  # a data token spelled like a special is <unk>
    assert (BOS, EOS, UNK) == (0, 1, 2) and v.size == 8
    # independent of the order of the lines
    assert Vocabulary.build([["c", "z", "y"], ["c", "a"], ["b", "a", "c"]]).itos == v.itos


def test_vocabulary_is_the_same_in_every_process(tiny):
    """Ids must not depend on PYTHONHASHSEED (Texygen's list(set(...)) did, protocol §2.9-12)."""
    code = (
        "import json, sys; from textbench.registry import SUITES; c = SUITES.get('coco'); "
        "s = c({**c.defaults, 'text_train_path': sys.argv[1], 'text_test_path': sys.argv[2]}); "
        "print(json.dumps([s.vocab.itos, s.train[:5].tolist()]))"
    )
    other = "54321" if os.environ.get("PYTHONHASHSEED") == "12345" else "12345"  # differs from this process's
    env = {**os.environ, "PYTHONHASHSEED": other}
    r = subprocess.run([sys.executable, "-c", code, tiny["text_train_path"], tiny["text_test_path"]],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    s = make_suite(**tiny)
    assert json.loads(r.stdout) == [s.vocab.itos, s.train[:5].tolist()]


def test_encode_decode_round_trip_and_eos_cut(tiny):
    s = make_suite(**tiny)
    sents = [["a", "red", "cat", "sits", "on", "the", "table", "."], ["a", "dog", "."]]
    x = s.vocab.encode_batch(sents, s.seq_len)
    assert x.shape == (2, s.seq_len) and x.dtype == torch.long
    assert x[1, 3:].eq(EOS).all()  # tokens, then <eos> padding
    assert s.decode(x) == sents
    assert s.format_samples(x) == ["a red cat sits on the table .", "a dog ."]
    # decoding stops at the first <eos>, whatever follows; <bos>/<unk> ids decode to visible words
    cat = s.vocab.stoi["cat"]
    y = torch.tensor([[cat, BOS, UNK, EOS, cat, cat] + [EOS] * (s.seq_len - 6), [EOS] * s.seq_len])
    assert s.format_samples(y) == ["cat <bos> <unk>", ""]
    with pytest.raises(TextbenchError, match="out of range"):
        s.vocab.decode([cat, s.vocab_size])
    # the mask counts every position up to and including the first <eos>
    assert eos_mask(y)[0].tolist()[:5] == [1, 1, 1, 1, 0] and eos_mask(y)[1].sum() == 1


def test_seq_len_is_longest_training_sentence_plus_eos_and_training_tensor(tiny):
    s = make_suite(**tiny)
    longest = max(len(t) for t in s.train_corpus.sentences)
    assert s.seq_len == longest + 1
    assert s.train.shape == (160, s.seq_len)
    assert (s.train[:, -1] == EOS).all() and int(s.train.max()) < s.vocab_size
    assert not (s.train == BOS).any() and not (s.train == UNK).any()
    assert s.start_token == 0 and s.eos_token == 1


def test_max_len_drops_and_counts_long_sentences(tiny):
    s = make_suite(**tiny, text_max_len=9)  # 8 tokens + <eos>: the "near a ..." sentences (11 tokens) go
    n_long = sum(len(t) > 8 for t in s.train_corpus.sentences)
    assert 0 < n_long < 160
    assert s.seq_len == 9 and s.train.shape == (160 - n_long, 9)
    sig = s.signature()
    assert sig["train"]["dropped_over_max_len"] == n_long and sig["seq_len"] == 9
    assert sig["nll_test"]["dropped_over_max_len"] > 0
    with pytest.raises(TextbenchError, match="text_max_len"):
        make_suite(**tiny, text_max_len=1)
    with pytest.raises(TextbenchError, match="every training sentence"):
        make_suite(**tiny, text_max_len=3).train


def test_unk_rule_for_nll_test(tiny):
    drop = make_suite(**tiny)
    assert drop.test.shape[0] == 40  # "purple" and "moon" are not training words
    assert drop.signature()["nll_test"]["dropped_unk"] == 2 and not (drop.test == UNK).any()
    keep = make_suite(**tiny, text_test_unk="keep")
    assert keep.test.shape[0] == 42 and int((keep.test == UNK).sum()) == 2
    assert keep.signature()["nll_test"]["unk_tokens_scored"] == 2
    # lower-casing is on by default: "A Big Dog" is known words
    assert keep.decode(keep.test[-1:]) == [["a", "big", "dog", "waits", "on", "the", "<unk>", "."]]
    with pytest.raises(TextbenchError, match="text_test_unk"):
        make_suite(**tiny, text_test_unk="maybe")


def test_settings_are_prefixed_and_validated(tiny):
    assert all(k.startswith("text_") for k in TEXT_DEFAULTS)
    for algo in ("mle", "cot"):
        s = resolve_settings(algo, "coco", "quick")  # no key clash with algorithm / engine settings
        assert s["eval_samples"] == 200 and s["final_samples"] == 200
    assert parse_bleu_refs("all") is None and parse_bleu_refs("texygen_fast") == 500 and parse_bleu_refs("7") == 7
    for bad in (dict(text_bleu_refs="many"), dict(text_tokenizer="spacy"), dict(text_bleu_hyps=-1),
                dict(text_samples_format="json")):
        with pytest.raises(TextbenchError, match=next(iter(bad))):
            make_suite(**tiny, **bad)


def test_user_files_errors(tmp_path, tiny):
    with pytest.raises(TextbenchError, match="text_train_path=.*not found"):
        make_suite(**{**tiny, "text_train_path": str(tmp_path / "nope.txt")}).train
    with pytest.raises(TextbenchError, match="text_test_path=.*directory"):
        make_suite(**{**tiny, "text_test_path": str(tmp_path)})
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a cat\n\xff\xfe\n")
    with pytest.raises(TextbenchError, match="line 2.*UTF-8"):
        make_suite(**{**tiny, "text_train_path": str(bad)}).train


def test_emnlp_needs_a_training_file(tiny):
    s = make_suite("emnlp", text_test_path=tiny["text_test_path"])  # the test side alone works (eval)
    with pytest.raises(TextbenchError, match="text_train_path=/path/to/emnlp_news.txt"):
        s.train
    s = make_suite("emnlp", **tiny)
    assert s.train.shape[0] == 160 and s.signature()["suite"] == "emnlp"


# ------------------------------------------------------------------------------------------- evaluation


def test_evaluate_keys_and_determinism(tiny):
    s = make_suite(**tiny)
    m = random_model(s, std=0.5)
    r1, r2 = s.evaluate(m, seed=7, n=30), s.evaluate(m, seed=7, n=30)
    assert list(r1) == BLEU_KEYS + ["nll_test"]
    assert all(isinstance(v, float) for v in r1.values()) and r1 == r2
    assert s.evaluate(m, seed=8, n=30) != r1
    # = BLEU of the decoded samples (the seed's generator drives the sampling), and evaluate_samples of the ids
    samples = m.sample(30, torch.Generator().manual_seed(7))
    assert {k: r1[k] for k in BLEU_KEYS} == s.bleu_scores(s.decode(samples)) == s.evaluate_samples(samples)
    assert r1["nll_test"] == s.nll_test_value(m)


def test_bleu_equals_the_metrics_module(tiny):
    """Token lists scored in the suite = score_corpora on the same tokens (references: the whole test file)."""
    s = make_suite(**tiny)
    refs = [" ".join(t) for t in s.test_corpus.sentences]
    hyps = [" ".join(t) for t in s.train_corpus.sentences[:50]]
    got = s.bleu_scores([h.split() for h in hyps])
    want = score_corpora(hyps, refs, BLEU_KEYS, tokenizer="whitespace")
    for k in BLEU_KEYS:
        assert got[k] == pytest.approx(want[k].value, rel=1e-12), k


def test_bleu_protocol_settings(tiny):
    hyps = [t for t in make_suite(**tiny).test_corpus.sentences[:30]]
    full = make_suite(**tiny).bleu_scores(hyps)
    fast = make_suite(**tiny, text_bleu_refs="10").bleu_scores(hyps)  # first 10 refs, Self-BLEU on 10 samples
    assert full["bleu-2"] > fast["bleu-2"]
    few = make_suite(**tiny, text_bleu_hyps=5).bleu_scores(hyps)
    assert few["bleu-4"] == pytest.approx(make_suite(**tiny).bleu_scores(hyps[:5])["bleu-4"])
    one = make_suite(**tiny).bleu_scores(hyps[:1])
    assert math.isnan(one["self-bleu-2"]) and math.isnan(one["rs-bleu-2"]) and one["bleu-2"] > 0


def test_nll_test_is_masked_per_token_nll(tiny):
    """The length-bucketed computation equals the plain masked mean over full-length sequences."""
    s = make_suite(**tiny)
    m = random_model(s, std=0.3)
    x, mask = s.test, s.test_mask
    lp = token_log_probs(m, x, mask=mask)
    want = -float(lp.sum() / mask.sum())
    assert s.nll_test_value(m) == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(nll_test(lp, mask=mask).value, rel=1e-12)
    assert s.signature()["nll_test"]["tokens_scored"] == int(mask.sum()) == sum(len(t) + 1 for t in s.decode(x))


def test_tiny_mle_run_learns_and_writes_text_samples(tiny, tmp_path):
    overrides = {**tiny, "steps": 60, "eval_every": 30, "eval_samples": 40, "final_samples": 20, "batch_size": 16}
    run = Run("mle", "coco", "quick", seed=0, overrides=overrides, run_dir=tmp_path / "run")
    summary = train(run, progress=False, log=lambda _m: None)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in rows] == [0, 30, 60]
    assert rows[-1]["nll_test"] < rows[0]["nll_test"] - 1.0
    assert rows[-1]["bleu-3"] > rows[0]["bleu-3"]
    assert summary["complete"] and summary["suite_signature"]["seq_len"] == 12
    lines = (tmp_path / "run" / "samples.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 20 and all(w in make_suite(**tiny).vocab.stoi for ln in lines for w in ln.split())
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["suite_signature"]["vocab"]["size"] == make_suite(**tiny).vocab_size


# ------------------------------------------------------------------------------------------- shared data


@pytest.mark.needs_data
def test_coco_vocabulary_and_splits(data_dir):
    s = make_suite("coco")
    assert (s.vocab_size, s.seq_len) == (4659 + 3, 37 + 1)  # protocol §4.2: nltk vocab 4,659, max length 37
    assert s.vocab.itos[3:5] == ["a", "."] and s.train.shape == (10_000, 38)
    assert s.test.shape == (6_815, 38)  # test sentences without a word outside the training vocabulary
    sig = s.signature()
    assert sig["nll_test"]["dropped_unk"] == 3_185 and sig["train"]["dropped_over_max_len"] == 0
    assert sig["vocab"]["sha256"] == "622bacff48e21025"  # the id table itself, pinned
    assert sig["bleu"]["references"] == 10_000


@pytest.mark.needs_data
def test_coco_training_captions_score_like_appendix_a(data_dir):
    s = make_suite("coco")
    r = s.evaluate_samples(s.train_corpus.sentences[:200])
    assert [round(r[f"bleu-{n}"], 4) for n in (2, 3, 4, 5)] == [0.7332, 0.5128, 0.3206, 0.2065]
    assert 0.5 < r["rs-bleu-2"] < 1.5


@pytest.mark.needs_data
def test_coco_texygen_fast_protocol_matches_appendix_a(data_dir):
    """text_bleu_refs=texygen_fast: first 500 references, Self-BLEU on the first 500 samples (Texygen defaults)."""
    s = make_suite("coco", text_bleu_refs="texygen_fast")
    r = s.evaluate_samples(make_suite("coco").train_corpus.sentences)  # all 10,000 training captions
    assert [round(r[f"bleu-{n}"], 4) for n in (2, 3, 4, 5)] == [0.5176, 0.2837, 0.1625, 0.1030]
    assert [round(r[f"self-bleu-{n}"], 4) for n in (2, 3, 4, 5)] == [0.7108, 0.4870, 0.3094, 0.2016]
    assert s.signature()["bleu"]["references"] == 500
