"""RankGAN (Lin et al., NIPS 2017), as in Texygen ``models/rankgan/*`` (protocol §3.4).

Ranker: the SeqGAN/Texygen CNN feature extractor (``CNNDiscriminator.features``: embedding 32, widths
[2, 3] × [100, 200] filters, highway, dropout 0.25 in its updates; its 2-way output layer is unused).
With f(·) those features, a reference set U of ``rank_ref_size`` = 16 real sentences (drawn uniformly
with replacement from the training set) and a comparison set C (a minibatch):

    s(x | U) = γ Σ_{u∈U} cos(f(x), f(u))                  (Texygen: a *sum* over the 16 references)
    P(x | U, C) = exp(s(x|U)) / Σ_{x'∈C} exp(s(x'|U))      (softmax over the comparison set)

so the effective inverse temperature is γ·|U| on the mean cosine; γ = ``rank_gamma`` = 1 as published.

Ranker loss on a mixed minibatch C of real (label 1) and generated (label 0) sequences, as Texygen:

    L_R = ( −mean_{x∈C real} ln P(x|U,C) + mean_{x∈C generated} ln P(x|U,C) ) / |U|,   Adam 1e-4,

with a fresh U per minibatch (a term whose group is empty in a minibatch is left out).
Generator: PG loss of SeqGAN (sum over 64×20 terms) with Monte-Carlo rollout rewards (K = 16) where the
reward of a rolled-out batch Y of 64 completions is its ranking probability within that batch,
R = P(y | U, Y) (these sum to 1 over the 64), and R_{b,L} = P(x_b | U, x).

Schedule (``paper`` = Texygen): MLE 80 epochs → ranker pre-training 80 calls × 3 minibatches →
100 adversarial epochs × {1 G step, 15 ranker calls × 3 minibatches}; eval every 5 epochs.

Deviations from Texygen, and its quirks not reproduced:
- the reference features go through the same highway layer as the ranked sentences (Texygen builds a
  second, separately initialised and trained highway layer for the reference path);
- dropout is off when computing rewards (Texygen keeps 0.75 always), so rewards are a function of the
  sequences and U only;
- one reference set U per generator step, shared by all the 16·19 + 1 rollout batches of that step
  (Texygen draws one per batch) — same expectation, less noise between positions;
- the rollout policy is the current G by default (``rollout_update_rate=0``, §2.9-5);
- the configured l2 penalty (unused by Texygen's ranker) is absent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import COUNT, Spec
from ..models.discriminator import CNNDiscriminator
from ..registry import register_algorithm
from .adversarial import PG_DEFAULTS, PG_HELP, PHASE_DEFAULTS, PHASE_HELP, ROLLOUT_DEFAULTS, ROLLOUT_HELP, PolicyGradientGAN
from .seqgan import QUICK_GAN

TEXYGEN_PAPER = {
    "pretrain_steps": 80,
    "d_pretrain_steps": 80,
    "adv_steps": 100,
    "d_steps": 15,
    "d_samples": 96,
    "d_epochs": 1,
    "rollout_num": 16,
    "steps": 80 + 80 + 100,
    "eval_every": 5,
}


def rank_scores(features: torch.Tensor, ref_features: torch.Tensor, gamma: float) -> torch.Tensor:
    """s(x|U) = γ Σ_{u∈U} cos(f(x), f(u)) for every row of ``features`` [N, F] -> [N]."""
    x = F.normalize(features, dim=-1, eps=1e-12)
    u = F.normalize(ref_features, dim=-1, eps=1e-12)
    return gamma * (x @ u.sum(0))


def ranker_loss(scores: torch.Tensor, labels: torch.Tensor, ref_size: int) -> torch.Tensor:
    """Texygen's ranker loss on one comparison set: (−mean_real ln P + mean_fake ln P) / |U|."""
    log_p = torch.log_softmax(scores, dim=0)
    real, fake = labels == 1, labels == 0
    loss = scores.new_zeros(())
    if real.any():
        loss = loss - log_p[real].mean()
    if fake.any():
        loss = loss + log_p[fake].mean()
    return loss / ref_size


@register_algorithm("rankgan", "RankGAN: policy gradient with rollout rewards from a cosine-similarity ranker")
class RankGAN(PolicyGradientGAN):
    name = "rankgan"
    uses_rollout = True
    d_kind = "ranker"
    defaults = {
        **{k: v for k, v in PHASE_DEFAULTS.items() if k != "d_l2"},
        **PG_DEFAULTS,
        **ROLLOUT_DEFAULTS,
        "rank_gamma": 1.0,
        "rank_ref_size": 16,
    }
    specs = {**PolicyGradientGAN.specs, "rank_gamma": Spec("float", gt=0), "rank_ref_size": COUNT}
    help = {
        **{k: v for k, v in PHASE_HELP.items() if k != "d_l2"},
        **PG_HELP,
        **ROLLOUT_HELP,
        "d_emb": "ranker embedding size",
        "rank_gamma": "gamma: scale of the summed cosine similarities in the ranking softmax",
        "rank_ref_size": "reference sentences |U| drawn from the training set",
    }
    profiles = {"quick": dict(QUICK_GAN), "paper": dict(TEXYGEN_PAPER)}

    def make_discriminator(self):
        s = self.settings
        return CNNDiscriminator(
            self.suite.vocab_size, s["d_emb"], s["d_filter_sizes"], s["d_num_filters"], s["d_dropout"], 0.0, generator=self.rng
        ).to(self.device)

    def references(self) -> torch.Tensor:
        """|U| real sentences, uniformly with replacement."""
        train = self.suite.train
        idx = torch.randint(0, train.shape[0], (int(self.settings["rank_ref_size"]),), generator=self.rng)
        return train[idx].to(self.device)

    def d_batch_loss(self, x, labels):
        s = self.settings
        feats = self.d.features(torch.cat([x, self.references()]))
        scores = rank_scores(feats[: x.shape[0]], feats[x.shape[0] :], s["rank_gamma"])
        return ranker_loss(scores, labels, int(s["rank_ref_size"]))

    def rewards(self, x):
        self.d.eval()
        gamma = float(self.settings["rank_gamma"])
        with torch.no_grad():
            ref = self.d.features(self.references())

        @torch.no_grad()
        def reward_fn(y):
            g, b, length = y.shape
            flat = y.reshape(g * b, length)
            feats = torch.cat([self.d.features(flat[i : i + 256]) for i in range(0, flat.shape[0], 256)])
            return torch.softmax(rank_scores(feats, ref, gamma).view(g, b), dim=1)

        return self.rollout(x, reward_fn)
