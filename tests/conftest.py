"""Shared fixtures: a data directory (``$TEXTBENCH_DATA`` or ``../shared/data`` beside the checkout), a
private cache per test session, and the tiny offline settings most engine tests train with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One intra-op thread: the tiny models of the tests gain nothing from two, and with other processes on
# the machine OpenMP's spinning threads slow them down 40x (measured: 0.7 s vs 28 s for a tiny run).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent

if not os.environ.get("TEXTBENCH_DATA") and (REPO.parent / "shared" / "data").is_dir():
    os.environ["TEXTBENCH_DATA"] = str(REPO.parent / "shared" / "data")

# A tiny offline suite: seeded oracle with 50 tokens and length 8; runs take about a second.
TINY = {
    "oracle": "seeded",
    "oracle_vocab": 50,
    "oracle_len": 8,
    "n_train": 256,
    "n_test": 256,
    "eval_samples": 128,
    "final_samples": 64,
    "batch_size": 32,
    "steps": 20,
    "eval_every": 10,
}


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    os.environ["TEXTBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def tiny() -> dict:
    return dict(TINY)


def has_data() -> bool:
    d = os.environ.get("TEXTBENCH_DATA")
    return bool(d) and (Path(d) / "synthetic" / "seqgan_oracle.npz").is_file()


needs_data = pytest.mark.skipif(not has_data(), reason="TEXTBENCH_DATA (the shared data folder) is not available")


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.needs_data`` skips a test when the shared data folder is absent (the marker and the
    ``needs_data`` decorator above mean the same thing). ``@pytest.mark.slow`` marks the end-to-end tests
    that take tens of seconds (select the rest with ``-m "not slow"``)."""
    if has_data():
        return
    skip = pytest.mark.skip(reason="TEXTBENCH_DATA (the shared data folder) is not available")
    for item in items:
        if "needs_data" in item.keywords:
            item.add_marker(skip)
