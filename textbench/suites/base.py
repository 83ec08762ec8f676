"""What a suite provides to the engine and to the algorithms.

A suite owns its data (training and test sequences as LongTensors [N, L]), its vocabulary, and its
evaluation: ``evaluate(model, seed, n)`` scores a generator (anything with ``sample`` and
``token_log_probs``) and returns metric values; ``evaluate_samples`` scores a file of samples alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import TextbenchError
from ..metrics.tokenize import read_lines


class Suite:
    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    help: ClassVar[dict[str, str]] = {}
    specs: ClassVar[dict[str, Any]] = {}  # key -> textbench.config.Spec (type and range) of each setting
    profiles: ClassVar[dict[str, dict[str, Any]]] = {}

    vocab_size: int
    seq_len: int
    start_token: int = 0
    eos_token: int | None = None
    train: torch.Tensor
    test: torch.Tensor

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, model, seed: int, n: int, full: bool = True) -> dict[str, float]:
        """Metric values of ``model`` from ``n`` samples drawn with ``seed``. ``full=False``: only the suite's
        cheap tracked metrics (synthetic: NLL_oracle, NLL_test; text: NLL_test), with the values a full
        evaluation with that seed gives them (setting ``full_eval_every``)."""
        raise NotImplementedError

    def evaluate_samples(self, samples: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def signature(self) -> dict[str, Any]:
        """The settings that produced this suite's numbers (printed and stored beside every score)."""
        raise NotImplementedError

    # -- samples files ---------------------------------------------------------------------------
    def format_samples(self, samples: torch.Tensor) -> list[str]:
        """One line per sequence: token ids separated by spaces (text suites decode to words)."""
        return [" ".join(map(str, row)) for row in samples.tolist()]

    def read_samples(self, path: str | Path) -> torch.Tensor:
        """Read a file of token-id lines; every malformed line is a clear error naming file and line."""
        return read_id_file(path, self.vocab_size, self.seq_len)


_TOKEN_ID = re.compile(r"-?[0-9]+", re.ASCII)


def read_id_file(path: str | Path, vocab_size: int, seq_len: int) -> torch.Tensor:
    """Token-id lines: each has ``seq_len`` ASCII decimal ids in [0, vocab_size). An empty line, a wrong count,
    a token that is not such a number (``²``, ``--5``, ``1_0``, ``٣``) or an id out of range is a one-line
    error naming file:line and the token (missing file, not UTF-8, no line at all: see ``read_lines``)."""
    lines = read_lines(path)
    if lines.skipped_empty:
        empty = min(set(range(1, len(lines) + lines.skipped_empty + 1)) - set(lines.line_numbers))
        raise TextbenchError(f"{path}:{empty}: empty line, expected {seq_len} token ids")
    rows = []
    for i, line in zip(lines.line_numbers, lines):
        parts = line.split()
        if len(parts) != seq_len:
            raise TextbenchError(f"{path}:{i}: expected {seq_len} token ids, got {len(parts)}")
        for p in parts:
            shown = p if len(p) <= 20 else p[:20] + "…"
            if not _TOKEN_ID.fullmatch(p):
                raise TextbenchError(f"{path}:{i}: not an integer token id: {shown!r}")
            if len(p) > 18 or not 0 <= int(p) < vocab_size:
                raise TextbenchError(f"{path}:{i}: token id {shown} out of range [0, {vocab_size})")
        rows.append([int(p) for p in parts])
    return torch.from_numpy(np.asarray(rows, dtype=np.int64))
