"""Tokenizers and robust line reading for the text metrics."""

from __future__ import annotations

import nltk
import pytest

from textbench.errors import TextbenchError
from textbench.metrics.tokenize import Lines, read_lines, tokenize, tokenize_lines


# ---------------------------------------------------------------------------------------------- tokenize


def test_nltk_tokenizer_is_treebank_word_tokenize_without_punkt():
    line = "a man's bike is parked next to the wheel. it's red, isn't it?"
    assert tokenize(line) == nltk.word_tokenize(line, preserve_line=True)
    assert tokenize("a man's bike.") == ["a", "man", "'s", "bike", "."]
    # without punkt, Treebank splits off only the period at the end of the line: "wheel." stays one token
    assert tokenize("the wheel. a bike.") == ["the", "wheel.", "a", "bike", "."]


def test_whitespace_tokenizer_and_lowercase():
    assert tokenize("  A Man  rides\ta bike. ", "whitespace") == ["A", "Man", "rides", "a", "bike."]
    assert tokenize("A Man rides", "whitespace", lowercase=True) == ["a", "man", "rides"]
    # lower-casing happens on the line, before tokenizing (TextGAN-PyTorch: word_tokenize(line.lower()))
    assert tokenize("The Cat's Hat.", lowercase=True) == nltk.word_tokenize("the cat's hat.", preserve_line=True)


def test_unknown_tokenizer():
    with pytest.raises(TextbenchError, match="unknown tokenizer 'spacy'.*nltk, whitespace"):
        tokenize("a b", "spacy")
    with pytest.raises(TextbenchError):
        tokenize_lines(["a b"], "spacy")


def test_tokenize_lines_caches_but_returns_independent_lists():
    out = tokenize_lines(["a b .", "a b .", "c"], "whitespace")
    assert out == [["a", "b", "."], ["a", "b", "."], ["c"]]
    out[0].append("x")
    assert out[1] == ["a", "b", "."]


def test_empty_line_tokenizes_to_nothing():
    assert tokenize("") == []
    assert tokenize("   ", "whitespace") == []


# ---------------------------------------------------------------------------------------------- read_lines


def _write(tmp_path, data: bytes, name="f.txt"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "data",
    [
        b"a cat .\nthe dog\n",  # LF, final newline
        b"a cat .\nthe dog",  # LF, no final newline (the Texygen files)
        b"a cat .\r\nthe dog\r\n",  # CRLF
        b"a cat .\r\nthe dog",  # CRLF, no final newline
        b"a cat .\rthe dog\r",  # old Mac CR
        b"\xef\xbb\xbfa cat .\nthe dog\n",  # UTF-8 byte-order mark
    ],
)
def test_line_ends_and_final_newline(tmp_path, data):
    lines = read_lines(_write(tmp_path, data))
    assert lines == ["a cat .", "the dog"]
    assert isinstance(lines, list) and isinstance(lines, Lines)
    assert lines.skipped_empty == 0
    assert lines.line_numbers == [1, 2]


def test_empty_lines_are_skipped_and_counted(tmp_path):
    lines = read_lines(_write(tmp_path, b"\na cat\n\n   \n\t\nthe dog\n\n"))
    assert lines == ["a cat", "the dog"]
    assert lines.skipped_empty == 5  # lines 1, 3, 4, 5, 7 (the final "\n" does not start a line)
    assert lines.line_numbers == [2, 6]
    assert lines.path.endswith("f.txt")


def test_text_is_kept_verbatim_apart_from_the_line_end(tmp_path):
    # trailing spaces (EMNLP test file), non-ASCII, and characters str.splitlines() would split on
    lines = read_lines(_write(tmp_path, "café  \nx\x0cy\u2028z\n".encode("utf-8")))
    assert lines == ["café  ", "x\x0cy\u2028z"]


def test_non_utf8_names_file_and_line(tmp_path):
    p = _write(tmp_path, b"fine line\nsecond line\nbad \xff byte here\nlast\n", "samples.txt")
    with pytest.raises(TextbenchError) as e:
        read_lines(p)
    msg = str(e.value)
    assert "samples.txt" in msg and "line 3" in msg and "column 5" in msg and "UTF-8" in msg and "0xff" in msg


def test_non_utf8_line_number_with_crlf(tmp_path):
    p = _write(tmp_path, b"a\r\nb\r\n\r\nc \xe9t\xe9\r\n")  # latin-1 'été' on line 4
    with pytest.raises(TextbenchError, match=r"line 4\b"):
        read_lines(p)


def test_empty_and_blank_files(tmp_path):
    with pytest.raises(TextbenchError, match="empty"):
        read_lines(_write(tmp_path, b"", "empty.txt"))
    with pytest.raises(TextbenchError, match="no non-empty line"):
        read_lines(_write(tmp_path, b"\n \n\r\n", "blank.txt"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TextbenchError, match="not found"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(TextbenchError, match="directory"):
        read_lines(tmp_path)
