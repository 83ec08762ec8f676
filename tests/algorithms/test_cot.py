import pytest
import torch

from textbench.algorithms.cot import cot_generator_loss, mediator_loss
from textbench.engine.loop import Run, train
from textbench.engine.rundir import read_metrics
from textbench.models.lstm import LSTMLM


def test_generator_loss_is_full_vocabulary_kl():
    g = torch.log(torch.tensor([[[0.5, 0.25, 0.25]]]))
    m = torch.log(torch.tensor([[[0.25, 0.5, 0.25]]]))
    # KL(G||M) = 0.5 ln 2 + 0.25 ln 0.5 + 0 = 0.25 ln 2
    assert float(cot_generator_loss(g, m)) == pytest.approx(0.25 * torch.log(torch.tensor(2.0)).item())
    assert float(cot_generator_loss(g, g)) == pytest.approx(0.0, abs=1e-7)


def test_generator_gradient_vanishes_when_g_equals_m_and_ignores_m():
    logits = torch.randn(2, 3, 7, requires_grad=True)
    m_logits = torch.randn(2, 3, 7, requires_grad=True)
    loss = cot_generator_loss(torch.log_softmax(logits, -1), torch.log_softmax(logits.detach(), -1))
    loss.backward()
    assert logits.grad.abs().max() < 1e-6
    loss = cot_generator_loss(torch.log_softmax(logits, -1), torch.log_softmax(m_logits, -1))
    loss.backward()
    assert m_logits.grad is None  # the mediator is a constant in the generator's objective


def test_mediator_loss_is_balanced():
    m = LSTMLM(5, 4, 4, 3).init_normal_(1.0, torch.Generator().manual_seed(0)).eval()
    real = torch.tensor([[0, 1, 2], [3, 4, 0]])
    fake = torch.tensor([[1, 1, 1]])  # a batch of a different size still weighs one half
    expected = 0.5 * (-m.token_log_probs(real).mean() - m.token_log_probs(fake).mean())
    assert float(mediator_loss(m, real, fake).detach()) == pytest.approx(float(expected.detach()))


def test_cot_learns_on_tiny_suite(tiny, tmp_path):
    tiny.update(steps=150, eval_every=150, g_lr=0.01, eval_samples=512)
    train(Run("cot", "synthetic", "quick", 0, tiny, tmp_path / "r"), progress=False, log=lambda _m: None)
    first, last = read_metrics(tmp_path / "r" / "metrics.csv")
    assert last["nll_oracle"] < first["nll_oracle"] - 0.1
    assert last["cot_jsd"] < first["cot_jsd"]
    assert last["jsd"] < first["jsd"]
    assert "bnll" in last
