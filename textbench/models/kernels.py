"""Matrix-product kernels for CPU float32: oneDNN's inner product where it is the faster one.

On this project's CPU (AMD EPYC, AVX-512) oneDNN's inner product runs the [rows, H]·[H, V] output-layer product
about 2x faster than the MKL ``sgemm`` behind ``F.linear`` / ``addmm`` (measured: 166 vs 90 GFLOP/s at
64 x 32 x 5,000, one thread). ``linear_rows`` takes it only where it also gives ``F.linear``'s bits, checked once
per shape on random inputs (both kernels sum each dot product in a fixed, data-independent order; they agree for
2+ rows and V ≥ 37 here, not for one row, where MKL calls gemv), so sampled tokens and metrics stay exactly what
they were, on any CPU: where the two disagree, ``F.linear`` is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

HAS_ONEDNN_LINEAR = (
    torch.backends.mkldnn.is_available()
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    and hasattr(torch.ops.aten, "mkldnn_linear_backward_input")
)


def fast_path(t: torch.Tensor) -> bool:
    """CPU float32: where the CPU-specific kernels here apply (elsewhere the plain formulation)."""
    return t.device.type == "cpu" and t.dtype == torch.float32


def onednn(t: torch.Tensor) -> bool:
    """oneDNN's products can take ``t`` (CPU float32, oneDNN built in and not switched off)."""
    return HAS_ONEDNN_LINEAR and fast_path(t) and torch._C._get_mkldnn_enabled()


def mm_nt(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b.T (+ bias) for a [M, K], b [N, K]: oneDNN's inner product when available, else addmm/mm."""
    if onednn(a):
        return torch.ops.mkldnn._linear_pointwise(a.contiguous(), b.contiguous(), bias, "none", [], "")
    return F.linear(a, b, bias)


class OneDNNLinear(torch.autograd.Function):
    """y = x Wᵀ + b with forward and both gradients on oneDNN (dense inputs, float32 CPU): ~2x MKL's sgemm here,
    in its own summation order (not ``F.linear``'s bits; used where no committed number depends on them)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return mm_nt(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.ops.aten.mkldnn_linear_backward_input(list(x.shape), grad.to_mkldnn(), weight.contiguous()).to_dense()
        if ctx.needs_input_grad[1]:
            dw = mm_nt(grad.t(), x.t())  # Σ_b grad[b]ᵀ x[b]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = grad.sum(0)
        return dx, dw, db


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for x [N, in] on ``OneDNNLinear`` where oneDNN applies, else ``F.linear``."""
    if x.dim() == 2 and onednn(x) and weight.dtype == torch.float32:
        return OneDNNLinear.apply(x, weight, bias)
    return F.linear(x, weight, bias)


_SAME_BITS: dict[tuple[int, int, int, bool], bool] = {}


def same_bits_as_linear(rows: int, inner: int, outer: int, with_bias: bool) -> bool:
    """Whether oneDNN's inner product gives ``F.linear``'s float32 bits for x [rows, inner]·Wᵀ [inner, outer]
    (+ bias): both run on seeded random inputs of that shape, repeated until at least 4,096 outputs are
    compared (two summation orders can round a few outputs alike by chance); the answer is kept for the process."""
    key = (rows, inner, outer, with_bias)
    if key not in _SAME_BITS:
        g = torch.Generator().manual_seed(rows * 7919 + inner * 104729 + outer)
        same = True
        for _ in range(min(64, -(-4096 // (rows * outer)))):
            x, w = torch.randn((rows, inner), generator=g), torch.randn((outer, inner), generator=g) * 0.1
            b = torch.randn(outer, generator=g) if with_bias else None
            with torch.no_grad():
                same = same and torch.equal(F.linear(x, w, b), torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""))
        _SAME_BITS[key] = same
    return _SAME_BITS[key]


def linear_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor | None = None) -> torch.Tensor:
    """x·Wᵀ + b for x [rows, H] without autograd: ``F.linear``'s numbers, bit for bit, on oneDNN's inner
    product where that gives them (``same_bits_as_linear``; a new tensor), else ``F.linear`` itself (written
    into ``out`` when given: ``addmm``, what ``F.linear`` runs for a 2-d input with a bias)."""
    if (
        x.dim() == 2
        and onednn(x)
        and weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and same_bits_as_linear(x.shape[0], x.shape[1], weight.shape[0], bias is not None)
    ):
        return mm_nt(x, weight.detach(), None if bias is None else bias.detach())
    if out is not None and bias is not None and x.dim() == 2:
        return torch.addmm(bias, x, weight.t(), out=out)
    return F.linear(x, weight, bias)
