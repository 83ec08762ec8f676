"""The Python API (textbench/api.py) on the real engine at tiny size: run, load_run, generate, evaluate, and
the CLI commands that are thin layers over it (same samples, same scores)."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY

import textbench
from textbench.cli import main
from textbench.engine.loop import Run, train
from textbench.errors import TextbenchError
from textbench.metrics.bleu import score_files
from textbench.metrics.likelihood import token_log_probs
from textbench.registry import SUITES
from textbench.suites.vocab import EOS, eos_mask

SUITE_KEYS = ("oracle", "oracle_vocab", "oracle_len", "n_train", "n_test")
BLEU_KEYS = [f"{k}-{n}" for k in ("bleu", "self-bleu", "rs-bleu") for n in (2, 3, 4, 5)]


def quiet(_msg):
    pass


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A complete tiny MLE run on the seeded oracle (about a second), through the API."""
    root = tmp_path_factory.mktemp("api")
    return textbench.run("mle", "synthetic", settings=dict(TINY), results=root)


@pytest.fixture
def suite_settings():
    return {k: TINY[k] for k in SUITE_KEYS}


# ------------------------------------------------------------------------------------------------- run


def test_the_package_exports_the_api():
    for name in ("run", "load_run", "generate", "evaluate", "RunResult", "Evaluation", "TextbenchError"):
        assert name in textbench.__all__ and getattr(textbench, name) is not None
        assert getattr(textbench, name).__doc__


def test_run_returns_metrics_summary_and_generator(tiny_run):
    res = tiny_run
    assert isinstance(res, textbench.RunResult) and res.complete
    assert (res.algo, res.suite, res.profile, res.seed) == ("mle", "synthetic", "quick", 0)
    assert res.path.name.startswith("quick-seed0-set") and (res.path / "config.json").is_file()
    df = res.metrics
    assert list(df["step"]) == [0, 10, 20] and {"nll_oracle", "nll_test", "jsd", "wall_s"} <= set(df.columns)
    assert df["nll_oracle"].iloc[-1] == res.final["nll_oracle"] == res.summary["final"]["nll_oracle"]
    assert res.settings["steps"] == 20 and res.signature["suite"] == "synthetic"
    assert isinstance(res.generator, torch.nn.Module) and not res.generator.training
    assert res.suite_object.vocab_size == 50
    assert "complete" in repr(res)


def test_run_again_returns_the_finished_run_and_load_run_reads_it(tiny_run):
    before = (tiny_run.path / "metrics.csv").stat().st_mtime_ns
    lines = []
    again = textbench.run("mle", "synthetic", settings=dict(TINY), run_dir=tiny_run.path, log=lines.append)
    assert (tiny_run.path / "metrics.csv").stat().st_mtime_ns == before
    assert again.summary == tiny_run.summary and any("already complete" in ln for ln in lines)
    loaded = textbench.load_run(str(tiny_run.path))
    assert loaded.config == tiny_run.config and loaded.metrics.equals(tiny_run.metrics)
    assert loaded.final == tiny_run.final and loaded.complete


def test_run_settings_as_strings_and_stop_then_resume(tmp_path):
    sets = [f"{k}={v}" for k, v in TINY.items()]
    res = textbench.run("mle", "synthetic", settings=sets, run_dir=tmp_path / "r", stop_at_step=10)
    assert not res.complete and res.summary["steps"] == 10 and list(res.metrics["step"]) == [0, 10]
    with pytest.raises(TextbenchError, match="unfinished run; use --resume"):
        textbench.run("mle", "synthetic", settings=sets, run_dir=tmp_path / "r")
    done = textbench.run("mle", "synthetic", settings=dict(TINY), run_dir=tmp_path / "r", resume=True)
    assert done.complete and list(done.metrics["step"]) == [0, 10, 20]
    # the same numbers as an uninterrupted run
    whole = textbench.run("mle", "synthetic", settings=dict(TINY), run_dir=tmp_path / "whole")
    cols = [c for c in whole.metrics.columns if c != "wall_s"]
    assert done.metrics[cols].equals(whole.metrics[cols])


def test_run_errors_are_one_line(tmp_path):
    with pytest.raises(TextbenchError, match="unknown setting 'lr'"):
        textbench.run("mle", "synthetic", settings={"lr": 1}, run_dir=tmp_path / "a")
    with pytest.raises(TextbenchError, match="unknown algorithm 'nope'"):
        textbench.run("nope", "synthetic", run_dir=tmp_path / "b")
    with pytest.raises(TextbenchError, match="seed='1'"):
        textbench.run("mle", "synthetic", seed="1", run_dir=tmp_path / "c")
    with pytest.raises(TextbenchError, match="settings: expected a dict"):
        textbench.run("mle", "synthetic", settings="steps=3", run_dir=tmp_path / "d")
    assert not any(tmp_path.iterdir())


def test_load_run_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(TextbenchError, match="no run there"):
        textbench.load_run(tmp_path / "nothing")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "x.txt").write_text("x")
    with pytest.raises(TextbenchError, match="not a textbench run directory"):
        textbench.load_run(tmp_path / "f")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "config.json").write_text("{}")
    with pytest.raises(TextbenchError, match="missing 'algo'"):
        textbench.load_run(tmp_path / "g")


# ------------------------------------------------------------------------------------------------- generate


def test_generate_is_seeded_and_equals_the_cli(tiny_run, tmp_path):
    ids = textbench.generate(tiny_run, 30, temperature=0.7, seed=3)
    assert isinstance(ids, torch.Tensor) and ids.shape == (30, 8) and ids.dtype == torch.long
    assert torch.equal(ids, textbench.generate(str(tiny_run.path), 30, temperature=0.7, seed=3))
    assert torch.equal(ids, tiny_run.generate(30, temperature=0.7, seed=3))
    assert not torch.equal(ids, textbench.generate(tiny_run, 30, temperature=0.7, seed=4))
    out = CliRunner().invoke(main, ["generate", "--run", str(tiny_run.path), "-n", "30", "--temperature", "0.7", "--seed", "3"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == tiny_run.format_samples(ids) == [" ".join(map(str, r)) for r in ids.tolist()]
    # another checkpoint: generator.pt holds the same final weights as checkpoints/last.pt
    same = textbench.generate(tiny_run, 30, temperature=0.7, seed=3, checkpoint=tiny_run.path / "generator.pt")
    assert torch.equal(same, ids)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n=0: expected 1 to"), ({"n": 2.5}, "n=2.5"), ({"temperature": float("nan")}, "temperature=nan"),
    ({"temperature": 0}, "temperature=0"), ({"seed": -1}, "seed=-1"), ({"seed": 2**63}, "seed="),
])
def test_generate_bad_arguments(tiny_run, kwargs, match):
    with pytest.raises(TextbenchError, match=match):
        textbench.generate(tiny_run, **{"n": 5, **kwargs})


# ------------------------------------------------------------------------------------------------- evaluate: synthetic


def test_evaluate_ids_against_the_oracle_and_under_the_run(tiny_run, suite_settings):
    ids = textbench.generate(tiny_run, 64, seed=1)
    suite = SUITES.get("synthetic")({**SUITES.get("synthetic").defaults, **suite_settings})
    want = suite.evaluate_samples(ids)
    got = textbench.evaluate(ids, suite="synthetic", settings=suite_settings)
    assert dict(got) == want and set(got) == {"nll_oracle", "nll_oracle_se"}
    assert got.signature["suite"] == suite.signature()
    # numpy arrays and lists of id lists are the same samples
    assert dict(textbench.evaluate(ids.numpy(), suite="synthetic", settings=suite_settings)) == want
    assert dict(textbench.evaluate(ids.tolist(), suite="synthetic", settings=suite_settings)) == want
    # under the run: the oracle's NLL and the generator's own
    under = textbench.evaluate(ids, run=tiny_run)
    assert under["nll_oracle"] == want["nll_oracle"]
    lp = token_log_probs(tiny_run.generator, ids)
    assert under["nll_generator"] == pytest.approx(-float(lp.mean()), rel=1e-12)
    assert math.isfinite(under["nll_generator_se"]) and under.signature["nll_generator"]["sentences"] == 64
    assert dict(tiny_run.evaluate(ids, metrics="nll_generator")) == {"nll_generator": under["nll_generator"]}


def test_evaluate_a_samples_file_equals_the_cli(tiny_run, suite_settings, tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("\n".join(tiny_run.format_samples(textbench.generate(tiny_run, 40))) + "\n")
    sets = sum((["--set", f"{k}={v}"] for k, v in suite_settings.items()), [])
    out = CliRunner().invoke(main, ["eval", "--suite", "synthetic", "--samples", str(path), "--json", *sets])
    assert out.exit_code == 0, out.output
    ev = textbench.evaluate(path, suite="synthetic", settings=[f"{k}={v}" for k, v in suite_settings.items()])
    assert json.loads(out.output) == json.loads(json.dumps({"metrics": dict(ev), "signatures": ev.signature}, default=str))


@pytest.mark.parametrize("samples, match", [
    (torch.zeros((3, 5), dtype=torch.long), "5 per sample, this suite's sequences have 8"),
    (torch.full((3, 8), 50), "id 50 out of range"),
    (torch.zeros(8, dtype=torch.long), "expected shape"),
    (np.zeros((2, 8)), "expected integers"),
    ([[1, 2, 3], [1, 2]], "rows of different lengths"),
])
def test_evaluate_bad_ids(suite_settings, samples, match):
    with pytest.raises(TextbenchError, match=match):
        textbench.evaluate(samples, suite="synthetic", settings=suite_settings)


def test_evaluate_needs_exactly_one_target(tiny_run):
    with pytest.raises(TextbenchError, match="exactly one of references, suite or run"):
        textbench.evaluate(["a b"])
    with pytest.raises(TextbenchError, match="exactly one of references, suite or run"):
        textbench.evaluate(["a b"], ["a b"], suite="coco")
    with pytest.raises(TextbenchError, match="token ids need a suite or a run"):
        textbench.evaluate(torch.zeros((2, 3), dtype=torch.long), ["a b"])
    with pytest.raises(TextbenchError, match="a run's settings are its own"):
        textbench.evaluate(torch.zeros((2, 8), dtype=torch.long), run=tiny_run, settings={"oracle": "seeded"})
    with pytest.raises(TextbenchError, match="'bleu-2' is not scored here"):
        textbench.evaluate(textbench.generate(tiny_run, 4), run=tiny_run, metrics=["bleu-2"])


# ------------------------------------------------------------------------------------------------- evaluate: references


HYPS = ["a cat sits on the mat .", "the dog sat on a log .", "", "a bird flies over the house ."]
REFS = ["a cat sat on the mat .", "a dog sits on the log .", "the bird flies over a house .", "a man walks ."]


def test_evaluate_against_references_equals_score_files(tmp_path):
    hp, rp = tmp_path / "h.txt", tmp_path / "r.txt"
    hp.write_text("\n".join(HYPS) + "\n")
    rp.write_text("\n".join(REFS) + "\n")
    metrics = ["bleu-2", "bleu-4", "self-bleu-3", "rs-bleu-2"]
    want = {k: s.value for k, s in score_files(rp, hp, metrics).items()}
    for samples, refs in [(hp, rp), (str(hp), str(rp)), (HYPS, REFS), (hp, REFS), (HYPS, rp), ([h.split() for h in HYPS], REFS)]:
        got = textbench.evaluate(samples, refs, metrics=metrics)
        assert list(got) == metrics and got == pytest.approx(want, rel=1e-15), (type(samples), type(refs))
    assert list(textbench.evaluate(HYPS, REFS)) == ["bleu-2", "bleu-3", "bleu-4", "bleu-5"]  # the CLI's default
    ev = textbench.evaluate(HYPS, REFS, metrics="bleu-2, self-bleu-2", tokenizer="whitespace", lowercase=True)
    assert list(ev) == ["bleu-2", "self-bleu-2"] and "tok:whitespace" in ev.signature["bleu-2"]
    out = CliRunner().invoke(main, ["eval", "--references", str(rp), "--samples", str(hp), "--metrics", ",".join(metrics), "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["metrics"] == pytest.approx(want, rel=1e-15)
    with pytest.raises(TextbenchError, match="unknown metric|valid"):
        textbench.evaluate(HYPS, REFS, metrics="bleu-x")


# ------------------------------------------------------------------------------------------------- a text run


def corpus(tmp_path, n_train=160, n_test=40):
    r = random.Random(0)

    def sent():
        return f"a {r.choice(['red', 'big', 'old'])} {r.choice(['cat', 'dog', 'bus'])} {r.choice(['sits', 'waits'])} on the {r.choice(['table', 'street'])} ."

    train_p, test_p = tmp_path / "train.txt", tmp_path / "test.txt"
    train_p.write_text("".join(sent() + "\n" for _ in range(n_train)))
    test_p.write_text("".join(sent() + "\n" for _ in range(n_test)))
    return {"text_train_path": str(train_p), "text_test_path": str(test_p)}


TEXT_TINY = {"steps": 30, "eval_every": 15, "eval_samples": 40, "final_samples": 20, "batch_size": 16}


def test_text_run_generate_and_evaluate(tmp_path):
    files = corpus(tmp_path)
    res = textbench.run("mle", "text", settings={**files, **TEXT_TINY}, run_dir=tmp_path / "run")
    assert res.complete and list(res.metrics["step"]) == [0, 15, 30] and "bleu-3" in res.metrics
    lines = textbench.generate(res, 25, temperature=0.8, seed=2)
    assert isinstance(lines, list) and len(lines) == 25 and all(isinstance(s, str) for s in lines)
    assert lines == textbench.generate(textbench.load_run(tmp_path / "run"), 25, temperature=0.8, seed=2)
    suite, gen = res.load()
    ev = textbench.evaluate(lines, run=res)
    assert list(ev)[: len(BLEU_KEYS)] == BLEU_KEYS
    assert {k: ev[k] for k in BLEU_KEYS} == suite.bleu_scores([s.split() for s in lines])
    # nll_generator: every position up to and including the first <eos>, under the run's generator
    # (a sample without <eos> has seq_len words: its ids are the row itself)
    ids = torch.tensor([suite.vocab.encode(s.split()) + [EOS] * (suite.seq_len - len(s.split())) for s in lines])
    mask = eos_mask(ids)
    assert torch.equal(ids, suite.vocab.encode_batch([s.split() for s in lines], suite.seq_len + 1)[:, :-1])
    want = -float(token_log_probs(gen, ids, mask=mask).sum() / mask.sum())
    assert ev["nll_generator"] == pytest.approx(want, rel=1e-12)
    # an unknown word is <unk>; a sentence longer than seq_len tokens is left out of the NLL, and counted
    long = " ".join(["a"] * (suite.seq_len + 1))
    ev2 = textbench.evaluate(lines + ["a purple cat sits ."] + [long], run=res)
    info = ev2.signature["nll_generator"]
    assert info["dropped_over_seq_len"] == 1 and info["unk_tokens"] == 1 and info["sentences"] == 26
    # token ids of a text suite are decoded for BLEU
    ids_ev = textbench.evaluate(ids, run=res)
    assert {k: ids_ev[k] for k in BLEU_KEYS} == {k: ev[k] for k in BLEU_KEYS}
    # the same scores through a suite (no model: no NLL)
    by_suite = textbench.evaluate(lines, suite="text", settings=files)
    assert dict(by_suite) == {k: ev[k] for k in BLEU_KEYS}


def test_generate_refuses_a_training_file_changed_since_the_run(tmp_path):
    files = corpus(tmp_path)
    res = textbench.run("mle", "text", settings={**files, **TEXT_TINY}, run_dir=tmp_path / "run")
    with open(files["text_train_path"], "a") as f:
        f.write("".join("a zebra sits on the moon .\n" for _ in range(100)))
    with pytest.raises(TextbenchError, match="vocabulary fingerprint .* the file changed since the run"):
        textbench.generate(textbench.load_run(res.path), 3)
    out = CliRunner().invoke(main, ["generate", "--run", str(res.path), "-n", "3"])
    assert out.exit_code == 2 and "changed since the run" in out.output


def test_api_and_engine_write_the_same_run(tmp_path):
    """textbench.run is Run + train: the same directory, the same numbers."""
    res = textbench.run("mle", "synthetic", settings=dict(TINY), results=tmp_path / "a")
    r = Run("mle", "synthetic", "quick", 0, dict(TINY), None, tmp_path / "b")
    train(r, progress=False, log=quiet)
    assert res.path.relative_to(tmp_path / "a") == r.run_dir.relative_to(tmp_path / "b")
    cols = [c for c in res.metrics.columns if c != "wall_s"]
    assert res.metrics[cols].equals(textbench.load_run(r.run_dir).metrics[cols])
