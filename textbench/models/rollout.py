"""Monte-Carlo rollout rewards (SeqGAN ``rollout.py`` / Texygen ``*Reward.py``), batched.

For generated sequences x [B, L] and K rollouts, every proper prefix x_{1..t} (t = 1..L−1) is completed
K times by sampling x_{t+1..L} from the rollout policy π (teacher-forced on the prefix), and

    R[b, t] = (1/K) Σ_k  r(Y_{t,k})[b]     for t < L,        R[b, L] = r(x)[b],

where Y_{t,k} [B, L] is the batch of B completions of the prefixes of length t in rollout k (exactly the
batch SeqGAN's ``get_reward`` feeds to D for (rollout k, given_num t)) and ``reward_fn`` r maps such
batches to one score per sequence. SeqGAN/MaliGAN-style rewards are per sequence (D(y) = P(real));
RankGAN's is relative to the other sequences of the same batch, hence the batch-of-B interface:

    reward_fn(Y: LongTensor [G, B, L]) -> FloatTensor [G, B]     (G independent batches of B)

``rollout_rewards`` (batched) runs π once over x, keeping the LSTM state after every prefix, then samples
all B·(L−1)·K continuations together: one loop over the L−1 time positions (no loop over samples, prefixes
or rollouts); at position s the rows of every prefix shorter than s take one step. The first token after
prefix t has the same distribution for all K rollouts, so its softmax is computed once per (b, t).
Logits are processed ``chunk_rows`` rows at a time (default: 2^20 / V rows, ~4 MB — on CPU larger chunks
are *slower*, the softmax/cumsum passes fall out of cache) and the reward function is called on chunks of
``reward_batch`` sequences, so memory stays bounded.

``rollout_rewards_naive`` is the reference: SeqGAN's loop over rollouts k and prefix lengths t, each
re-running π over the prefix and sampling the rest with batch B.

Randomness: both draw one uniform per (t, k, b, position) from ``generator`` as a single tensor
U [L−1, K, B, L] (or take ``uniforms``), and sample x_s = min{v : C_v > u·C_V} (inverse CDF of
softmax(logits), like ``LSTMLM.sample``; the batched path with ``FusedSampler``). Given the same generator
state they therefore produce the same completions and rewards, up to float rounding: a token differs only
when u falls within the rounding error of a CDF step — ``FusedSampler``'s probabilities come from another
exp (a few ulp apart) and its block sums are float32, so about one token in 10^4 differs at V = 5,000 (none
in the small-vocabulary tests).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .kernels import onednn
from .lstm import inverse_cdf

RewardFn = Callable[[torch.Tensor], torch.Tensor]
CHUNK_ELEMENTS = 1 << 20  # default logits chunk: about 4 MB of floats (cache-sized; bigger chunks run slower on CPU)


def sequence_reward(score: Callable[[torch.Tensor], torch.Tensor], batch: int = 256) -> RewardFn:
    """Turn a per-sequence score [N, L] -> [N] (e.g. ``D.prob_real``) into a ``reward_fn``, evaluated in
    chunks of ``batch`` sequences under ``no_grad``."""

    @torch.no_grad()
    def fn(y: torch.Tensor) -> torch.Tensor:
        g, b, length = y.shape
        flat = y.reshape(g * b, length)
        out = torch.cat([score(flat[i : i + batch]) for i in range(0, flat.shape[0], batch)])
        return out.view(g, b)

    return fn


def draw_uniforms(x: torch.Tensor, num_rollouts: int, generator: torch.Generator | None) -> torch.Tensor:
    """U [L−1, K, B, L] ~ U[0, 1): the uniform of (prefix length t = index+1, rollout k, row b, position)."""
    b, length = x.shape
    return torch.rand((length - 1, num_rollouts, b, length), generator=generator, device=x.device)


class FusedSampler:
    """The same inverse-CDF draw as ``inverse_cdf``, with three passes over the [N, V] logits instead of ~8.

    * no max-subtraction pass: every row is shifted by an upper bound of its logits computed from the
      norms, β_n = ‖h_n‖ · max_v ‖w_v‖ + max_v b_v ≥ max_v (h_n·w_v + b_v), folded into the matrix
      product as an extra input column (h, −β) times an extra weight row of ones; so
      exp(logits − β) ∈ (0, 1] cannot overflow (a row whose sum underflows below 1e-30 is redrawn with
      ``inverse_cdf``);
    * no normalisation pass: u is scaled by the row total instead;
    * with oneDNN (CPU float32), the product is oneDNN's inner product (~2x MKL's sgemm on AMD AVX-512
      CPUs) with its sigmoid fused in, and exp(z) = σ(z) / (1 − σ(z)) = 1 / (1/σ(z) − 1) is finished
      by three cheap in-place passes (z = logit − β ≤ 0, so σ ≤ 1/2: no cancellation) — together ~1.6x
      faster than the product followed by torch's ``exp_``, the costliest pass (profiled in
      ``benchmarks/test_bench_rollout.py``); the probabilities agree with exp(logits − β) to a few ulp;
    * no full cumulative sum: the vocabulary is cut into ⌈√V⌉-token blocks (padded with zero-probability
      slots), the block sums are accumulated, the block is found by searching them, and only that block
      is accumulated and searched.

    The token is the smallest v with C_v > u·C_V, as in ``inverse_cdf``; the two differ only when u
    falls within float rounding of a CDF step (the block sums are shorter, so slightly *more* accurate
    than one float32 cumulative sum over V terms).
    """

    def __init__(self, output: torch.nn.Linear):
        w, b = output.weight.detach(), output.bias.detach()
        self.output = output
        self.vocab, hidden = w.shape
        self.block = max(1, math.isqrt(self.vocab - 1) + 1) if self.vocab > 1 else 1
        self.blocks = -(-self.vocab // self.block)
        padded = self.blocks * self.block
        self.weight = w.new_zeros((hidden + 1, padded))
        self.weight[:hidden, : self.vocab] = w.T
        self.weight[hidden, : self.vocab] = 1.0
        self.weight_nt = self.weight.T.contiguous()  # [V', H+1] for oneDNN's inner product
        self.bias = b.new_full((padded,), float("-inf"))
        self.bias[: self.vocab] = b
        self.w_norm = w.norm(dim=1).max()
        self.b_max = b.max()

    def __call__(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Tokens [N, k] for hidden states h [N, H] and uniforms u [N, k]."""
        n, k = u.shape
        bound = h.norm(dim=1, keepdim=True) * self.w_norm + self.b_max
        x = torch.cat([h, -bound], dim=1)
        if onednn(x):  # σ(logits − β) from oneDNN, then exp = σ / (1 − σ) (see the class docstring)
            p = torch.ops.mkldnn._linear_pointwise(x, self.weight_nt, self.bias, "sigmoid", [], "")
            p.reciprocal_().sub_(1.0).reciprocal_()  # 1 / (1/σ − 1) = σ / (1 − σ), in place: [N, V'] in [0, 1]
        else:
            p = torch.addmm(self.bias, x, self.weight).exp_()
        blocks = p.view(n, self.blocks, self.block)
        cum_blocks = blocks.sum(dim=-1).cumsum_(dim=-1)  # [N, nb]
        target = u * cum_blocks[:, -1:]
        j = torch.searchsorted(cum_blocks, target, right=True).clamp_(max=self.blocks - 1)  # [N, k]
        before = cum_blocks.gather(1, (j - 1).clamp(min=0)) * (j > 0)
        inner = blocks.gather(1, j.unsqueeze(-1).expand(n, k, self.block)).cumsum_(dim=-1)  # [N, k, block]
        i = torch.searchsorted(inner, (target - before).unsqueeze(-1), right=True).squeeze(-1).clamp_(max=self.block - 1)
        tok = (j * self.block + i).clamp_(max=self.vocab - 1)
        bad = ~(cum_blocks[:, -1] > 1e-30)
        if bool(bad.any()):
            tok[bad] = inverse_cdf(self.output(h[bad]), u[bad])
        return tok


def _step(policy, tokens: torch.Tensor, state):
    """One LSTM step of ``policy`` on ``tokens`` [N] from ``state`` ([1, N, H], [1, N, H])."""
    _, state = policy._lstm(policy.embedding(tokens).unsqueeze(1), state)
    return state


@torch.no_grad()
def rollout_completions(
    policy,
    x: torch.Tensor,
    num_rollouts: int,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
    chunk_rows: int | None = None,
) -> torch.Tensor:
    """All completions Y [L−1, K, B, L]: Y[t−1, k, b, :t] = x[b, :t], the rest sampled from ``policy``."""
    policy.check_ids(x)
    b, length = x.shape
    k = int(num_rollouts)
    if k < 1:
        raise ValueError(f"num_rollouts must be >= 1, got {num_rollouts}")
    u_all = draw_uniforms(x, k, generator) if uniforms is None else uniforms
    if tuple(u_all.shape) != (length - 1, k, b, length):
        raise ValueError(f"uniforms must have shape {(length - 1, k, b, length)}, got {tuple(u_all.shape)}")
    if not chunk_rows:
        chunk_rows = max(64, CHUNK_ELEMENTS // policy.vocab_size)
    was_training = policy.training
    policy.eval()
    try:
        # 1. the state after every prefix x_{1..t}: inputs (start, x_1, ..., x_{L-1}), one step at a time
        emb = policy.embedding(policy.inputs_for(x))
        prefix_state, state = [None], None
        for s in range(length):
            _, state = policy._lstm(emb[:, s : s + 1], state)
            prefix_state.append(state)  # prefix_state[t] = state after x_1..x_{t}  (index t = s)
        prefix_state = prefix_state[1:]
        seq = x.view(1, 1, b, length).expand(length - 1, k, b, length).clone()
        hidden = policy.lstm.hidden_size
        sampler = FusedSampler(policy.output)
        h_run = x.new_empty((1, 0, hidden), dtype=emb.dtype)
        c_run = h_run
        # 2. position s (0-based) is sampled for every prefix length t <= s; rows ordered (t, k, b)
        for s in range(1, length):
            # rows continuing from earlier prefixes (t < s): their state already holds x_{..s-1}
            n_old = (s - 1) * k * b
            if n_old:
                u = u_all[: s - 1, :, :, s].reshape(n_old).contiguous()
                h = h_run[0]
                tok_old = torch.cat([sampler(h[i : i + chunk_rows], u[i : i + chunk_rows, None])[:, 0] for i in range(0, n_old, chunk_rows)])
                seq[: s - 1, :, :, s] = tok_old.view(s - 1, k, b)
            # the new prefix length t = s: one softmax per row b, K draws
            h_new, c_new = prefix_state[s]
            u_new = u_all[s - 1, :, :, s].T.contiguous()  # [B, K]
            tok_new = sampler(h_new[0], u_new).T  # [K, B]
            seq[s - 1, :, :, s] = tok_new
            if s < length - 1:
                h_run = torch.cat([h_run, h_new.expand(1, b, hidden).repeat(1, k, 1)], dim=1)
                c_run = torch.cat([c_run, c_new.expand(1, b, hidden).repeat(1, k, 1)], dim=1)
                tok = seq[:s, :, :, s].reshape(-1)
                h_run, c_run = _step(policy, tok, (h_run, c_run))
        return seq
    finally:
        policy.train(was_training)


@torch.no_grad()
def rollout_rewards(
    policy,
    x: torch.Tensor,
    num_rollouts: int,
    reward_fn: RewardFn,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
    chunk_rows: int | None = None,
    reward_batch: int = 1024,
) -> torch.Tensor:
    """Batched Monte-Carlo rewards R [B, L] (module docstring)."""
    b, length = x.shape
    k = int(num_rollouts)
    y = rollout_completions(policy, x, k, generator, uniforms, chunk_rows)  # [L-1, K, B, L]
    groups = y.reshape((length - 1) * k, b, length)
    per_call = max(1, reward_batch // b)
    scores = torch.cat([reward_fn(groups[i : i + per_call]) for i in range(0, groups.shape[0], per_call)])
    rewards = torch.empty((b, length), dtype=scores.dtype, device=scores.device)
    rewards[:, : length - 1] = scores.view(length - 1, k, b).mean(dim=1).T
    rewards[:, length - 1] = reward_fn(x.unsqueeze(0))[0]
    return rewards


@torch.no_grad()
def rollout_rewards_naive(
    policy,
    x: torch.Tensor,
    num_rollouts: int,
    reward_fn: RewardFn,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
    fused_sampler: bool = False,
) -> torch.Tensor:
    """Reference R [B, L]: SeqGAN's ``get_reward`` loop (for k: for t = 1..L−1: roll out, score).

    Tokens are drawn with the reference sampler (softmax, cumulative sum, search: ``LSTMLM.sample``);
    ``fused_sampler=True`` uses the batched path's ``FusedSampler`` instead (to separate, in the
    benchmark, what batching gains from what the sampler gains)."""
    policy.check_ids(x)
    b, length = x.shape
    k = int(num_rollouts)
    u_all = draw_uniforms(x, k, generator) if uniforms is None else uniforms
    was_training = policy.training
    policy.eval()
    fused = FusedSampler(policy.output) if fused_sampler else None
    try:
        inputs = policy.inputs_for(x)
        rewards = torch.zeros((b, length))
        for r in range(k):
            for t in range(1, length):
                y = x.clone()
                out, state = policy._lstm(policy.embedding(inputs[:, : t + 1]))  # consumed x_1..x_t
                h = out[:, -1]
                for s in range(t, length):
                    u = u_all[t - 1, r, :, s, None].contiguous()
                    tok = (fused(h, u) if fused is not None else inverse_cdf(policy.output(h), u))[:, 0]
                    y[:, s] = tok
                    if s < length - 1:
                        state = _step(policy, tok, state)
                        h = state[0][0]
                rewards[:, t - 1] += reward_fn(y.unsqueeze(0))[0].to(rewards.dtype)
        rewards[:, : length - 1] /= k
        rewards[:, length - 1] = reward_fn(x.unsqueeze(0))[0]
        return rewards
    finally:
        policy.train(was_training)
