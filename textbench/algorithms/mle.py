"""Maximum likelihood estimation (teacher forcing), the baseline of every table.

Loss per minibatch: L(θ) = −(1/(B·L)) Σ_{b,t} ln G_θ(x_{b,t} | x_{b,<t})  (protocol §3.1–3.2).
Published settings (SeqGAN / Texygen): Adam lr 0.01, gradient clipping by global norm 5, batch 64,
unshuffled batches, NLL_oracle every 5 epochs; 120 epochs (SeqGAN's pre-training: the ``paper`` profile, Table
1's MLE row) or 80 (Texygen's: the ``texygen`` profile).
Deviation: log G is the exact ``log_softmax`` (TF used ln clip(softmax, 1e-20, 1)), as in CoT's MLE.
"""

from __future__ import annotations

import torch

from ..registry import register_algorithm
from .base import GENERATOR_DEFAULTS, GENERATOR_HELP, Algorithm, BatchCycler, clip_and_step

EPOCH = 156  # batches of 64 in 9,984 training sequences


def nll_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Per-token mean negative log-likelihood −mean_{b,t} ln G(x_{b,t} | x_{b,<t})."""
    return -model.token_log_probs(x).mean()


@register_algorithm("mle", "maximum likelihood (teacher forcing), Adam 0.01, clip 5 (SeqGAN/Texygen pre-training)")
class MLE(Algorithm):
    name = "mle"
    unit = "minibatch"
    defaults = {
        **GENERATOR_DEFAULTS,
        "g_lr": 0.01,
        "g_betas": [0.9, 0.999],
        "g_clip": 5.0,
        "shuffle": False,
    }
    help = {**GENERATOR_HELP, "g_lr": "Adam learning rate", "g_betas": "Adam betas", "g_clip": "global-norm clip (0 = off)", "shuffle": "reshuffle the training set every epoch"}
    profiles = {
        "quick": {"steps": 600, "eval_every": 100},
        # Table 1's MLE row: SeqGAN's 120-epoch pre-training (decided from the sources and a measured run of each
        # length, protocol Part I); Texygen's 80 epochs — the Texygen-family GANs' pre-training — is "texygen"
        "paper": {"steps": 120 * EPOCH, "eval_every": 5 * EPOCH},
        "texygen": {"steps": 80 * EPOCH, "eval_every": 5 * EPOCH},
    }

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        s = settings
        self.g = self.make_generator()
        self.opt = torch.optim.Adam(self.g.parameters(), lr=s["g_lr"], betas=tuple(s["g_betas"]), eps=1e-8)
        self.batches = BatchCycler(suite.train, s["batch_size"], rng, shuffle=s["shuffle"])

    def modules(self):
        return {"generator": self.g}

    def optimizers(self):
        return {"generator": self.opt}

    def train_step(self, step):
        x = self.batches.next().to(self.device)
        self.opt.zero_grad(set_to_none=True)
        loss = nll_loss(self.g, x)
        loss.backward()
        clip_and_step(self.opt, self.g.parameters(), self.settings["g_clip"])
        return {"g_loss": loss.item()}

    def extra_state(self):
        return {"batches": self.batches.state_dict()}

    def load_extra_state(self, state):
        self.batches.load_state_dict(state["batches"])
