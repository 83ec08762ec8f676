"""The one-layer LSTM language model used as oracle, generator and mediator.

Per step t, with x_t the embedding of the previous token (the start token's embedding at t = 1) and
h_0 = c_0 = 0 (protocol §1.1, SeqGAN's TARGET_LSTM):

    i = σ(x Wi + h Ui + bi)    f = σ(x Wf + h Uf + bf)    o = σ(x Wog + h Uog + bog)
    g = tanh(x Wc + h Uc + bc)    c = f ⊙ c + i ⊙ g    h = o ⊙ tanh(c)
    logits_t = h Wo + bo,    G(x_t | x_<t) = softmax(logits_t)

These are exactly PyTorch's ``nn.LSTM`` equations (gate order i, f, g, o), so the model is a plain
``nn.Embedding`` → ``nn.LSTM`` → ``nn.Linear``; the oracle's single TF bias goes into ``bias_ih`` with
``bias_hh`` = 0.

TensorFlow's LSTM cell (SeqGAN, CoT's generator, Texygen) has one bias per gate; ``nn.LSTM`` has two, whose
sum acts as one. A trainable ``bias_hh`` would get the same gradient as ``bias_ih`` and so move the gate biases
at twice the rate (Adam: two unit-sized steps), so it is held at zero and frozen (``one_bias_``). CoT's
mediator is a CuDNN LSTM, which has two trainable bias vectors like ``nn.LSTM``: ``two_biases=True`` keeps both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TextbenchError
from .kernels import linear_rows


#: rows of the [rows, V] output-layer blocks of no-grad scoring and sampling: 128 x 5,000 floats = 2.5 MB,
#: about an L2 cache (at V = 5,000 blocks of 64-128 rows were fastest; whole batches fall out of cache)
BLOCK_ROWS = 128


class LSTMLM(nn.Module):
    """Autoregressive LSTM over a fixed vocabulary and a fixed sequence length."""

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        hidden_dim: int,
        seq_len: int,
        start_token: int = 0,
        dropout: float = 0.0,
        two_biases: bool = False,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.start_token = start_token
        self.dropout = dropout  # on h_t before the output layer, only in train() mode (CoT mediator)
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.lstm = lstm if two_biases else one_bias_(lstm)  # CuDNN cells (CoT's mediator): two trained biases
        self.output = nn.Linear(hidden_dim, vocab_size)

    # -- initialisations -------------------------------------------------------------------------
    def init_normal_(self, std: float, generator: torch.Generator) -> "LSTMLM":
        """Every tensor ~ N(0, std²) (SeqGAN/CoT ``init_matrix``), with ``bias_hh`` = 0 (one TF bias)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith("lstm.bias_hh"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * std)
        return self

    def init_mediator_(self, std: float, generator: torch.Generator) -> "LSTMLM":
        """CoT mediator: embedding and output N(0, std²); each gate's LSTM kernel orthogonal; both biases 0
        (a CuDNN LSTM: build it with ``two_biases=True`` and both are trained, as in the official code)."""
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(self.embedding.weight.shape, generator=generator) * std)
            self.output.weight.copy_(torch.randn(self.output.weight.shape, generator=generator) * std)
            self.output.bias.copy_(torch.randn(self.output.bias.shape, generator=generator) * std)
            hidden = self.lstm.hidden_size
            for w in (self.lstm.weight_ih_l0, self.lstm.weight_hh_l0):
                for gate in range(4):
                    block = w[gate * hidden : (gate + 1) * hidden]
                    block.copy_(_orthogonal(block.shape, generator))
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_hh_l0.zero_()
        return self

    # -- teacher-forced scoring ------------------------------------------------------------------
    def inputs_for(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing inputs (start, x_1, ..., x_{L-1}) for targets (x_1, ..., x_L)."""
        start = torch.full((x.shape[0], 1), self.start_token, dtype=x.dtype, device=x.device)
        return torch.cat([start, x[:, :-1]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, L, V] of G(· | x_<t) for every position t of the target sequences ``x`` [B, L]."""
        self.check_ids(x)
        h, _ = self._lstm(self.embedding(self.inputs_for(x)))
        if self.training and self.dropout > 0:
            h = F.dropout(h, self.dropout, training=True)
        return self.output(h)

    def _lstm(self, inputs: torch.Tensor, state=None):
        """``nn.LSTM``, but without oneDNN (mkldnn) when no gradient is needed: on CPU its inference
        path costs ~20 ms per call at these sizes, over 100x the native kernel (profiled; see
        benchmarks/). With gradients the oneDNN path is the faster one and is kept."""
        if torch.is_grad_enabled() or inputs.device.type != "cpu" or not torch._C._get_mkldnn_enabled():
            return self.lstm(inputs, state)
        torch._C._set_mkldnn_enabled(False)
        try:
            return self.lstm(inputs, state)
        finally:
            torch._C._set_mkldnn_enabled(True)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """ln G(v | x_<t) for every position and every vocabulary entry: [B, L, V]."""
        return torch.log_softmax(self(x), dim=-1)

    def token_log_probs(self, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """ln G_T(x_t | x_<t) of the observed tokens, [B, L], with G_T = softmax(logits / T) (T = 1: G itself).

        Without autograd (evaluation) the output layer and log-softmax run ``BLOCK_ROWS`` positions at a
        time instead of on the whole [B, L, V] tensor: each row's numbers are the same, bit for bit (tested),
        and the blocks stay in cache (~5x faster at V = 5,000; ``benchmarks/test_bench_eval.py``)."""
        if temperature <= 0:
            raise TextbenchError(f"temperature must be > 0, got {temperature}")
        if torch.is_grad_enabled() or (self.training and self.dropout > 0):
            logits = self(x) if temperature == 1.0 else self(x) / temperature
            return torch.log_softmax(logits, dim=-1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
        self.check_ids(x)
        h, _ = self._lstm(self.embedding(self.inputs_for(x)))
        h = h.reshape(-1, h.shape[-1])
        target = x.reshape(-1, 1)
        out = torch.empty(target.shape[0], dtype=h.dtype, device=h.device)
        for r in range(0, h.shape[0], BLOCK_ROWS):
            logits = linear_rows(h[r : r + BLOCK_ROWS], self.output.weight, self.output.bias)
            if temperature != 1.0:
                logits = logits / temperature
            log_probs = torch._log_softmax(logits, -1, False, out=logits)  # in place: the same numbers, one buffer less
            out[r : r + BLOCK_ROWS] = log_probs.gather(-1, target[r : r + BLOCK_ROWS]).squeeze(-1)
        return out.view(x.shape)

    def check_ids(self, x: torch.Tensor) -> None:
        check_token_ids(x, self.vocab_size)

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator,
        temperature: float = 1.0,
        batch_size: int = 2048,
    ) -> torch.Tensor:
        """Ancestral sampling of ``n`` sequences [n, L], in batches, by inverse-CDF sampling.

        x_t ~ softmax(logits_t / T); one uniform per token (drawn per batch and position, [b, 1], in the model's
        dtype: a float64 model draws float64 uniforms, which defines the oracle's data), located in
        the cumulative sums of the probabilities (``inverse_cdf``): the same distribution as
        ``torch.multinomial`` at a fraction of the cost. The output layer, softmax and search (``search_cdf``)
        run ``BLOCK_ROWS`` rows at a time (per-row operations: the same tokens as on the whole batch, bit for
        bit, tested; the blocks stay in cache).
        """
        if temperature <= 0:
            raise TextbenchError(f"temperature must be > 0, got {temperature}")
        was_training = self.training
        self.eval()
        out = []
        device = self.output.weight.device
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            tok = torch.full((b, 1), self.start_token, dtype=torch.long, device=device)
            state = None
            seq = torch.empty((b, self.seq_len), dtype=torch.long, device=device)
            for t in range(self.seq_len):
                h, state = self._lstm(self.embedding(tok), state)
                h = h[:, 0]
                u = torch.rand((b, 1), generator=generator, device=device, dtype=self.output.weight.dtype)
                for r in range(0, b, BLOCK_ROWS):
                    logits = linear_rows(h[r : r + BLOCK_ROWS], self.output.weight, self.output.bias)
                    if temperature != 1.0:
                        logits = logits / temperature
                    probs = torch._softmax(logits, -1, False, out=logits)  # in place (a fresh tensor): softmax's numbers
                    seq[r : r + BLOCK_ROWS, t] = search_cdf(probs, u[r : r + BLOCK_ROWS])[:, 0]
                tok = seq[:, t : t + 1]
            out.append(seq)
        self.train(was_training)
        return torch.cat(out, dim=0) if out else torch.empty((0, self.seq_len), dtype=torch.long)


def one_bias_(lstm: nn.LSTM) -> nn.LSTM:
    """Make ``lstm`` a one-bias cell like TensorFlow's: ``bias_hh`` = 0 and frozen (never trained)."""
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_hh"):
                p.zero_()
                p.requires_grad_(False)
    return lstm


def check_token_ids(x: torch.Tensor, vocab_size: int) -> None:
    """One clear error unless ``x`` is an integer [batch, length] tensor of ids in [0, vocab_size)."""
    if x.dim() != 2:
        raise TextbenchError(f"expected token ids of shape [batch, length], got {tuple(x.shape)}")
    if x.dtype not in (torch.int64, torch.int32):
        raise TextbenchError(f"expected integer token ids, got {x.dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise TextbenchError(f"token id out of range [0, {vocab_size}): min {int(x.min())}, max {int(x.max())}")


def inverse_cdf(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Rows of softmax(logits) [N, V] sampled with the given uniforms u [N, k] ~ U[0, 1) -> [N, k] token ids.

    With C_v = Σ_{w≤v} softmax(logits)_w, return the smallest v with C_v > u·C_V (``searchsorted``, right
    side); a token of zero probability (C_v = C_{v−1}) is never returned. Scaling u by C_V absorbs the
    rounding of the float32 cumulative sum. The search itself is ``search_cdf``.
    """
    return search_cdf(torch.softmax(logits, dim=-1), u)


#: tokens per block of ``search_cdf``'s two-level search
CDF_BLOCK = 128
_SCRATCH: list[torch.Tensor] = []  # search_cdf's double buffer, kept: a fresh 2.5 MB buffer per call costs its page faults


def _scratch(numel: int) -> torch.Tensor:
    if not _SCRATCH or _SCRATCH[0].numel() < numel:
        _SCRATCH[:] = [torch.empty(numel, dtype=torch.float64)]
    return _SCRATCH[0][:numel]


def search_cdf(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The smallest v with C_v > u·C_V for probabilities p [N, V] (rows ≥ 0) and uniforms u [N, k] -> [N, k],
    where C = ``torch.cumsum(p, -1)`` (float32 values of a double-precision running sum on CPU) and the result
    is clamped to V − 1: exactly ``searchsorted(cumsum(p), u * C_V, right=True)``, without the cumulative sum
    over all V tokens (a sequential pass, the costliest step of sampling on CPU).

    On CPU, for V ≥ 4 blocks: the double-precision sums of ``CDF_BLOCK``-token blocks are accumulated (C at each
    block's end), the block holding the token is found among them, and only that block is accumulated further
    (in double, from the running sum before it, then rounded to float32 like ``cumsum``). Every C_v compared is
    then the float32 rounding of the same exact sum as ``cumsum``'s, up to the order of double additions
    (~1e-16 relative): the tokens are ``cumsum``'s unless a partial sum lies within that distance of a float32
    rounding boundary, and a row whose block disagrees with its block-end sum is redone with ``cumsum``
    (tests/models/test_lstm.py compares the two on millions of draws). Elsewhere (other devices, small V):
    ``cumsum`` itself.
    """
    n, v = p.shape
    if p.device.type != "cpu" or v < 4 * CDF_BLOCK or p.dtype != torch.float32:
        return _cumsum_search(p, u).clamp_(max=v - 1)
    k, nb = u.shape[1], -(-v // CDF_BLOCK)
    wide = _scratch(n * nb * CDF_BLOCK).view(n, nb * CDF_BLOCK)  # p in double, padded with zero-probability slots
    wide[:, :v].copy_(p)
    wide[:, v:].zero_()
    blocks = wide.view(n, nb, CDF_BLOCK)
    ends = blocks.sum(dim=-1).cumsum_(dim=1)  # Σ_{w < (j+1)·block} p_w in double
    ends32 = ends.float()  # C at each block's end (and C_V last), as cumsum rounds them
    x = u * ends32[:, -1:]  # [N, k]: u · C_V in float32, as the reference computes it
    j = torch.searchsorted(ends32, x, right=True)  # first block whose end exceeds x; nb: none does (token V − 1)
    jc = j.clamp(max=nb - 1)
    before = ends.gather(1, (jc - 1).clamp_(min=0)) * (jc > 0)  # [N, k] running sum before the block, double
    vals = blocks.gather(1, jc.unsqueeze(-1).expand(n, k, CDF_BLOCK))  # [N, k, block] copies, double
    vals[..., 0] += before  # the running sum enters the block first, as in the sequential sum
    inner = vals.cumsum_(dim=-1).float()
    i = torch.searchsorted(inner, x.unsqueeze(-1), right=True).squeeze(-1)  # [N, k] in [0, block]
    tok = torch.where(j >= nb, v, jc * CDF_BLOCK + i)
    redo = (i >= CDF_BLOCK) & (j < nb)  # the block's own sums never exceed x: a double-rounding disagreement
    if bool(redo.any()):
        rows = redo.any(dim=1).nonzero().squeeze(1)
        tok[rows] = _cumsum_search(p[rows], u[rows])
    return tok.clamp_(max=v - 1)


def _cumsum_search(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``search_cdf``'s definition, unclamped: searchsorted(cumsum(p), u · C_V, right side)."""
    cdf = torch.cumsum(p, dim=-1)
    return torch.searchsorted(cdf, u * cdf[:, -1:], right=True)


def sample_categorical(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per row of softmax(logits) [B, V]: one uniform per row from ``generator``, then ``inverse_cdf``."""
    u = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device, dtype=logits.dtype)
    return inverse_cdf(logits, u).squeeze(1)


def _orthogonal(shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(shape, generator=generator)
    q, r = torch.linalg.qr(a if shape[0] >= shape[1] else a.T)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q if shape[0] >= shape[1] else q.T
