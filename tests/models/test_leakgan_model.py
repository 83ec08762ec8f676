"""LeakGAN generator: prefix features, exact likelihood (enumeration and sampling), rollouts, no training
while evaluating, long sequences."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from textbench.errors import TextbenchError
from textbench.models.leakgan import LeakDiscriminator, LeakGANGenerator


def make(vocab=3, length=5, step=2, goal=4, filters=(2, 3), nums=(5, 6), seed=0, std=0.5) -> LeakGANGenerator:
    g = torch.Generator().manual_seed(seed)
    d = LeakDiscriminator(vocab, 8, list(filters), list(nums), 0.25, 0.2, generator=g)
    return LeakGANGenerator(vocab, length, d, emb_dim=6, hidden_dim=7, goal_size=goal, step_size=step).init_texygen_(std, g).eval()


def ids(n, vocab, length, seed=1):
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def test_shapes_and_attributes():
    m = make(vocab=11, length=9, step=4)
    x = m.sample(7, torch.Generator().manual_seed(0))
    assert x.shape == (7, 9) and x.dtype == torch.long and int(x.min()) >= 0 and int(x.max()) < 11
    lp = m.token_log_probs(x)
    assert lp.shape == (7, 9) and bool((lp <= 0).all())
    out = m.teacher_forced(x)
    assert out["features"].shape == (7, 10, 11) and out["goals"].shape == (7, 3, 11) and out["worker_h"].shape == (7, 9, 7)
    assert m.vocab_size == 11 and m.seq_len == 9 and m.num_segments == 3
    assert isinstance(m, torch.nn.Module) and not m.training
    assert m.sample(0, torch.Generator()).shape == (0, 9)


def test_prefix_features_are_features_of_padded_prefixes():
    """F_D(x_<t) = D.features of x with positions ≥ t replaced by the padding token, for every t; the
    sampler's incremental computation gives the same vectors."""
    m = make(vocab=6, length=7, filters=(1, 2, 3), nums=(3, 4, 5))
    d = m.discriminator
    x = ids(9, 6, 7)
    pf = d.prefix_features(x)
    assert pf.shape == (9, 8, 12)
    for t in range(8):
        padded = x.clone()
        padded[:, t:] = d.pad_id
        torch.testing.assert_close(pf[:, t], d.features(padded), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(pf[:, 7], d.features(x), atol=1e-6, rtol=1e-5)
    state = d.prefix_state(9, 7)
    for t in range(8):
        torch.testing.assert_close(d.prefix_step(state, t), pf[:, t], atol=1e-6, rtol=1e-5)
        if t < 7:
            d.prefix_push(state, t, x[:, t])


def test_features_at_step_t_ignore_the_future():
    m = make(vocab=5, length=6)
    x = ids(4, 5, 6)
    y = x.clone()
    y[:, 3:] = (y[:, 3:] + 1) % 5
    fx, fy = m.discriminator.prefix_features(x), m.discriminator.prefix_features(y)
    torch.testing.assert_close(fx[:, :4], fy[:, :4])
    lx, ly = m.token_log_probs(x), m.token_log_probs(y)
    torch.testing.assert_close(lx[:, :3], ly[:, :3], atol=1e-6, rtol=1e-5)  # targets 0..2 are unchanged


@pytest.mark.parametrize("length,step", [(5, 2), (4, 4), (6, 4)])
def test_probabilities_of_all_sequences_sum_to_one(length, step):
    m = make(vocab=3, length=length, step=step)
    every = torch.tensor(list(itertools.product(range(3), repeat=length)))
    with torch.no_grad():
        total = m.token_log_probs(every).double().sum(1).exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-5)


def test_sampler_log_probs_equal_token_log_probs():
    m = make(vocab=13, length=10, step=4, std=0.3)
    x, lp = m.sample_with_log_probs(500, torch.Generator().manual_seed(3))
    torch.testing.assert_close(m.token_log_probs(x), lp, atol=2e-5, rtol=1e-4)


def test_sampled_frequencies_match_probabilities():
    """20,000 draws over the 27 sequences of a V = 3, L = 3 model: empirical frequencies agree with
    exp(Σ_t ln G(x_t | x_<t)) within 5 binomial standard errors, and a chi-square statistic is ordinary."""
    m = make(vocab=3, length=3, step=2, std=1.0, seed=4)
    n = 20_000
    x = m.sample(n, torch.Generator().manual_seed(5), batch_size=4096)
    every = torch.tensor(list(itertools.product(range(3), repeat=3)))
    with torch.no_grad():
        p = m.token_log_probs(every).double().sum(1).exp()
    codes = (x[:, 0] * 9 + x[:, 1] * 3 + x[:, 2]).bincount(minlength=27).double()
    freq = codes / n
    se = (p * (1 - p) / n).sqrt()
    assert bool(((freq - p).abs() <= 5 * se + 1e-4).all())
    chi2 = float(((codes - n * p) ** 2 / (n * p)).sum())
    assert chi2 < 60  # 26 degrees of freedom: P(χ² > 60) ≈ 2e-4


def test_temperature_is_only_a_sampling_parameter():
    m = make(vocab=7, length=6, std=1.0)
    a = m.sample(300, torch.Generator().manual_seed(0))
    b = m.sample(300, torch.Generator().manual_seed(0), temperature=1.0)
    assert torch.equal(a, b)
    cold = m.sample(300, torch.Generator().manual_seed(0), temperature=0.05)
    # a near-greedy sampler concentrates on far fewer distinct sequences
    assert len({tuple(r) for r in cold.tolist()}) < len({tuple(r) for r in a.tolist()})
    with pytest.raises(TextbenchError):
        m.sample(3, torch.Generator(), temperature=0.0)


def test_batched_sampling_is_deterministic_and_chunk_independent_in_distribution():
    m = make(vocab=5, length=6)
    a = m.sample(100, torch.Generator().manual_seed(9))
    b = m.sample(100, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    assert m.sample(100, torch.Generator().manual_seed(9), batch_size=30).shape == (100, 6)


def test_evaluation_does_not_train():
    m = make(vocab=9, length=6)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    x = m.sample(50, torch.Generator().manual_seed(0))
    m.token_log_probs(x)
    assert m.training  # sample() leaves the mode alone
    m.eval()
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_rollout_keeps_prefixes_and_order():
    m = make(vocab=6, length=8, step=2)
    x = ids(5, 6, 8)
    out = m.rollout(x, [2, 4, 6], 3, torch.Generator().manual_seed(0)).view(3, 3, 5, 8)
    for i, keep in enumerate([2, 4, 6]):
        assert torch.equal(out[i, :, :, :keep], x[:, :keep].expand(3, 5, keep))
    assert not torch.equal(out[0, 0], out[0, 1])  # independent completions
    with pytest.raises(ValueError):
        m.rollout(x, [4, 2], 1, torch.Generator())


def test_goal_and_worker_gradients_are_separate():
    m = make(vocab=6, length=8, step=2)
    x = ids(4, 6, 8)
    out = m.teacher_forced(x)
    m.log_probs_from(out, x, detach_goals=True).sum().backward()
    assert all(p.grad is None for p in m.manager_parameters())
    assert all(p.grad is not None for p in m.worker_parameters())
    assert all(p.grad is None for p in m.discriminator.parameters())  # features are constants for G


def test_goals_are_sums_of_previous_segment():
    m = make(vocab=6, length=7, step=3)  # segments [0,3) [3,6) [6,7)
    x = ids(2, 6, 7)
    out = m.teacher_forced(x)
    f = out["features"]
    hm, _ = m.manager(f[:, :7])
    g = torch.nn.functional.normalize(m.manager_out(hm), dim=-1)
    torch.testing.assert_close(out["goals"][:, 0], m.goal_init.expand(2, -1))
    torch.testing.assert_close(out["goals"][:, 1], g[:, 0:3].sum(1))
    torch.testing.assert_close(out["goals"][:, 2], g[:, 3:6].sum(1))


def test_long_sequences():
    m = make(vocab=4, length=51, step=4, std=0.3)
    x, lp = m.sample_with_log_probs(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 51) and m.num_segments == 13
    torch.testing.assert_close(m.token_log_probs(x), lp, atol=5e-5, rtol=1e-4)
    assert math.isfinite(float(lp.sum()))


def test_too_short_for_the_filters_is_a_clear_error():
    with pytest.raises(TextbenchError, match="at least 3"):
        make(vocab=4, length=2)
