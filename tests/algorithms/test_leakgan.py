"""LeakGAN algorithm: rank rescaling, segment rewards, the published schedule, learning, resume."""

from __future__ import annotations

import math

import pytest
import torch

from textbench.algorithms.leakgan import LeakGAN, intrinsic_rewards, rank_rescale, segment_cosines
from textbench.engine.loop import Run, resolve_settings, train
from textbench.engine.rundir import is_timing_column, read_metrics
from textbench.errors import TextbenchError
from textbench.registry import ALGORITHMS

# a tiny LeakGAN (V = 50 seeded oracle, batch 32): 2 MLE steps of 3 minibatches, 2 D calls, then outer
# epochs of {2 × (G step + 1 D call), 1 MLE step, 1 step of 1 D call} = 4 steps
SMALL = {
    "d_emb": 8,
    "d_num_filters": [6, 8],
    "d_samples": 48,
    "leak_goal_size": 4,
    "pretrain_steps": 2,
    "mle_batches": 3,
    "d_pretrain_steps": 2,
    "leak_adv_epochs": 2,
    "d_steps": 1,
    "leak_inter_mle_epochs": 1,
    "leak_inter_d_calls": 1,
    "adv_steps": 8,
    "rollout_num": 2,
    "steps": 12,
}


def quiet(run, **kw):
    return train(run, progress=False, log=lambda _m: None, **kw)


def untimed(rows):
    return [{k: v for k, v in r.items() if not is_timing_column(k)} for r in rows]


# -- rank rescaling --------------------------------------------------------------------------------
def test_rank_rescale_formula():
    scores = torch.tensor([[0.1], [0.9], [0.5], [0.3]])
    ranks = torch.tensor([[4.0], [1.0], [2.0], [3.0]])  # 1 = highest score
    expected = torch.sigmoid(16.0 * (0.5 - ranks / 4))
    torch.testing.assert_close(rank_rescale(scores, 16.0), expected)


def test_rank_rescale_follows_scores_not_positions():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(64, 5, generator=g)
    r = rank_rescale(scores, 16.0)
    for j in range(5):  # same order as the scores, column by column
        order = scores[:, j].argsort()
        assert bool((r[order, j].diff() > 0).all())
    perm = torch.randperm(64, generator=g)
    torch.testing.assert_close(rank_rescale(scores[perm], 16.0), r[perm])  # equivariant under reordering
    # the values are a fixed grid: the best gets σ(δ(0.5 − 1/B)), the worst σ(−δ/2)
    assert float(r.max()) == pytest.approx(1 / (1 + math.exp(-16 * (0.5 - 1 / 64))))
    assert float(r.min()) == pytest.approx(1 / (1 + math.exp(8.0)))


def test_rank_rescale_ties_share_the_mean_rank():
    scores = torch.tensor([[0.2], [0.7], [0.7], [0.1]])
    r = rank_rescale(scores, 10.0)
    assert float(r[1, 0]) == float(r[2, 0])
    assert float(r[1, 0]) == pytest.approx(torch.sigmoid(torch.tensor(10.0 * (0.5 - 1.5 / 4))).item())
    # a sample's reward does not change when a tied duplicate is listed first or last
    swapped = scores[[2, 1, 0, 3]]
    torch.testing.assert_close(rank_rescale(swapped, 10.0), r[[2, 1, 0, 3]])


# -- segment quantities --------------------------------------------------------------------------
def test_segment_cosines_and_intrinsic_rewards_with_a_short_last_segment():
    b, length, step, f = 2, 7, 3, 5  # segments [0,3) [3,6) [6,7)
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(b, length + 1, f, generator=g)
    goals = torch.randn(b, 3, f, generator=g)
    cos = torch.nn.functional.cosine_similarity
    seg = segment_cosines(feats, goals, step)
    assert seg.shape == (b, 3)
    torch.testing.assert_close(seg[:, 1], cos(feats[:, 6] - feats[:, 3], goals[:, 1], dim=-1))
    torch.testing.assert_close(seg[:, 2], cos(feats[:, 7] - feats[:, 6], goals[:, 2], dim=-1))
    r = intrinsic_rewards(feats, goals, step)
    assert r.shape == (b, length)
    torch.testing.assert_close(r[:, 4], cos(feats[:, 5] - feats[:, 3], goals[:, 1], dim=-1))
    torch.testing.assert_close(r[:, 5], seg[:, 1])  # the segment's last token sees the whole move


# -- settings and schedule -------------------------------------------------------------------------
def test_registered_with_published_settings():
    assert "leakgan" in ALGORITHMS.names()
    s = resolve_settings("leakgan", "synthetic", "paper")
    assert (s["g_emb"], s["g_hidden"], s["leak_goal_size"], s["leak_step_size"]) == (32, 32, 16, 4)
    assert (s["d_emb"], s["d_filter_sizes"], s["d_num_filters"], s["d_lr"], s["d_l2"], s["d_dropout"]) == (64, [2, 3], [100, 200], 5e-5, 0.2, 0.25)
    assert (s["g_lr"], s["g_clip"], s["rollout_num"], s["leak_delta"]) == (0.01, 5.0, 4, 16.0)
    assert (s["pretrain_steps"], s["mle_batches"], s["d_pretrain_steps"], s["adv_steps"], s["steps"]) == (80, 0, 80, 160, 320)
    assert (s["d_samples"], s["d_epochs"], s["d_steps"], s["adv_g_steps"]) == (96, 1, 15, 1)
    quick = resolve_settings("leakgan", "synthetic", "quick")
    assert quick["steps"] == quick["pretrain_steps"] + quick["d_pretrain_steps"] + quick["adv_steps"]


def _phases(settings: dict) -> list[str]:
    algo = object.__new__(LeakGAN)  # the schedule needs the settings only
    algo.settings = settings
    algo.set_phases()
    return [algo.phase(i) for i in range(1, settings["steps"] + 1)]


def test_paper_schedule_counts():
    s = resolve_settings("leakgan", "synthetic", "paper")
    phases = _phases(s)
    assert phases[:80] == ["mle"] * 80 and phases[80:160] == ["d_pretrain"] * 80
    outer = ["adversarial"] * 10 + ["mle"] * 5 + ["d_block"]
    assert phases[160:] == outer * 10
    # G updates, D calls and MLE epochs of the whole run = Texygen's
    n_g = phases.count("adversarial") * s["adv_g_steps"]
    n_d = phases.count("d_pretrain") + phases.count("adversarial") * s["d_steps"] + phases.count("d_block") * s["leak_inter_d_calls"]
    assert (n_g, n_d, phases.count("mle")) == (100, 80 + 100 * 15 + 10 * 5, 80 + 10 * 5)


def test_too_many_steps_is_a_clear_error(tiny, tmp_path):
    tiny.update(SMALL)
    tiny["steps"] = 13
    with pytest.raises(TextbenchError, match="set steps=12"):
        quiet(Run("leakgan", "synthetic", "quick", 0, tiny, tmp_path / "r"))


# -- end to end ------------------------------------------------------------------------------------
def test_tiny_run_improves_nll_oracle(tiny, tmp_path):
    tiny.update(SMALL)
    tiny.update(pretrain_steps=6, mle_batches=8, steps=6 + 2 + 8, eval_every=100, eval_samples=256)
    quiet(Run("leakgan", "synthetic", "quick", 0, tiny, tmp_path / "r"))
    rows = read_metrics(tmp_path / "r" / "metrics.csv")
    first, last = rows[0], rows[-1]
    assert last["nll_oracle"] < first["nll_oracle"] - 0.2
    assert last["nll_test"] < first["nll_test"] - 0.2
    for key in ("mle_loss", "mle_goal_loss", "d_loss", "adv_goal_loss", "adv_worker_loss", "d_reward", "intrinsic_reward"):
        assert key in last and math.isfinite(last[key])


RESUME = {
    "oracle": "seeded", "oracle_vocab": 50, "oracle_len": 8, "n_train": 256, "n_test": 256, "batch_size": 32,
    **SMALL, "eval_every": 3, "checkpoint_every": 1, "eval_samples": 64, "final_samples": 16,
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("leakgan") / "full"
    quiet(Run("leakgan", "synthetic", "quick", 0, RESUME, d))
    return d


@pytest.mark.parametrize("stop,resumes_in", [(1, "mle"), (3, "d_pretrain"), (4, "adversarial"), (6, "mle"), (7, "d_block")])
def test_kill_and_resume_gives_the_same_metrics(uninterrupted, tmp_path, stop, resumes_in):
    assert _phases(resolve_settings("leakgan", "synthetic", "quick", RESUME))[stop] == resumes_in  # step stop + 1
    partial = quiet(Run("leakgan", "synthetic", "quick", 0, RESUME, tmp_path / "cut"), stop_at_step=stop)
    assert not partial["complete"]
    quiet(Run("leakgan", "synthetic", "quick", 0, RESUME, tmp_path / "cut"), resume=True)
    full, cut = (untimed(read_metrics(d / "metrics.csv")) for d in (uninterrupted, tmp_path / "cut"))
    assert cut == full and len(full) == 5
    assert (tmp_path / "cut" / "samples.txt").read_text() == (uninterrupted / "samples.txt").read_text()


def test_long_sequences_end_to_end(tiny, tmp_path):
    """Real-text lengths: a seeded oracle of length 41 (10 segments of 4 and one of 1) runs every phase."""
    tiny.update(SMALL)
    tiny.update(oracle_vocab=20, oracle_len=41, n_train=64, n_test=64, pretrain_steps=1, mle_batches=1, adv_steps=4, steps=7,
                eval_every=7, eval_samples=64, final_samples=8)
    summary = quiet(Run("leakgan", "synthetic", "quick", 0, tiny, tmp_path / "r"))
    assert summary["complete"]
    rows = read_metrics(tmp_path / "r" / "metrics.csv")
    assert all(math.isfinite(r["nll_oracle"]) for r in rows) and "adv_goal_loss" in rows[-1]
    assert all(len(line.split()) == 41 for line in (tmp_path / "r" / "samples.txt").read_text().splitlines())
