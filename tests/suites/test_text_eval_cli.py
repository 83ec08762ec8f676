"""``textbench eval --suite coco|emnlp --samples FILE``: scores a text file of sentences (BLEU, Self-BLEU,
RS-BLEU), reproduces protocol Appendix A, and turns bad input into one line on stderr with exit status 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from textbench.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
ORDERS = (2, 3, 4, 5)
BLEU_KEYS = [f"{k}-{n}" for k in ("bleu", "self-bleu", "rs-bleu") for n in ORDERS]


def find_data_dir() -> Path | None:
    env = os.environ.get("TEXTBENCH_DATA")
    for cand in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared" / "data"]:
        if (cand / "coco" / "train.txt").is_file() and (cand / "coco" / "test.txt").is_file():
            return cand
    return None


@pytest.fixture
def runner(tmp_path_factory):
    # the tokenization cache is shared with test_text_suite.py (same pytest session), never the user's
    cache = tmp_path_factory.getbasetemp() / "textbench-cache"
    d = find_data_dir()
    return CliRunner(env={"TEXTBENCH_CACHE": str(cache), "TEXTBENCH_DATA": str(d) if d else None}), d


@pytest.fixture
def coco(runner):
    r, d = runner
    if d is None:
        pytest.skip("shared data not found: set $TEXTBENCH_DATA (needs coco/train.txt, coco/test.txt)")
    return r, d


def run_json(r: CliRunner, *args: str) -> dict:
    res = r.invoke(main, ["eval", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def assert_clean_error(res, match: str) -> None:
    """Exit status 2, one line on stderr starting with 'error:', no traceback."""
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    assert match in err, err


@pytest.mark.needs_data
def test_appendix_a_textgan_pytorch_row(coco, tmp_path):
    """First 200 COCO training captions vs all 10,000 lower-cased test captions: 0.7332/0.5128/0.3206/0.2065."""
    r, d = coco
    lines = (d / "coco" / "train.txt").read_text(encoding="utf-8").splitlines()[:200]
    f = tmp_path / "samples.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run_json(r, "--suite", "coco", "--samples", str(f))
    m = out["metrics"]
    assert list(m) == BLEU_KEYS
    assert [round(m[f"bleu-{n}"], 4) for n in ORDERS] == [0.7332, 0.5128, 0.3206, 0.2065]
    assert all(0 < m[f"self-bleu-{n}"] < 1 for n in ORDERS) and 0.5 < m["rs-bleu-2"] < 1.5
    sig = out["signatures"]["suite"]
    assert sig["lowercase"] is True and sig["bleu"]["references"] == 10_000 and sig["samples"]["sentences"] == 200
    assert sig["train"].startswith("not loaded")  # scoring text needs no training split

    # CRLF line ends, a BOM and blank lines change nothing (blank lines are skipped and counted)
    g = tmp_path / "crlf.txt"
    g.write_bytes(("\ufeff" + "\r\n\r\n".join(lines) + "\r\n").encode("utf-8"))
    out2 = run_json(r, "--suite", "coco", "--samples", str(g))
    assert out2["metrics"] == m and out2["signatures"]["suite"]["samples"]["empty_lines"] == "199 skipped"

    # Texygen's fast protocol (first 500 references) is a setting away and is lower, as Appendix A says
    fast = run_json(r, "--suite", "coco", "--samples", str(f), "--set", "text_bleu_refs=texygen_fast")["metrics"]
    assert fast["bleu-2"] < m["bleu-2"] - 0.1


@pytest.mark.needs_data
def test_long_sentences_and_unknown_words_are_scored(coco, tmp_path):
    r, d = coco
    f = tmp_path / "odd.txt"
    long = " ".join(["a man riding a horse on a beach"] * 20)
    f.write_text(f"a zorblax quux frobnicates .\n{long}\na man riding a horse .\n", encoding="utf-8")
    out = run_json(r, "--suite", "coco", "--samples", str(f))
    assert all(k in out["metrics"] for k in BLEU_KEYS)
    s = out["signatures"]["suite"]["samples"]
    assert s["sentences"] == 3 and s["longer_than_every_test_sentence"] == 1 and s["longest_tokens"] == 160


def test_tokens_format_keeps_empty_sentences(runner, tmp_path):
    """A run's samples.txt (format tokens): an empty line is an empty generated sentence scoring 0."""
    r, _ = runner
    refs = tmp_path / "refs.txt"
    refs.write_text("a cat sits on the mat .\na dog runs in the park .\nthe cat is black .\n", encoding="utf-8")
    f = tmp_path / "samples.txt"
    f.write_text("a cat sits on the mat .\n\nthe dog is black .\n", encoding="utf-8")
    base = ["--suite", "emnlp", "--samples", str(f), "--set", f"text_test_path={refs}"]  # no training file needed
    as_text = run_json(r, *base)
    as_tokens = run_json(r, *base, "--set", "text_samples_format=tokens")
    assert as_tokens["signatures"]["suite"]["samples"]["sentences"] == 3
    assert as_text["signatures"]["suite"]["samples"]["sentences"] == 2
    assert as_tokens["metrics"]["bleu-2"] == pytest.approx(as_text["metrics"]["bleu-2"] * 2 / 3)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is empty"),
        (b"\n  \n\n", "no non-empty line"),
        (b"a cat .\n\xff\xfe bad\n", "line 2, column 1: not valid UTF-8"),
    ],
)
def test_bad_samples_files(runner, tmp_path, content, match):
    r, _ = runner
    refs = tmp_path / "refs.txt"
    refs.write_text("a cat sits on the mat .\n", encoding="utf-8")
    f = tmp_path / "samples.txt"
    f.write_bytes(content)
    res = r.invoke(main, ["eval", "--suite", "coco", "--samples", str(f), "--set", f"text_test_path={refs}"])
    assert_clean_error(res, match)


def test_bad_settings_and_missing_files(runner, tmp_path):
    r, _ = runner
    refs = tmp_path / "refs.txt"
    refs.write_text("a cat sits on the mat .\n", encoding="utf-8")
    f = tmp_path / "samples.txt"
    f.write_text("a cat .\n", encoding="utf-8")
    base = ["eval", "--suite", "coco", "--samples", str(f), "--set", f"text_test_path={refs}"]
    assert_clean_error(r.invoke(main, [*base, "--set", "text_bleu_refs=lots"]), "text_bleu_refs='lots'")
    assert_clean_error(r.invoke(main, [*base, "--set", "text_lowercase=maybe"]), "text_lowercase")
    assert_clean_error(r.invoke(main, [*base, "--set", "bleu_refs=all"]), "unknown setting 'bleu_refs'")
    missing = ["eval", "--suite", "coco", "--samples", str(tmp_path / "nope.txt"), "--set", f"text_test_path={refs}"]
    assert_clean_error(r.invoke(main, missing), "file not found")
    assert_clean_error(
        r.invoke(main, ["eval", "--suite", "coco", "--samples", str(f), "--set", f"text_test_path={tmp_path / 'x'}"]),
        "text_test_path=",
    )


def test_emnlp_run_without_training_file_is_one_clear_error(runner, tmp_path):
    r, _ = runner
    refs = tmp_path / "refs.txt"
    refs.write_text("a cat sits on the mat .\n", encoding="utf-8")
    res = r.invoke(main, ["run", "--algo", "mle", "--suite", "emnlp", "--set", f"text_test_path={refs}",
                          "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert_clean_error(res, "supply it with --set text_train_path=")
