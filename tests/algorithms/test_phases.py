"""The shared phase schedule (``algorithms/phases.py``) as each discriminator-guided algorithm uses it:
boundaries, LeakGAN's outer epochs, what a step of each phase runs and logs, the D call's Adam step,
the averaging arithmetic, and the checkpointed boundaries."""

from __future__ import annotations

import pytest

from textbench.algorithms import phases
from textbench.algorithms.phases import PhasedAlgorithm, mean_logs
from textbench.engine.loop import Run, build
from textbench.errors import TextbenchError

GANS = ("seqgan", "rankgan", "maligan", "gcn", "leakgan")
SCHEDULE = {"pretrain_steps": 2, "mle_batches": 2, "d_pretrain_steps": 2, "adv_steps": 3, "steps": 7, "d_samples": 32}
PER_ALGO = {
    "seqgan": {"rollout_num": 2, "d_steps": 1},
    "rankgan": {"rollout_num": 2, "d_steps": 1},
    "maligan": {"adv_g_steps": 2, "d_steps": 1},
    "gcn": {"adv_g_steps": 1, "gcn_samples": 32, "gcn_d_steps": 1},
    # outer epochs of {2 adversarial epochs, 1 MLE epoch, 1 step of 2 D calls}
    "leakgan": {"rollout_num": 2, "d_steps": 1, "d_emb": 8, "d_num_filters": [6, 8], "leak_goal_size": 4,
                "leak_adv_epochs": 2, "leak_inter_mle_epochs": 1, "leak_inter_d_calls": 2, "adv_steps": 8, "steps": 12},
}
PLAIN = ["mle"] * 2 + ["d_pretrain"] * 2 + ["adversarial"] * 3
LEAK = ["mle"] * 2 + ["d_pretrain"] * 2 + (["adversarial"] * 2 + ["mle", "d_block"]) * 2


def _build(tiny, algo, **over):
    run = Run(algo, "synthetic", "quick", 0, {**tiny, **SCHEDULE, **PER_ALGO[algo], **over}, run_dir="unused")
    return build(algo, "synthetic", run.settings, 0)[1]


@pytest.mark.parametrize("algo", GANS)
def test_every_gan_runs_the_shared_schedule(tiny, algo):
    a = _build(tiny, algo)
    assert isinstance(a, PhasedAlgorithm)
    assert (a.p_end, a.d_end) == (2, 4)
    assert [a.phase(s) for s in range(1, a.settings["steps"] + 1)] == (LEAK if algo == "leakgan" else PLAIN)


def test_leakgan_outer_epoch_without_d_block(tiny):
    a = _build(tiny, "leakgan", leak_inter_d_calls=0, adv_steps=6, steps=10)
    assert a.cycle() == (("adversarial", 2), ("mle", 1), ("d_block", 0))
    assert [a.phase(s) for s in range(5, 11)] == ["adversarial", "adversarial", "mle"] * 2
    with pytest.raises(TextbenchError, match="outer epoch is empty"):
        _build(tiny, "leakgan", leak_adv_epochs=0, leak_inter_mle_epochs=0, leak_inter_d_calls=0)


@pytest.mark.parametrize("algo", GANS)
def test_steps_beyond_the_schedule(tiny, algo):
    total = PER_ALGO[algo].get("steps", SCHEDULE["steps"])
    with pytest.raises(TextbenchError, match=f"exceeds this schedule's {total} steps: 2 MLE \\+ 2 D pre-training .*; set steps={total}"):
        _build(tiny, algo, steps=total + 1)


@pytest.mark.parametrize("algo", GANS)
def test_a_step_of_each_phase(tiny, algo):
    """What each phase runs: MLE epochs of mle_batches minibatches, one D call, adversarial epochs, D blocks."""
    a = _build(tiny, algo)
    calls = []
    d_call = a.d_call
    a.d_call = lambda: calls.append("d") or d_call()
    logs = [a.train_step(1), a.train_step(2)]
    assert a.batches.pointer == 2 * 2  # two MLE epochs of mle_batches = 2 minibatches
    logs += [a.train_step(s) for s in range(3, a.settings["steps"] + 1)]
    mle = {"mle_loss", "mle_goal_loss"} if algo == "leakgan" else {"mle_loss"}
    assert set(logs[0]) == mle and set(logs[2]) == {"d_loss"}
    adv = logs[4]
    assert "d_loss" in adv and ("adv_goal_loss" in adv if algo == "leakgan" else "g_loss" in adv)
    if algo == "leakgan":
        assert set(logs[6]) == mle and set(logs[7]) == {"d_loss"}  # interleaved MLE epoch, D block
        assert len(calls) == 2 + 4 * 1 + 2 * 2 and a.batches.epoch * a.batches.num_batches + a.batches.pointer == 4 * 2
    elif algo == "gcn":
        assert len(calls) == 2  # GCN's iterations make their own D updates
    else:
        assert len(calls) == 2 + 3 * 1


@pytest.mark.parametrize("algo,fused", [("seqgan", True), ("gcn", True), ("leakgan", False)])
def test_d_call_adam_step(tiny, algo, fused, monkeypatch):
    """The LSTM family's D takes the fused CPU Adam step; LeakGAN's the plain one (its recorded numbers)."""
    a = _build(tiny, algo)
    used = []
    real = phases._adam_step
    monkeypatch.setattr(phases, "_adam_step", lambda opt: used.append(opt) or real(opt))
    a.d_call()
    assert len(used) == (2 if fused else 0) and all(o is a.d_opt for o in used)


def test_logged_means_keep_their_arithmetic():
    """Adversarial epochs log Σ v/n, MLE epochs Σ v / n (runs are compared bit for bit)."""
    assert 0.1 / 3 + 0.2 / 3 + 0.4 / 3 != (0.1 + 0.2 + 0.4) / 3  # the two differ in the last bit
    vals = iter([0.1, 0.2, 0.4])
    assert mean_logs(lambda: {"x": next(vals)}, 3) == {"x": 0.1 / 3 + 0.2 / 3 + 0.4 / 3}
    assert mean_logs(lambda: {"x": 1.0}, 0) == {}

    class Fake(PhasedAlgorithm):
        def __init__(self):
            self.settings = {"mle_batches": 3}
            self.device = "cpu"
            self.batches = type("B", (), {"next": lambda self: phases.torch.zeros(1)})()
            self.vals = iter([0.1, 0.2, 0.4])

        def mle_update(self, x):
            return {"mle_loss": next(self.vals)}

    assert Fake().mle_step() == {"mle_loss": (0.1 + 0.2 + 0.4) / 3}


@pytest.mark.parametrize("algo", ["seqgan", "leakgan"])
def test_checkpointed_boundaries(tiny, algo):
    a = _build(tiny, algo)
    extra = a.extra_state()
    assert extra["phases"] == {"p_end": 2, "d_end": 4} and set(extra) == {"batches", "phases"}
    b = _build(tiny, algo)
    b.load_extra_state({**extra, "phases": {"p_end": 0, "d_end": 1}})  # a run started with other boundaries
    assert (b.p_end, b.d_end) == (0, 1) and b.phase(2) == "adversarial"
    c = _build(tiny, algo)
    c.load_extra_state({"batches": extra["batches"]})  # an older checkpoint (LeakGAN's had no "phases")
    assert (c.p_end, c.d_end) == (2, 4)
