"""Your own corpus as a suite (``--suite text``, or ``text_train_path`` / ``text_test_path`` on coco / emnlp):
one-line errors for a missing, empty, binary or too small file, and the signature recorded in config.json
(each file's SHA-256, tokenizer, casing, vocabulary, length limit)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from textbench.cli import main
from textbench.errors import TextbenchError
from textbench.registry import SUITES

GOOD = "".join(f"the {a} cat sits on the {b} .\n" for a in ("red", "old", "big", "small") for b in ("mat", "bench", "roof", "table", "bed"))  # 20


@pytest.fixture
def files(tmp_path):
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text(GOOD * 4, encoding="utf-8")  # 80 sentences: more than one batch of 64
    test.write_text(GOOD[: GOOD.index("\n", 200) + 1], encoding="utf-8")
    return {"text_train_path": str(train), "text_test_path": str(test)}


def make(name="text", **settings):
    cls = SUITES.get(name)
    return cls({**cls.defaults, "batch_size": 64, **settings})


def error_line(res) -> str:
    """The CLI's one error line (after the ``run <dir>`` header): exit status 2, no traceback."""
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert [ln for ln in lines if ln.startswith("error: ")] == lines[-1:], res.output
    return lines[-1]


def cli_run(tmp_path, *sets):
    args = ["run", "--algo", "mle", "--suite", "text", "--run-dir", str(tmp_path / "run"), "--no-progress",
            "--set", "steps=2", "--set", "eval_every=1"]
    for s in sets:
        args += ["--set", s]
    return CliRunner().invoke(main, args)


# (id, file content, the one error line must contain); a file of each kind given as the training file
BAD = [
    ("empty", b"", "the file is empty; expected one sentence per line"),
    ("blank lines", b"\n  \n\t\n", "the file has only empty lines"),
    ("NUL byte", b"the cat sits .\n\x00\x01\x02binary\n", "a binary file (NUL byte on line 2)"),
    ("not UTF-8", b"the cat sits .\nthe \xff\xfe dog .\n", "line 2: not UTF-8 text (byte(s) 0xff"),
    ("latin-1", "the caf\u00e9 .\n".encode("latin-1"), "line 1: not UTF-8 text"),
    ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "a binary file (NUL byte on line 1)"),
]


@pytest.mark.parametrize("content, phrase", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
@pytest.mark.parametrize("setting", ["text_train_path", "text_test_path"])
def test_bad_file_is_one_line_error_naming_the_setting(tmp_path, files, content, phrase, setting):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    with pytest.raises(TextbenchError, match="^" + setting + "=") as e:
        make(**{**files, setting: str(bad)}).train
    assert phrase in str(e.value) and "\n" not in str(e.value)
    res = cli_run(tmp_path, f"text_train_path={files['text_train_path']}", f"text_test_path={files['text_test_path']}",
                  f"{setting}={bad}")
    assert phrase in error_line(res) and not (tmp_path / "run").exists()


def test_missing_file_and_directory(tmp_path, files):
    with pytest.raises(TextbenchError, match=r"text_train_path=.*nope.txt: file not found"):
        make(**{**files, "text_train_path": str(tmp_path / "nope.txt")}).train
    with pytest.raises(TextbenchError, match=r"text_test_path=.*: is a directory"):
        make(**{**files, "text_test_path": str(tmp_path)})
    res = cli_run(tmp_path, f"text_train_path={tmp_path / 'nope.txt'}", f"text_test_path={files['text_test_path']}")
    assert "file not found" in error_line(res) and not (tmp_path / "run").exists()


def test_fewer_sentences_than_one_batch(tmp_path, files):
    small = tmp_path / "small.txt"
    small.write_text(GOOD, encoding="utf-8")  # 20 sentences
    with pytest.raises(TextbenchError, match=r"small.txt: 20 training sentences, fewer than one batch \(batch_size=64\)"):
        make(**{**files, "text_train_path": str(small)}).train
    # sentences dropped by the length limit do not count
    with pytest.raises(TextbenchError, match=r"0 training sentences|longer than"):
        make(**{**files, "text_max_len": 3}).train
    with pytest.raises(TextbenchError, match=r"40 training sentences after dropping 40 longer than 4 tokens \(text_max_len=5\), fewer than one batch"):
        mixed = tmp_path / "mixed.txt"
        mixed.write_text(GOOD * 2 + "".join("a b c .\n" for _ in range(40)), encoding="utf-8")
        make(**{**files, "text_train_path": str(mixed), "text_max_len": 5}).train
    res = cli_run(tmp_path, f"text_train_path={small}", f"text_test_path={files['text_test_path']}")
    assert "fewer than one batch" in error_line(res) and not (tmp_path / "run").exists()
    assert make(**{**files, "text_train_path": str(small), "batch_size": 20}).train.shape[0] == 20  # a smaller batch fits
    res = cli_run(tmp_path, f"text_train_path={small}", f"text_test_path={files['text_test_path']}", "batch_size=16")
    assert res.exit_code == 0, res.output


def test_text_suite_needs_both_files(tmp_path, files):
    for given in ({}, {"text_train_path": files["text_train_path"]}, {"text_test_path": files["text_test_path"]}):
        with pytest.raises(TextbenchError, match="suite text needs your corpus: --set text_train_path=TRAIN.txt "
                                                 "--set text_test_path=TEST.txt") as e:
            make(**given)
        assert all(k in str(e.value) for k in ("text_train_path", "text_test_path")) and "missing:" in str(e.value)
    res = CliRunner().invoke(main, ["run", "--algo", "mle", "--suite", "text", "--no-progress", "--run-dir", str(tmp_path / "run")])
    assert "suite text needs your corpus" in error_line(res)
    assert not (tmp_path / "run").exists()


def test_signature_records_the_corpus_and_goes_into_config(tmp_path, files):
    s = make(**files)
    s.train
    sig = s.signature()
    for split in ("train", "test"):
        path = Path(files[f"text_{split}_path"])
        assert sig[split]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # the full SHA-256 of the bytes
        assert sig[split]["file"] == str(path.resolve())
    assert sig["suite"] == "text" and sig["tokenizer"].startswith("nltk-treebank") and sig["lowercase"] is True
    assert sig["vocab"]["size"] == s.vocab_size == 3 + 14 and len(sig["vocab"]["sha256"]) == 16
    assert sig["seq_len"] == 9 and sig["seq_len_rule"] == "longest training sentence + 1 (<eos>)"
    limited = make(**files, text_max_len=12, text_tokenizer="whitespace", text_lowercase=False)
    limited.train
    lsig = limited.signature()
    assert (lsig["seq_len"], lsig["seq_len_rule"], lsig["tokenizer"], lsig["lowercase"]) == (12, "text_max_len", "whitespace", False)
    # one changed byte changes the recorded hash
    Path(files["text_test_path"]).write_text(GOOD[:200].replace("red", "Red") + "\n", encoding="utf-8")
    other = make(**files)
    other.train
    assert other.signature()["test"]["sha256"] != sig["test"]["sha256"]
    # a run records it in config.json and summary.json
    res = cli_run(tmp_path, *(f"{k}={v}" for k, v in files.items()))
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    rec = cfg["suite_signature"]
    assert rec == other.signature() and len(rec["train"]["sha256"]) == 64
    assert cfg["settings"]["text_train_path"] == files["text_train_path"]


def test_coco_and_emnlp_take_user_files_with_the_same_checks(tmp_path, files):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 10)
    for suite in ("coco", "emnlp"):
        with pytest.raises(TextbenchError, match="text_train_path=.*a binary file"):
            make(suite, **{**files, "text_train_path": str(bad)}).train
        s = make(suite, **files)
        s.train
        assert s.signature()["suite"] == suite and len(s.signature()["train"]["sha256"]) == 64
