"""SeqGAN (Yu et al., AAAI 2017), as in the original code (protocol §3.3), on the shared phases.

Generator G_θ: the §3.1 LSTM (emb/hidden 32, every tensor N(0, 0.1²)), Adam 0.01, global-norm clip 5.
Discriminator D: SeqGAN's CNN (``models/discriminator.py``): embedding 64, filter widths 1–10, 15, 20
with 100,200,200,200,200,100,100,100,100,100,160,160 filters, highway, dropout 0.25 (keep 0.75) in its
updates, output 1720 → 2, loss mean CE + 0.2 · ½‖W_out‖², Adam 1e-4.

Schedule (``paper`` profile = SeqGAN's ``sequence_gan.py``; one step = one epoch, eval every 5):
MLE 120 epochs → D pre-training 50 calls (each: 9,984 fresh negatives + the 9,984 real sequences,
shuffled, 3 epochs of minibatches of 64) → 200 adversarial epochs of {1 G step, 5 D calls}.

Adversarial G step: x ~ G (64 samples); rewards by Monte-Carlo rollout with K = 16:

    R_{b,t} = (1/K) Σ_k D(Y^{t,k}_b)  for t < L,    R_{b,L} = D(x_b),
    Y^{t,k}_b = (x_{b,1..t}, completion ~ π(· | x_{b,1..t})),   D(y) = softmax(D-logits(y))_real,

computed with D in eval mode (no dropout, as SeqGAN's keep 1.0 for rewards), then one Adam step on

    L_PG(θ) = −Σ_{b=1..64} Σ_{t=1..20} ln G_θ(x_{b,t} | x_{b,<t}) · R_{b,t}

(a **sum** over the 1,280 terms, as published — ``pg_reduction=mean`` divides by B·L; no baseline; the
references' ``reward_gamma`` is unused there and absent here).

On ``coco`` and ``emnlp`` the ``paper`` profile is Texygen's ``Seqgan.train_real`` (``suite_profiles``;
protocol Part I, "COCO and EMNLP"): MLE 80 epochs (``init_from`` the MLE paper run of the suite) → 80 D
calls → 100 adversarial epochs of {1 G step (rollout 16), 15 D calls × 3 minibatches}, Texygen's D (embedding
32, widths [2, 3] × [100, 200]) **without dropout** (Texygen's SeqGAN never passes its keep 0.75, §2.9-8: as
MaliGAN's ``d_dropout=0``, the D that produced Texygen's COCO numbers), eval every 5 epochs.

D steps per adversarial step: the original's 5 calls × (9,984 fresh negatives, 3 epochs) = 4,680 D
minibatch updates per epoch (``d_steps=5, d_samples=9984, d_epochs=3``). Texygen's variant, 15 calls
× 3 minibatches, is ``d_steps=15, d_samples=96, d_epochs=1`` (the default of the shared settings and of
the ``quick`` profile, which also uses Texygen's smaller D: emb 32, widths [2, 3] × [100, 200]).

Deviations from the references, and reference bugs not reproduced:
- the rollout policy is the current G (``rollout_update_rate=0``, default) — what the code actually
  did, since its delayed copy had no effect (§2.9-5); ``rollout_update_rate=0.8`` gives a real delayed
  copy (SeqGAN's intent);
- D's dropout is really applied in its updates (Texygen's SeqGAN passes none, §2.9-8);
- rewards are not scrambled across samples/positions (TextGAN-PyTorch's reshape bug, §2.9-9);
- ln G is the exact log-softmax (TF: ln clip(softmax, 1e-20, 1)); sampling is inverse-CDF
  (the same distribution as ``tf.multinomial``); D's minibatches are reshuffled per call but not per
  epoch (as SeqGAN's ``Dis_dataLoader``), and real sequences beyond ⌊2n/64⌋·64 are dropped likewise.
"""

from __future__ import annotations

from ..registry import register_algorithm
from .adversarial import PG_DEFAULTS, PG_HELP, PHASE_DEFAULTS, PHASE_HELP, ROLLOUT_DEFAULTS, ROLLOUT_HELP, SEQGAN_D, PolicyGradientGAN
from .phases import REAL_TEXT_SUITES, TEXYGEN_REAL

SEQGAN_PAPER = {
    **SEQGAN_D,
    "d_dropout": 0.25,
    "pretrain_steps": 120,
    "d_pretrain_steps": 50,
    "adv_steps": 200,
    "d_steps": 5,
    "d_samples": 9984,
    "d_epochs": 3,
    "rollout_num": 16,
    "steps": 120 + 50 + 200,
    "eval_every": 5,
}

#: Texygen's ``Seqgan.train_real``: its schedule with Texygen's D, no D dropout (§2.9-8), rollout 16
SEQGAN_TEXYGEN_REAL = {**TEXYGEN_REAL, "d_dropout": 0.0, "rollout_num": 16}

QUICK_GAN = {
    # ~1 epoch of MLE, a few D calls, then adversarial steps with a small rollout count; eval every 3
    "pretrain_steps": 3,
    "mle_batches": 50,
    "d_pretrain_steps": 2,
    "adv_steps": 7,
    "d_steps": 3,
    "d_samples": 96,
    "d_epochs": 1,
    "rollout_num": 4,
    "steps": 3 + 2 + 7,
    "eval_every": 3,
}


@register_algorithm("seqgan", "SeqGAN: policy gradient with Monte-Carlo rollout rewards from a CNN discriminator")
class SeqGAN(PolicyGradientGAN):
    name = "seqgan"
    uses_rollout = True
    defaults = {**PHASE_DEFAULTS, **PG_DEFAULTS, **ROLLOUT_DEFAULTS}
    help = {**PHASE_HELP, **PG_HELP, **ROLLOUT_HELP}
    profiles = {"quick": dict(QUICK_GAN), "paper": dict(SEQGAN_PAPER)}
    suite_profiles = {("paper", suite): dict(SEQGAN_TEXYGEN_REAL) for suite in REAL_TEXT_SUITES}

    def rewards(self, x):
        return self.rollout(x, self.d_reward_fn())
