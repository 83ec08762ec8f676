"""RankGAN (Lin et al., NIPS 2017), as in Texygen ``models/rankgan/*`` (protocol §3.4).

The reference is Texygen master (protocol §0, the snapshot §3.4 was read from). Its ranker
(``RankganDiscriminator.py``) is the SeqGAN/Texygen CNN feature extractor (embedding 32, widths [2, 3] ×
[100, 200] filters, one highway layer, dropout keep 0.75; no output layer). The ranked sentences x and
the reference sentences u go through the *same* embedding, convolutions and highway layer (master builds
the reference path's highway in the same variable scope with ``reuse=AUTO_REUSE``), then dropout. With
f(·) those features, a reference set U of ``rank_ref_size`` = 16 real sentences (drawn uniformly with
replacement from the training set) and a comparison set C (a minibatch):

    s(x | U) = γ · f̂(x) · m(U),   f̂ = f/‖f‖,   m(U) = (1/|U|) Σ_{u∈U} f̂(u)
             = γ · (1/|U|) Σ_{u∈U} cos(f(x), f(u))           (the mean of the 16 cosines)
    P(x | U, C) = exp(s(x|U)) / Σ_{x'∈C} exp(s(x'|U))        (softmax over the comparison set)

with γ = ``rank_gamma`` = 1 (master: ``l2_normalize(h) @ mean(l2_normalize(h_ref))``). §3.4's prose calls
this "cos(f(x), mean of l2-normalised reference features)"; the code does not divide by ‖m(U)‖ ≤ 1, so
neither does this. The older Texygen revision (e.g. commit 90f7e68) *summed* the 16 cosines — that is
``rank_gamma=16`` — and gave the reference path its own highway layer (``rank_ref_highway=separate``).

Ranker loss on a mixed minibatch C of real (label 1) and generated (label 0) sequences, as Texygen:

    L_R = ( −mean_{x∈C real} ln P(x|U,C) + mean_{x∈C generated} ln P(x|U,C) ) / |U|,   Adam 1e-4,

with a fresh U per minibatch (a term whose group is empty is left out, as master's max(count, 1e-5)),
dropout 0.25 on both paths. Generator: PG loss of SeqGAN (sum over 64×20 terms) with Monte-Carlo rollout
rewards (K = 16), exactly as Texygen's ``RankganReward.get_reward``: for every rollout k and every prefix
length t = 1..L−1, the batch Y_{t,k} of the 64 completions is ranked against its *own* fresh reference
set U_{t,k}, and for t = L the batch x itself is ranked K times, each with a fresh U:

    R_{b,t} = (1/K) Σ_k P(Y_{t,k,b} | U_{t,k}, Y_{t,k})     (t = 1..L, Y_{L,k} = x; each batch sums to 1),

with the ranker's dropout *on* (``rank_reward_dropout``; master's keep 0.75 is a constant, not fed 1.0
for rewards as SeqGAN does).

Schedule (``paper`` = Texygen): MLE 80 epochs → ranker pre-training 80 calls × 3 minibatches →
100 adversarial epochs × {1 G step, 15 ranker calls × 3 minibatches}; eval every 5 epochs. On ``coco`` and
``emnlp`` the same schedule is Texygen's ``Rankgan.train_real`` (``suite_profiles``, stated in full; protocol
Part I, "COCO and EMNLP").

Reference behaviours, each decided (fix = reproduced; keep = not reproduced, with the reason):
- shared highway for the reference path: **as the reference** (master shares it; the separate
  ``highway-ref`` layer is the older revision's — ``rank_ref_highway=separate`` gives it, its own
  Glorot-initialised parameters trained by the ranker loss);
- score = mean of the cosines (γ·f̂(x)·m(U)): **fixed** (was the older revision's sum, 16× the
  inverse temperature of the reference's softmax);
- dropout keep 0.75 also when computing rewards: **fixed** (how the reference computes its rewards, not a
  bug that voids the row: the rewards are noisier, and scored by the ranker as it is trained, with
  dropout; ``rank_reward_dropout=false`` gives rewards that depend only on the sequences and U);
- one reference set per ranked batch, and K rankings of x for the last position: **fixed** (was one U
  per generator step shared by all batches and one ranking of x);
- rollout policy = the current G: **kept** (``rollout_update_rate=0``; the reference's delayed copy had
  no effect, §2.9-5, so this *is* what it ran);
- no l2 penalty: as the reference (its configured 0.2 is never used, there is no output layer);
  the CNN's unused 2-way output layer stays in the module (no effect on any number but the RNG draws of
  its initialisation).
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ..config import COUNT, FLAG, Spec
from ..models.discriminator import CNNDiscriminator, Highway
from ..models.rollout import rollout_completions
from ..registry import register_algorithm
from .adversarial import PG_DEFAULTS, PG_HELP, PHASE_DEFAULTS, PHASE_HELP, ROLLOUT_DEFAULTS, ROLLOUT_HELP, PolicyGradientGAN
from .phases import REAL_TEXT_SUITES, TEXYGEN_REAL
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

REWARD_ROWS = 1024  # sequences (ranked batches + their reference sets) per ranker pass in the rewards


def rank_scores(features: torch.Tensor, ref_features: torch.Tensor, gamma: float) -> torch.Tensor:
    """s(x|U) = γ f̂(x)·mean_u f̂(u) = γ mean_{u∈U} cos(f(x), f(u)).

    ``features`` [..., N, F] and ``ref_features`` [..., R, F] (same leading dims: one U per batch) -> [..., N]."""
    x = F.normalize(features, dim=-1, eps=1e-12)
    m = F.normalize(ref_features, dim=-1, eps=1e-12).mean(dim=-2)
    return gamma * (x @ m.unsqueeze(-1)).squeeze(-1)


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


class Ranker(CNNDiscriminator):
    """The CNN feature extractor as a ranker: ranked and reference sentences share the embedding and the
    convolutions; the reference path shares the highway layer too (``separate_ref_highway=False``,
    Texygen master) or has its own (older revision). Its 2-way output layer is unused."""

    def __init__(self, vocab_size, emb_dim, filter_sizes, num_filters, dropout, *, separate_ref_highway=False, generator=None):
        super().__init__(vocab_size, emb_dim, filter_sizes, num_filters, dropout, 0.0, generator=generator)
        self.ref_highway = Highway(self.feature_dim, gate_bias=0.0) if separate_ref_highway else None
        self._reset_ref_highway(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> "Ranker":
        super().reset_parameters(generator)
        self._reset_ref_highway(generator)
        return self

    @torch.no_grad()
    def _reset_ref_highway(self, generator: torch.Generator | None) -> None:
        """TF ``get_variable`` defaults, as the shared highway (``models/discriminator.py``)."""
        if getattr(self, "ref_highway", None) is None:  # also during the base class's __init__
            return
        self.ref_highway.reset_parameters_tf(generator)

    def rank_features(self, x: torch.Tensor, ref: torch.Tensor, dropout: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of x [N, L] and of the references ref [R, L] -> ([N, F], [R, F]), dropout on iff ``dropout``."""
        n = x.shape[0]
        p = self.pooled(torch.cat([x, ref]))
        if self.ref_highway is None:
            z = self.highway(p)
        else:
            z = torch.cat([self.highway(p[:n]), self.ref_highway(p[n:])])
        if self.dropout > 0:
            z = F.dropout(z, self.dropout, training=dropout)
        return z[:n], z[n:]


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
        "rank_reward_dropout": True,
        "rank_ref_highway": "shared",
    }
    specs = {
        **PolicyGradientGAN.specs,
        "rank_gamma": Spec("float", gt=0),
        "rank_ref_size": COUNT,
        "rank_reward_dropout": FLAG,
        "rank_ref_highway": Spec("str", choices=("shared", "separate")),
    }
    help = {
        **{k: v for k, v in PHASE_HELP.items() if k != "d_l2"},
        **PG_HELP,
        **ROLLOUT_HELP,
        "d_emb": "ranker embedding size",
        "d_dropout": "ranker dropout (drop probability; Texygen keep 0.75 = 0.25) in its updates, and in the rewards if rank_reward_dropout",
        "rank_gamma": "gamma: scale of the mean cosine similarity to the references in the ranking softmax (16 = the older Texygen revision's sum)",
        "rank_ref_size": "reference sentences |U| drawn from the training set (a fresh set per ranked batch)",
        "rank_reward_dropout": "apply the ranker's dropout when computing rewards (Texygen: always on); false = rewards depend on the sequences and U only",
        "rank_ref_highway": "highway layer of the reference path: shared with the ranked sentences (Texygen master) or separate (older Texygen revision)",
    }
    profiles = {"quick": dict(QUICK_GAN), "paper": dict(TEXYGEN_PAPER)}
    # Texygen's Rankgan.train_real: the same schedule, ranker dropout keep 0.75 (always), rollout 16
    suite_profiles = {("paper", suite): {**TEXYGEN_REAL, "d_dropout": 0.25, "rollout_num": 16} for suite in REAL_TEXT_SUITES}

    def make_discriminator(self):
        s = self.settings
        return Ranker(
            self.suite.vocab_size,
            s["d_emb"],
            s["d_filter_sizes"],
            s["d_num_filters"],
            s["d_dropout"],
            separate_ref_highway=s["rank_ref_highway"] == "separate",
            generator=self.rng,
        ).to(self.device)

    def references(self, sets: int | None = None) -> torch.Tensor:
        """|U| real sentences, uniformly with replacement: [|U|, L], or ``sets`` independent sets [sets, |U|, L]."""
        train = self.suite.train
        r = int(self.settings["rank_ref_size"])
        idx = torch.randint(0, train.shape[0], (r,) if sets is None else (sets, r), generator=self.rng)
        return train[idx].to(self.device)

    def d_batch_loss(self, x, labels):
        s = self.settings
        feats, ref = self.d.rank_features(x, self.references(), dropout=self.d.training)
        return ranker_loss(rank_scores(feats, ref, s["rank_gamma"]), labels, int(s["rank_ref_size"]))

    @torch.no_grad()
    def batch_rewards(self, y: torch.Tensor) -> torch.Tensor:
        """P(y_b | U_g, y_g) for G batches y [G, B, L], each ranked against its own fresh U_g -> [G, B]."""
        g, b, length = y.shape
        refs = self.references(g)  # [G, R, L]
        r = refs.shape[1]
        dropout = bool(self.settings["rank_reward_dropout"])
        per = max(1, REWARD_ROWS // (b + r))
        scores = []
        for i in range(0, g, per):
            yc, rc = y[i : i + per], refs[i : i + per]
            n = yc.shape[0]
            f, fr = self.d.rank_features(yc.reshape(n * b, length), rc.reshape(n * r, length), dropout)
            scores.append(rank_scores(f.view(n, b, -1), fr.view(n, r, -1), float(self.settings["rank_gamma"])))
        return torch.softmax(torch.cat(scores), dim=1)

    def rewards(self, x):
        """R [B, L] (module docstring): K rollouts per prefix, and K rankings of x for t = L."""
        s = self.settings
        k = int(s["rollout_num"])
        b, length = x.shape
        self.d.eval()
        y = rollout_completions(self.policy(), x, k, self.rng, chunk_rows=int(s["rollout_chunk"]))  # [L-1, K, B, L]
        batches = torch.cat([y.reshape((length - 1) * k, b, length), x.unsqueeze(0).expand(k, b, length)])
        probs = self.batch_rewards(batches)  # [L*K, B]
        return probs.view(length, k, b).mean(dim=1).T.contiguous()
