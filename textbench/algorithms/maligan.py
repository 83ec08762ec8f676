"""MaliGAN (Che et al., 2017) as Texygen ``models/maligan_basic/*`` (protocol §3.5), on the shared phases.

Discriminator: Texygen's CNN (embedding 32, widths [2, 3] × [100, 200], highway, l2 0.2 on the output
layer, Adam 1e-4) **without dropout** (``d_dropout=0``: Texygen's MaliGAN discriminator has
``dropout_keep_prob = 1``, §2.9-8). Per generator step, x ~ G (64 samples) and, with D_i = D(x_i) =
P(real | x_i) (D in eval mode), the reward of sample i is broadcast to all its positions
(R_{i,t} = R_i), by ``mali_reward``:

* ``texygen`` (default; Texygen's ``MaliganReward.get_reward``):
      R_i = D_i / Σ_j D_j − (1/B) Σ_j (D_j / Σ_k D_k) = D_i / Σ_j D_j − 1/B;
* ``paper`` (MaliGAN's importance weight, as TextGAN-PyTorch writes it):
      r_i = D_i / (1 − D_i),   R_i = r_i / Σ_j r_j − 1/B.

Either way the rewards sum to 0 over the batch (the mean is the baseline), and one Adam step is taken on
the PG loss L = −Σ_{i,t} ln G(x_{i,t}|x_{i,<t}) · R_i (a sum, §3.1). The normalised weights are computed
from D's logits ℓ as a softmax over the batch — of ln D_i = log_softmax(ℓ_i)_real (``texygen``) or of
ℓ_i,real − ℓ_i,fake = ln(D_i/(1−D_i)) (``paper``) — the same numbers without the underflow of ΣD or the
overflow of D/(1−D) in float32.

Schedule (``paper`` profile): Texygen's — MLE 80 epochs → D pre-training 80 calls × 3 minibatches → 100
adversarial epochs × {**50** G steps (``adv_g_steps``), 15 D calls × 3 minibatches}; eval every 5. On ``coco``
and ``emnlp`` the ``paper`` profile is Texygen's ``Maligan.train_real`` (``suite_profiles``; protocol Part I,
"COCO and EMNLP"): the same schedule with **1** G step per adversarial epoch (its loop is ``range(1)`` where
``train_oracle``'s is ``range(50)``).

Reference behaviours, each decided (fix = reproduced; keep = not reproduced, with the reason):
- reward D/ΣD − 1/B: **fixed**, the default (``mali_reward=texygen``): the CoT paper's MaliGAN row comes
  from its authors' Texygen setup (TextGAN-PyTorch post-dates the paper), and this is what that code
  runs; the MaliGAN paper's D/(1−D) is ``mali_reward=paper`` (textbench's earlier default);
- no D dropout: **fixed** (``d_dropout=0``; how Texygen's MaliGAN D trains — the class sets keep 0.75
  but never passes it, §2.9-8 — which changes D's training, not the meaning of the row);
  TextGAN-PyTorch's MaliGAN D uses 0.25 (``mali_reward=paper d_dropout=0.25`` = textbench's earlier
  MaliGAN, bit for bit);
- 16 evaluations of D averaged per sample: **as the reference** by evaluating once (without dropout
  Texygen's 16 evaluations are identical, §2.9-7); TextGAN-PyTorch's 16 evaluations with dropout on are
  not reproduced (D in eval mode, once);
- the schedule is Texygen's rather than TextGAN-PyTorch's (200 epochs, 1 D step × 3 epochs).
"""

from __future__ import annotations

import torch

from ..config import Spec
from ..errors import TextbenchError
from ..registry import register_algorithm
from .adversarial import PG_DEFAULTS, PG_HELP, PHASE_DEFAULTS, PHASE_HELP, PolicyGradientGAN
from .phases import REAL_TEXT_SUITES, TEXYGEN_REAL
from .rankgan import TEXYGEN_PAPER
from .seqgan import QUICK_GAN

MALI_REWARDS = ("texygen", "paper")


def mali_rewards(d_logits: torch.Tensor, form: str = "texygen") -> torch.Tensor:
    """Per-sample rewards [B] from D's logits [B, 2] (class 1 = real), D_i = softmax(logits_i)[1]:

    ``texygen``: D_i/Σ_j D_j − 1/B;  ``paper``: (D_i/(1−D_i)) / Σ_j (D_j/(1−D_j)) − 1/B."""
    if form == "texygen":
        log_w = torch.log_softmax(d_logits, dim=-1)[:, 1]  # ln D_i
    elif form == "paper":
        log_w = d_logits[:, 1] - d_logits[:, 0]  # ln D_i/(1 − D_i)
    else:
        raise TextbenchError(f"mali_reward must be one of {', '.join(MALI_REWARDS)}, got {form!r}")
    w = torch.softmax(log_w, dim=0)
    return w - w.mean()


@register_algorithm("maligan", "MaliGAN: importance-weighted policy gradient, normalised D (Texygen) or D/(1-D) (paper) with a mean baseline")
class MaliGAN(PolicyGradientGAN):
    name = "maligan"
    defaults = {**PHASE_DEFAULTS, **PG_DEFAULTS, "adv_g_steps": 50, "d_dropout": 0.0, "mali_reward": "texygen"}
    specs = {**PolicyGradientGAN.specs, "mali_reward": Spec("str", choices=MALI_REWARDS)}
    help = {
        **PHASE_HELP,
        **PG_HELP,
        "adv_g_steps": "generator updates per adversarial epoch (Texygen: 50 on the oracle, 1 on real text)",
        "d_dropout": "discriminator dropout (drop probability) in its updates (Texygen's MaliGAN: 0, none; TextGAN-PyTorch: 0.25)",
        "mali_reward": "texygen: R = D/sum(D) - 1/B (Texygen's code); paper: R = r/sum(r) - 1/B with r = D/(1-D) (MaliGAN paper, TextGAN-PyTorch)",
    }
    profiles = {
        "quick": {**{k: v for k, v in QUICK_GAN.items() if k != "rollout_num"}, "adv_g_steps": 5},
        "paper": {**{k: v for k, v in TEXYGEN_PAPER.items() if k != "rollout_num"}, "adv_g_steps": 50},
    }
    # Texygen's Maligan.train_real: 1 G step per adversarial epoch (train_oracle: 50), D without dropout
    suite_profiles = {("paper", suite): {**TEXYGEN_REAL, "adv_g_steps": 1, "d_dropout": 0.0} for suite in REAL_TEXT_SUITES}

    def rewards(self, x):
        self.d.eval()
        with torch.no_grad():
            logits = self.d(x)
        self._d_fake = torch.softmax(logits, dim=-1)[:, 1].mean().item()
        return mali_rewards(logits, self.settings["mali_reward"]).unsqueeze(1).expand(x.shape[0], x.shape[1])

    def reward_logs(self, x, rewards):
        """The rewards sum to 0; log the mean D(x) of the generated batch instead."""
        return {"d_fake": self._d_fake}
