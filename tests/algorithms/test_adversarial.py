"""Shared GAN machinery: PG loss, phases by step, step-count check, D calls, delayed rollout copy, init_from."""

from __future__ import annotations

import math

import pytest
import torch

from textbench.algorithms.adversarial import pg_loss
from textbench.engine.loop import Run, build, train
from textbench.errors import TextbenchError
from textbench.io import safe_torch_load

SCHEDULE = {"pretrain_steps": 2, "mle_batches": 0, "d_pretrain_steps": 2, "adv_steps": 3, "steps": 7, "eval_every": 2, "rollout_num": 2}


def quiet(_msg):
    pass


def test_pg_loss_hand_checked():
    lp = torch.log(torch.tensor([[0.5, 0.25], [1.0, 0.125]]))
    r = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    want = -(math.log(0.5) * 1 + math.log(0.25) * 2 + 0.0 * 3 + math.log(0.125) * -1)
    assert pg_loss(lp, r).item() == pytest.approx(want, rel=1e-6)
    assert pg_loss(lp, r, "mean").item() == pytest.approx(want / 4, rel=1e-6)
    lp.requires_grad_(True)
    pg_loss(lp, r).backward()
    assert torch.allclose(lp.grad, -r)  # rewards are constants
    with pytest.raises(TextbenchError):
        pg_loss(lp, r, "median")
    with pytest.raises(ValueError):
        pg_loss(lp, r[:, :1])


def _build(tiny, algo="seqgan", **over):
    sched = {k: v for k, v in SCHEDULE.items() if algo in ("seqgan", "rankgan") or k != "rollout_num"}
    run = Run(algo, "synthetic", "quick", 0, {**tiny, **sched, **over}, run_dir="unused")
    return build(algo, "synthetic", run.settings, 0)[1]


def test_phases_by_step(tiny):
    a = _build(tiny)
    assert [a.phase(s) for s in range(1, 8)] == ["mle"] * 2 + ["d_pretrain"] * 2 + ["adversarial"] * 3
    logs = a.train_step(1)
    assert set(logs) == {"mle_loss"}
    assert a.batches.pointer == 0 and a.batches.epoch == 1  # mle_batches=0: one epoch per step
    a = _build(tiny, mle_batches=3)
    a.train_step(1)
    assert a.batches.pointer == 3


def test_steps_beyond_schedule_is_an_error(tiny):
    with pytest.raises(TextbenchError, match="set steps=7"):
        _build(tiny, steps=8)
    _build(tiny, steps=5)  # a truncated schedule is fine


def test_d_call_balanced_and_capped(tiny):
    a = _build(tiny, d_samples=10_000, d_epochs=2)  # capped at the 256 training sequences
    seen = []
    orig = a.d_batch_loss

    def spy(x, labels):
        seen.append((x.shape[0], int(labels.sum())))
        return orig(x, labels)

    a.d_batch_loss = spy
    loss = a.d_call()
    assert math.isfinite(loss)
    assert len(seen) == 2 * (2 * 256 // 32)
    assert sum(n for n, _ in seen) == 2 * 512 and sum(p for _, p in seen) == 2 * 256
    assert not a.d.training  # back in eval mode for rewards


def test_d_pretraining_improves_discrimination(tiny):
    a = _build(tiny, d_samples=256, d_epochs=3, d_lr=1e-3)
    a.train_step(1)  # some MLE so samples are not trivially separable... still separable enough
    first = a.d_call()
    for _ in range(4):
        last = a.d_call()
    assert last < first


def test_delayed_rollout_copy(tiny):
    a = _build(tiny, rollout_update_rate=0.5)
    assert "rollout" in a.modules()
    for s in range(1, 5):
        a.train_step(s)
    before = {k: v.clone() for k, v in a.g.state_dict().items()}
    a.train_step(5)  # first adversarial step: pi <- G, one G update, pi <- 0.5 pi + 0.5 G
    after = a.g.state_dict()
    for k, v in a.rollout_policy.state_dict().items():
        assert torch.allclose(v, 0.5 * before[k] + 0.5 * after[k], atol=1e-6), k
    b = _build(tiny)  # default: the current generator, no copy
    assert "rollout" not in b.modules() and b.policy() is b.g


def test_init_from_mle_run(tiny, tmp_path):
    src = tmp_path / "mle"
    train(Run("mle", "synthetic", "quick", 0, {**tiny, "steps": 4, "eval_every": 4}, run_dir=src), progress=False, log=quiet)
    weights = safe_torch_load(src / "generator.pt")
    with pytest.raises(TextbenchError, match="set steps=5"):
        _build(tiny, init_from=str(src))
    a = _build(tiny, init_from=str(src), steps=5)
    for k, v in a.g.state_dict().items():
        assert torch.equal(v, weights[k])
    assert (a.p_end, a.d_end) == (0, 2)
    assert [a.phase(s) for s in range(1, 6)] == ["d_pretrain"] * 2 + ["adversarial"] * 3
    # it trains end to end, and the run records where it came from
    run = Run("seqgan", "synthetic", "quick", 0, {**tiny, **SCHEDULE, "init_from": str(src), "steps": 5}, run_dir=tmp_path / "sg")
    summary = train(run, progress=False, log=quiet)
    assert summary["complete"] and summary["steps"] == 5


def test_init_from_gan_run_after_pretraining(tiny, tmp_path):
    src = tmp_path / "sg"
    run = Run("seqgan", "synthetic", "quick", 0, {**tiny, **SCHEDULE}, run_dir=src)
    train(run, progress=False, stop_at_step=4, log=quiet)  # MLE (2) + D pre-training (2), checkpointed at 4
    state = safe_torch_load(src / "checkpoints" / "last.pt")
    assert state["step"] == 4
    for algo in ("seqgan", "maligan"):  # same discriminator: both phases are covered
        a = _build(tiny, algo, init_from=str(src), steps=3)
        assert (a.p_end, a.d_end) == (0, 0)
        for k, v in a.d.state_dict().items():
            assert torch.equal(v, state["modules"]["discriminator"][k])
        for k, v in a.g.state_dict().items():
            assert torch.equal(v, state["modules"]["generator"][k])
    r = _build(tiny, "rankgan", init_from=str(src), steps=5)
    assert (r.p_end, r.d_end) == (0, 2)  # a classifier is no ranker: the ranker is pre-trained


def test_init_from_errors(tiny, tmp_path):
    with pytest.raises(TextbenchError, match="not a run directory"):
        _build(tiny, init_from=str(tmp_path / "missing"))
    src = tmp_path / "sg"
    train(Run("seqgan", "synthetic", "quick", 0, {**tiny, **SCHEDULE}, run_dir=src), progress=False, stop_at_step=1, log=quiet)
    # stopped at step 1 without a checkpoint at 1: the checkpoint is step 0, inside its MLE phase
    with pytest.raises(TextbenchError, match="inside its MLE pre-training"):
        _build(tiny, init_from=str(src), steps=5)
    other = tmp_path / "mle"
    train(Run("mle", "synthetic", "quick", 0, {**tiny, "steps": 2, "eval_every": 2, "data_seed": 7}, run_dir=other), progress=False, log=quiet)
    with pytest.raises(TextbenchError, match="suite differs"):
        _build(tiny, init_from=str(other), steps=5)
