"""The discriminator's training call (``PhasedAlgorithm.d_call``): fused Adam steps, and the same random
draws, in the same order, as the plain implementation it replaced (kept here as the reference)."""

from __future__ import annotations

import copy

import pytest
import torch

from textbench.algorithms.phases import _adam_step
from textbench.engine.loop import Run, build
from textbench.models.discriminator import TEXYGEN_FILTERS, CNNDiscriminator


def _model(seed=0, dtype=torch.float32):
    d = CNNDiscriminator(40, TEXYGEN_FILTERS.emb_dim, TEXYGEN_FILTERS.filter_sizes, TEXYGEN_FILTERS.num_filters, 0.25, 0.2,
                         generator=torch.Generator().manual_seed(seed))
    return d.to(dtype)


def _steps(d, opt, step, n=4):
    gen = torch.Generator().manual_seed(1)
    for _ in range(n):
        for p in d.parameters():
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        step(opt)


def test_adam_step_is_the_fused_kernel_and_close_to_the_default():
    a, b, c = _model(), _model(), _model()
    oa = torch.optim.Adam(a.parameters(), lr=1e-2)
    ob = torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
    oc = torch.optim.Adam(c.parameters(), lr=1e-2)
    groups_before = copy.deepcopy(oa.state_dict()["param_groups"])
    _steps(a, oa, _adam_step)
    _steps(b, ob, lambda o: o.step())
    _steps(c, oc, lambda o: o.step())
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name  # bit for bit the fused kernel
        assert torch.allclose(pa, pc, rtol=1e-5, atol=1e-7), name  # the default, up to rounding
        assert torch.allclose(oa.state[pa]["exp_avg_sq"], oc.state[pc]["exp_avg_sq"], rtol=1e-5, atol=1e-12)
    assert oa.state_dict()["param_groups"] == groups_before  # settings untouched (fused is off again)
    assert oa.state[next(a.parameters())]["step"].item() == 4.0


@pytest.mark.parametrize("kind", ["sgd", "foreach", "float64"])
def test_adam_step_falls_back_to_step(kind):
    """Other optimizers, explicit foreach, other dtypes: exactly ``opt.step()``."""
    dtype = torch.float64 if kind == "float64" else torch.float32
    a, b = _model(dtype=dtype), _model(dtype=dtype)

    def make(m):
        if kind == "sgd":
            return torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        return torch.optim.Adam(m.parameters(), lr=1e-2, foreach=(kind == "foreach"))

    oa, ob = make(a), make(b)
    _steps(a, oa, _adam_step)
    _steps(b, ob, lambda o: o.step())
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def _old_d_call(a) -> float:
    """The D call as it was before (``g.sample``, ``d_opt.step()``): the reference for the draws."""
    s, b = a.settings, int(a.settings["batch_size"])
    train = a.suite.train
    n = min(int(s["d_samples"]), train.shape[0])
    neg = a.g.sample(n, a.rng)
    pos = train if n == train.shape[0] else train[torch.randperm(train.shape[0], generator=a.rng)[:n]]
    data = torch.cat([pos, neg])
    labels = torch.cat([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)])
    perm = torch.randperm(2 * n, generator=a.rng)
    data, labels = data[perm], labels[perm]
    nb = (2 * n) // b
    a.d.train()
    total = 0.0
    for _ in range(int(s["d_epochs"])):
        for i in range(nb):
            a.d_opt.zero_grad(set_to_none=True)
            loss = a.d_batch_loss(data[i * b : (i + 1) * b], labels[i * b : (i + 1) * b])
            loss.backward()
            a.d_opt.step()
            total += loss.item()
    a.d.eval()
    return total / (nb * int(s["d_epochs"]))


@pytest.mark.parametrize("d_samples", [96, 10_000])  # a random subset of the real data; all of it
def test_d_call_draws_like_before(tiny, d_samples):
    """Same samples, shuffle and dropout masks (generator and global RNG states after the call are equal)
    and the same D up to float rounding."""
    run = Run("seqgan", "synthetic", "quick", 0, {**tiny, "steps": 12, "d_samples": d_samples, "d_epochs": 2}, run_dir="unused")
    new = build("seqgan", "synthetic", run.settings, 0)[1]
    old = build("seqgan", "synthetic", run.settings, 0)[1]
    torch.manual_seed(11)
    loss_new = new.d_call()
    global_new = torch.get_rng_state()
    torch.manual_seed(11)
    loss_old = _old_d_call(old)
    assert torch.equal(torch.get_rng_state(), global_new)  # dropout: the same masks, drawn in order
    assert torch.equal(new.rng.get_state(), old.rng.get_state())  # samples, subset, shuffle
    assert loss_new == pytest.approx(loss_old, rel=1e-4)
    for (name, p), q in zip(new.d.named_parameters(), old.d.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
