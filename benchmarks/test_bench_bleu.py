"""Speed of the BLEU / Self-BLEU engine on the full COCO protocol, against nltk in the same run.

    pytest benchmarks/test_bench_bleu.py --benchmark-only          (about a minute on 2 CPU cores)

* BLEU-2..5: all 10,000 COCO train lines as hypotheses x all 10,000 test lines as references (Treebank tokens, no
  lower-casing). nltk (``sentence_bleu`` with the four weight tuples in *one* call per hypothesis -- cheaper than
  Texygen's one call per order) is timed on the first ``NLTK_BLEU_HYPS`` hypotheses and extrapolated per hypothesis.
* Self-BLEU-2..5 (leave-one-out) of the 10,000 train lines; nltk, the slow way (each sample vs the list of the
  9,999 others), on the first ``NLTK_SELF_HYPS`` samples, extrapolated.
* End to end: ``score_files`` (read + tokenize + BLEU-2..5 + Self-BLEU-2..5), one round.

Each benchmark stores the timings and the speed-up in ``benchmark.extra_info``, prints them, and checks that the
engine's scores on the nltk subsample are nltk's (|Δ| <= 1e-9). Tokenization is excluded from the engine-vs-nltk
comparisons (both sides get the same token lists). Skips cleanly when the data folder is missing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from textbench.metrics.bleu import ReferenceIndex, SelfBleuIndex, score_files
from textbench.metrics.tokenize import read_lines, tokenize_lines

ORDERS = (2, 3, 4, 5)
WEIGHTS = [(1 / n,) * n for n in ORDERS]
METHOD1 = SmoothingFunction().method1
NLTK_BLEU_HYPS = 20
NLTK_SELF_HYPS = 10
TOL = 1e-9
REPO_ROOT = Path(__file__).resolve().parents[1]


def find_data_dir() -> Path | None:
    """``$TEXTBENCH_DATA`` first, else ``../shared/data`` next to the repository."""
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
    t0 = time.perf_counter()
    train = tokenize_lines(read_lines(d / "coco" / "train.txt"))
    test = tokenize_lines(read_lines(d / "coco" / "test.txt"))
    return {"dir": d, "train": train, "test": test, "tokenize_s": time.perf_counter() - t0}


def _engine_seconds(benchmark, fallback: float) -> float:
    """Median round time from pytest-benchmark (``fallback`` when benchmarking is disabled)."""
    stats = getattr(benchmark, "stats", None)
    return float(stats.stats.median) if stats is not None else fallback


def _report(benchmark, capsys, title: str, info: dict) -> None:
    benchmark.extra_info.update(info)
    with capsys.disabled():
        print(f"\n[{title}]")
        for k, v in info.items():
            print(f"  {k:28s} {v:.6g}" if isinstance(v, float) else f"  {k:28s} {v}")


def test_bench_bleu_full_coco(benchmark, coco, capsys):
    hyps, refs = coco["train"], coco["test"]

    # nltk on a subsample, one call per hypothesis computing BLEU-2..5 together
    t0 = time.perf_counter()
    want = [sentence_bleu(refs, h, WEIGHTS, smoothing_function=METHOD1) for h in hyps[:NLTK_BLEU_HYPS]]
    nltk_per_hyp = (time.perf_counter() - t0) / NLTK_BLEU_HYPS

    def run():
        return ReferenceIndex(refs, max(ORDERS)).score(hyps, ORDERS)

    t0 = time.perf_counter()
    out = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    ours = _engine_seconds(benchmark, time.perf_counter() - t0)

    got = np.array([[out[n][i] for n in ORDERS] for i in range(NLTK_BLEU_HYPS)])
    max_diff = float(np.max(np.abs(got - np.array(want))))
    nltk_total = nltk_per_hyp * len(hyps)
    _report(benchmark, capsys, "BLEU-2..5, 10,000 hyps x 10,000 refs", {
        "n_hyps": len(hyps), "n_refs": len(refs),
        "engine_total_s": ours,
        "engine_per_hyp_s": ours / len(hyps),
        "nltk_subsample_hyps": NLTK_BLEU_HYPS,
        "nltk_per_hyp_s": nltk_per_hyp,
        "nltk_extrapolated_total_s": nltk_total,
        "speedup": nltk_total / ours,
        "max_abs_diff_vs_nltk": max_diff,
        "bleu_means": {n: round(float(out[n].mean()), 6) for n in ORDERS},
    })
    assert max_diff <= TOL


def test_bench_self_bleu_full_coco(benchmark, coco, capsys):
    samples = coco["train"]

    t0 = time.perf_counter()
    want = [
        sentence_bleu(samples[:i] + samples[i + 1 :], samples[i], WEIGHTS, smoothing_function=METHOD1)
        for i in range(NLTK_SELF_HYPS)
    ]
    nltk_per_hyp = (time.perf_counter() - t0) / NLTK_SELF_HYPS

    def run():
        return SelfBleuIndex(samples, max(ORDERS)).score(ORDERS)

    t0 = time.perf_counter()
    out = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    ours = _engine_seconds(benchmark, time.perf_counter() - t0)

    got = np.array([[out[n][i] for n in ORDERS] for i in range(NLTK_SELF_HYPS)])
    max_diff = float(np.max(np.abs(got - np.array(want))))
    nltk_total = nltk_per_hyp * len(samples)
    _report(benchmark, capsys, "Self-BLEU-2..5, 10,000 samples, leave-one-out", {
        "n_samples": len(samples),
        "engine_total_s": ours,
        "engine_per_hyp_s": ours / len(samples),
        "nltk_subsample_hyps": NLTK_SELF_HYPS,
        "nltk_per_hyp_s": nltk_per_hyp,
        "nltk_extrapolated_total_s": nltk_total,
        "speedup": nltk_total / ours,
        "max_abs_diff_vs_nltk": max_diff,
        "self_bleu_means": {n: round(float(out[n].mean()), 6) for n in ORDERS},
    })
    assert max_diff <= TOL


def test_bench_score_files_end_to_end(benchmark, coco, capsys):
    """read + tokenize + BLEU-2..5 + Self-BLEU-2..5 through ``score_files`` (what ``textbench eval`` runs)."""
    d = coco["dir"]
    metrics = [f"bleu-{n}" for n in ORDERS] + [f"self-bleu-{n}" for n in ORDERS]
    hyps, refs = coco["train"], coco["test"]

    # nltk reference: a few hypotheses for both metrics (token lists given, i.e. nltk's tokenization not counted)
    k = 5
    t0 = time.perf_counter()
    for i in range(k):
        sentence_bleu(refs, hyps[i], WEIGHTS, smoothing_function=METHOD1)
        sentence_bleu(hyps[:i] + hyps[i + 1 :], hyps[i], WEIGHTS, smoothing_function=METHOD1)
    nltk_per_hyp = (time.perf_counter() - t0) / k

    t0 = time.perf_counter()
    res = benchmark.pedantic(
        score_files, args=(d / "coco" / "test.txt", d / "coco" / "train.txt", metrics), rounds=1, iterations=1
    )
    ours = _engine_seconds(benchmark, time.perf_counter() - t0)
    nltk_total = nltk_per_hyp * len(hyps)
    _report(benchmark, capsys, "score_files end to end (incl. reading + Treebank tokenization of 20,000 lines)", {
        "engine_total_s": ours,
        "of_which_tokenization_s~": coco["tokenize_s"],
        "nltk_per_hyp_s (no tokenization)": nltk_per_hyp,
        "nltk_extrapolated_total_s": nltk_total,
        "speedup": nltk_total / ours,
        "scores": {m: round(s.value, 4) for m, s in res.items()},
    })
    assert res["bleu-2"].signature.n_refs == len(refs) and res["self-bleu-2"].signature.n_hyps == len(hyps)
