"""The CNN text classifier of SeqGAN (Yu et al., 2017) used as discriminator / ranker / feature extractor.

Architecture (protocol §3.3, SeqGAN ``discriminator.py``; Texygen copies it with other sizes):

    e = Emb(x)                                   [B, L, E]   embedding init U(−1, 1)
    for each filter size f (n_f filters):        conv over the full embedding width (VALID),
        c_f = ReLU(conv_f(e))                    [B, n_f, L − f + 1]   weights trunc-normal std 0.1, bias 0.1
        p_f = max over time of c_f               [B, n_f]
    p = concat_f p_f                             [B, F],  F = Σ n_f
    highway (one layer, transform-gate bias 0 as SeqGAN passes it, not −2; g = ReLU):
        τ = σ(W_τ p + b_τ),  g = ReLU(W_g p + b_g),  z = τ ⊙ g + (1 − τ) ⊙ p
        (W, b: TF ``get_variable`` default = Glorot-uniform; a 1-d bias of size n gets U(±√(3/n)))
    z ← dropout(z)                               only in ``train()`` mode (SeqGAN keep 0.75 ⇒ dropout 0.25)
    logits = W_o z + b_o                         [B, 2]   trunc-normal std 0.1, bias 0.1; class 1 = real

``features(x)`` returns z (after highway and dropout); ``forward(x)`` the logits. The training loss is
mean softmax cross-entropy + ``l2_loss()``, where ``l2_loss()`` = l2 · (½‖W_o‖² + ½‖b_o‖²) is the
*already weighted* penalty on the output layer (TF ``tf.nn.l2_loss`` of its weight and bias).

``dropout`` is the drop *probability* (PyTorch convention): SeqGAN's keep probability 0.75 is
``dropout=0.25``. Unlike Texygen's SeqGAN/MaliGAN (protocol §2.9-8), it is really applied whenever the
module is in training mode; call ``eval()`` to score rewards without it (as SeqGAN does).

Filters wider than the sequence (e.g. SeqGAN's 15 and 20 on a 10-token test suite) do not crash: such a
filter sees the sequence followed by zero embedding vectors, i.e. exactly one window (the embedded
sequence is right-padded with zeros up to the filter width), so the feature width is always Σ n_f and
a model works at any sequence length. At L = 20 with SeqGAN's presets no padding happens.

**How it is computed** (CPU, float32; profiled at SeqGAN's paper settings, B = 64, L = 20, one thread —
``benchmarks/test_bench_discriminator.py``). The formulas above are unchanged; only the kernels are:

* convolutions: each width is one ``conv2d`` over the embedded sequence seen as a channels-last
  [B, E, 1, L] image — that *is* the embedding's memory [B, L, E], so nothing is transposed or padded —
  which oneDNN runs with its AVX-512 kernels (~1.6x faster than the old ``conv1d`` on [B, E, L]);
  a width with a single window (f ≥ L) is one matrix product on the flattened, zero-padded sequence;
* max-pool: ``max_pool2d`` over the window axis, which also returns the first position of the maximum;
  ReLU is applied after pooling (ReLU is monotone, so max_p ReLU(c_p) = ReLU(max_p c_p) exactly);
* backward (``_ConvMaxPool``): the gradient of max_p c_p reaches only the window at its argmax p*, so
  instead of the dense conv backward (a product over all B·P windows, 20x more work for width 1) it is
  gathered: ∂W_f[o] = Σ_b g[b,o] · window_b(p*[b,o]) and ∂e[b, p*+j] += g[b,o] · W_f[o, j], both as
  weighted ``embedding_bag`` sums (the second after grouping the (b, o) pairs by window with one sort,
  then folding the windows onto positions with a fixed bag plan) — about 1/10 of the dense FLOPs;
* highway: its two 1720x1720 products and their gradients go through oneDNN's inner product
  (``kernels.OneDNNLinear``), ~1.8-2x MKL's sgemm on this kind of CPU (AMD, AVX-512), when oneDNN is available.

Numbers: every output and gradient equals the plain formulation up to float summation order (oneDNN
and the gathers add the same terms in another order): on fixed inputs at SeqGAN's sizes logits and
every parameter gradient agree with the old ``conv1d``/``amax``/``nn.Linear`` computation to ~1e-6
(relative), checked to 1e-5 in ``tests/models/test_discriminator.py``, which keeps that computation.
One difference is not rounding: when the maximum of a filter is attained at several windows to the
last bit, the gradient goes to the first of them (``max_pool2d``), not split evenly among them
(``amax``). Identical windows (a repeated n-gram) give identical parameter gradients either way; other
exact ties are float coincidences. No random numbers are drawn here except dropout's (unchanged: one
Bernoulli mask [B, F] per ``features`` call in training mode). Other devices and dtypes use the plain
formulation.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import fast_path, linear, mm_nt, onednn


@dataclass(frozen=True)
class FilterPreset:
    emb_dim: int
    filter_sizes: tuple[int, ...]
    num_filters: tuple[int, ...]


SEQGAN_FILTERS = FilterPreset(
    emb_dim=64,
    filter_sizes=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
    num_filters=(100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160),
)
"""SeqGAN's discriminator (total 1,720 features), embedding 64."""

TEXYGEN_FILTERS = FilterPreset(emb_dim=32, filter_sizes=(2, 3), num_filters=(100, 200))
"""Texygen's SeqGAN/RankGAN/MaliGAN discriminator (300 features), embedding 32 (= generator emb)."""


def _conv_max(e: torch.Tensor, sizes, weights, biases, with_indices: bool):
    """max over windows p of (conv_f(e) + b_f)[:, :, p] for each width f, as [B, Σ n_f] (before ReLU);
    with the first argmax p* [B, Σ n_f] when ``with_indices``, and the weights as [n_f, f·E] (rows
    ordered (j, e)). e: [B, L, E] contiguous float32 CPU."""
    b, length, emb = e.shape
    x4 = e.transpose(1, 2).unsqueeze(2)  # [B, E, 1, L] whose memory is e's: a channels-last image
    vals, idxs, w2s = [], [], []
    for f, w, bias in zip(sizes, weights, biases):
        n = w.shape[0]
        w2 = w.transpose(1, 2).reshape(n, f * emb)  # [n, f·E], (j, e) order = channels-last [n, E, 1, f]
        w2s.append(w2)
        if f >= length:  # one window: the sequence, zero-padded to f positions
            flat = e.reshape(b, length * emb)
            if f > length:
                flat = F.pad(flat, (0, (f - length) * emb))
            vals.append(mm_nt(flat, w2, bias))
            if with_indices:
                idxs.append(torch.zeros((b, n), dtype=torch.long))
            continue
        y = F.conv2d(x4, w2.view(n, 1, f, emb).permute(0, 3, 1, 2), bias)  # [B, n, 1, P] channels-last
        if with_indices:
            v, i = F.max_pool2d(y, (1, y.shape[-1]), return_indices=True)
            idxs.append(i.view(b, n))
        else:
            v = F.max_pool2d(y, (1, y.shape[-1]))
        vals.append(v.view(b, n))
    return torch.cat(vals, dim=1), (torch.cat(idxs, dim=1) if with_indices else None), w2s


@dataclass(frozen=True)
class _Layout:
    """Where the widths sit in [B, Σ n_f], and index maps for the widths with several windows ("sparse",
    P = L − f + 1 > 1), whose columns are ``sparse_cols`` (a slice when contiguous)."""

    starts: tuple[int, ...]  # column offsets of the widths
    sparse: tuple[int, ...]  # indices of the sparse widths
    sparse_starts: tuple[int, ...]  # column offsets among the sparse columns
    sparse_cols: torch.Tensor | slice
    sparse_width: torch.Tensor  # [Fs] index into ``sparse`` of each sparse column
    row_col: torch.Tensor  # [R] sparse column of weight row r = (width, filter o, tap j), R = Σ n_f·f
    row_tap: torch.Tensor  # [R, 1] int32 tap j of row r


@functools.lru_cache(maxsize=32)
def _layout(sizes: tuple[int, ...], nums: tuple[int, ...], length: int) -> _Layout:
    starts = tuple(int(sum(nums[:i])) for i in range(len(nums) + 1))
    sparse = tuple(i for i, f in enumerate(sizes) if f < length)
    sparse_starts = tuple(int(sum(nums[i] for i in sparse[:k])) for k in range(len(sparse) + 1))
    cols = torch.cat([torch.arange(starts[i], starts[i + 1]) for i in sparse]) if sparse else torch.zeros(0, dtype=torch.long)
    if cols.numel() and torch.equal(cols, torch.arange(int(cols[0]), int(cols[0]) + cols.numel())):
        cols = slice(int(cols[0]), int(cols[0]) + cols.numel())
    width = [torch.full((nums[i],), k) for k, i in enumerate(sparse)]
    row_col = [torch.arange(sparse_starts[k], sparse_starts[k + 1]).repeat_interleave(sizes[i]) for k, i in enumerate(sparse)]
    row_tap = [torch.arange(sizes[i], dtype=torch.int32).repeat(nums[i]) for i in sparse]
    empty = torch.zeros(0, dtype=torch.long)
    return _Layout(
        starts, sparse, sparse_starts, cols,
        torch.cat(width) if width else empty,
        torch.cat(row_col) if row_col else empty,
        (torch.cat(row_tap) if row_tap else empty.int()).view(-1, 1),
    )


@functools.lru_cache(maxsize=256)
def _fold_plan(f: int, length: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bags that fold per-window gradients U [P, B, f, E] (rows (p, b, j)) onto positions: bag (b, q)
    sums the rows with p + j = q. Returns (row indices, offsets incl. the last) for ``embedding_bag``."""
    windows = length - f + 1
    p = torch.arange(windows).view(windows, 1, 1)
    bb = torch.arange(batch).view(1, batch, 1)
    j = torch.arange(f).view(1, 1, f)
    rows = ((p * batch + bb) * f + j).reshape(-1)
    bags = (bb * length + p + j).reshape(-1)
    order = torch.argsort(bags, stable=True)
    offsets = torch.zeros(batch * length + 1, dtype=torch.long)
    offsets[1:] = torch.bincount(bags, minlength=batch * length).cumsum(0)
    return rows[order], offsets


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A reused CPU work buffer of this thread, only read inside one ``_conv_max_backward`` call: the
    index and weight arrays of the gathered backward are MBs, and fresh ones can cost thousands of page
    faults per step on a busy machine (measured: index_select 1.3 ms into fresh memory, 0.13 ms here)."""
    n = math.prod(shape)
    buffers = _SCRATCH.__dict__
    buf = buffers.get(name)
    if buf is None or buf.dtype != dtype or buf.numel() < n:
        buf = buffers[name] = torch.empty(n, dtype=dtype)
    return buf[:n].view(shape)


def _int_dtype(bound: int) -> torch.dtype:
    """The smallest of int16/int32/int64 holding 0..bound (a sort on int16 keys is ~3x faster than int64)."""
    return torch.int16 if bound < 2**15 else torch.int32 if bound < 2**31 else torch.int64


def _conv_max_backward(e, pstar, w2s, sizes, grad, need_e: bool, need_w: bool):
    """Gradients of ``_conv_max`` values w.r.t. e [B, L, E], the weights [n, E, f] and biases [n] for
    grad [B, Σ n_f]: only the argmax window of each (b, filter) receives it (module docstring)."""
    b, length, emb = e.shape
    lay = _layout(tuple(sizes), tuple(w.shape[0] for w in w2s), length)
    grad = grad.contiguous()
    batch = torch.arange(b).view(b, 1)
    d_e = e.new_zeros((b * length, emb)) if need_e else None  # rows (b, q)
    d_bias = grad.sum(0)
    d_ws: dict[int, torch.Tensor] = {}
    if lay.sparse:
        cols = lay.sparse_cols
        g_s = grad[:, cols] if isinstance(cols, slice) else grad.index_select(1, cols)  # [B, Fs]
        p_s = pstar[:, cols] if isinstance(cols, slice) else pstar.index_select(1, cols)
        fs = g_s.shape[1]
    if lay.sparse and need_w:
        # ∂W[o, j] = Σ_b g[b, o] · e[b, p*[b, o] + j]: one bag of B embedding rows per weight row (o, j)
        base = (p_s + batch * length).t().to(torch.int32).contiguous()  # [Fs, B] row of e at tap 0
        r = lay.row_col.numel()
        idx = torch.index_select(base, 0, lay.row_col, out=_scratch("idx", (r, b), torch.int32)).add_(lay.row_tap)  # [R, B]
        weight = torch.index_select(g_s.t().contiguous(), 0, lay.row_col, out=_scratch("weight", (r, b), grad.dtype))
        rows = F.embedding_bag(idx, e.view(b * length, emb), mode="sum", per_sample_weights=weight)  # [R, E]
        r0 = 0
        for k, i in enumerate(lay.sparse):
            f, n = sizes[i], w2s[i].shape[0]
            d_ws[i] = rows[r0 : r0 + n * f].view(n, f, emb).transpose(1, 2).contiguous()
            r0 += n * f
    if lay.sparse and need_e:
        # U[(p, b)] = Σ_{o: p*[b,o] = p} g[b, o] · W[o] per width: group the (b, o) pairs by
        # (width, p*, b) with one sort, one bag per window; then fold the windows onto positions
        ks = len(lay.sparse)
        key = ((lay.sparse_width * length + p_s) * b + batch).view(-1).to(_int_dtype(ks * length * b))
        _, perm = torch.sort(key)
        offsets = torch.zeros(ks * length * b + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(key, minlength=ks * length * b), 0, out=offsets[1:])
        filt = perm % fs  # sparse column, grouped by width then (p*, b)
        weight = g_s.reshape(-1).index_select(0, perm)
        for k, i in enumerate(lay.sparse):
            f = sizes[i]
            windows = length - f + 1
            s0, s1 = b * lay.sparse_starts[k], b * lay.sparse_starts[k + 1]
            o0 = k * length * b
            u = F.embedding_bag(
                filt[s0:s1] - lay.sparse_starts[k], w2s[i], offsets[o0 : o0 + windows * b + 1] - s0,
                mode="sum", per_sample_weights=weight[s0:s1], include_last_offset=True,
            )  # [P·B, f·E], rows (p, b)
            rows_f, fold_offsets = _fold_plan(f, length, b)
            d_e += F.embedding_bag(rows_f, u.view(-1, emb), fold_offsets, mode="sum", include_last_offset=True)
    for i, (f, w2) in enumerate(zip(sizes, w2s)):
        if f < length:
            continue
        # one window (f >= L): dense products with the flattened, zero-padded sequence
        n, c0, c1 = w2.shape[0], lay.starts[i], lay.starts[i + 1]
        g_f = grad[:, c0:c1]
        if need_w:
            flat = e.reshape(b, length * emb)
            if f > length:
                flat = F.pad(flat, (0, (f - length) * emb))
            d_ws[i] = mm_nt(g_f.t(), flat.t()).view(n, f, emb).transpose(1, 2).contiguous()
        if need_e:
            d_e.view(b, length * emb).add_((g_f @ w2)[:, : length * emb])
    d_bs = [d_bias[lay.starts[i] : lay.starts[i + 1]].clone() for i in range(len(sizes))]  # own storage each
    return (d_e.view(b, length, emb) if need_e else None), [d_ws.get(i) for i in range(len(sizes))], d_bs


class _ConvMaxPool(torch.autograd.Function):
    """values = max_p (conv_f(e) + b_f) per width, with the gathered backward (module docstring)."""

    @staticmethod
    def forward(ctx, e, sizes, *params):
        weights, biases = params[0::2], params[1::2]
        vals, pstar, w2s = _conv_max(e, sizes, weights, biases, with_indices=True)
        ctx.save_for_backward(e, pstar)
        ctx.w2s, ctx.sizes = w2s, sizes
        return vals

    @staticmethod
    def backward(ctx, grad):
        e, pstar = ctx.saved_tensors
        need_e = ctx.needs_input_grad[0]
        need_w = any(ctx.needs_input_grad[2::2]) or any(ctx.needs_input_grad[3::2])
        d_e, d_ws, d_bs = _conv_max_backward(e, pstar, ctx.w2s, ctx.sizes, grad, need_e, need_w)
        params = []
        for i in range(len(ctx.sizes)):
            params.append(d_ws[i] if need_w and ctx.needs_input_grad[2 + 2 * i] else None)
            params.append(d_bs[i] if ctx.needs_input_grad[3 + 2 * i] else None)
        return (d_e, None, *params)


class Highway(nn.Module):
    """z = τ ⊙ ReLU(W_g p + b_g) + (1 − τ) ⊙ p,  τ = σ(W_τ p + b_τ + gate_bias)."""

    def __init__(self, size: int, gate_bias: float = 0.0):
        super().__init__()
        self.lin = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        self.gate_bias = gate_bias

    @torch.no_grad()
    def reset_parameters_tf(self, generator: torch.Generator | None = None) -> None:
        """TF ``get_variable`` defaults: W Glorot-uniform, a 1-d bias of size n U(±√(3/n)); lin, then gate."""
        for lin in (self.lin, self.gate):
            fan_out, fan_in = lin.weight.shape
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            lin.weight.uniform_(-limit, limit, generator=generator)
            b = math.sqrt(3.0 / fan_out)
            lin.bias.uniform_(-b, b, generator=generator)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(linear(p, self.gate.weight, self.gate.bias) + self.gate_bias)
        g = F.relu(linear(p, self.lin.weight, self.lin.bias))
        return t * g + (1.0 - t) * p


class CNNDiscriminator(nn.Module):
    """SeqGAN's CNN classifier over token sequences (class 1 = real). See the module docstring."""

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        filter_sizes,
        num_filters,
        dropout: float,
        l2: float,
        highway: bool = True,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        filter_sizes, num_filters = [int(f) for f in filter_sizes], [int(n) for n in num_filters]
        if len(filter_sizes) != len(num_filters) or not filter_sizes:
            raise ValueError(f"filter_sizes {filter_sizes} and num_filters {num_filters} must be non-empty and of equal length")
        if min(filter_sizes) < 1 or min(num_filters) < 1:
            raise ValueError("filter sizes and counts must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1), got {dropout}")
        self.vocab_size = vocab_size
        self.filter_sizes = filter_sizes
        self.num_filters = num_filters
        self.feature_dim = sum(num_filters)
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, n, f) for f, n in zip(filter_sizes, num_filters))
        self.highway = Highway(self.feature_dim, gate_bias=0.0) if highway else None
        self.output = nn.Linear(self.feature_dim, 2)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> "CNNDiscriminator":
        """SeqGAN's initialisation, drawn from ``generator`` (torch's global RNG when None)."""
        g = generator
        self.embedding.weight.uniform_(-1.0, 1.0, generator=g)
        for conv in self.convs:
            nn.init.trunc_normal_(conv.weight, std=0.1, a=-0.2, b=0.2, generator=g)
            conv.bias.fill_(0.1)
        if self.highway is not None:
            self.highway.reset_parameters_tf(g)
        nn.init.trunc_normal_(self.output.weight, std=0.1, a=-0.2, b=0.2, generator=g)
        self.output.bias.fill_(0.1)
        return self

    # -- scoring ---------------------------------------------------------------------------------
    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Max-pooled ReLU conv features before the highway layer: [B, Σ n_f]."""
        if x.dim() != 2:
            raise ValueError(f"expected token ids of shape [batch, length], got {tuple(x.shape)}")
        e = self.embedding(x)  # [B, L, E]
        if not fast_path(e):
            return self._pooled_plain(e)
        weights = [conv.weight for conv in self.convs]
        biases = [conv.bias for conv in self.convs]
        if torch.is_grad_enabled() and (e.requires_grad or any(p.requires_grad for p in weights + biases)):
            params = [t for wb in zip(weights, biases) for t in wb]
            return F.relu(_ConvMaxPool.apply(e.contiguous(), tuple(self.filter_sizes), *params))
        return F.relu(_conv_max(e.contiguous(), self.filter_sizes, weights, biases, with_indices=False)[0])

    def _pooled_plain(self, e: torch.Tensor) -> torch.Tensor:
        """The plain formulation (``conv1d``, ReLU, ``amax``) for other devices and dtypes."""
        e = e.transpose(1, 2)  # [B, E, L]
        length = e.shape[-1]
        pools = []
        for f, conv in zip(self.filter_sizes, self.convs):
            inp = F.pad(e, (0, f - length)) if f > length else e
            pools.append(F.relu(conv(inp)).amax(dim=-1))
        return torch.cat(pools, dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z = dropout(highway(pooled conv features)): [B, Σ n_f] (dropout only in training mode)."""
        z = self.pooled(x)
        if self.highway is not None:
            z = self.highway(z)
        return F.dropout(z, self.dropout, training=self.training) if self.dropout > 0 else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, 2]; class 1 = real."""
        return self.output(self.features(x))

    def prob_real(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) = softmax(logits)[:, 1], the probability of "real" (SeqGAN's ``ypred_for_auc[:, 1]``)."""
        return torch.softmax(self(x), dim=-1)[:, 1]

    def l2_loss(self) -> torch.Tensor:
        """The weighted penalty l2 · (½‖W_o‖² + ½‖b_o‖²) on the output layer (add it to the loss)."""
        w, b = self.output.weight, self.output.bias
        return self.l2 * 0.5 * (w.pow(2).sum() + b.pow(2).sum())

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """mean softmax cross-entropy(logits, labels) + ``l2_loss()``; labels 1 = real, 0 = generated."""
        return F.cross_entropy(self(x), labels) + self.l2_loss()
