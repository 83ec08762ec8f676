"""TextCoT-strong (``cot-strong``): its loss against a hand computation, tiny runs on the synthetic and a text
suite, resume = uninterrupted, and α sampling (LeakGAN's conservative generation) through the temperature sweep."""

import math
import random

import pytest
import torch

from textbench.algorithms.cot_strong import CoTStrong, FeatureExtractor, full_log_probs
from textbench.engine.loop import Run, build, load_generator, resolve_settings, train
from textbench.engine.rundir import is_timing_column, read_metrics
from textbench.registry import ALGORITHMS
from textbench.reports.temperature import Tempered, parse_temperatures, sweep


def quiet(run, **kw):
    return train(run, progress=False, log=lambda _m: None, **kw)


def untimed(rows):
    return [{k: v for k, v in r.items() if not is_timing_column(k)} for r in rows]


def small(tiny, **kw):
    """The tiny suite with a small feature extractor (the model is LeakGAN's; only its sizes shrink)."""
    return {**tiny, "leak_emb": 8, "leak_num_filters": [6, 10], **kw}


def built(tiny):
    settings = resolve_settings("cot-strong", "synthetic", "quick", small(tiny))
    return build("cot-strong", "synthetic", settings, 0)


def test_registered_with_the_cot_objective_and_a_leakgan_generator(tiny):
    assert "cot-strong" in ALGORITHMS.names()
    suite, algo = built(tiny)
    assert isinstance(algo, CoTStrong)
    g, m = algo.modules()["generator"], algo.modules()["mediator"]
    assert isinstance(g.discriminator, FeatureExtractor) and g.feature_dim == 16
    assert m.lstm.hidden_size == 2 * g.hidden_dim  # the mediator: twice the generator's hidden size, as cot
    # every generator tensor but the extractor's unused classifier head is optimised; the mediator's are not
    optimised = {id(p) for group in algo.g_opt.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in g.parameters() if p.requires_grad and p not in set(g.discriminator.output.parameters())}
    paper = resolve_settings("cot-strong", "synthetic", "paper")
    assert (paper["steps"], paper["eval_every"], paper["full_eval_every"]) == (200_000, 100, 1000)


def test_generator_loss_is_full_vocabulary_kl_by_hand(tiny):
    """J = mean over (b, t) of Σ_v G(v|s_<t)[ln G(v|s_<t) − ln M(v|s_<t)], with each conditional obtained the
    slow way: put v at position t and score the sequence with the models' own ``token_log_probs``."""
    suite, algo = built(tiny)
    g, m = algo.g, algo.m
    s = g.sample(6, torch.Generator().manual_seed(1))
    loss = algo.generator_loss(s)
    v_size, length = suite.vocab_size, suite.seq_len
    kl = torch.zeros(s.shape)
    with torch.no_grad():
        m.eval()
        for t in range(length):
            lg, lm = [], []
            for v in range(v_size):
                x = s.clone()
                x[:, t] = v  # G(v | s_<t) does not depend on what follows position t
                lg.append(g.token_log_probs(x)[:, t])
                lm.append(m.token_log_probs(x)[:, t])
            lg, lm = torch.stack(lg, 1).double(), torch.stack(lm, 1).double()
            assert torch.allclose(lg.exp().sum(1), torch.ones(6, dtype=torch.double), atol=1e-5)
            kl[:, t] = (lg.exp() * (lg - lm)).sum(1).float()
    assert float(loss.detach()) == pytest.approx(float(kl.mean()), abs=1e-5)
    # the gradient reaches worker, manager and the feature extractor; the mediator is a constant
    algo.g_opt.zero_grad(set_to_none=True)
    loss.backward()
    for p in (g.worker_out, g.goal_proj, g.manager.weight_ih_l0, g.manager_out.weight, g.goal_init,
              g.discriminator.embedding.weight, g.discriminator.convs[0].weight, g.discriminator.highway.lin.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.parameters())
    # the full-vocabulary log-probabilities are those the sampler draws from (temperature 1)
    x, lps = g.sample_with_log_probs(8, torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = full_log_probs(g, g.teacher_forced(x))
    assert torch.allclose(full.gather(-1, x.unsqueeze(-1)).squeeze(-1), lps, atol=1e-5)


def test_closed_form_kl_equals_autograd_through_log_softmax():
    """KLToConstant: the value and the gradient with respect to the logits of cot_generator_loss on
    log_softmax(logits), to float rounding, on rows of several chunks (and a partial one)."""
    from textbench.algorithms.cot import cot_generator_loss
    from textbench.models.fused import KLToConstant

    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(300, 77, generator=g) * 3).requires_grad_(True)
    m_lp = torch.log_softmax(torch.randn(300, 77, generator=g) * 2, dim=-1)
    ref = cot_generator_loss(torch.log_softmax(logits, dim=-1), m_lp)
    (ref_grad,) = torch.autograd.grad(ref * 2.5, logits)
    got = KLToConstant.apply(logits, m_lp)
    (grad,) = torch.autograd.grad(got * 2.5, logits)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6, abs=1e-7)
    assert torch.allclose(grad, ref_grad, rtol=1e-5, atol=1e-8)
    assert float(grad.abs().max()) > 1e-4  # not a vanishing gradient that any function would match


def test_tiny_synthetic_run_learns(tiny, tmp_path):
    s = small(tiny, steps=40, eval_every=40, eval_samples=512)
    summary = quiet(Run("cot-strong", "synthetic", "quick", 0, s, tmp_path / "r"))
    assert summary["complete"]
    first, last = read_metrics(tmp_path / "r" / "metrics.csv")
    assert last["nll_oracle"] < first["nll_oracle"] - 0.1
    assert last["cot_jsd"] < first["cot_jsd"]
    for key in ("g_loss", "bnll", "m_loss"):
        assert math.isfinite(last[key])


def test_resume_equals_uninterrupted(tiny, tmp_path):
    s = small(tiny, steps=30)
    quiet(Run("cot-strong", "synthetic", "quick", 0, s, tmp_path / "full"))
    partial = quiet(Run("cot-strong", "synthetic", "quick", 0, s, tmp_path / "cut"), stop_at_step=10)
    assert not partial["complete"]
    quiet(Run("cot-strong", "synthetic", "quick", 0, s, tmp_path / "cut"), resume=True)
    assert untimed(read_metrics(tmp_path / "cut" / "metrics.csv")) == untimed(read_metrics(tmp_path / "full" / "metrics.csv"))
    assert (tmp_path / "cut" / "samples.txt").read_text() == (tmp_path / "full" / "samples.txt").read_text()


def _corpus(tmp_path):
    r = random.Random(0)
    words = [["red", "big", "old"], ["cat", "dog", "bus"], ["sits", "waits"], ["table", "street", "bench"]]

    def line():
        a, n, v, p = (r.choice(w) for w in words)
        return f"a {a} {n} {v} on the {p}" + (f" near a {r.choice(words[1])}" if r.random() < 0.3 else "") + "."

    train_p, test_p = tmp_path / "train.txt", tmp_path / "test.txt"
    train_p.write_text("\n".join(line() for _ in range(96)) + "\n", encoding="utf-8")
    test_p.write_text("\n".join(line() for _ in range(32)) + "\n", encoding="utf-8")
    return {"text_train_path": str(train_p), "text_test_path": str(test_p)}


def test_tiny_text_run_and_alpha_sampling_from_the_same_run(tmp_path):
    """A text-suite run, then both published rows from its final generator: plain (α = 1) and α = 1.5
    (``textbench sweep-temperature --temperatures 0.6666666666666666,1``)."""
    s = {**_corpus(tmp_path), "leak_emb": 8, "leak_num_filters": [6, 10], "batch_size": 32, "steps": 6, "eval_every": 3,
         "eval_samples": 64, "final_samples": 16}
    run_dir = tmp_path / "r"
    summary = quiet(Run("cot-strong", "text", "quick", 0, s, run_dir))
    assert summary["complete"]
    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert all(math.isfinite(r["bleu-2"]) and math.isfinite(r["nll_test"]) for r in rows)
    temps = parse_temperatures("0.6666666666666666,1")
    assert temps == [1 / 1.5, 1.0]
    table = sweep(run_dir, temps, 64, seed=5)
    assert list(table["temperature"]) == [1 / 1.5, 1.0]
    for col in ("bleu-2", "bleu-5", "self-bleu-5", "rs-bleu-5", "nll_test"):
        assert table[col].notna().all()
    # the α = 1 row is the run's own evaluation for that seed; the α = 1.5 row is G_α
    suite, g, _ = load_generator(run_dir)
    assert table["bleu-2"].iloc[1] == suite.evaluate(g, 5, 64)["bleu-2"]
    assert table["nll_test"].iloc[0] != table["nll_test"].iloc[1]


def test_alpha_sampling_is_softmax_of_alpha_times_logits(tiny):
    """G at T = 1/α samples and scores softmax(α·logits) (LeakGAN's α = 1.5), checked on the first token,
    whose distribution is the same for every row, with sharpened logits so that α = 1 and 1.5 differ."""
    suite, algo = built(tiny)
    g = algo.g
    with torch.no_grad():
        g.worker_out.mul_(40.0)
        x = g.sample(4000, torch.Generator().manual_seed(3))
        logits0 = g._logits(g.teacher_forced(x[:1])["worker_h"][:, 0], g._goal_weights(g.goal_init.unsqueeze(0)))[0]
        hot = Tempered(g, 1 / 1.5)
        y = hot.sample(4000, torch.Generator().manual_seed(3))
        # scores: ln softmax(1.5·logits) of the observed tokens, from the full logits by hand
        out = g.teacher_forced(y[:32])
        w = g._goal_weights(out["goals"])[:, out["segment"]]
        b, length, h = out["worker_h"].shape
        logits = g._logits(out["worker_h"].reshape(-1, h), w.reshape(b * length, -1))
        ref = torch.log_softmax(1.5 * logits, -1).gather(1, y[:32].reshape(-1, 1)).view(b, length)
        assert torch.allclose(hot.token_log_probs(y[:32]), ref, atol=1e-5)
    p1, p15 = torch.softmax(logits0, -1), torch.softmax(1.5 * logits0, -1)
    assert (p1 - p15).abs().sum() > 0.2  # the two distributions are far apart
    freq_alpha = torch.bincount(y[:, 0], minlength=suite.vocab_size).float() / y.shape[0]
    freq_one = torch.bincount(x[:, 0], minlength=suite.vocab_size).float() / x.shape[0]
    assert (freq_alpha - p15).abs().sum() < 0.08 and (freq_one - p1).abs().sum() < 0.08
