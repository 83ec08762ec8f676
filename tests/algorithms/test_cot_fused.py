"""The fused CoT iteration (textbench/models/fused.py) against the straightforward one it replaced.

The reference below is a copy of the straightforward computation (autograd through the full [B, L, V]
log-softmaxes of G and M, separate mediator passes, ``LSTMLM.sample``): the fused one must give the same
losses, gradients, logged balanced NLL and, over whole iterations, the same parameters (to 1e-5), with the
same draws from the training generator and from torch's global generator (dropout).
"""

from __future__ import annotations

import pytest
import torch

from textbench.algorithms.base import clip_and_step
from textbench.algorithms.cot import CoT
from textbench.config import ENGINE_DEFAULTS, validate_settings
from textbench.errors import TextbenchError
from textbench.metrics.likelihood import balanced_nll
from textbench.models.fused import generator_kl_backward, mediator_nll_backward, sample_with_probs
from textbench.models.lstm import LSTMLM

V, L, B = 300, 12, 16  # small, but with the paper's shapes: V >> H, several batches per epoch
TOL = 1e-5


# -- the reference: the straightforward iteration, as cot.py computed it before the fused passes -------------
def ref_generator_loss(g_log_probs, m_log_probs):
    return (g_log_probs.exp() * (g_log_probs - m_log_probs.detach())).sum(-1).mean()


def ref_mediator_loss(m, real, fake):
    return -0.5 * (m.token_log_probs(real).mean() + m.token_log_probs(fake).mean())


def ref_generator_grads(g, m, s):
    m.eval()
    with torch.no_grad():
        m_lp = m.log_probs(s)
    g.train()
    loss = ref_generator_loss(g.log_probs(s), m_lp)
    loss.backward()
    return loss.item()


def ref_mediator_grads(m, real, fake):
    with torch.no_grad():
        bnll = balanced_nll(m.token_log_probs(real), m.token_log_probs(fake))
    m.train()
    loss = ref_mediator_loss(m, real, fake)
    loss.backward()
    m.eval()
    return loss.item(), bnll


def ref_train_step(cot):
    b = cot.settings["batch_size"]
    s = cot.g.sample(b, cot.rng)
    cot.g_opt.zero_grad(set_to_none=True)
    g_loss = ref_generator_grads(cot.g, cot.m, s)
    clip_and_step(cot.g_opt, cot.g.parameters(), cot.settings["g_clip"])
    for _ in range(cot.settings["m_steps"]):
        real = cot.batches.next()
        fake = cot.g.sample(b, cot.rng)
        cot.m_opt.zero_grad(set_to_none=True)
        m_loss, bnll = ref_mediator_grads(cot.m, real, fake)
        cot.m_opt.step()
    return {"g_loss": g_loss, "bnll": bnll, "m_loss": m_loss}


# -- fixtures ------------------------------------------------------------------------------------------------
class _Suite:
    vocab_size, seq_len, start_token = V, L, 0
    train = torch.randint(0, V, (5 * B + 3, L), generator=torch.Generator().manual_seed(0))


def make_cot(seed=0, **overrides):
    settings = {**ENGINE_DEFAULTS, **CoT.defaults, "batch_size": B, "g_emb": 16, "g_hidden": 16, "m_emb": 24, "m_hidden": 24}
    settings.update(overrides)
    return CoT(_Suite(), settings, torch.Generator().manual_seed(seed))


def trained_cot(seed=0, steps=3, **overrides):
    """A CoT a few (reference) iterations in, so G and M are no longer at their initial values."""
    cot = make_cot(seed, **overrides)
    torch.manual_seed(seed)
    for _ in range(steps):
        ref_train_step(cot)
    return cot


def grads(model):
    return {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}


def assert_close_grads(got, want):
    assert got.keys() == want.keys()
    for k in want:
        if want[k] is None:
            assert got[k] is None, k
        else:
            assert got[k] is not None, k
            torch.testing.assert_close(got[k], want[k], rtol=TOL, atol=TOL, msg=k)


def g_conditionals(cot, n, generator):
    probs = torch.empty((L, n, V))
    log_probs = torch.empty((L, n, V))
    return sample_with_probs(cot.g, n, generator, probs, log_probs), probs, log_probs


# -- sampling ------------------------------------------------------------------------------------------------
def test_sampler_draws_the_same_tokens_and_returns_gs_conditionals():
    cot = trained_cot()
    r1, r2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    want = cot.g.sample(B, r1)
    got, probs, log_probs = g_conditionals(cot, B, r2)
    assert torch.equal(got, want)
    assert torch.equal(r1.get_state(), r2.get_state())  # the same number of draws
    with torch.no_grad():
        lp = cot.g.log_probs(want).transpose(0, 1)  # [L, B, V]
    torch.testing.assert_close(log_probs, lp, rtol=TOL, atol=TOL)
    torch.testing.assert_close(probs, lp.exp(), rtol=TOL, atol=1e-7)


def test_sampler_restores_the_mode():
    cot = make_cot()
    for training in (True, False):
        cot.g.train(training)
        g_conditionals(cot, 3, torch.Generator().manual_seed(0))
        assert cot.g.training == training


def test_sampler_without_buffers_is_model_sample():
    cot = trained_cot()
    r1, r2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(sample_with_probs(cot.g, 7, r1), cot.g.sample(7, r2))


# -- the generator step --------------------------------------------------------------------------------------
def test_generator_loss_and_gradients_match_reference():
    cot = trained_cot()
    s, probs, log_probs = g_conditionals(cot, B, torch.Generator().manual_seed(1))
    cot.g.zero_grad(set_to_none=True)
    want_loss = ref_generator_grads(cot.g, cot.m, s)
    want = grads(cot.g)
    cot.g.zero_grad(set_to_none=True)
    cot.m.zero_grad(set_to_none=True)
    cot.m.eval()
    cot.g.train()
    got_loss = generator_kl_backward(cot.g, cot.m, s, probs, log_probs)
    assert got_loss == pytest.approx(want_loss, rel=TOL, abs=TOL)
    assert_close_grads(grads(cot.g), want)
    assert all(p.grad is None for p in cot.m.parameters())  # M is a constant of the generator's objective


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_generator_gradients_do_not_depend_on_the_block_size(chunk):
    cot = trained_cot()
    s, probs, log_probs = g_conditionals(cot, B, torch.Generator().manual_seed(2))
    cot.g.zero_grad(set_to_none=True)
    want_loss = ref_generator_grads(cot.g, cot.m, s)
    want = grads(cot.g)
    cot.g.zero_grad(set_to_none=True)
    got_loss = generator_kl_backward(cot.g, cot.m, s, probs, log_probs, chunk=chunk)
    assert got_loss == pytest.approx(want_loss, rel=TOL, abs=TOL)
    assert_close_grads(grads(cot.g), want)


def test_generator_gradients_accumulate_like_backward():
    cot = trained_cot()
    s, probs, log_probs = g_conditionals(cot, B, torch.Generator().manual_seed(3))
    cot.g.zero_grad(set_to_none=True)
    ref_generator_grads(cot.g, cot.m, s)
    ref_generator_grads(cot.g, cot.m, s)
    want = grads(cot.g)
    cot.g.zero_grad(set_to_none=True)
    generator_kl_backward(cot.g, cot.m, s, probs, log_probs)
    generator_kl_backward(cot.g, cot.m, s, probs, log_probs)
    assert_close_grads(grads(cot.g), want)


# -- the mediator step ---------------------------------------------------------------------------------------
def mediator_case(cot, real, fake, chunk=64):
    cot.m.zero_grad(set_to_none=True)
    torch.manual_seed(11)
    want_loss, want_bnll = ref_mediator_grads(cot.m, real, fake)
    want, want_state = grads(cot.m), torch.get_rng_state()
    cot.m.zero_grad(set_to_none=True)
    torch.manual_seed(11)
    cot.m.train()
    got_loss, got_bnll = mediator_nll_backward(cot.m, real, fake, cot.m.dropout, chunk=chunk)
    assert got_loss == pytest.approx(want_loss, rel=TOL, abs=TOL)
    assert got_bnll == pytest.approx(want_bnll, rel=TOL, abs=TOL)
    assert_close_grads(grads(cot.m), want)
    assert torch.equal(torch.get_rng_state(), want_state)  # the same dropout draws


@pytest.mark.parametrize("chunk", [1, 5, 64, 10_000])
def test_mediator_loss_bnll_and_gradients_match_reference(chunk):
    cot = trained_cot()
    real = _Suite.train[:B]
    fake = cot.g.sample(B, torch.Generator().manual_seed(4))
    mediator_case(cot, real, fake, chunk)


def test_mediator_with_unequal_batches_weighs_each_one_half():
    cot = trained_cot()
    mediator_case(cot, _Suite.train[:5], cot.g.sample(3, torch.Generator().manual_seed(4)))


def test_mediator_without_dropout():
    cot = trained_cot(m_dropout=0.0)
    mediator_case(cot, _Suite.train[:B], cot.g.sample(B, torch.Generator().manual_seed(4)))


def test_mediator_nll_of_a_token_with_underflowing_probability():
    """A target whose probability underflows float32 (ln M < −104): the exact log-softmax, not −inf."""
    cot = trained_cot(m_dropout=0.0)
    with torch.no_grad():
        cot.m.output.bias[7] = -150.0
    real = _Suite.train[:B].clone()
    real[0, 3] = 7
    fake = cot.g.sample(B, torch.Generator().manual_seed(4))
    mediator_case(cot, real, fake)


# -- whole iterations ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [{}, {"m_steps": 2, "shuffle": True}, {"g_clip": 0.05}],
    ids=["published", "m_steps2-shuffle", "g_clip"],
)
def test_train_steps_match_reference_iterations(overrides):
    ref, ours = make_cot(3, **overrides), make_cot(3, **overrides)
    torch.manual_seed(3)
    want = [ref_train_step(ref) for _ in range(8)]
    torch.manual_seed(3)
    got = [ours.train_step(step) for step in range(1, 9)]
    for w, g in zip(want, got):
        assert g.keys() == w.keys()
        for k in w:
            assert g[k] == pytest.approx(w[k], rel=TOL, abs=TOL), k
    for name, module in ours.modules().items():
        for (k, p), q in zip(module.named_parameters(), ref.modules()[name].parameters()):
            torch.testing.assert_close(p, q, rtol=TOL, atol=TOL, msg=f"{name}.{k}")
    assert torch.equal(ours.rng.get_state(), ref.rng.get_state())  # sampling drew the same uniforms
    assert ours.batches.state_dict()["pointer"] == ref.batches.state_dict()["pointer"]
    assert torch.equal(ours.batches.state_dict()["order"], ref.batches.state_dict()["order"])


def test_train_step_samples_the_same_sequences_as_before():
    """Same parameters to 1e-5 is not enough for the same trajectory: the tokens drawn must be the same."""
    ref, ours = make_cot(4), make_cot(4)
    torch.manual_seed(4)  # the same dropout masks on both sides: one run, then the other from the same seed
    for _ in range(5):
        ref_train_step(ref)
    torch.manual_seed(4)
    for step in range(1, 6):
        ours.train_step(step)
    r1, r2 = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    assert torch.equal(ours.g.sample(64, r1), ref.g.sample(64, r2))


# -- precision -----------------------------------------------------------------------------------------------
def test_precision_setting_is_declared_and_validated():
    assert CoT.defaults["precision"] == "fp32"
    assert "precision" in CoT.help
    assert set(CoT.specs["precision"].choices) == {"fp32", "bf16"}
    settings = {**ENGINE_DEFAULTS, **CoT.defaults, "precision": "fp16"}
    with pytest.raises(TextbenchError, match="precision"):
        validate_settings(settings)


def test_bf16_iteration_stays_close_to_fp32():
    ref, ours = make_cot(5), make_cot(5, precision="bf16")
    torch.manual_seed(5)
    want = ref.train_step(1)
    torch.manual_seed(5)
    got = ours.train_step(1)
    assert got["m_loss"] == pytest.approx(want["m_loss"], rel=1e-2)
    assert got["bnll"] == pytest.approx(want["bnll"], rel=1e-2)
    assert got["g_loss"] == pytest.approx(want["g_loss"], rel=0.2, abs=1e-3)
    for p, q in zip(ours.g.parameters(), ref.g.parameters()):
        assert torch.isfinite(p).all()
        assert (p - q).abs().max() < 1e-2  # one Adam step of lr 1e-3 apart at most
    for p in ours.m.parameters():
        assert p.dtype == torch.float32  # parameters and optimizer state stay fp32
    for state in ours.m_opt.state.values():
        assert state["exp_avg"].dtype == torch.float32


def test_bf16_precision_keeps_evaluation_in_fp32():
    cot = make_cot(6, precision="bf16")
    x = _Suite.train[:4]
    assert cot.g.token_log_probs(x).dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in cot.g.parameters())
    assert isinstance(cot.g, LSTMLM)
