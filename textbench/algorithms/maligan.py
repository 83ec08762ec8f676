"""MaliGAN (Che et al., 2017) in TextGAN-PyTorch's form (protocol §3.5), on the shared phases.

Discriminator: Texygen's CNN (embedding 32, widths [2, 3] × [100, 200], highway, dropout 0.25 in its
updates, l2 0.2 on the output layer, Adam 1e-4). Per generator step, x ~ G (64 samples) and, with
D_i = D(x_i) = P(real | x_i) (D in eval mode),

    r_i = D_i / (1 − D_i),    r̂_i = r_i / Σ_j r_j,    R_i = r̂_i − (1/B) Σ_j r̂_j = r̂_i − 1/B,

broadcast to every position (R_{i,t} = R_i), and one Adam step on the PG loss
L = −Σ_{i,t} ln G(x_{i,t}|x_{i,<t}) · R_i (a sum, as TextGAN-PyTorch's ``adv_loss``). The rewards sum to
0 over the batch (the mean is the baseline). r_i/Σr_j is computed as softmax_i(ℓ_i,real − ℓ_i,fake)
from D's logits — the same number without the overflow of D/(1−D) when D rounds to 1 in float32.

Schedule (``paper``): Texygen's — MLE 80 epochs → D pre-training 80 calls × 3 minibatches → 100
adversarial epochs × {**50** G steps (``adv_g_steps``), 15 D calls × 3 minibatches}; eval every 5.

Deviations / reference bugs not reproduced:
- the reward is D/(1−D) (Texygen's MaliGAN uses D itself, §2.9-7);
- D's dropout is really applied in its updates (Texygen passes none, §2.9-8);
- TextGAN-PyTorch averages 16 D evaluations (dropout on) per sample; here D is evaluated once with
  dropout off (Texygen's 16 evaluations are identical, §2.9-7);
- the schedule is Texygen's rather than TextGAN-PyTorch's (200 epochs, 1 D step × 3 epochs).
"""

from __future__ import annotations

import torch

from ..registry import register_algorithm
from .adversarial import PG_DEFAULTS, PG_HELP, PHASE_DEFAULTS, PHASE_HELP, PolicyGradientGAN
from .rankgan import TEXYGEN_PAPER
from .seqgan import QUICK_GAN


def mali_rewards(d_logits: torch.Tensor) -> torch.Tensor:
    """R_i = (D_i/(1−D_i)) / Σ_j (D_j/(1−D_j)) − 1/B from D's logits [B, 2] (class 1 = real) -> [B]."""
    w = torch.softmax(d_logits[:, 1] - d_logits[:, 0], dim=0)
    return w - w.mean()


@register_algorithm("maligan", "MaliGAN: importance-weighted policy gradient, reward D/(1-D) normalised with a mean baseline")
class MaliGAN(PolicyGradientGAN):
    name = "maligan"
    defaults = {**PHASE_DEFAULTS, **PG_DEFAULTS, "adv_g_steps": 50}
    help = {**PHASE_HELP, **PG_HELP, "adv_g_steps": "generator updates per adversarial epoch (published: 50)"}
    profiles = {
        "quick": {**{k: v for k, v in QUICK_GAN.items() if k != "rollout_num"}, "adv_g_steps": 5},
        "paper": {**{k: v for k, v in TEXYGEN_PAPER.items() if k != "rollout_num"}, "adv_g_steps": 50},
    }

    def rewards(self, x):
        self.d.eval()
        with torch.no_grad():
            logits = self.d(x)
        self._d_fake = torch.softmax(logits, dim=-1)[:, 1].mean().item()
        return mali_rewards(logits).unsqueeze(1).expand(x.shape[0], x.shape[1])

    def reward_logs(self, x, rewards):
        """The rewards sum to 0; log the mean D(x) of the generated batch instead."""
        return {"d_fake": self._d_fake}
