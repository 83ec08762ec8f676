"""LeakGAN's generator (Guo et al., AAAI 2018): a MANAGER/WORKER pair steered by leaked features of the
discriminator's CNN, with exact sampling and exact teacher-forced log-probabilities.

Notation: V vocabulary, L sequence length, E/H generator embedding/hidden size (32/32), F = Σ num_filters
(300) the width of D's feature vector, k the goal size (16), c the step size (4), K = ⌈L/c⌉ segments;
segment j covers positions [jc, min((j+1)c, L)). Positions are 0-based: token x_t is generated from the
prefix x_<t = (x_0, …, x_{t−1}).

**Leaked features.** f_t = F_D(x_<t) ∈ R^F is D's feature vector (highway output, *no* dropout) of the
*current prefix*, padded to length L: positions ≥ t hold D's padding token, a learned embedding row of
its own (id V; Texygen's ``W_fe`` has V+1 rows and looks up id −1 + 1). So f_0 is the feature of the
all-padding sequence and f_L = D.features(x) of the finished sequence (eval mode). The L+1 prefixes are
not run through the CNN one by one: with tap products A[q, j] = W_j e_q (filter of width h, tap j) and
P[j] = W_j e_pad, window p in prefix t is b + Σ_j (A[p+j, j] if p + j < t else P[j]); a window is full
(p + h ≤ t; the value of the finished sequence), straddles t, or is all padding (all equal). The max over
time is a running max (``cummax``) of full windows, the h−1 straddling windows and one padding window
(where they exist, p ≤ L − h). The teacher-forced pass does this for all t at once, the sampler one t
at a time from the taps of the last h tokens, in the same order of additions; both equal
``D.features`` of the explicitly padded prefix up to float rounding (tested). Features are constants
for the generator: no gradient flows into D (Texygen's manager/worker parameter lists exclude D's).

**Manager.** h^M_t = LSTM_M(f_t, h^M_{t−1}),  g_t = normalise(W_m h^M_t + b_m) ∈ R^F (unit norm).

**Goals.** Segment j is steered by the sum of the manager goals of the previous segment,
G_0 = g_init (a learned vector),  G_j = Σ_{t=(j−1)c}^{jc−1} g_t  (j ≥ 1),
and the worker receives w_t = normalise(ψ G_{⌊t/c⌋}) ∈ R^k (ψ: F → k linear, no bias; Texygen
``g_change``). This is Texygen's piecewise-constant goal (it resets the goal sum every c steps); the paper
writes a sliding window Σ_{i=t−c}^{t} g_i.

**Worker.** h^W_t = LSTM_W(Emb(x_{t−1}), h^W_{t−1}) with x_{−1} = the start token and zero initial states;
O_t = reshape(W_w h^W_t + b_w) ∈ R^{V×k};  G(x_t = v | x_<t) = softmax_v(O_t w_t)  (temperature 1).
The bilinear logits are computed without forming O_t: [h^W_t, 1] ⊗ w_t (a (H+1)·k vector) times the
((H+1)·k) × V matrix that stacks W_w and b_w.

Everything at step t depends on x_<t only, so G is a proper autoregressive distribution over V^L:
``token_log_probs`` is ln G(x_t | x_<t) exactly and ``sample(temperature=1)`` draws from the same G
(tests check Σ_x G(x) = 1 by enumeration and sampled frequencies against exp(log-prob)). Sampling is
batched (one Python step per position, not per sample) by inverse-CDF like ``LSTMLM``.

Training-time quantities (used by ``textbench.algorithms.leakgan``): ``teacher_forced`` returns f
[B, L+1, F], the goals G [B, K, F] and the worker states; ``rollout`` completes given prefixes by sampling.

Deviations from Texygen's ``LeakganGenerator`` (each one a bug or an artefact of a fixed TF batch there):
- one definition of the model for sampling and scoring. Texygen's generation loop and its pre-training /
  scoring loop differ by one manager step: generating, the goal of segment j sums the manager outputs on
  the prefixes of lengths (j−1)c … jc−1 (as here); in the pre-training graph (also used for its NLL and
  the adversarial losses) on lengths (j−1)c+1 … jc. So Texygen trains and scores a slightly different
  model from the one it samples; here both are the generation loop's model;
- sampling at temperature 1 for evaluation and for adversarial samples (Texygen multiplies the logits by
  1.5 for evaluation and by 1.5/0.9 during adversarial steps, protocol §2.9-4); ``sample`` takes a
  ``temperature`` argument for explicit use;
- ``g_init`` is one learned F-vector shared by every sequence (Texygen: a [64, F] variable, a different
  initial goal per row of its fixed batch of 64, so samples depended on their batch position);
- features at sampling time never use dropout (Texygen also feeds keep-prob 1 there); feature dropout
  (Texygen keep 0.8) is applied only in MLE pre-training, by the algorithm;
- L need not be a multiple of c: the last segment may be shorter.
Initialisation as Texygen: every generator tensor ~ N(0, 0.1²) (LSTM: one bias, ``bias_hh`` = 0),
``g_init`` truncated normal (std 0.1, ±2 std).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TextbenchError
from .discriminator import CNNDiscriminator
from .kernels import linear, mm_nt, onednn
from .lstm import check_token_ids, one_bias_, sample_categorical


def _lstm_step(lstm: nn.LSTM, x: torch.Tensor, state):
    """One step of ``lstm`` (PyTorch gate order i, f, g, o) for x [n, in]; state (h, c) or None (zeros).

    Written out because on CPU each ``nn.LSTM`` call with a length-1 sequence costs far more than the
    arithmetic (native kernel: a multi-threaded ``tanh`` per call; oneDNN: its set-up). tanh(a) is
    evaluated as 2σ(2a) − 1 (equal up to float rounding)."""
    gates = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0)
    if state is not None:
        gates = gates + F.linear(state[0], lstm.weight_hh_l0, lstm.bias_hh_l0)
    else:
        gates = gates + lstm.bias_hh_l0
    i, f, g, o = gates.chunk(4, dim=1)
    g = 2.0 * torch.sigmoid(2.0 * g) - 1.0
    c = torch.sigmoid(i) * g
    if state is not None:
        c = c + torch.sigmoid(f) * state[1]
    h = torch.sigmoid(o) * (2.0 * torch.sigmoid(2.0 * c) - 1.0)
    return h, (h, c)


class LeakDiscriminator(CNNDiscriminator):
    """The LeakGAN discriminator: ``CNNDiscriminator`` plus a padding token and prefix features.

    The embedding has V+1 rows; row V is the padding token (U(−1, 1) like the others, learned with D).
    Real and generated sequences never contain it; it fills the unknown future of a prefix.
    ``prefix_features(x)`` [B, L+1, F] gives F_D(x_<t) for t = 0..L (see the module docstring);
    ``prefix_state``/``prefix_step``/``prefix_push`` compute the same thing one position at a time.
    """

    def __init__(self, vocab_size: int, emb_dim: int, filter_sizes, num_filters, dropout: float, l2: float,
                 highway: bool = True, *, generator: torch.Generator | None = None):
        super().__init__(vocab_size + 1, emb_dim, filter_sizes, num_filters, dropout, l2, highway, generator=generator)
        self.pad_id = vocab_size
        self.num_tokens = vocab_size
        self.max_filter = max(self.filter_sizes)

    def _check_length(self, length: int) -> None:
        if length < self.max_filter:
            raise TextbenchError(f"LeakGAN needs sequences of at least {self.max_filter} tokens (the widest D filter), got {length}")

    def _head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.highway(pooled) if self.highway is not None else pooled

    def _taps(self, e: torch.Tensor) -> list[torch.Tensor]:
        """Per-filter tap products W_{f,j} · e for embeddings e [..., E]: a list of [..., h, n_f]."""
        out = []
        for conv, h in zip(self.convs, self.filter_sizes):
            w = conv.weight  # [n_f, E, h]
            out.append(torch.einsum("...e,fej->...jf", e, w))
        return out

    @staticmethod
    def _window(bias: torch.Tensor, terms: list[torch.Tensor]) -> torch.Tensor:
        """b + Σ_j term_j, always added in the order j = 0, 1, … (the same in both code paths)."""
        v = bias + terms[0]
        for term in terms[1:]:
            v = v + term
        return v

    @torch.no_grad()
    def prefix_features(self, x: torch.Tensor) -> torch.Tensor:
        """F_D(x_<t) for t = 0..L: [B, L+1, F] (no dropout; no gradient).

        With tap products A[q, j] = W_j · e_q and P[j] = W_j · e_pad, window p of width h in prefix t is
        b + Σ_j (A[p+j, j] if p+j < t else P[j]); full windows enter a running max (``cummax``)."""
        b, length = x.shape
        self._check_length(length)
        taps = self._taps(self.embedding(x))  # [B, L, h, n_f] per filter
        pad_taps = self._taps(self.embedding.weight[self.pad_id])  # [h, n_f]
        neg = torch.finfo(pad_taps[0].dtype).min
        pooled = []
        for conv, h, a, pt in zip(self.convs, self.filter_sizes, taps, pad_taps):
            nf = pt.shape[-1]
            n_win = length - h + 1
            cand = []
            # full windows p = 0..L−h, available from t = p + h on
            full = self._window(conv.bias, [a[:, j : j + n_win, j] for j in range(h)])  # [B, n_win, n_f]
            full = full.cummax(dim=1).values
            cand.append(torch.cat([full.new_full((b, h, nf), neg), full], dim=1))  # index t = p + h
            # straddling windows with m = 1..h−1 known tokens: p = t − m
            for m in range(1, h):
                part = self._window(conv.bias, [a[:, j : j + n_win, j] if j < m else pt[j].expand(b, n_win, nf) for j in range(h)])
                cand.append(torch.cat([part.new_full((b, m, nf), neg), part, part.new_full((b, length + 1 - m - n_win, nf), neg)], dim=1))
            # empty windows (all padding), present while t ≤ L − h
            empty = self._window(conv.bias, [pt[j] for j in range(h)])
            cand.append(torch.cat([empty.expand(b, n_win, nf), empty.new_full((b, length + 1 - n_win, nf), neg)], dim=1))
            best = cand[0]
            for c in cand[1:]:
                best = torch.maximum(best, c)
            pooled.append(F.relu(best))
        return self._head(torch.cat(pooled, dim=-1))

    # -- incremental (sampling) --------------------------------------------------------------------
    @torch.no_grad()
    def prefix_state(self, n: int, length: int) -> dict:
        """State for ``prefix_step``: running maxima of full windows and the taps of the last h tokens."""
        self._check_length(length)
        pad_taps = self._taps(self.embedding.weight[self.pad_id])
        neg = torch.finfo(pad_taps[0].dtype).min
        return {
            "length": length,
            "pad": pad_taps,
            "cmax": [torch.full((n, pt.shape[-1]), neg, device=pt.device) for pt in pad_taps],
            "recent": [],  # taps of the last max-filter tokens, oldest first: list of per-filter [n, h, n_f]
        }

    @torch.no_grad()
    def prefix_step(self, state: dict, t: int) -> torch.Tensor:
        """F_D(x_<t) [n, F] from a state that has seen x_<t (``prefix_push`` of positions 0..t−1)."""
        length, recent = state["length"], state["recent"]
        pooled = []
        for i, (conv, h) in enumerate(zip(self.convs, self.filter_sizes)):
            pt = state["pad"][i]
            n = state["cmax"][i].shape[0]

            def tap(q: int, j: int):  # A[q, j] for a known position q (t−h ≤ q < t)
                return recent[len(recent) - (t - q)][i][:, j]

            if t - h >= 0:  # the window p = t − h just became full
                full = self._window(conv.bias, [tap(t - h + j, j) for j in range(h)])
                state["cmax"][i] = torch.maximum(state["cmax"][i], full)
            best = state["cmax"][i]
            for m in range(1, h):
                p = t - m
                if 0 <= p <= length - h:
                    part = self._window(conv.bias, [tap(p + j, j) if j < m else pt[j].expand(n, -1) for j in range(h)])
                    best = torch.maximum(best, part)
            if t <= length - h:
                best = torch.maximum(best, self._window(conv.bias, [pt[j] for j in range(h)]).expand(n, -1))
            pooled.append(F.relu(best))
        return self._head(torch.cat(pooled, dim=-1))

    @torch.no_grad()
    def prefix_push(self, state: dict, t: int, tokens: torch.Tensor) -> None:
        """Append x_t (after it is known) to the state."""
        state["recent"].append(self._taps(self.embedding(tokens)))
        if len(state["recent"]) > self.max_filter:
            state["recent"].pop(0)


class LeakGANGenerator(nn.Module):
    """Manager/worker generator over the features of ``discriminator`` (see the module docstring).

    The discriminator is a submodule: G's distribution depends on D's feature extractor, so the
    generator's state_dict (and ``generator.pt``) holds D too. ``worker_parameters()`` and
    ``manager_parameters()`` are the two parameter sets the algorithm optimises separately.
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        discriminator: LeakDiscriminator,
        emb_dim: int = 32,
        hidden_dim: int = 32,
        goal_size: int = 16,
        step_size: int = 4,
        start_token: int = 0,
    ):
        super().__init__()
        if step_size < 1 or goal_size < 1:
            raise TextbenchError(f"step size and goal size must be ≥ 1, got {step_size}, {goal_size}")
        discriminator._check_length(seq_len)
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.start_token = start_token
        self.goal_size = goal_size
        self.step_size = step_size
        self.hidden_dim = hidden_dim
        self.discriminator = discriminator
        feat = discriminator.feature_dim
        self.feature_dim = feat
        # worker
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.worker = one_bias_(nn.LSTM(emb_dim, hidden_dim, batch_first=True))
        self.worker_out = nn.Parameter(torch.zeros(hidden_dim + 1, goal_size, vocab_size))  # [W_w; b_w] as [H+1, k, V]
        self.goal_proj = nn.Parameter(torch.zeros(feat, goal_size))  # ψ
        # manager
        self.manager = one_bias_(nn.LSTM(feat, hidden_dim, batch_first=True))
        self.manager_out = nn.Linear(hidden_dim, feat)
        self.goal_init = nn.Parameter(torch.zeros(feat))

    @property
    def num_segments(self) -> int:
        return math.ceil(self.seq_len / self.step_size)

    def worker_parameters(self) -> list[nn.Parameter]:
        """The worker's trainable tensors (the LSTMs' frozen ``bias_hh`` is not one)."""
        return [p for p in (self.embedding.weight, *self.worker.parameters(), self.worker_out, self.goal_proj) if p.requires_grad]

    def manager_parameters(self) -> list[nn.Parameter]:
        return [p for p in (*self.manager.parameters(), *self.manager_out.parameters(), self.goal_init) if p.requires_grad]

    @torch.no_grad()
    def init_texygen_(self, std: float, generator: torch.Generator) -> "LeakGANGenerator":
        """Every generator tensor ~ N(0, std²) (``bias_hh`` = 0: TF's cell has one bias); g_init
        truncated normal (std, cut at ±2 std). D keeps its own initialisation."""
        for p in self.worker_parameters() + self.manager_parameters():
            if p is self.goal_init:
                nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std, generator=generator)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * std)
        return self

    # -- pieces shared by scoring and sampling ---------------------------------------------------------
    def _goal_weights(self, goals: torch.Tensor) -> torch.Tensor:
        """w = normalise(ψ G): [..., F] → [..., k]."""
        return F.normalize(goals @ self.goal_proj, dim=-1, eps=1e-12)

    def _logits(self, hw: torch.Tensor, w: torch.Tensor, out_t: torch.Tensor | None = None) -> torch.Tensor:
        """O_t w_t for worker states hw [N, H] and goal weights w [N, k]: [N, V].

        The product z·[W_w; b_w] ([N, (H+1)k]·[(H+1)k, V], the model's largest) runs on oneDNN's inner product
        where it applies (``kernels.linear``, ~2x MKL on this project's CPU, with autograd); ``out_t`` = the
        ``_output_t()`` of the current weights, made once per sampling pass instead of once per step."""
        ones = torch.ones_like(hw[:, :1])
        z = (torch.cat([hw, ones], dim=1).unsqueeze(2) * w.unsqueeze(1)).reshape(hw.shape[0], -1)
        if out_t is not None:
            return mm_nt(z, out_t)
        return linear(z, self.worker_out.reshape(-1, self.vocab_size).t())

    def _output_t(self) -> torch.Tensor | None:
        """[W_w; b_w]ᵀ as a contiguous [V, (H+1)k] weight for ``_logits`` without gradients (None off oneDNN)."""
        if torch.is_grad_enabled() or not onednn(self.worker_out):
            return None
        return self.worker_out.reshape(-1, self.vocab_size).t().contiguous()

    def check_ids(self, x: torch.Tensor) -> None:
        check_token_ids(x, self.vocab_size)

    # -- teacher forcing -----------------------------------------------------------------------------
    def teacher_forced(self, x: torch.Tensor, feature_dropout: float = 0.0) -> dict[str, torch.Tensor]:
        """One teacher-forced pass over x [B, L].

        Returns ``features`` f [B, L+1, F] (constants; with ``feature_dropout`` > 0 one inverted-dropout
        mask is applied to them, as Texygen's pre-training feeds keep-prob 0.8 to the feature extractor),
        ``goals`` G [B, K, F] (differentiable in the manager), ``worker_h`` [B, L, H] and
        ``segment`` [L] (the segment index ⌊t/c⌋ of every position).
        """
        self.check_ids(x)
        b, length = x.shape
        c = self.step_size
        k_seg = math.ceil(length / c)
        f = self.discriminator.prefix_features(x)
        if feature_dropout > 0:
            f = F.dropout(f, feature_dropout, training=True)
        hm, _ = self.manager(f[:, :length])
        g = F.normalize(self.manager_out(hm), dim=-1, eps=1e-12)  # [B, L, F]
        if k_seg > 1:
            used = g[:, : (k_seg - 1) * c]  # goals of segments 0..K−2 steer segments 1..K−1
            sums = used.reshape(b, k_seg - 1, c, -1).sum(dim=2)
            goals = torch.cat([self.goal_init.expand(b, 1, -1), sums], dim=1)
        else:
            goals = self.goal_init.expand(b, 1, -1)
        start = torch.full((b, 1), self.start_token, dtype=x.dtype, device=x.device)
        hw, _ = self.worker(self.embedding(torch.cat([start, x[:, :-1]], dim=1)))
        segment = torch.arange(length, device=x.device) // c
        return {"features": f, "goals": goals, "worker_h": hw, "segment": segment}

    def log_probs_from(self, out: dict[str, torch.Tensor], x: torch.Tensor, detach_goals: bool = False, chunk: int = 4096,
                       temperature: float = 1.0) -> torch.Tensor:
        """ln G_T(x_t | x_<t) [B, L] from a ``teacher_forced`` pass (goals detached for the worker's loss);
        G_T = softmax(logits / T), T = 1 by default."""
        goals = out["goals"].detach() if detach_goals else out["goals"]
        w = self._goal_weights(goals)[:, out["segment"]]  # [B, L, k]
        b, length = x.shape
        hw = out["worker_h"].reshape(b * length, -1)
        w = w.reshape(b * length, -1)
        target = x.reshape(-1)
        if torch.is_grad_enabled():
            chunk = b * length  # one piece: autograd keeps what it needs anyway
        lps = []
        out_t = self._output_t()
        for i in range(0, b * length, chunk):
            logits = self._logits(hw[i : i + chunk], w[i : i + chunk], out_t)
            if temperature != 1.0:
                logits = logits / temperature
            lps.append(torch.log_softmax(logits, dim=-1).gather(1, target[i : i + chunk, None]).squeeze(1))
        return torch.cat(lps).view(b, length)

    def token_log_probs(self, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """ln G_T(x_t | x_<t) of the observed tokens: [B, L] (G_T = softmax(logits / T); no dropout)."""
        if temperature <= 0:
            raise TextbenchError(f"temperature must be > 0, got {temperature}")
        return self.log_probs_from(self.teacher_forced(x), x, temperature=temperature)

    # -- sampling ------------------------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, n: int, generator: torch.Generator, temperature: float = 1.0, forced: torch.Tensor | None = None,
             forced_len: torch.Tensor | None = None, return_log_probs: bool = False):
        """Ancestral sampling of n sequences; rows with ``forced_len`` = m copy ``forced[:, :m]`` and sample
        the rest. ``forced_len`` must be sorted ascending (then the rows that sample at step t are a
        leading block). With ``return_log_probs``: also ln G(x_t | x_<t) at temperature 1 of every sampled
        token (forced positions: 0)."""
        device = self.worker_out.device
        length, c = self.seq_len, self.step_size
        d = self.discriminator
        fstate = d.prefix_state(n, length)
        tok = torch.full((n,), self.start_token, dtype=torch.long, device=device)
        seq = torch.empty((n, length), dtype=torch.long, device=device)
        lps = torch.zeros((n, length), device=device) if return_log_probs else None
        wstate = mstate = None
        acc = torch.zeros((n, self.feature_dim), device=device)
        w = None
        out_t = self._output_t()
        for t in range(length):
            f_t = d.prefix_step(fstate, t)
            hm, mstate = _lstm_step(self.manager, f_t, mstate)
            g_t = F.normalize(self.manager_out(hm), dim=-1, eps=1e-12)
            if t % c == 0:
                goal = self.goal_init.expand(n, -1) if t == 0 else acc
                w = self._goal_weights(goal)
                acc = g_t
            else:
                acc = acc + g_t
            hw, wstate = _lstm_step(self.worker, self.embedding(tok), wstate)
            m = n if forced_len is None else int(torch.searchsorted(forced_len, torch.tensor(t, device=forced_len.device), right=True))
            new = forced[:, t].clone() if forced is not None else torch.empty(n, dtype=torch.long, device=device)
            if m > 0:
                logits = self._logits(hw[:m], w[:m], out_t)
                drawn = sample_categorical(logits / temperature if temperature != 1.0 else logits, generator)
                new[:m] = drawn
                if return_log_probs:
                    lps[:m, t] = torch.log_softmax(logits, dim=-1).gather(1, drawn[:, None]).squeeze(1)
            seq[:, t] = new
            tok = new
            d.prefix_push(fstate, t, new)
        return (seq, lps) if return_log_probs else seq

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, temperature: float = 1.0, batch_size: int = 2048) -> torch.Tensor:
        """``n`` sequences [n, L] from softmax(logits / temperature), in batches (never trains)."""
        if temperature <= 0:
            raise TextbenchError(f"temperature must be > 0, got {temperature}")
        out = [self._run(min(batch_size, n - s), generator, temperature) for s in range(0, n, batch_size)]
        return torch.cat(out) if out else torch.empty((0, self.seq_len), dtype=torch.long)

    @torch.no_grad()
    def sample_with_log_probs(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples [n, L] and the sampler's own ln G(x_t | x_<t) [n, L] (for checking ``token_log_probs``)."""
        return self._run(n, generator, return_log_probs=True)

    @torch.no_grad()
    def rollout(self, x: torch.Tensor, prefix_lens: list[int], num: int, generator: torch.Generator) -> torch.Tensor:
        """Monte-Carlo completions of x [B, L]: for every m in ``prefix_lens`` (ascending) and every
        r < ``num``, x[:, :m] followed by tokens sampled from G. Returns [len(prefix_lens) · num · B, L],
        ordered (prefix length, rollout, batch row)."""
        if list(prefix_lens) != sorted(prefix_lens):
            raise ValueError("prefix_lens must be ascending")
        b = x.shape[0]
        reps = len(prefix_lens) * num
        forced = x.repeat(reps, 1)
        forced_len = torch.tensor(prefix_lens, device=x.device).repeat_interleave(num * b)
        return self._run(reps * b, generator, forced=forced, forced_len=forced_len)
