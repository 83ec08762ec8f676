"""RankGAN and MaliGAN as their reference code (Texygen master, protocol §3.4-3.5; issue 11).

Each test pins one reference behaviour that textbench reproduces: RankGAN's mean-of-cosines score, its
shared (or, as an option, separate) reference highway, ranker dropout in the rewards, one reference set
per ranked batch and K rankings of x for the last position; MaliGAN's two reward forms and Texygen's
dropout-free discriminator.
"""

from __future__ import annotations

import pytest
import torch

from textbench.algorithms.maligan import mali_rewards
from textbench.algorithms.rankgan import Ranker, rank_scores
from textbench.config import validate_settings
from textbench.engine.loop import Run, build, train
from textbench.engine.rundir import is_timing_column, read_metrics
from textbench.errors import TextbenchError

SCHEDULE = {"pretrain_steps": 2, "mle_batches": 0, "d_pretrain_steps": 2, "adv_steps": 2, "steps": 6, "eval_every": 2}


def quiet(_msg):
    pass


def _settings(algo, tiny, **over):
    extra = {"rollout_num": 2} if algo == "rankgan" else {"adv_g_steps": 2}
    return {**tiny, **SCHEDULE, **extra, **over}


def _algo(algo, tiny, **over):
    run = Run(algo, "synthetic", "quick", 0, _settings(algo, tiny, **over), run_dir="unused")
    return build(algo, "synthetic", run.settings, 0)[1]


# -- RankGAN -----------------------------------------------------------------------------------------
def test_rank_score_is_the_mean_cosine_and_gamma_16_is_the_sum():
    torch.manual_seed(0)
    f, u = torch.randn(5, 7), torch.randn(16, 7)
    cos = torch.nn.functional.cosine_similarity(f[:, None, :], u[None, :, :], dim=-1)  # [5, 16]
    assert torch.allclose(rank_scores(f, u, 1.0), cos.mean(1), atol=1e-6)
    assert torch.allclose(rank_scores(f, u, 16.0), cos.sum(1), atol=1e-5)  # the older revision's score


def test_ranker_shares_the_highway_by_default(tiny):
    a = _algo("rankgan", tiny)
    assert isinstance(a.d, Ranker) and a.d.ref_highway is None
    assert not any(k.startswith("ref_highway") for k in a.d.state_dict())
    x, ref = a.suite.train[:6], a.suite.train[6:10]
    with torch.no_grad():
        fx, fr = a.d.rank_features(x, ref, dropout=False)
        fr_as_ranked, _ = a.d.rank_features(ref, x, dropout=False)
    assert torch.allclose(fr, fr_as_ranked, atol=1e-6)  # references and ranked sentences: one feature map


def test_separate_reference_highway_has_its_own_trained_parameters(tiny):
    a = _algo("rankgan", tiny, rank_ref_highway="separate")
    hw, ref_hw = a.d.highway, a.d.ref_highway
    assert ref_hw is not None and {f"ref_highway.{k}" for k in ref_hw.state_dict()} <= set(a.d.state_dict())
    assert not torch.equal(hw.lin.weight, ref_hw.lin.weight)  # separately initialised
    limit = (6.0 / (2 * a.d.feature_dim)) ** 0.5
    assert ref_hw.lin.weight.abs().max() <= limit and ref_hw.gate.weight.abs().max() <= limit  # Glorot-uniform
    assert {id(p) for p in ref_hw.parameters()} <= {id(p) for g in a.d_opt.param_groups for p in g["params"]}
    x = a.suite.train[:32]
    labels = torch.cat([torch.ones(16, dtype=torch.long), torch.zeros(16, dtype=torch.long)])
    x = torch.cat([x[:16], a.g.sample(16, a.rng)])
    a.d.train()
    a.d_opt.zero_grad()
    a.d_batch_loss(x, labels).backward()
    for p in list(ref_hw.parameters()) + list(hw.parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0
    before = [p.detach().clone() for p in ref_hw.parameters()]
    a.d_opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, ref_hw.parameters()))
    with torch.no_grad():  # the two paths now map one sentence to different features
        fx, fr = a.d.rank_features(x[:4], x[:4], dropout=False)
    assert not torch.allclose(fx, fr)


def test_rank_rewards_use_the_ranker_dropout(tiny):
    a = _algo("rankgan", tiny)
    assert a.settings["rank_reward_dropout"] is True and a.d.dropout == 0.25
    x = a.g.sample(16, torch.Generator().manual_seed(0))

    def rewards(torch_seed):
        state = a.rng.get_state()  # the same completions and reference sets...
        torch.manual_seed(torch_seed)  # ...and other dropout masks (torch's global RNG, checkpointed)
        r = a.rewards(x)
        a.rng.set_state(state)
        return r

    r1, r2 = rewards(1), rewards(2)
    assert not torch.allclose(r1, r2)
    assert torch.equal(r1, rewards(1))
    assert torch.allclose(r1.sum(0), torch.ones(x.shape[1]), atol=1e-5)
    assert not a.d.training  # dropout in the rewards does not leave the ranker in training mode
    b = _algo("rankgan", tiny, rank_reward_dropout=False)
    b_state = b.rng.get_state()
    torch.manual_seed(1)
    q1 = b.rewards(x)
    b.rng.set_state(b_state)
    torch.manual_seed(2)
    assert torch.equal(q1, b.rewards(x))


def test_rank_rewards_fresh_reference_set_per_batch_and_k_rankings_of_x(tiny):
    a = _algo("rankgan", tiny, rank_reward_dropout=False, rollout_num=3)
    drawn = []
    orig = a.references

    def spy(sets=None):
        refs = orig(sets)
        drawn.append(refs)
        return refs

    a.references = spy
    x = a.g.sample(16, torch.Generator().manual_seed(0))
    k, length = 3, x.shape[1]
    r = a.rewards(x)
    refs = torch.cat(drawn)  # [L*K, |U|, L]: one set per ranked batch, rollout batches first, then x K times
    assert refs.shape == (length * k, 16, length)
    assert len({tuple(u.flatten().tolist()) for u in refs}) > length * k // 2  # fresh draws, not one shared set
    with torch.no_grad():
        want = torch.stack([
            torch.softmax(rank_scores(*a.d.rank_features(x, u, dropout=False), a.settings["rank_gamma"]), 0)
            for u in refs[-k:]
        ]).mean(0)
    assert torch.allclose(r[:, -1], want, atol=1e-6)


@pytest.mark.parametrize("over", [{}, {"rank_ref_highway": "separate"}])
def test_rankgan_variants_run_and_resume_exactly(tiny, tmp_path, over):
    s = _settings("rankgan", tiny, **over)
    full = Run("rankgan", "synthetic", "quick", 0, s, run_dir=tmp_path / "full")
    assert train(full, progress=False, log=quiet)["complete"]
    part = Run("rankgan", "synthetic", "quick", 0, s, run_dir=tmp_path / "part")
    train(part, progress=False, stop_at_step=5, log=quiet)
    train(part, resume=True, progress=False, log=quiet)

    def strip(rows):
        return [{k: v for k, v in row.items() if not is_timing_column(k)} for row in rows]

    assert strip(read_metrics(tmp_path / "part" / "metrics.csv")) == strip(read_metrics(tmp_path / "full" / "metrics.csv"))


# -- MaliGAN -----------------------------------------------------------------------------------------
def _logits(d):
    return torch.stack([torch.zeros_like(d), torch.log(d / (1 - d))], dim=1)  # softmax(...)[:, 1] = d


def test_mali_rewards_both_forms_hand_checked():
    d = torch.tensor([0.5, 0.75, 0.8])
    tex = mali_rewards(_logits(d))  # default: Texygen's D/sum(D) - 1/B
    assert torch.allclose(tex, torch.tensor([0.5, 0.75, 0.8]) / 2.05 - 1 / 3, atol=1e-6)
    paper = mali_rewards(_logits(d), "paper")  # r = D/(1-D) = 1, 3, 4
    assert torch.allclose(paper, torch.tensor([1.0, 3.0, 4.0]) / 8.0 - 1 / 3, atol=1e-6)
    assert not torch.allclose(tex, paper)
    for r in (tex, paper):
        assert abs(r.sum().item()) < 1e-6
    tiny_d = mali_rewards(torch.tensor([[0.0, -120.0], [0.0, -121.0]]))  # D underflows in float32: still finite
    assert torch.isfinite(tiny_d).all() and abs(tiny_d.sum().item()) < 1e-6 and tiny_d[0] > tiny_d[1]
    with pytest.raises(TextbenchError):
        mali_rewards(_logits(d), "median")


def test_maligan_defaults_are_texygen(tiny):
    a = _algo("maligan", tiny)
    assert a.settings["mali_reward"] == "texygen" and a.settings["d_dropout"] == 0.0 and a.d.dropout == 0.0
    x = a.g.sample(16, torch.Generator().manual_seed(0))
    a.d.train()
    with torch.no_grad():
        assert torch.equal(a.d(x), a.d(x))  # no dropout in D's updates either
        d = a.d.eval().prob_real(x)
    r = a.rewards(x)
    assert torch.allclose(r, (d / d.sum() - 1 / 16).unsqueeze(1).expand_as(r), atol=1e-6)
    p = _algo("maligan", tiny, mali_reward="paper", d_dropout=0.25)  # textbench's earlier MaliGAN
    assert p.d.dropout == 0.25
    with torch.no_grad():
        dp = p.d.eval().prob_real(x)
    ratio = dp / (1 - dp)
    assert torch.allclose(p.rewards(x)[:, 0], ratio / ratio.sum() - 1 / 16, atol=1e-6)


def test_new_settings_are_validated(tiny):
    for algo, key, bad in [("maligan", "mali_reward", "d"), ("rankgan", "rank_ref_highway", "both"), ("rankgan", "rank_reward_dropout", 0.5)]:
        settings = Run(algo, "synthetic", "quick", 0, _settings(algo, tiny), run_dir="unused").settings
        with pytest.raises(TextbenchError, match=f"setting {key}="):
            validate_settings({**settings, key: bad})
