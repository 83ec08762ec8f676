"""SeqGAN, RankGAN, MaliGAN: rewards on hand-checkable inputs, end-to-end runs, exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from textbench.algorithms.maligan import mali_rewards
from textbench.algorithms.rankgan import rank_scores, ranker_loss
from textbench.engine.loop import Run, build, train
from textbench.engine.rundir import is_timing_column, read_metrics

SCHEDULE = {"pretrain_steps": 3, "mle_batches": 0, "d_pretrain_steps": 2, "adv_steps": 3, "steps": 8, "eval_every": 2}
ROLLOUT = {"rollout_num": 2}


def quiet(_msg):
    pass


def settings_for(algo, tiny):
    return {**tiny, **SCHEDULE, **(ROLLOUT if algo in ("seqgan", "rankgan") else {}), **({"adv_g_steps": 3} if algo == "maligan" else {})}


# -- rewards on tiny inputs ------------------------------------------------------------------------
def test_rank_scores_hand_checked():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    refs = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    s = rank_scores(feats, refs, gamma=1.0)
    assert torch.allclose(s, torch.tensor([1.0, 0.0, math.sqrt(0.5)]))  # the mean of the cosines (Texygen master)
    assert torch.allclose(rank_scores(feats, refs, gamma=0.5), 0.5 * s)
    refs2 = torch.tensor([[1.0, 0.0], [0.0, 3.0]])  # mean of normalised refs (0.5, 0.5): not divided by its norm
    assert torch.allclose(rank_scores(feats, refs2, gamma=1.0), torch.tensor([0.5, 0.5, math.sqrt(0.5)]))
    batched = rank_scores(torch.stack([feats, feats]), torch.stack([refs, refs2]), gamma=1.0)  # one U per batch
    assert torch.allclose(batched, torch.stack([s, torch.tensor([0.5, 0.5, math.sqrt(0.5)])]))


def test_ranker_loss_hand_checked():
    scores = torch.tensor([1.0, 0.0, 2.0, 0.5])
    labels = torch.tensor([1, 0, 1, 0])
    lp = torch.log_softmax(scores, 0)
    want = (-(lp[0] + lp[2]) / 2 + (lp[1] + lp[3]) / 2) / 16
    assert ranker_loss(scores, labels, 16).item() == pytest.approx(want.item(), rel=1e-6)
    only_real = ranker_loss(scores, torch.ones(4, dtype=torch.long), 4)
    assert only_real.item() == pytest.approx((-lp.mean() / 4).item(), rel=1e-6)


def test_mali_rewards_hand_checked():
    d = torch.tensor([0.5, 0.75, 0.8])
    logits = torch.stack([torch.zeros(3), torch.log(d / (1 - d))], dim=1)  # softmax(...)[1] = d
    r = mali_rewards(logits, "paper")
    ratio = d / (1 - d)  # 1, 3, 4
    assert torch.allclose(r, ratio / ratio.sum() - 1 / 3, atol=1e-6)
    assert r.sum().abs().item() < 1e-6
    huge = mali_rewards(torch.tensor([[-50.0, 50.0], [0.0, 0.0]]), "paper")  # D rounds to 1: no overflow
    assert torch.isfinite(huge).all() and huge.sum().abs().item() < 1e-6


def _algo(algo, tiny, **over):
    run = Run(algo, "synthetic", "quick", 0, {**settings_for(algo, tiny), **over}, run_dir="unused")
    return build(algo, "synthetic", run.settings, 0)[1]


def test_seqgan_reward_last_position_is_d(tiny):
    a = _algo("seqgan", tiny)
    x = a.g.sample(8, torch.Generator().manual_seed(0))
    r = a.rewards(x)
    assert r.shape == x.shape
    assert torch.allclose(r[:, -1], a.d.eval().prob_real(x).detach(), atol=1e-6)
    assert torch.all((r > 0) & (r < 1))


def test_rank_reward_follows_score_order(tiny):
    a = _algo("rankgan", tiny, rank_reward_dropout=False)
    x = a.g.sample(32, torch.Generator().manual_seed(0))
    fixed = a.references()  # one reference set for every ranked batch: the last position is then one softmax
    a.references = lambda sets=None: fixed if sets is None else fixed.expand(sets, *fixed.shape)
    r = a.rewards(x)
    with torch.no_grad():
        f, fr = a.d.rank_features(x, fixed, dropout=False)
        scores = rank_scores(f, fr, a.settings["rank_gamma"])
    assert torch.allclose(r[:, -1], torch.softmax(scores, 0), atol=1e-6)
    assert torch.equal(torch.argsort(r[:, -1]), torch.argsort(scores))
    assert torch.allclose(r.sum(0), torch.ones(x.shape[1]), atol=1e-5)  # each rollout batch's rewards sum to 1


def test_maligan_rewards_broadcast_and_sum_to_zero(tiny):
    a = _algo("maligan", tiny)
    x = a.g.sample(16, torch.Generator().manual_seed(0))
    r = a.rewards(x)
    assert torch.allclose(r, r[:, :1].expand_as(r))
    assert r[:, 0].sum().abs().item() < 1e-6


# -- end to end --------------------------------------------------------------------------------------
def _strip(rows):
    return [{k: v for k, v in row.items() if not is_timing_column(k)} for row in rows]


@pytest.mark.parametrize("algo", ["seqgan", "rankgan", "maligan"])
def test_run_improves_and_resumes_exactly(algo, tiny, tmp_path):
    s = settings_for(algo, tiny)
    full = Run(algo, "synthetic", "quick", 0, s, run_dir=tmp_path / "full")
    summary = train(full, progress=False, log=quiet)
    rows = read_metrics(tmp_path / "full" / "metrics.csv")
    assert summary["complete"]
    assert rows[-1]["nll_oracle"] < rows[0]["nll_oracle"]
    assert {"mle_loss", "d_loss", "g_loss"} <= set(rows[-1]) | set(rows[-2]) | set(rows[1])
    # killed inside the adversarial phase (step 7 is not a checkpoint: resume redoes it from step 6)
    part = Run(algo, "synthetic", "quick", 0, s, run_dir=tmp_path / "part")
    train(part, progress=False, stop_at_step=7, log=quiet)
    train(part, resume=True, progress=False, log=quiet)
    assert _strip(read_metrics(tmp_path / "part" / "metrics.csv")) == _strip(rows)
