import pytest
import torch
import torch.nn.functional as F

from textbench.models import kernels
from textbench.models.kernels import linear_rows, same_bits_as_linear


@pytest.mark.parametrize("rows", [1, 2, 7, 64, 128])
@pytest.mark.parametrize("vocab", [3, 37, 5000])
def test_linear_rows_gives_the_bits_of_f_linear(rows, vocab):
    """On oneDNN where it reproduces F.linear for the shape, on F.linear elsewhere: the same floats either way."""
    g = torch.Generator().manual_seed(rows + vocab)
    x, w, b = torch.randn(rows, 32, generator=g), torch.randn(vocab, 32, generator=g) * 0.1, torch.randn(vocab, generator=g)
    with torch.no_grad():
        assert torch.equal(linear_rows(x, w, b), F.linear(x, w, b))
        assert torch.equal(linear_rows(x, w, None), F.linear(x, w, None))


def test_same_bits_is_probed_once_per_shape(monkeypatch):
    calls = []
    real = torch.equal
    monkeypatch.setattr(kernels, "_SAME_BITS", {})
    monkeypatch.setattr(torch, "equal", lambda a, b: calls.append(1) or real(a, b))
    if not kernels.HAS_ONEDNN_LINEAR:
        pytest.skip("oneDNN not built in")
    first = same_bits_as_linear(64, 32, 5000, True)
    probes = len(calls)
    assert same_bits_as_linear(64, 32, 5000, True) == first and len(calls) == probes == 1
    same = same_bits_as_linear(1, 32, 3, True)  # 3 outputs per probe: repeated up to 64 times (4,096 outputs)
    assert len(calls) - probes == 64 if same else 1 <= len(calls) - probes <= 64


def test_linear_rows_keeps_autograd_and_respects_onednn_switch():
    w = torch.randn(50, 8, requires_grad=True)
    x = torch.randn(16, 8)
    y = linear_rows(x, w, None)
    assert y.requires_grad
    y.sum().backward()
    assert torch.allclose(w.grad, x.sum(0).expand(50, 8))
    torch._C._set_mkldnn_enabled(False)
    try:
        assert not kernels.onednn(x)
        with torch.no_grad():
            assert torch.equal(linear_rows(x, w, None), F.linear(x, w))
    finally:
        torch._C._set_mkldnn_enabled(True)
