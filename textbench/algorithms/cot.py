"""Cooperative Training (CoT; Lu et al., ICML 2019), as in the official code (protocol §3.8).

A generator G_θ and a mediator M_φ. Per iteration:

1. **Generator step.** s ~ G (64 fresh samples). With M's log-probabilities treated as constants,

       J(θ) = (1/(B·L)) Σ_{b,t} Σ_{v ∈ V} G_θ(v | s_<t) [ln G_θ(v | s_<t) − ln M_φ(v | s_<t)]

   the per-token KL(G ‖ M) over prefixes drawn from G: the paper's Eq. 13 (its gradient estimates
   ∇_θ JSD(P‖G) through M ≈ ½(P+G)), with the exact sum over the whole vocabulary (no REINFORCE) and
   G's entropy term included. No gradient flows through the sampling of s. One Adam step.
2. **Mediator step.** x0 = the next real batch (sequential), x1 ~ G (64 fresh samples). The balanced
   NLL (Eq. 7/Algorithm 1: maximum likelihood on the mixture ½(P+G) with equal real/generated shares)

       BNLL(φ) = ½ [ −mean ln M_φ(x0) − mean ln M_φ(x1) ]

   is logged with dropout off (``bnll``), then minimised with dropout 0.5 on M's LSTM output. One Adam step.

Published settings: G emb/hidden 32, all tensors N(0, 0.1²), Adam(1e-3, β=(0.9, 0.95)); M emb/hidden
64 (2×), embedding/output N(0, 0.1²), orthogonal LSTM kernels, zero biases, dropout 0.5 (keep 0.5)
during its update only, Adam(3e-3, β=(0.9, 0.95)); no gradient clipping, no MLE pre-training;
200,000 iterations. Deviation: none in the objective; PyTorch's LSTM carries the same equations.
"""

from __future__ import annotations

import torch

from ..config import COUNT, FLAG
from ..metrics.likelihood import balanced_nll
from ..registry import register_algorithm
from .base import GENERATOR_DEFAULTS, GENERATOR_HELP, Algorithm, BatchCycler, clip_and_step


def cot_generator_loss(g_log_probs: torch.Tensor, m_log_probs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """J = mean_{b,t} Σ_v G(v|s_<t) [ln G(v|s_<t) − ln M(v|s_<t)]  (CoT Eq. 13; M constant).

    ``g_log_probs`` and ``m_log_probs`` are [B, L, V] log-softmax outputs on the same prefixes.
    """
    kl = (g_log_probs.exp() * (g_log_probs - m_log_probs.detach())).sum(-1)
    if mask is None:
        return kl.mean()
    return (kl * mask).sum() / mask.sum()


def mediator_loss(mediator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Balanced mixture NLL ½[−mean ln M(real) − mean ln M(fake)] (CoT Algorithm 1, protocol §2.3)."""
    return -0.5 * (mediator.token_log_probs(real).mean() + mediator.token_log_probs(fake).mean())


@register_algorithm("cot", "Cooperative Training: generator minimises JSD through a mediator trained on ½(P+G)")
class CoT(Algorithm):
    name = "cot"
    defaults = {
        **GENERATOR_DEFAULTS,
        "g_lr": 1e-3,
        "g_betas": [0.9, 0.95],
        "g_clip": 0.0,
        "m_emb": 64,
        "m_hidden": 64,
        "m_init_std": 0.1,
        "m_dropout": 0.5,
        "m_lr": 3e-3,
        "m_betas": [0.9, 0.95],
        "m_steps": 1,
        "shuffle": False,
    }
    specs = {"m_steps": COUNT, "shuffle": FLAG}  # the rest by name family (config.FAMILY_SPECS)
    help = {
        **GENERATOR_HELP,
        "g_lr": "generator Adam learning rate",
        "g_betas": "generator Adam betas",
        "g_clip": "generator global-norm clip (0 = off, as published)",
        "m_emb": "mediator embedding size",
        "m_hidden": "mediator LSTM size",
        "m_init_std": "std of the mediator's normal init (embedding, output)",
        "m_dropout": "mediator dropout on the LSTM output during its update",
        "m_lr": "mediator Adam learning rate",
        "m_betas": "mediator Adam betas",
        "m_steps": "mediator updates per iteration",
        "shuffle": "reshuffle the real batches every epoch (published: sequential)",
    }
    profiles = {
        "quick": {"steps": 300, "eval_every": 100},
        "paper": {"steps": 200_000, "eval_every": 1000},
    }
    # a CoT step on coco (V≈4,660, L=38) costs ~1.4 s of CPU: keep the quick profile to minutes
    suite_profiles = {("quick", "coco"): {"steps": 200, "eval_every": 50}, ("quick", "emnlp"): {"steps": 200, "eval_every": 50}}

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        s = settings
        self.g = self.make_generator()
        self.m = self.make_lstm(s["m_emb"], s["m_hidden"], dropout=s["m_dropout"]).init_mediator_(s["m_init_std"], rng)
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=s["g_lr"], betas=tuple(s["g_betas"]), eps=1e-8)
        self.m_opt = torch.optim.Adam(self.m.parameters(), lr=s["m_lr"], betas=tuple(s["m_betas"]), eps=1e-8)
        self.batches = BatchCycler(suite.train, s["batch_size"], rng, shuffle=s["shuffle"])

    def modules(self):
        return {"generator": self.g, "mediator": self.m}

    def optimizers(self):
        return {"generator": self.g_opt, "mediator": self.m_opt}

    def train_step(self, step):
        b = self.settings["batch_size"]
        # 1. generator: minimise per-token KL(G || M) on its own prefixes
        s = self.g.sample(b, self.rng)
        self.m.eval()
        with torch.no_grad():
            m_lp = self.m.log_probs(s)
        self.g.train()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss = cot_generator_loss(self.g.log_probs(s), m_lp)
        g_loss.backward()
        clip_and_step(self.g_opt, self.g.parameters(), self.settings["g_clip"])
        # 2. mediator: maximum likelihood on balanced real / generated batches
        for _ in range(self.settings["m_steps"]):
            real = self.batches.next().to(self.device)
            fake = self.g.sample(b, self.rng)
            with torch.no_grad():
                bnll = balanced_nll(self.m.token_log_probs(real), self.m.token_log_probs(fake))
            self.m.train()
            self.m_opt.zero_grad(set_to_none=True)
            m_loss = mediator_loss(self.m, real, fake)
            m_loss.backward()
            self.m_opt.step()
            self.m.eval()
        return {"g_loss": g_loss.item(), "bnll": bnll, "m_loss": m_loss.item()}

    def extra_state(self):
        return {"batches": self.batches.state_dict()}

    def load_extra_state(self, state):
        self.batches.load_state_dict(state["batches"])
