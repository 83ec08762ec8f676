"""What a suite provides to the engine and to the algorithms.

A suite owns its data (training and test sequences as LongTensors [N, L]), its vocabulary, and its
evaluation: ``evaluate(model, seed, n)`` scores a generator (anything with ``sample`` and
``token_log_probs``) and returns metric values; ``evaluate_samples`` scores a file of samples alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import TextbenchError


class Suite:
    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    help: ClassVar[dict[str, str]] = {}
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
    def evaluate(self, model, seed: int, n: int) -> dict[str, float]:
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


def read_id_file(path: str | Path, vocab_size: int, seq_len: int) -> torch.Tensor:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TextbenchError(f"{path}: samples file not found") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextbenchError(f"{path}: not UTF-8 text (byte {e.start})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise TextbenchError(f"{path}: no samples (empty file)")
    rows = []
    for i, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != seq_len:
            raise TextbenchError(f"{path}:{i}: expected {seq_len} token ids, got {len(parts)}")
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not p.lstrip("-").isdigit())
            raise TextbenchError(f"{path}:{i}: not an integer token id: {bad!r}") from None
        lo, hi = min(ids), max(ids)
        if lo < 0 or hi >= vocab_size:
            raise TextbenchError(f"{path}:{i}: token id {lo if lo < 0 else hi} out of range [0, {vocab_size})")
        rows.append(ids)
    return torch.from_numpy(np.asarray(rows, dtype=np.int64))
