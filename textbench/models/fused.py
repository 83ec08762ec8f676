"""Fused output-layer passes of an ``LSTMLM`` for the CoT iteration (CPU-friendly, no [B, L, V] autograd graph).

Each pass works on blocks of ``chunk`` rows of the [rows, V] output layer (64 rows: 1.3 MB at V=5000, about
what a core's L2 holds): the logits of a block are made, used and reduced to what leaves the layer (the loss
terms, the gradient of the output weight and bias, the gradient of the hidden states) before the next block,
so no [B·L, V] tensor is kept for autograd and the elementwise passes stay near the core. The LSTM below the
output layer stays on autograd: its hidden states come in, the gradient of those states goes back.

Numbers: the same functions of the same inputs as the straightforward autograd iteration (``cot.py`` states
the objectives; tests/algorithms/test_cot_fused.py keeps a copy of that iteration and holds these passes to it
within 1e-5, draws included); only the floating-point order of the sums differs. Kernels (``models/kernels.py``):
the forward output-layer products give ``addmm``'s bits on oneDNN's inner product where it reproduces them (~2x
faster on this project's AMD AVX-512 CPU); the backward dlogits·W runs on oneDNN too (2x, its own summation order
over V: ~1e-6 relative from ``torch.mm``, changed 2026-12-02: runs resumed across that change record the commit of
each segment in config.json).

``mm_dtype=torch.bfloat16`` runs the large products ([rows, H]·[H, V] and its two backward products) on bf16
operands (fp32 accumulation inside the kernel, bf16 result converted to fp32); softmax, log-softmax, the KL and
every reduction stay in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..metrics.likelihood import balanced_nll
from .kernels import linear_rows, mm_nt, onednn
from .lstm import LSTMLM, search_cdf

DEFAULT_CHUNK = 64


class _Output:
    """The output layer h·Wᵀ + b of one model and its backward products, in fp32 or on bf16 operands."""

    def __init__(self, layer: torch.nn.Linear, mm_dtype: torch.dtype | None):
        self.weight, self.bias = layer.weight.detach(), layer.bias.detach()
        self.mm_dtype = mm_dtype if mm_dtype not in (None, torch.float32) else None
        self.weight_mm = self.weight if self.mm_dtype is None else self.weight.to(self.mm_dtype)
        # dlogits·W on oneDNN (an inner product with Wᵀ [H, V] as its weight): ~2x torch.mm here, equal to 1e-6
        self.weight_t = self.weight.t().contiguous() if self.mm_dtype is None and onednn(self.weight) else None

    def operand(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as a left operand of this layer's products (cast once per pass, not per block)."""
        return x if self.mm_dtype is None else x.to(self.mm_dtype)

    def logits(self, h: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """h [r, H] (an ``operand``) -> logits [r, V] (fp32): ``addmm``'s numbers (``kernels.linear_rows``: on
        oneDNN where it gives them, then in a new tensor, else written into ``out``)."""
        if self.mm_dtype is None:
            return linear_rows(h, self.weight, self.bias, out=out)
        return torch.add(torch.mm(h, self.weight_mm.t()), self.bias, out=out)

    def backward(self, dlogits: torch.Tensor, h_aug: torch.Tensor, dwb_t: torch.Tensor, dh_out: torch.Tensor) -> None:
        """[dW | db]ᵀ += h_augᵀ·dlogits into ``dwb_t`` [H+1, V]; dlogits·W into ``dh_out`` [r, H].

        ``h_aug`` = [h·s | s] (an ``operand``), s the rows' weights in the loss, so one product gives both the
        weight and the bias gradient; ``dlogits`` is unweighted (the caller scales ``dh_out`` by s). The
        transposed orientation keeps V the long, contiguous dimension of the product (faster on CPU)."""
        if self.mm_dtype is None:
            dwb_t.addmm_(h_aug.t(), dlogits)
            if self.weight_t is not None:
                dh_out.copy_(mm_nt(dlogits, self.weight_t))
            else:
                torch.mm(dlogits, self.weight, out=dh_out)
        else:
            d = dlogits.to(self.mm_dtype)
            dwb_t.add_(torch.mm(h_aug.t(), d))
            dh_out.copy_(torch.mm(d, self.weight_mm))


def _set_grads(layer: torch.nn.Linear, dwb_t: torch.Tensor) -> None:
    hidden = layer.weight.shape[1]
    for p, g in ((layer.weight, dwb_t[:hidden].t()), (layer.bias, dwb_t[hidden])):
        if p.grad is None:
            p.grad = g.contiguous()
        else:
            p.grad.add_(g)


def _augment(h: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """[h·s | s] ([r, H+1]): the factor that gives [dW | db]ᵀ of the output layer in one product."""
    return torch.cat([h * scale.unsqueeze(1), scale.unsqueeze(1)], dim=1)


def hidden_states(model: LSTMLM, x: torch.Tensor) -> torch.Tensor:
    """The LSTM outputs [B, L, H] that ``model(x)`` feeds to its output layer (before any dropout).

    Whole sequences go through ``nn.LSTM`` as it is (oneDNN on CPU, also without gradients: for a full
    sequence at these sizes it is 2-3x faster than the native kernel, measured with one thread; the native
    kernel is the faster one for the one-step calls of sampling, where ``LSTMLM._lstm`` keeps it)."""
    h, _ = model.lstm(model.embedding(model.inputs_for(x)))
    return h


@torch.no_grad()
def sample_with_probs(
    model: LSTMLM,
    n: int,
    generator: torch.Generator,
    probs_out: torch.Tensor | None = None,
    log_probs_out: torch.Tensor | None = None,
    mm_dtype: torch.dtype | None = None,
    batch_size: int = 2048,
) -> torch.Tensor:
    """``model.sample(n, generator)`` (the same draws from ``generator``, the same tokens) that also writes
    G(·|s_<t) and ln G(·|s_<t) of every step into ``probs_out`` / ``log_probs_out`` [L, n, V] (time-major).

    With ``mm_dtype`` the output products take bf16 operands (then the draws follow those logits).
    """
    was_training = model.training
    model.eval()
    try:
        return _sample(model, n, generator, probs_out, log_probs_out, _Output(model.output, mm_dtype), batch_size)
    finally:
        model.train(was_training)


def _sample(model, n, generator, probs_out, log_probs_out, out_layer, batch_size):
    """The loop of ``LSTMLM.sample``, keeping what ``sample_with_probs`` asks for. One LSTM step is
    ``torch.lstm`` on ``nn.LSTM``'s own weights (what its ``forward`` calls, without the per-call checks) with
    the kernel ``LSTMLM._lstm`` picks without gradients: native, not oneDNN, on CPU (oneDNN stays on for the
    output products: bf16 products need it)."""
    lstm = model.lstm
    weights, hidden = lstm._flat_weights, lstm.hidden_size
    device = model.output.weight.device
    toggle = device.type == "cpu" and torch._C._get_mkldnn_enabled()
    v = model.vocab_size
    seq = torch.empty((n, model.seq_len), dtype=torch.long, device=device)
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        tok = torch.full((b, 1), model.start_token, dtype=torch.long, device=device)
        logits = torch.empty((b, v), device=device)
        probs = torch.empty((b, v), device=device) if probs_out is None else None
        zeros = torch.zeros((1, b, hidden), device=device, dtype=logits.dtype)
        state = (zeros, zeros)
        for t in range(model.seq_len):
            if toggle:
                torch._C._set_mkldnn_enabled(False)
            try:
                h, *state = torch.lstm(model.embedding(tok), state, weights, lstm.bias, 1, 0.0, False, False, True)
            finally:
                if toggle:
                    torch._C._set_mkldnn_enabled(True)
            z = out_layer.logits(out_layer.operand(h[:, 0]), logits)
            if probs_out is None:
                torch._softmax(z, -1, False, out=probs)
                p = probs
            else:
                p = probs_out[t, start : start + b]
                torch._softmax(z, -1, False, out=p)
            if log_probs_out is not None:
                torch._log_softmax(z, -1, False, out=log_probs_out[t, start : start + b])
            # sample_categorical on these logits: softmax -> one uniform -> search of the cumulative sums
            u = torch.rand((b, 1), generator=generator, device=device, dtype=p.dtype)
            idx = search_cdf(p, u)
            seq[start : start + b, t] = idx[:, 0]
            tok = idx
    return seq


def _log_of_softmax(p: torch.Tensor, h: torch.Tensor, target: torch.Tensor, out: _Output) -> torch.Tensor:
    """ln p for the softmax probabilities ``p`` [n] of the ``target`` tokens (within a few 1e-7 of the
    log-softmax); rows whose probability is below 1e-30 (tiny or underflown) get the exact log-softmax of their
    logits, made again from their hidden states ``h`` (an ``out.operand``)."""
    lp = p.log()
    tiny = p < 1e-30
    if bool(tiny.any()):
        rows = tiny.nonzero().squeeze(1)
        z = out.logits(h[rows], torch.empty((rows.numel(), out.weight.shape[0]), device=p.device))
        lp[rows] = z.gather(1, target[rows].unsqueeze(1)).squeeze(1) - torch.logsumexp(z, dim=1)
    return lp


def _rows(n: int, chunk: int):
    for i in range(0, n, chunk):
        yield i, min(i + chunk, n)


def generator_kl_backward(
    g: LSTMLM,
    m: LSTMLM,
    s: torch.Tensor,
    probs: torch.Tensor,
    log_probs: torch.Tensor,
    mm_dtype: torch.dtype | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> float:
    """CoT generator loss J = mean_{b,t} Σ_v G(v|s_<t)[ln G(v|s_<t) − ln M(v|s_<t)] with M constant; adds ∇J to
    the gradients of every parameter of ``g`` and returns J.

    ``probs`` / ``log_probs`` [L, B, V] are G's conditionals on the prefixes of ``s`` [B, L], as written by
    ``sample_with_probs`` while drawing ``s``. Per row, with d = ln G − ln M and KL = Σ_v G·d, the gradient
    with respect to G's logits is G ⊙ (d − KL) / (B·L) (log-softmax Jacobian; the entropy term's Σ_v G = 1
    cancels), computed in one sweep per block. G's LSTM runs with autograd here (train mode);
    M's LSTM without (its mode is left as it is: the caller puts it in eval mode).
    """
    bsz, length = s.shape
    n = bsz * length
    with torch.no_grad():
        hm = hidden_states(m, s).transpose(0, 1).reshape(n, -1)  # time-major rows, like probs
    hg = hidden_states(g, s)
    hg_rows = hg.detach().transpose(0, 1).reshape(n, -1)
    p_rows, lp_rows = probs.reshape(n, -1), log_probs.reshape(n, -1)
    m_out, g_out = _Output(m.output, mm_dtype), _Output(g.output, mm_dtype)
    v = p_rows.shape[1]
    with torch.no_grad():
        hm = m_out.operand(hm)
        hg_aug = g_out.operand(_augment(hg_rows, torch.full((n,), 1.0 / n, device=s.device)))
        dwb = torch.zeros((hg_rows.shape[1] + 1, v), device=s.device)
        dh = torch.empty_like(hg_rows)
        kl = torch.empty((n,), device=s.device)
        logits = torch.empty((min(chunk, n), v), device=s.device)
        work = torch.empty_like(logits)
        for i, j in _rows(n, chunk):
            ml, d, p = logits[: j - i], work[: j - i], p_rows[i:j]
            ml = m_out.logits(hm[i:j], ml)
            torch._log_softmax(ml, -1, False, out=d)  # ln M
            torch.sub(lp_rows[i:j], d, out=d)  # ln G − ln M
            d.mul_(p)  # G ⊙ (ln G − ln M)
            torch.sum(d, 1, out=kl[i:j])  # KL(G || M) of each row
            d.addcmul_(p, kl[i:j].unsqueeze(1), value=-1.0)  # G ⊙ (ln G − ln M − KL) = (B·L) · ∂J/∂logits
            g_out.backward(d, hg_aug[i:j], dwb, dh[i:j])
        dh.mul_(1.0 / n)
        _set_grads(g.output, dwb)
    hg.backward(dh.view(length, bsz, -1).transpose(0, 1))
    return float(kl.mean())


class KLToConstant(torch.autograd.Function):
    """J = (1/N) Σ_n Σ_v G_n(v)[ln G_n(v) − ln M_n(v)], G_n = softmax(logits_n), ln M constant (CoT Eq. 13 per row),
    with its gradient in closed form, ∂J/∂logits_n = G_n ⊙ (ln G_n − ln M_n − KL_n) / N, made in the forward pass
    ``chunk`` rows at a time and kept: autograd stores no softmax, log-softmax or product of [N, V] and runs no
    backward pass through them. The same numbers as ``cot.cot_generator_loss`` on log_softmax(logits) to float
    rounding (tests/algorithms/test_cot_strong.py). Used where G's logits come out of autograd in one piece
    (cot-strong's hierarchical generator); ``generator_kl_backward`` goes further for the LSTM generator."""

    @staticmethod
    def forward(ctx, logits, m_log_probs, chunk: int = 128):
        n = logits.shape[0]
        grad = torch.empty_like(logits)
        kl = torch.empty(n, device=logits.device, dtype=logits.dtype)
        for i, j in _rows(n, chunk):
            lp = torch._log_softmax(logits[i:j], -1, False, out=grad[i:j])  # ln G, in the gradient's rows
            p = lp.exp()
            lp.sub_(m_log_probs[i:j]).mul_(p)  # G ⊙ (ln G − ln M)
            torch.sum(lp, 1, out=kl[i:j])
            lp.addcmul_(p, kl[i:j].unsqueeze(1), value=-1.0)  # G ⊙ (ln G − ln M − KL)
        ctx.save_for_backward(grad.div_(n))
        return kl.mean()

    @staticmethod
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return grad * g, None, None


def dropout_noise(h: torch.Tensor, sizes: list[int], p: float) -> torch.Tensor | None:
    """The multipliers {0, 1/(1−p)} that ``F.dropout(h_k, p)`` applies to each part h_k of ``h`` split along
    dim 0 into ``sizes`` (one LSTM pass per part, as ``model(x)`` on each batch): ``F.dropout`` itself, on
    ones laid out in memory like h_k would be (``nn.LSTM`` returns batch-first outputs that are time-major in
    memory, and the noise follows its input's layout), part after part, so the draws from torch's generator
    are the same and in the same order."""
    if p <= 0:
        return None
    order = sorted(range(h.dim()), key=lambda d: -h.stride(d))  # memory order of h's dims, outermost first
    inverse = [order.index(d) for d in range(h.dim())]
    parts = []
    for size in sizes:
        shape = [size if d == 0 else h.shape[d] for d in range(h.dim())]
        ones = torch.ones([shape[d] for d in order], device=h.device, dtype=h.dtype).permute(inverse)
        parts.append(F.dropout(ones, p, training=True))
    return torch.cat(parts, dim=0)


def mediator_nll_backward(
    m: LSTMLM,
    real: torch.Tensor,
    fake: torch.Tensor,
    dropout: float,
    mm_dtype: torch.dtype | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[float, float]:
    """The mediator's balanced NLL on ``real`` and ``fake`` (both [·, L]) in one LSTM pass over both.

    Returns (``loss``, ``bnll``): ``loss`` = ½[−mean ln M(real) − mean ln M(fake)] with dropout ``dropout`` on
    M's LSTM outputs (the same draws as ``mediator_loss`` makes in train mode), whose gradient is added to every
    parameter of ``m``; ``bnll`` the same quantity without dropout (logged only: the dropout sits after the
    LSTM, so both share its states). Per row the gradient of the NLL with respect to the logits is
    softmax − onehot(target), weighted by the row's share of the loss.
    """
    x = torch.cat([real, fake], dim=0)
    rows_real = real.numel()
    h = hidden_states(m, x)
    n = x.numel()
    with torch.no_grad():
        noise = dropout_noise(h, [real.shape[0], fake.shape[0]], dropout)
        dropout_noise_rows = None if noise is None else noise.reshape(n, -1)
        h_rows = h.detach().reshape(n, -1)
        hd_rows = h_rows if noise is None else h_rows * dropout_noise_rows
        target = x.reshape(n, 1)
        scale = torch.empty((n,), device=x.device)
        scale[:rows_real] = 0.5 / rows_real
        scale[rows_real:] = 0.5 / (n - rows_real)
        out = _Output(m.output, mm_dtype)
        h_mm, hd_mm, hd_aug = out.operand(h_rows), out.operand(hd_rows), out.operand(_augment(hd_rows, scale))
        v = out.weight.shape[0]
        dwb = torch.zeros((h_rows.shape[1] + 1, v), device=x.device)
        dh = torch.empty_like(h_rows)
        lp_plain = torch.empty((n, 1), device=x.device)
        p_train = torch.empty((n, 1), device=x.device)
        logits = torch.empty((min(chunk, n), v), device=x.device)
        work = torch.empty_like(logits)
        minus_one = torch.full((min(chunk, n), 1), -1.0, device=x.device)
        for i, j in _rows(n, chunk):
            z, d, tgt = logits[: j - i], work[: j - i], target[i:j]
            # logged balanced NLL: dropout off
            z = out.logits(h_mm[i:j], z)
            torch._log_softmax(z, -1, False, out=d)
            torch.gather(d, 1, tgt, out=lp_plain[i:j])
            # training pass, dropout on: M(target) and ∂NLL/∂logits = softmax − onehot(target)
            z = out.logits(hd_mm[i:j], logits[: j - i])
            torch._softmax(z, -1, False, out=d)
            torch.gather(d, 1, tgt, out=p_train[i:j])
            d.scatter_add_(1, tgt, minus_one[: j - i])
            out.backward(d, hd_aug[i:j], dwb, dh[i:j])
        _set_grads(m.output, dwb)
        dh.mul_(scale.unsqueeze(1) if noise is None else dropout_noise_rows * scale.unsqueeze(1))
        lp_train = _log_of_softmax(p_train.squeeze(1), hd_mm, target.squeeze(1), out)
    h.backward(dh.view_as(h))
    lp_plain, lp_train = lp_plain.view_as(x), lp_train.view_as(x)
    b = real.shape[0]
    loss = -0.5 * (lp_train[:b].mean() + lp_train[b:].mean())  # as mediator_loss evaluates it
    return float(loss), balanced_nll(lp_plain[:b], lp_plain[b:])
