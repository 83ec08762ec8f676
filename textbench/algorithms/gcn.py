"""Generative Cooperative Networks (GCN; Lamprier et al., ICML 2022), on the shared phases.

After MLE pre-training of G and pre-training of the discriminator D (the shared phases of
``phases.py``), each GCN iteration t, with p_{t−1} the generator before the iteration:

1. **D** (``gcn_d_steps`` Adam steps): minibatches of B real sequences (the next training batch, label 1)
   and B fresh samples of p_{t−1} (label 0), standard GAN discriminator loss = mean softmax cross-entropy
   (+ the l2 penalty of D's output layer, as every D here), dropout on.
2. **Proposal**: N = ``gcn_samples`` sequences y_i ~ q̂. ``gcn_proposal = generator`` (default): q̂ = p_{t−1}.
   ``nucleus``: q̂(y) = Π_t q̂(y_t|y_<t), q̂(·|y_<t) = p_{t−1}(·|y_<t) restricted to its top-p nucleus (the
   smallest set of most probable tokens of mass ≥ ``gcn_top_p``) and renormalised.
3. **Weights** (self-normalised importance weights of the target q_t ∝ p_{t−1}·D_t):
   w_i = p_{t−1}(y_i) · D(y_i) / q̂(y_i),   ŵ_i = w_i / Σ_j w_j   (with q̂ = p this is ŵ_i ∝ D(y_i));
   computed in log space (softmax of ln p − ln q̂ + ln D), D in eval mode.
4. **G** (``gcn_g_steps`` Adam steps, default 1): weighted maximum likelihood
   L(θ) = −Σ_i ŵ_i · (1/L) Σ_t ln p_θ(y_{i,t} | y_{i,<t})
   (per-token mean inside, so the loss has the scale of an NLL), Adam ``g_lr``, clip ``g_clip``,
   **no learning-rate scheduler**.

One adversarial step = ``adv_g_steps`` iterations. Logged: ``g_loss``, ``d_loss``, ``ess`` = 1/Σŵ²
(effective sample size of the weights, out of N) and ``d_fake`` (mean D on the proposal samples).

Choices (the paper gives no oracle-task schedule; its decoding studies use MCTS/nucleus proposals on
large pre-trained models): N = 256 samples (4 minibatches of 64), 3 D steps and 1 G step per iteration,
proposal = the generator itself; ``paper`` profile = the Texygen schedule of the other GANs (MLE 80
epochs, D pre-training 80 calls × 3 minibatches, 100 adversarial epochs) with 10 iterations per epoch
and Texygen's discriminator (emb 32, widths [2, 3] × [100, 200], dropout 0.25, Adam 1e-4).
"""

from __future__ import annotations

import torch

from ..config import COUNT, COUNT0, Spec
from ..errors import TextbenchError
from ..registry import register_algorithm
from .adversarial import PHASE_DEFAULTS, PHASE_HELP, PHASE_SPECS, LSTMGAN
from .base import clip_and_step
from .phases import mean_logs
from .rankgan import TEXYGEN_PAPER
from .seqgan import QUICK_GAN


def gcn_weights(log_p: torch.Tensor, log_d: torch.Tensor, log_q: torch.Tensor | None = None) -> torch.Tensor:
    """ŵ_i ∝ p(y_i)·D(y_i)/q̂(y_i), normalised to sum to 1 (q̂ = p when ``log_q`` is None)."""
    log_w = log_d if log_q is None else log_p + log_d - log_q
    return torch.softmax(log_w.double(), dim=0).to(log_d.dtype)


def gcn_loss(token_log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """L = −Σ_i ŵ_i · mean_t ln p_θ(y_{i,t} | y_{i,<t})."""
    return -(weights.detach() * token_log_probs.mean(dim=1)).sum()


@torch.no_grad()
def sample_nucleus(model, n: int, top_p: float, generator: torch.Generator, batch_size: int = 1024):
    """n sequences from the top-p truncated, renormalised ``model``; returns (y [n, L], ln p(y) [n], ln q̂(y) [n])."""
    if not 0.0 < top_p <= 1.0:
        raise TextbenchError(f"gcn_top_p must be in (0, 1], got {top_p}")
    was_training = model.training
    model.eval()
    device = model.output.weight.device
    ys, lps, lqs = [], [], []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        tok = torch.full((b, 1), model.start_token, dtype=torch.long, device=device)
        state = None
        seq = torch.empty((b, model.seq_len), dtype=torch.long, device=device)
        lp = torch.zeros(b, dtype=torch.float64, device=device)
        lq = torch.zeros(b, dtype=torch.float64, device=device)
        for t in range(model.seq_len):
            h, state = model._lstm(model.embedding(tok), state)
            logp = torch.log_softmax(model.output(h[:, 0]), dim=-1)
            sorted_lp, order = logp.sort(dim=-1, descending=True)
            probs = sorted_lp.exp()
            before = probs.cumsum(dim=-1) - probs  # mass of the more probable tokens
            q = probs * (before < top_p)  # the nucleus (always contains the most probable token)
            cdf = q.cumsum(dim=-1)
            u = torch.rand((b, 1), generator=generator, device=device) * cdf[:, -1:]
            j = torch.searchsorted(cdf, u, right=True).clamp_(max=q.shape[-1] - 1)
            tok = order.gather(1, j)
            chosen = sorted_lp.gather(1, j)[:, 0].double()
            lp += chosen
            lq += chosen - cdf[:, -1].double().log()
            seq[:, t] = tok[:, 0]
        ys.append(seq)
        lps.append(lp)
        lqs.append(lq)
    model.train(was_training)
    return torch.cat(ys), torch.cat(lps), torch.cat(lqs)


@register_algorithm("gcn", "Generative Cooperative Networks: weighted MLE on generator samples reweighted by the discriminator")
class GCN(LSTMGAN):
    name = "gcn"
    defaults = {
        **PHASE_DEFAULTS,
        "adv_g_steps": 10,
        "gcn_samples": 256,
        "gcn_d_steps": 3,
        "gcn_g_steps": 1,
        "gcn_proposal": "generator",
        "gcn_top_p": 0.95,
    }
    specs = {
        **PHASE_SPECS,
        "gcn_samples": COUNT,
        "gcn_d_steps": COUNT0,
        "gcn_g_steps": COUNT,
        "gcn_proposal": Spec("str", choices=("generator", "nucleus")),
        "gcn_top_p": Spec("float", gt=0, le=1),
    }
    help = {
        **PHASE_HELP,
        "adv_g_steps": "GCN iterations per adversarial step",
        "gcn_samples": "proposal samples N per iteration",
        "gcn_d_steps": "discriminator minibatch updates (B real + B generated) per iteration",
        "gcn_g_steps": "weighted-MLE Adam steps of G per iteration (on the same N samples)",
        "gcn_proposal": "proposal q: generator (q = p, weights ∝ D) or nucleus (top-p truncated generator)",
        "gcn_top_p": "nucleus mass of the nucleus proposal",
    }
    profiles = {
        "quick": {**{k: v for k, v in QUICK_GAN.items() if k not in ("rollout_num", "d_steps")}, "adv_g_steps": 3},
        "paper": {**{k: v for k, v in TEXYGEN_PAPER.items() if k not in ("rollout_num", "d_steps")}, "adv_g_steps": 10},
    }

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        if settings["gcn_proposal"] not in ("generator", "nucleus"):
            raise TextbenchError(f"gcn_proposal must be generator or nucleus, got {settings['gcn_proposal']!r}")
        if int(settings["gcn_g_steps"]) < 1 or int(settings["gcn_samples"]) < 1:
            raise TextbenchError("gcn_g_steps and gcn_samples must be >= 1")

    def d_step(self) -> float:
        b = int(self.settings["batch_size"])
        real = self.batches.next().to(self.device)
        fake = self.g.sample(b, self.rng).to(self.device)
        x = torch.cat([real, fake])
        labels = torch.cat([torch.ones(real.shape[0], dtype=torch.long), torch.zeros(b, dtype=torch.long)]).to(self.device)
        self.d.train()
        self.d_opt.zero_grad(set_to_none=True)
        loss = self.d.loss(x, labels)
        loss.backward()
        self.d_opt.step()
        self.d.eval()
        return loss.item()

    def proposal(self, n: int):
        """(y, ln p(y), ln q̂(y)); for the generator proposal ln p = ln q̂ is not needed (None, None)."""
        if self.settings["gcn_proposal"] == "generator":
            return self.g.sample(n, self.rng).to(self.device), None, None
        return sample_nucleus(self.g, n, float(self.settings["gcn_top_p"]), self.rng)

    def iteration(self) -> dict[str, float]:
        s = self.settings
        d_losses = [self.d_step() for _ in range(int(s["gcn_d_steps"]))]
        y, log_p, log_q = self.proposal(int(s["gcn_samples"]))
        self.d.eval()
        with torch.no_grad():
            log_d = torch.cat([torch.log_softmax(self.d(y[i : i + 4096]), dim=-1)[:, 1] for i in range(0, y.shape[0], 4096)])
        w = gcn_weights(log_p.to(log_d.dtype) if log_p is not None else None, log_d, log_q.to(log_d.dtype) if log_q is not None else None)
        self.g.train()
        for _ in range(int(s["gcn_g_steps"])):
            self.adv_opt.zero_grad(set_to_none=True)
            loss = gcn_loss(self.g.token_log_probs(y), w)
            loss.backward()
            clip_and_step(self.adv_opt, self.g.parameters(), s["g_clip"])
        logs = {"g_loss": loss.item(), "ess": 1.0 / float((w.double() ** 2).sum()), "d_fake": float(log_d.exp().mean())}
        if d_losses:
            logs["d_loss"] = sum(d_losses) / len(d_losses)
        return logs

    def phase_cost(self, phase):
        """A GCN adversarial epoch: ``adv_g_steps`` iterations of ``gcn_d_steps`` D minibatches (B real each)
        and ``gcn_g_steps`` generator updates."""
        s = self.settings
        if phase == "adversarial":
            n = int(s["adv_g_steps"])
            return n * int(s["gcn_g_steps"]), n * int(s["gcn_d_steps"]) * int(s["batch_size"])
        return super().phase_cost(phase)

    def adversarial_step(self, index):
        """``adv_g_steps`` GCN iterations (each with its own D updates: no D calls)."""
        return mean_logs(self.iteration, int(self.settings["adv_g_steps"]))

