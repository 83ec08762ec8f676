"""EMNLP2017 News end to end with a user-supplied training split (issue: real text at paper scale, item 2).

The training split is not distributed, so the test writes a small stand-in training file itself (sentences
in the EMNLP style, one per line, some longer than the 51-token limit) and drives the whole path on the real
test split (``emnlp/test.txt`` of the shared data folder): vocabulary from the training file, sequence length
51, a few MLE steps, BLEU / Self-BLEU / RS-BLEU / NLL_test against the real test split, and the leaderboard
placing the run in Tables 2–3 beside the published EMNLP numbers.
"""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from textbench.engine.loop import Run, train
from textbench.engine.rundir import read_metrics
from textbench.errors import TextbenchError
from textbench.registry import SUITES
from textbench.reports import leaderboard as lb

pytestmark = pytest.mark.needs_data


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TEXTBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "textbench-cache"))


def stand_in_training_file(path, n=400, seed=0):
    """n sentences built from the real test split's words, plus 5 of 60 words (dropped: longer than 51)."""
    from textbench import data

    words = data.locate("emnlp/test.txt").read_text(encoding="utf-8").split()[:20_000]
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) for _ in range(n)]
    lines += [" ".join(rng.choice(words) for _ in range(60)) for _ in range(5)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_emnlp_end_to_end_with_a_stand_in_training_split(tmp_path):
    train_file = stand_in_training_file(tmp_path / "emnlp_news.txt")
    with pytest.raises(TextbenchError, match="text_train_path=/path/to/emnlp_news.txt"):
        SUITES.get("emnlp")(dict(SUITES.get("emnlp").defaults)).train  # the missing split: one clear line
    settings = {
        "text_train_path": str(train_file),
        "text_bleu_refs": "500",  # the first 500 test sentences as BLEU references (Texygen's fast mode size)
        "steps": 4,
        "eval_every": 2,
        "eval_samples": 64,
        "final_samples": 16,
    }
    run_dir = tmp_path / "runs" / "emnlp" / "mle" / "paper-seed0"
    summary = train(Run("mle", "emnlp", "paper", 0, settings, run_dir), progress=False, log=lambda _m: None)
    assert summary["complete"]
    cfg = json.loads((run_dir / "config.json").read_text())
    sig = cfg["suite_signature"]
    assert sig["suite"] == "emnlp" and cfg["settings"]["text_max_len"] == 51  # the suite's default
    text = json.dumps(sig)
    assert "emnlp_news.txt" in text and "test.txt" in text  # both files named in the signature (with their hashes)
    suite = SUITES.get("emnlp")({**SUITES.get("emnlp").defaults, **{k: v for k, v in settings.items() if k.startswith("text_")}})
    assert suite.seq_len == 51 and suite.train.shape == (400, 51)  # the 60-word sentences were dropped
    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["step"] for r in rows] == [0, 2, 4]
    for key in ["nll_test"] + [f"{m}-{n}" for m in ("bleu", "self-bleu", "rs-bleu") for n in (2, 3, 4, 5)]:
        assert key in rows[-1], key
    assert 0 < rows[-1]["bleu-2"] <= 1 and rows[-1]["nll_test"] > 0
    assert len((run_dir / "samples.txt").read_text(encoding="utf-8").splitlines()) == 16
    out = tmp_path / "lb"
    lb.write_leaderboard(tmp_path / "runs", out, "csv", suite="emnlp")
    t2 = pd.read_csv(out / "table2.csv")
    mle = t2[t2["algo"] == "mle"]
    ours = mle[mle["n_runs"] == 1].iloc[0]  # a shortened run: its own row (its --set values), beside the paper's
    assert ours["bleu-2_final_mean"] == rows[-1]["bleu-2"] and not ours["published_setting"]
    assert "eval_every=2" in ours["setting"]
    assert mle["bleu-2_final_paper"].max() == 0.781
    t3 = pd.read_csv(out / "table3.csv")
    mle3 = t3[t3["algo"] == "mle"]
    assert mle3["nll_test_final_paper"].max() == 2.365 and rows[-1]["nll_test"] in set(mle3["nll_test_final_mean"])
