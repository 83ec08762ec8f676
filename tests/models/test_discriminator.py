"""CNNDiscriminator: shapes, presets, dropout only in training, loss = CE + weighted l2, wide filters."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from textbench.models.discriminator import SEQGAN_FILTERS, TEXYGEN_FILTERS, CNNDiscriminator


def make(preset=TEXYGEN_FILTERS, vocab=50, dropout=0.25, l2=0.2, seed=0, **kw):
    return CNNDiscriminator(
        vocab, preset.emb_dim, preset.filter_sizes, preset.num_filters, dropout, l2, generator=torch.Generator().manual_seed(seed), **kw
    )


def test_presets():
    assert sum(SEQGAN_FILTERS.num_filters) == 1720 and SEQGAN_FILTERS.emb_dim == 64
    assert list(SEQGAN_FILTERS.filter_sizes) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
    assert list(TEXYGEN_FILTERS.filter_sizes) == [2, 3] and list(TEXYGEN_FILTERS.num_filters) == [100, 200]
    assert TEXYGEN_FILTERS.emb_dim == 32


@pytest.mark.parametrize("preset,length", [(TEXYGEN_FILTERS, 20), (SEQGAN_FILTERS, 20), (SEQGAN_FILTERS, 6), (TEXYGEN_FILTERS, 1)])
def test_shapes_any_length(preset, length):
    d = make(preset).eval()
    x = torch.randint(0, 50, (5, length), generator=torch.Generator().manual_seed(1))
    assert d.features(x).shape == (5, sum(preset.num_filters))
    assert d(x).shape == (5, 2)
    p = d.prob_real(x)
    assert p.shape == (5,) and bool(((p > 0) & (p < 1)).all())


def test_wide_filter_is_zero_padding():
    """A filter wider than the sequence sees the sequence followed by zero embedding vectors."""
    d = CNNDiscriminator(20, 4, [5], [3], 0.0, 0.0, highway=False, generator=torch.Generator().manual_seed(0)).eval()
    x = torch.tensor([[1, 2, 3]])
    e = torch.cat([d.embedding(x)[0], torch.zeros(2, 4)])  # [5, 4]
    conv = d.convs[0]
    manual = F.relu((conv.weight * e.T.unsqueeze(0)).sum((1, 2)) + conv.bias)
    assert torch.allclose(d.pooled(x)[0], manual, atol=1e-6)


def test_dropout_active_only_in_training():
    d = make()
    x = torch.randint(0, 50, (8, 10), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    d.train()
    a, b = d.features(x), d.features(x)
    assert not torch.equal(a, b)
    zero_frac = (a == 0).float().mean().item()
    assert zero_frac > 0.1  # ~25% dropped (plus ReLU zeros are rare after the highway mix)
    d.eval()
    assert torch.equal(d.features(x), d.features(x))
    d0 = make(dropout=0.0).train()
    assert torch.equal(d0.features(x), d0.features(x))


def test_loss_is_ce_plus_weighted_l2():
    d = make(l2=0.2).eval()
    x = torch.randint(0, 50, (6, 7), generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    w, b = d.output.weight, d.output.bias
    l2 = 0.2 * (0.5 * w.pow(2).sum() + 0.5 * b.pow(2).sum())
    assert torch.allclose(d.l2_loss(), l2)
    assert torch.allclose(d.loss(x, y), F.cross_entropy(d(x), y) + l2)


def test_init_reproducible_and_seqgan_like():
    a, b = make(seed=5), make(seed=5)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
    assert float(a.embedding.weight.detach().abs().max()) <= 1.0
    assert float(a.convs[0].weight.detach().abs().max()) <= 0.2 + 1e-6
    assert torch.all(a.convs[0].bias == 0.1) and torch.all(a.output.bias == 0.1)
    lim = math.sqrt(6 / 600)
    assert float(a.highway.lin.weight.detach().abs().max()) <= lim


def test_bad_arguments():
    with pytest.raises(ValueError):
        CNNDiscriminator(10, 4, [2, 3], [5], 0.0, 0.0)
    with pytest.raises(ValueError):
        CNNDiscriminator(10, 4, [2], [5], 1.0, 0.0)


# -- the fast path (channels-last convs, gathered max-pool backward, oneDNN highway) vs the plain one --
def reference_loss(d, x, labels, seed):
    """Today's computation, kept here as the reference: conv1d → ReLU → amax per width, nn.Linear highway
    and output, dropout drawn from torch's global RNG after ``manual_seed(seed)`` (the same single draw)."""
    e = d.embedding(x).transpose(1, 2)
    length = e.shape[-1]
    pools = []
    for f, conv in zip(d.filter_sizes, d.convs):
        inp = F.pad(e, (0, f - length)) if f > length else e
        pools.append(F.relu(F.conv1d(inp, conv.weight, conv.bias)).amax(dim=-1))
    p = torch.cat(pools, dim=1)
    hw = d.highway
    t = torch.sigmoid(F.linear(p, hw.gate.weight, hw.gate.bias) + hw.gate_bias)
    z = t * F.relu(F.linear(p, hw.lin.weight, hw.lin.bias)) + (1.0 - t) * p
    torch.manual_seed(seed)
    z = F.dropout(z, d.dropout, training=d.training)
    logits = F.linear(z, d.output.weight, d.output.bias)
    return logits, F.cross_entropy(logits, labels) + d.l2_loss()


def fast_loss(d, x, labels, seed):
    z = d.pooled(x)
    z = d.highway(z)
    torch.manual_seed(seed)
    z = F.dropout(z, d.dropout, training=d.training)
    logits = d.output(z)
    return logits, F.cross_entropy(logits, labels) + d.l2_loss()


def grads(d, loss):
    d.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in d.named_parameters()}


def close(new, ref, tol=1e-5):
    """|new − ref| ≤ tol · max|ref| (+ tiny): agreement up to float summation order at the tensor's scale."""
    new, ref = new.detach(), ref.detach()
    return float((new - ref).abs().max()) <= tol * float(ref.abs().max()) + 1e-12


CASES = [  # (preset or (emb, sizes, nums), vocab, batch, length)
    (SEQGAN_FILTERS, 5000, 64, 20),  # the paper's D at its minibatch
    (TEXYGEN_FILTERS, 5000, 64, 20),
    (SEQGAN_FILTERS, 50, 5, 6),  # widths 6..20 ≥ L: single, zero-padded windows
    (TEXYGEN_FILTERS, 50, 5, 1),
    ((8, (3, 1, 5), (4, 6, 3)), 30, 7, 5),  # unsorted widths, one = L
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"V{c[1]}-B{c[2]}-L{c[3]}")
def test_fast_path_matches_todays_computation(case):
    """Logits and every parameter gradient within 1e-5 (relative to each tensor's scale) of the plain
    formulation, in training mode with dropout (same mask) and in eval mode."""
    preset, vocab, batch, length = case
    if isinstance(preset, tuple):
        emb, sizes, nums = preset
        d = CNNDiscriminator(vocab, emb, sizes, nums, 0.25, 0.2, generator=torch.Generator().manual_seed(0))
    else:
        d = make(preset, vocab=vocab)
    x = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(1))
    labels = torch.arange(batch) % 2
    for training in (True, False):
        d.train(training)
        ref_logits, ref_loss = reference_loss(d, x, labels, seed=7)
        ref = grads(d, ref_loss)
        new_logits, new_loss = fast_loss(d, x, labels, seed=7)
        new = grads(d, new_loss)
        assert close(new_logits, ref_logits), float((new_logits - ref_logits).abs().max())
        for name in ref:
            assert close(new[name], ref[name]), (name, float((new[name] - ref[name]).abs().max()), float(ref[name].abs().max()))
    # and the module's own forward/loss are that computation
    d.train()
    torch.manual_seed(3)
    a = d.loss(x, labels)
    torch.manual_seed(3)
    b = fast_loss(d, x, labels, seed=3)[1]
    assert torch.equal(a, b)


def test_repeated_ngrams_ties_give_the_same_gradients():
    """Identical windows tie exactly; amax splits the gradient among them, the gathered backward gives it
    to the first — the parameter gradients are the same (the windows are the same vectors)."""
    d = make(SEQGAN_FILTERS, vocab=7, dropout=0.0).train()
    x = torch.tensor([[1, 2, 3, 1, 2, 3, 1, 2, 3, 4], [5, 5, 5, 5, 5, 5, 5, 5, 5, 5], [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]])
    labels = torch.tensor([1, 0, 1])
    ref = grads(d, reference_loss(d, x, labels, seed=0)[1])
    new = grads(d, fast_loss(d, x, labels, seed=0)[1])
    for name in ref:
        assert close(new[name], ref[name]), name


def test_no_grad_forward_equals_training_forward():
    """Scoring (no autograd: no argmax kept) and training compute the same values, bit for bit."""
    d = make(SEQGAN_FILTERS, vocab=100).eval()
    x = torch.randint(0, 100, (9, 20), generator=torch.Generator().manual_seed(4))
    with_grad = d(x)
    with torch.no_grad():
        assert torch.equal(d(x), with_grad)
        assert torch.equal(d.pooled(x), d.pooled(x))


def test_other_dtypes_use_the_plain_formulation():
    """float64 takes the plain path (conv1d/amax/nn.Linear): it agrees with the float32 fast path."""
    d32 = make(SEQGAN_FILTERS, vocab=60).eval()
    d64 = make(SEQGAN_FILTERS, vocab=60).double().eval()
    x = torch.randint(0, 60, (6, 20), generator=torch.Generator().manual_seed(5))
    assert torch.allclose(d64(x).float(), d32(x), atol=1e-4, rtol=1e-4)
    assert close(d64.pooled(x).float(), d32.pooled(x), tol=1e-5)


def test_highway_without_onednn_is_nn_linear():
    """With oneDNN off the highway is exactly nn.Linear (the fallback), with it within rounding."""
    from textbench.models.discriminator import Highway

    h = Highway(40)
    p = torch.randn(5, 40, generator=torch.Generator().manual_seed(0), requires_grad=True)
    t = torch.sigmoid(h.gate(p))
    want = t * F.relu(h.lin(p)) + (1 - t) * p
    torch._C._set_mkldnn_enabled(False)
    try:
        assert torch.equal(h(p), want)
    finally:
        torch._C._set_mkldnn_enabled(True)
    got = h(p)
    assert torch.allclose(got, want, atol=1e-6)
    g_want = torch.autograd.grad(want.square().sum(), [p, h.lin.weight, h.gate.weight, h.lin.bias])
    g_got = torch.autograd.grad(got.square().sum(), [p, h.lin.weight, h.gate.weight, h.lin.bias])
    for a, b in zip(g_got, g_want):
        assert close(a, b)
