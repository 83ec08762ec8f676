"""GCN: self-normalised weights, weighted MLE loss, nucleus proposal, end-to-end run and exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from textbench.algorithms.gcn import gcn_loss, gcn_weights, sample_nucleus
from textbench.engine.loop import Run, build, train
from textbench.engine.rundir import is_timing_column, read_metrics
from textbench.errors import TextbenchError
from textbench.models.lstm import LSTMLM

SCHEDULE = {"pretrain_steps": 3, "mle_batches": 0, "d_pretrain_steps": 2, "adv_steps": 3, "steps": 8, "eval_every": 2}
GCN = {"adv_g_steps": 2, "gcn_samples": 64, "gcn_d_steps": 2}


def quiet(_msg):
    pass


def test_weights_generator_proposal_proportional_to_d():
    d = torch.tensor([0.2, 0.4, 0.6, 0.8])
    w = gcn_weights(None, d.log())
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(w, d / d.sum(), atol=1e-6)
    # with q = p passed explicitly the p/q factor cancels
    lp = torch.tensor([-3.0, -1.0, -2.0, -5.0])
    assert torch.allclose(gcn_weights(lp, d.log(), lp), w, atol=1e-6)


def test_weights_hand_checked_with_proposal():
    p = torch.tensor([0.1, 0.2, 0.3])
    q = torch.tensor([0.2, 0.2, 0.6])
    d = torch.tensor([0.5, 0.25, 1.0])
    raw = p * d / q  # 0.25, 0.25, 0.5
    w = gcn_weights(p.log(), d.log(), q.log())
    assert torch.allclose(w, raw / raw.sum(), atol=1e-6)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6)
    # extreme log-weights stay finite
    w2 = gcn_weights(torch.tensor([-400.0, -1.0]), torch.tensor([0.0, -300.0]), torch.tensor([-1.0, -1.0]))
    assert torch.isfinite(w2).all() and w2.sum().item() == pytest.approx(1.0)


def test_weighted_mle_loss_hand_checked():
    lp = torch.log(torch.tensor([[0.5, 0.5], [0.25, 1.0]]))
    w = torch.tensor([0.75, 0.25])
    want = -(0.75 * math.log(0.5) + 0.25 * (math.log(0.25) + 0.0) / 2)
    assert gcn_loss(lp, w).item() == pytest.approx(want, rel=1e-6)


@pytest.fixture
def model():
    return LSTMLM(9, 8, 8, 5).init_normal_(0.8, torch.Generator().manual_seed(0))


def test_nucleus_full_mass_is_the_generator(model):
    y, lp, lq = sample_nucleus(model, 50, 1.0, torch.Generator().manual_seed(0))
    assert y.shape == (50, 5)
    assert torch.allclose(lp, lq)
    assert torch.allclose(lp, model.token_log_probs(y).detach().double().sum(1), atol=1e-4)


def test_nucleus_tokens_lie_in_the_nucleus(model):
    top_p = 0.6
    y, lp, lq = sample_nucleus(model, 200, top_p, torch.Generator().manual_seed(1))
    probs = model.log_probs(y).exp().detach()  # [N, L, V]
    chosen = probs.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    mass_before = (probs * (probs > chosen.unsqueeze(-1))).sum(-1)  # mass of strictly more probable tokens
    assert torch.all(mass_before < top_p + 1e-5)
    assert torch.all(lq >= lp - 1e-6)  # renormalised truncation: q >= p on the nucleus
    greedy, _, lq0 = sample_nucleus(model, 10, 1e-9, torch.Generator().manual_seed(2))
    assert torch.allclose(lq0, torch.zeros(10, dtype=torch.float64), atol=1e-5)  # one token per step: q = 1
    assert torch.equal(greedy, greedy[:1].expand_as(greedy))
    with pytest.raises(TextbenchError):
        sample_nucleus(model, 2, 0.0, torch.Generator())


def _strip(rows):
    return [{k: v for k, v in row.items() if not is_timing_column(k)} for row in rows]


def test_iteration_weights_follow_d(tiny):
    run = Run("gcn", "synthetic", "quick", 0, {**tiny, **SCHEDULE, **GCN}, run_dir="unused")
    a = build("gcn", "synthetic", run.settings, 0)[1]
    logs = a.iteration()
    assert {"g_loss", "d_loss", "ess", "d_fake"} <= set(logs)
    assert 1.0 <= logs["ess"] <= 64.0 + 1e-6
    with pytest.raises(TextbenchError, match="gcn_proposal"):
        build("gcn", "synthetic", {**run.settings, "gcn_proposal": "beam"}, 0)


@pytest.mark.parametrize("proposal", ["generator", "nucleus"])
def test_run_improves_and_resumes_exactly(proposal, tiny, tmp_path):
    s = {**tiny, **SCHEDULE, **GCN, "gcn_proposal": proposal}
    full = Run("gcn", "synthetic", "quick", 0, s, run_dir=tmp_path / "full")
    assert train(full, progress=False, log=quiet)["complete"]
    rows = read_metrics(tmp_path / "full" / "metrics.csv")
    assert rows[-1]["nll_oracle"] < rows[0]["nll_oracle"]
    assert "ess" in rows[-1]
    part = Run("gcn", "synthetic", "quick", 0, s, run_dir=tmp_path / "part")
    train(part, progress=False, stop_at_step=7, log=quiet)
    train(part, resume=True, progress=False, log=quiet)
    assert _strip(read_metrics(tmp_path / "part" / "metrics.csv")) == _strip(rows)
