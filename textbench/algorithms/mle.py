"""Maximum likelihood estimation (teacher forcing), the baseline of every table.

Loss per minibatch: L(θ) = −(1/(B·L)) Σ_{b,t} ln G_θ(x_{b,t} | x_{b,<t})  (protocol §3.1–3.2).
Published settings (SeqGAN / Texygen): Adam lr 0.01, gradient clipping by global norm 5, batch 64,
unshuffled batches, NLL_oracle every 5 epochs; 120 epochs (SeqGAN's pre-training: the ``paper`` profile, Table
1's MLE row) or 80 (Texygen's: the ``texygen`` profile).
On the real-text suites the ``paper`` profile is Texygen's ``Mle.train_real`` (``suite_profiles``): 80 epochs,
evaluated every 5 — the pre-training of every Texygen GAN, so a GAN's ``init_from`` this run is its paper
schedule (protocol Part I, "COCO and EMNLP"). An epoch is ⌊N/64⌋ minibatches: 156 on COCO (10,000 captions,
as on the synthetic suite); on EMNLP the profile assumes the 270,000-sentence training split (4,218 per epoch)
— with another split set ``steps=80·⌊N/64⌋``.
Deviation: log G is the exact ``log_softmax`` (TF used ln clip(softmax, 1e-20, 1)), as in CoT's MLE.
"""

from __future__ import annotations

import torch

from ..registry import register_algorithm
from .base import GENERATOR_DEFAULTS, GENERATOR_HELP, Algorithm, BatchCycler, clip_and_step

EPOCH = 156  # batches of 64 in 9,984 training sequences (synthetic), and in COCO's 10,000 captions
EMNLP_EPOCH = 270_000 // 64  # 4,218 batches of 64 in EMNLP2017 News' 270,000 training sentences (RelGAN's split)
#: Texygen's ``Mle.train_real`` on the real-text suites: 80 epochs (``pre_epoch_num``), evaluated every 5 epochs
#: (``epoch % 5 == 0``); CoT's and cot-strong's budgets there are the same number of generator updates
TEXYGEN_REAL = {
    "coco": {"steps": 80 * EPOCH, "eval_every": 5 * EPOCH},
    "emnlp": {"steps": 80 * EMNLP_EPOCH, "eval_every": 5 * EMNLP_EPOCH},
}


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
    # real text: Texygen's train_real (80 epochs, eval every 5) = the Texygen GANs' MLE pre-training (init_from)
    suite_profiles = {("paper", suite): dict(values) for suite, values in TEXYGEN_REAL.items()}

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
