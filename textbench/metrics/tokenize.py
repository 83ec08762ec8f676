"""Reading text files and tokenizing lines for the text metrics (BLEU, Self-BLEU, ...).

Two tokenizers:

* ``"nltk"`` (default, what Texygen / TextGAN-PyTorch use): ``nltk.word_tokenize(line, preserve_line=True)``,
  i.e. the improved Treebank word tokenizer applied to the whole line, without punkt sentence splitting
  (punkt data is not installed here; see protocol.md section 4.2).
* ``"whitespace"``: ``line.split()``.

With ``lowercase=True`` the *line* is lower-cased before tokenizing (TextGAN-PyTorch does
``word_tokenize(line.lower())``).

:func:`read_lines` reads a UTF-8 text file robustly: ``\\n``, ``\\r\\n`` and ``\\r`` line ends, with or without a
final newline, an optional UTF-8 byte-order mark; undecodable bytes raise :class:`~textbench.errors.TextbenchError`
naming the file and the line. **Empty lines** (nothing but whitespace) are *skipped*; how many were skipped is
reported on the returned list (``.skipped_empty``). A file without any non-empty line is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import TextbenchError

TOKENIZERS = ("nltk", "whitespace")

#: Human-readable tokenizer labels used in metric signatures.
TOKENIZER_LABELS = {"nltk": "nltk-treebank", "whitespace": "whitespace"}


class Lines(list):
    """A ``list[str]`` of the non-empty lines of a file (line ends removed, text otherwise untouched).

    Extra attributes: ``path`` (the file read), ``skipped_empty`` (how many empty / whitespace-only lines were
    dropped) and ``line_numbers`` (the 1-based line number in the file of each kept line).
    Slicing returns a plain ``list``.
    """

    path: str
    skipped_empty: int
    line_numbers: list[int]

    def __init__(self, lines: Iterable[str] = (), *, path: str = "", skipped_empty: int = 0,
                 line_numbers: list[int] | None = None):
        super().__init__(lines)
        self.path = path
        self.skipped_empty = skipped_empty
        self.line_numbers = list(line_numbers) if line_numbers is not None else list(range(1, len(self) + 1))


def _split_lines(text: str) -> list[str]:
    """Split on universal newlines (\\r\\n, \\r, \\n) only -- not on the other characters that ``str.splitlines``
    treats as line boundaries (\\x0b, \\x0c, \\x1c-\\x1e, \\x85, \\u2028, \\u2029), which can occur inside text.
    A final line end does not start a new (empty) line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def read_lines(path: str | os.PathLike) -> Lines:
    """Read the non-empty lines of a UTF-8 text file.

    Returns a :class:`Lines` (a ``list[str]``) with ``.skipped_empty`` = number of empty/whitespace-only lines
    skipped. Raises :class:`TextbenchError` (never a traceback) when the file is missing, is not a regular file,
    is not valid UTF-8 (the message names the file and the 1-based line number) or has no non-empty line.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TextbenchError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise TextbenchError(f"{p}: is a directory, expected a text file") from None
    except OSError as e:
        raise TextbenchError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        good = data[: e.start].decode("utf-8")
        line_no = len(_split_lines(good + "x"))  # the line holding the first bad byte
        col = len(_split_lines(good + "x")[-1])  # 1-based column of that byte (in characters)
        bad = data[e.start : e.end].hex(" ")
        raise TextbenchError(
            f"{p}: line {line_no}, column {col}: not valid UTF-8 (byte(s) 0x{bad}); "
            "re-encode the file as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    kept: list[str] = []
    numbers: list[int] = []
    skipped = 0
    for i, line in enumerate(_split_lines(text), start=1):
        if line.strip():
            kept.append(line)
            numbers.append(i)
        else:
            skipped += 1
    if not kept:
        what = "is empty" if not text else f"has no non-empty line ({skipped} empty line(s))"
        raise TextbenchError(f"{p}: {what}; expected one sentence per line")
    return Lines(kept, path=str(p), skipped_empty=skipped, line_numbers=numbers)


def _check_tokenizer(tokenizer: str) -> None:
    if tokenizer not in TOKENIZERS:
        raise TextbenchError(f"unknown tokenizer {tokenizer!r}; valid: {', '.join(TOKENIZERS)}")


def tokenize(line: str, tokenizer: str = "nltk", lowercase: bool = False) -> list[str]:
    """Tokenize one line.

    ``"nltk"``: ``nltk.word_tokenize(line, preserve_line=True)`` (Treebank, no punkt);
    ``"whitespace"``: ``line.split()``. ``lowercase=True`` lower-cases the line first.
    """
    _check_tokenizer(tokenizer)
    if lowercase:
        line = line.lower()
    if tokenizer == "whitespace":
        return line.split()
    import nltk

    return nltk.word_tokenize(line, preserve_line=True)


def tokenize_lines(lines: Iterable[str], tokenizer: str = "nltk", lowercase: bool = False) -> list[list[str]]:
    """Tokenize many lines (identical lines are tokenized once; each gets its own list)."""
    _check_tokenizer(tokenizer)
    cache: dict[str, list[str]] = {}
    out: list[list[str]] = []
    for line in lines:
        toks = cache.get(line)
        if toks is None:
            toks = cache[line] = tokenize(line, tokenizer, lowercase)
        out.append(list(toks))
    return out
