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
