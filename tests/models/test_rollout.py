"""Batched Monte-Carlo rollout: closed forms for deterministic rewards, the naive reference, distribution."""

from __future__ import annotations

import pytest
import torch

from textbench.models.lstm import LSTMLM
from textbench.models.rollout import (
    draw_uniforms,
    rollout_completions,
    rollout_rewards,
    rollout_rewards_naive,
    sequence_reward,
)

V, L, B, K = 7, 6, 5, 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small ops on a shared 2-core machine: one intra-op thread avoids OpenMP oversubscription."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def policy():
    return LSTMLM(V, 8, 8, L).init_normal_(0.5, torch.Generator().manual_seed(0))


@pytest.fixture
def x(policy):
    return policy.sample(B, torch.Generator().manual_seed(1))


def test_completions_keep_prefixes_and_shape(policy, x):
    y = rollout_completions(policy, x, K, torch.Generator().manual_seed(2))
    assert y.shape == (L - 1, K, B, L)
    for t in range(1, L):
        assert torch.equal(y[t - 1, :, :, :t], x[:, :t].expand(K, B, t))
    assert int(y.min()) >= 0 and int(y.max()) < V


def test_constant_reward(policy, x):
    r = rollout_rewards(policy, x, K, sequence_reward(lambda y: torch.full((y.shape[0],), 0.3)), torch.Generator().manual_seed(0))
    assert r.shape == (B, L)
    assert torch.allclose(r, torch.full((B, L), 0.3))


def test_first_token_reward_is_exact(policy, x):
    """D depends only on y_1, which every prefix (t >= 1) fixes: R[b, t] = f(x_b1) for all t."""
    f = torch.linspace(0.0, 1.0, V)
    r = rollout_rewards(policy, x, K, sequence_reward(lambda y: f[y[:, 0]]), torch.Generator().manual_seed(0))
    assert torch.allclose(r, f[x[:, 0]].unsqueeze(1).expand(B, L))


def test_prefix_token_reward(policy, x):
    """D(y) = f(y_3): R[b, t] = f(x_b3) for t >= 3 exactly; for t < 3 it is an average over completions."""
    f = torch.arange(V, dtype=torch.float32)
    r = rollout_rewards(policy, x, 4, sequence_reward(lambda y: f[y[:, 2]]), torch.Generator().manual_seed(0))
    assert torch.allclose(r[:, 2:], f[x[:, 2]].unsqueeze(1).expand(B, L - 2))
    assert torch.all((r[:, :2] >= 0) & (r[:, :2] <= V - 1))


def test_last_position_expectation(policy, x):
    """R[b, L-1] (prefix x_{1..L-1}) estimates E_{v ~ pi(.|x_<L)} f(v) = sum_v pi(v|x_<L) f(v)."""
    f = torch.arange(V, dtype=torch.float32) / V
    k = 4000
    r = rollout_rewards(policy, x, k, sequence_reward(lambda y: f[y[:, -1]]), torch.Generator().manual_seed(3))
    probs = policy.log_probs(x)[:, -1].exp().detach()  # pi(. | x_<L) teacher-forced
    exact = probs @ f
    sd = torch.sqrt(probs @ f**2 - exact**2)
    assert torch.all((r[:, L - 2] - exact).abs() <= 5 * sd / k**0.5 + 1e-6)
    assert torch.allclose(r[:, L - 1], f[x[:, -1]])


def test_batched_equals_naive_same_uniforms(policy, x):
    """Same uniforms -> the same completions -> identical rewards (a reward using every position)."""
    weights = torch.arange(1, L + 1, dtype=torch.float32)

    def score(y):
        return ((y.float() * weights).sum(1) % 11) / 11

    fn = sequence_reward(score)
    r1 = rollout_rewards(policy, x, K, fn, torch.Generator().manual_seed(5))
    r2 = rollout_rewards_naive(policy, x, K, fn, torch.Generator().manual_seed(5))
    assert torch.allclose(r1, r2, atol=1e-6)
    u = draw_uniforms(x, K, torch.Generator().manual_seed(6))
    r3 = rollout_rewards(policy, x, K, fn, uniforms=u, chunk_rows=7)  # tiny chunks: same numbers
    r4 = rollout_rewards_naive(policy, x, K, fn, uniforms=u)
    assert torch.allclose(r3, r4, atol=1e-6)


def test_group_reward_sees_batches_of_b(policy, x):
    """reward_fn receives [G, B, L] batches; a batch-relative reward (softmax over the batch) sums to 1."""
    seen = []

    def fn(y):
        seen.append(y.shape)
        return torch.softmax(y[..., 0].float(), dim=1)

    r = rollout_rewards(policy, x, K, fn, torch.Generator().manual_seed(0), reward_batch=2 * B)
    assert all(s[1:] == (B, L) and s[0] <= 2 for s in seen)
    assert torch.allclose(r.sum(0), torch.ones(L))
    r2 = rollout_rewards_naive(policy, x, K, fn, torch.Generator().manual_seed(0))
    assert torch.allclose(r, r2, atol=1e-6)


def test_completion_distribution_matches_policy(policy):
    """The token after prefix t=1 is distributed as pi(.|x_1): chi-square-like check on many rollouts."""
    x = policy.sample(1, torch.Generator().manual_seed(9))
    k = 6000
    y = rollout_completions(policy, x, k, torch.Generator().manual_seed(10))
    counts = torch.bincount(y[0, :, 0, 1], minlength=V).float()
    probs = policy.log_probs(x)[0, 1].exp().detach()
    expected = probs * k
    assert torch.all((counts - expected).abs() <= 5 * torch.sqrt(expected * (1 - probs)) + 1)


def test_policy_mode_restored_and_errors(policy, x):
    policy.train()
    rollout_completions(policy, x, 2, torch.Generator().manual_seed(0))
    assert policy.training
    with pytest.raises(ValueError):
        rollout_completions(policy, x, 0, torch.Generator())
    with pytest.raises(ValueError):
        rollout_completions(policy, x, 2, uniforms=torch.rand(1, 2, 3, 4))


@pytest.mark.parametrize("vocab,scale", [(7, 1.0), (1000, 3.0), (37, 40.0)])
def test_fused_sampler_matches_reference(vocab, scale):
    """Same uniforms -> the same tokens as softmax+cumsum+search (also with logits far below the bound)."""
    from textbench.models.lstm import inverse_cdf
    from textbench.models.rollout import FusedSampler

    gen = torch.Generator().manual_seed(vocab)
    out = torch.nn.Linear(8, vocab)
    with torch.no_grad():
        out.weight.copy_(torch.randn(out.weight.shape, generator=gen) * scale)
        out.bias.copy_(torch.randn(out.bias.shape, generator=gen) * scale)
    h = torch.tanh(torch.randn(300, 8, generator=gen) * 2)
    u = torch.rand(300, 3, generator=gen)
    with torch.no_grad():
        fused = FusedSampler(out)(h, u)
        ref = inverse_cdf(out(h), u)
    assert fused.shape == (300, 3)
    assert (fused == ref).float().mean().item() >= 0.995  # identical up to float rounding at CDF steps
    assert int(fused.max()) < vocab


def test_fused_sampler_without_onednn_matches_reference():
    """The fallback (torch's addmm + exp) draws the same tokens as the oneDNN path, up to rounding."""
    from textbench.models.rollout import FusedSampler

    gen = torch.Generator().manual_seed(0)
    out = torch.nn.Linear(8, 500)
    with torch.no_grad():
        out.weight.copy_(torch.randn(out.weight.shape, generator=gen) * 2)
        out.bias.copy_(torch.randn(out.bias.shape, generator=gen))
    h = torch.tanh(torch.randn(400, 8, generator=gen))
    u = torch.rand(400, 2, generator=gen)
    with torch.no_grad():
        fast = FusedSampler(out)(h, u)
        torch._C._set_mkldnn_enabled(False)
        try:
            plain = FusedSampler(out)(h, u)
        finally:
            torch._C._set_mkldnn_enabled(True)
    assert (fast == plain).float().mean().item() >= 0.995
