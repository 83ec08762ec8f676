"""LeakGAN (Guo et al., AAAI 2018): adversarial training of a manager/worker generator that reads the
discriminator's CNN features while it writes (model and its equations: ``textbench.models.leakgan``;
protocol §3.6).

**Discriminator.** D = SeqGAN's CNN (``CNNDiscriminator``) with Texygen-LeakGAN sizes: embedding 64,
filters [2, 3] × [100, 200] (F = 300 leaked features), highway, dropout 0.25 (keep 0.75) in its updates,
loss mean cross-entropy (real = class 1) + 0.2 · (½‖W_o‖² + ½‖b_o‖²), Adam 5e-5; plus a learned padding
token for prefixes (``LeakDiscriminator``). D(x) = softmax(logits)[real], scored in eval mode.

**Losses.** With f_t = F_D(x_<t) (D's features of the current prefix), segments j = 0..K−1 (K = ⌈L/c⌉)
spanning [s_j, e_j) = [jc, min(jc + c, L)), the goals G_j that steer them and cos(a, b) = ⟨a/‖a‖, b/‖b‖⟩:

- MLE (pre-training and the interleaved epochs), on a real minibatch, features under dropout 0.2
  (``leak_feat_dropout``; Texygen feeds keep 0.8):
  worker   L_W = −(1/(B·L)) Σ_{b,t} ln G(x_t | x_<t)            (goals are constants for the worker),
  manager  L_M = −(1/(B·K)) Σ_{b,j} cos(f_{e_j} − f_{s_j}, G_j)  (a goal should point where D's features
  move over the segment it steers).
- Adversarial G step, on B = 64 fresh samples x ~ G (temperature 1):
  manager  L_M = −(1/(B·K)) Σ_{b,j} R̂_{b,j} · cos(f_{e_j} − f_{s_j}, G_j),
  worker   L_W = −(1/(B·L)) Σ_{b,t} r^I_{b,t} · ln G(x_t | x_<t),   r^I_{b,t} = cos(f_{t+1} − f_{s_j}, G_j),
  j = ⌊t/c⌋: the intrinsic reward, how far the features moved along the goal since the segment began
  (a constant; Texygen's ``Worker_Reward``; the paper averages cos(f_t − f_{t−i}, g_{t−i}) over i = 1..c).
  Extrinsic rewards: Q_{b,j} = mean over ``rollout_num`` (4) completions of the prefix x_<e_j, sampled
  from the current G, of D(completion) for j < K−1; Q_{b,K−1} = D(x).
- **Rank rescaling** (Guo et al., "bootstrapped rescaled activation"), per segment j over the batch:
      R̂_{b,j} = σ(δ · (0.5 − rank_{b,j} / B)),   rank 1 = the highest Q in column j, …, B = the lowest,
  ties sharing their mean rank; δ = ``leak_delta`` = 16 (the authors' and Texygen's ``redistribution``:
  σ(16·i/B − 8)). R̂ is a function of the scores alone, so it does not depend on where a sample sits in
  the batch (Texygen ranks in order of first appearance, protocol §2.9-6 — not reproduced).
- Texygen has four Adam optimisers (worker / manager × pre-training / adversarial); so do we. Each step
  clips the gradient of its parameter set to global norm 5. D never receives G's gradients.

**Schedule** (Texygen ``Leakgan.train_oracle``), the shared one of ``phases.py`` (one engine step = one
*epoch* as Texygen counts them, so ``eval_every = 5`` is its "every 5 epochs"):
  1. steps 1..``pretrain_steps`` (80): one MLE epoch each (``mle_batches`` minibatches; 0 = ⌊N/B⌋ = 156);
  2. ``d_pretrain_steps`` (80): one D call each;
  3. ``adv_steps`` (160) adversarial-phase steps, in outer epochs (LeakGAN's ``cycle()``) of
     ``leak_adv_epochs`` (10) × {``adv_g_steps`` (1) G step, ``d_steps`` (15) D calls},
     ``leak_inter_mle_epochs`` (5) × {one MLE epoch}, 1 × {``leak_inter_d_calls`` (5) D calls} (``d_block``)
     = 16 steps; the published run has 10 outer epochs = 100 adversarial G steps.
On ``coco`` and ``emnlp`` the ``paper`` profile is Texygen's ``Leakgan.train_real`` (``suite_profiles``; protocol
Part I, "COCO and EMNLP"): the same schedule and sizes, stated in full; its own 80 MLE epochs (no ``init_from``).
Texygen evaluates its real-data adversarial phase at each G step of outer epochs 0 and 5 (``epoch % 5`` on the
outer index); here every 5 steps, as everywhere.
A **D call** is the shared one (``phases.py``): n = ``d_samples`` (96) fresh G samples + n random real
sequences, shuffled, ``d_epochs`` (1) pass over the ⌊2n/B⌋ = 3 minibatches (Texygen: 3 minibatches of a
shuffled mix of 9,984 + 9,984; the same minibatch distribution), with torch's plain Adam step.

Deviations from Texygen (besides the model's, see ``textbench.models.leakgan``):
- rank rescaling by score (above); rewards are not divided by ``rollout_num`` (Texygen divides the
  rescaled reward by 4: a constant factor that Adam largely absorbs);
- rewards and features use D in eval mode (Texygen's D graph hard-codes keep 0.75, so its rewards were
  noisy);
- evaluation is the engine's: fresh samples at temperature 1, nothing trained (§2.9-3, §2.9-4 do not apply);
- G learning rate 0.01 as Texygen (``g_lr`` means the same for every algorithm here); TextGAN-PyTorch
  uses 0.0015 (``--set g_lr=0.0015``);
- no ``init_from``: the one of ``adversarial.py`` loads LSTM generators, which do not fit the manager/worker model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import COUNT, COUNT0, Spec
from ..errors import TextbenchError
from ..models.leakgan import LeakDiscriminator, LeakGANGenerator
from ..registry import register_algorithm
from .base import BatchCycler, clip_and_step
from .phases import (
    D_DEFAULTS, D_HELP, D_SPECS, D_STEPS_DEFAULTS, D_STEPS_HELP, D_STEPS_SPECS, REAL_TEXT_SUITES, SCHEDULE_DEFAULTS, SCHEDULE_HELP,
    SCHEDULE_SPECS, PhasedAlgorithm,
)


# -- reward and loss pieces ----------------------------------------------------------------------------
def rank_rescale(scores: torch.Tensor, delta: float) -> torch.Tensor:
    """σ(δ(0.5 − rank/B)) per column of scores [B, K]: rank 1 = highest score, ties share their mean rank."""
    b = scores.shape[0]
    mine = scores.unsqueeze(1)  # [B, 1, K]: sample i
    others = scores.unsqueeze(0)  # [1, B, K]: sample j
    higher = (others > mine).sum(dim=1).to(scores.dtype)
    equal = (others == mine).sum(dim=1).to(scores.dtype)  # counts i itself
    rank = 1.0 + higher + (equal - 1.0) / 2.0
    return torch.sigmoid(delta * (0.5 - rank / b))


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (F.normalize(a, dim=-1, eps=1e-12) * F.normalize(b, dim=-1, eps=1e-12)).sum(-1)


def segment_cosines(features: torch.Tensor, goals: torch.Tensor, step: int) -> torch.Tensor:
    """cos(f_{e_j} − f_{s_j}, G_j) per segment: features [B, L+1, F], goals [B, K, F] → [B, K]."""
    length = features.shape[1] - 1
    starts = torch.arange(0, length, step, device=features.device)
    ends = torch.clamp(starts + step, max=length)
    return _cos(features[:, ends] - features[:, starts], goals)


def intrinsic_rewards(features: torch.Tensor, goals: torch.Tensor, step: int) -> torch.Tensor:
    """r^I_t = cos(f_{t+1} − f_{s_j}, G_j), j = ⌊t/c⌋: [B, L]."""
    length = features.shape[1] - 1
    t = torch.arange(length, device=features.device)
    seg = t // step
    return _cos(features[:, t + 1] - features[:, seg * step], goals[:, seg])


# -- settings ------------------------------------------------------------------------------------------
PAPER = {
    "pretrain_steps": 80,
    "mle_batches": 0,
    "d_pretrain_steps": 80,
    "adv_steps": 10 * 16,
    "steps": 80 + 80 + 10 * 16,
    "eval_every": 5,
}

#: Texygen's ``Leakgan.train_real``: the schedule of ``train_oracle`` (PAPER) with LeakGAN's D (embedding 64, widths
#: [2, 3] × [100, 200], keep 0.75, Adam 5e-5), 15 D calls × 3 minibatches per adversarial epoch, rollout 4
TEXYGEN_REAL = {
    **PAPER,
    "adv_g_steps": 1,
    "d_steps": 15,
    "rollout_num": 4,
    "d_emb": 64,
    "d_filter_sizes": [2, 3],
    "d_num_filters": [100, 200],
    "d_dropout": 0.25,
    "d_lr": 5e-5,
    "d_samples": 96,
    "d_epochs": 1,
    "leak_goal_size": 16,
    "leak_step_size": 4,
    "leak_adv_epochs": 10,
    "leak_inter_mle_epochs": 5,
    "leak_inter_d_calls": 5,
}

# ≈ 2 min on 2 CPU cores at V = 5000 (see the report in the commit): 60 MLE minibatches, 2 D calls,
# two outer epochs of {2 × (G step + 2 D calls), 20 MLE minibatches, 2 D calls}
QUICK = {
    "pretrain_steps": 3,
    "mle_batches": 20,
    "d_pretrain_steps": 2,
    "leak_adv_epochs": 2,
    "d_steps": 2,
    "leak_inter_mle_epochs": 1,
    "leak_inter_d_calls": 2,
    "adv_steps": 2 * 4,
    "steps": 3 + 2 + 2 * 4,
    "eval_every": 5,
}


@register_algorithm("leakgan", "LeakGAN: manager/worker generator steered by leaked CNN-discriminator features, rank-rescaled rewards")
class LeakGAN(PhasedAlgorithm):
    name = "leakgan"
    defaults = {
        **SCHEDULE_DEFAULTS,
        "adv_steps": 160,
        **D_STEPS_DEFAULTS,
        "rollout_num": 4,
        **D_DEFAULTS,
        "d_emb": 64,
        "d_lr": 5e-5,
        "leak_goal_size": 16,
        "leak_step_size": 4,
        "leak_delta": 16.0,
        "leak_feat_dropout": 0.2,
        "leak_adv_epochs": 10,
        "leak_inter_mle_epochs": 5,
        "leak_inter_d_calls": 5,
    }
    specs = {  # the rest by name family (config.FAMILY_SPECS)
        **SCHEDULE_SPECS,
        **D_STEPS_SPECS,
        "rollout_num": COUNT,
        **D_SPECS,
        **{k: COUNT for k in ("leak_goal_size", "leak_step_size")},
        **{k: COUNT0 for k in ("leak_adv_epochs", "leak_inter_mle_epochs", "leak_inter_d_calls")},
        "leak_delta": Spec("float", gt=0),
    }
    help = {
        **SCHEDULE_HELP,
        **D_STEPS_HELP,
        "rollout_num": "Monte-Carlo completions per segment prefix",
        **D_HELP,
        "g_init_std": "std of the N(0, s²) init of every worker/manager tensor",
        "g_lr": "Adam learning rate of worker and manager (MLE and adversarial optimisers)",
        "g_clip": "global-norm clip of the worker's and of the manager's gradient (0 = off)",
        "adv_steps": "adversarial-phase steps (outer epochs of leak_adv_epochs + leak_inter_mle_epochs + 1 steps)",
        "d_num_filters": "filters per width (their sum is the leaked-feature size, Texygen's goal_out_size)",
        "leak_goal_size": "goal size k (the worker outputs V × k)",
        "leak_step_size": "step size c: goals are summed, and rewarded, per c tokens",
        "leak_delta": "δ of the rank rescaling σ(δ(0.5 − rank/B))",
        "leak_feat_dropout": "dropout on the leaked features in MLE steps (Texygen keep 0.8)",
        "leak_adv_epochs": "adversarial epochs (G steps + D calls) per outer epoch",
        "leak_inter_mle_epochs": "interleaved MLE epochs per outer epoch",
        "leak_inter_d_calls": "D calls closing each outer epoch (one step)",
    }
    profiles = {"quick": dict(QUICK), "paper": dict(PAPER)}
    suite_profiles = {("paper", suite): dict(TEXYGEN_REAL) for suite in REAL_TEXT_SUITES}
    count_keys = PhasedAlgorithm.count_keys + ("d_steps", "adv_g_steps", "leak_adv_epochs", "leak_inter_mle_epochs", "leak_inter_d_calls")
    fused_d_adam = False

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        s = settings
        if sum(n for _, n in self.cycle()) == 0 and int(s["adv_steps"]) > 0:
            raise TextbenchError("the adversarial outer epoch is empty: set leak_adv_epochs, leak_inter_mle_epochs or leak_inter_d_calls")
        self.set_phases()
        self.d = LeakDiscriminator(
            suite.vocab_size, s["d_emb"], s["d_filter_sizes"], s["d_num_filters"], s["d_dropout"], s["d_l2"], generator=rng
        ).to(self.device)
        self.g = LeakGANGenerator(
            suite.vocab_size, suite.seq_len, self.d, s["g_emb"], s["g_hidden"], s["leak_goal_size"], s["leak_step_size"], suite.start_token
        ).init_texygen_(s["g_init_std"], rng).to(self.device)
        self.g.eval()  # nothing in G depends on the mode; D's dropout is switched on only inside D calls

        def adam(params, lr):
            return torch.optim.Adam(params, lr=lr, betas=tuple(s["g_betas"]), eps=1e-8)

        self.opts = {
            "worker_pre": adam(self.g.worker_parameters(), s["g_lr"]),
            "manager_pre": adam(self.g.manager_parameters(), s["g_lr"]),
            "worker_adv": adam(self.g.worker_parameters(), s["g_lr"]),
            "manager_adv": adam(self.g.manager_parameters(), s["g_lr"]),
        }
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=s["d_lr"], betas=(0.9, 0.999), eps=1e-8)
        self.batches = BatchCycler(suite.train, s["batch_size"], rng, shuffle=s["shuffle"])

    def modules(self):
        # D is a submodule of the generator (its features are part of G's distribution), so the one
        # "generator" module — and generator.pt — holds everything needed to sample and score.
        return {"generator": self.g}

    def optimizers(self):
        return {**self.opts, "discriminator": self.d_opt}

    # -- schedule ------------------------------------------------------------------------------------
    def cycle(self):
        """Texygen's outer epoch: adversarial epochs, interleaved MLE epochs, one step of D calls."""
        s = self.settings
        return (
            ("adversarial", int(s["leak_adv_epochs"])),
            ("mle", int(s["leak_inter_mle_epochs"])),
            ("d_block", 1 if int(s["leak_inter_d_calls"]) > 0 else 0),
        )

    def phase_cost(self, phase):
        """The outer epoch's D block: ``leak_inter_d_calls`` D calls; a G update steps worker and manager."""
        if phase == "d_block":
            return 0, int(self.settings["leak_inter_d_calls"]) * self.d_call_real()
        return super().phase_cost(phase)

    def train_step(self, step):
        if self.phase(step) == "d_block":
            return self.d_calls(int(self.settings["leak_inter_d_calls"]))
        return super().train_step(step)

    # -- updates -------------------------------------------------------------------------------------
    def _update(self, w_loss: torch.Tensor, m_loss: torch.Tensor, kind: str) -> None:
        w_opt, m_opt = self.opts[f"worker_{kind}"], self.opts[f"manager_{kind}"]
        w_opt.zero_grad(set_to_none=True)
        m_opt.zero_grad(set_to_none=True)
        (w_loss + m_loss).backward()  # disjoint parameter sets: the worker's loss sees detached goals
        clip = self.settings["g_clip"]
        clip_and_step(w_opt, self.g.worker_parameters(), clip)
        clip_and_step(m_opt, self.g.manager_parameters(), clip)

    def mle_update(self, x: torch.Tensor) -> dict[str, float]:
        """Worker and manager MLE losses (module docstring) on the real minibatch x, one step each."""
        out = self.g.teacher_forced(x, feature_dropout=self.settings["leak_feat_dropout"])
        w_loss = -self.g.log_probs_from(out, x, detach_goals=True).mean()
        m_loss = -segment_cosines(out["features"], out["goals"], self.g.step_size).mean()
        self._update(w_loss, m_loss, "pre")
        return {"mle_loss": w_loss.item(), "mle_goal_loss": m_loss.item()}

    @torch.no_grad()
    def rewards(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q [B, K] raw D scores, R̂ [B, K] rank-rescaled) for generated x (module docstring)."""
        b, length = x.shape
        c, num = self.g.step_size, int(self.settings["rollout_num"])
        k_seg = math.ceil(length / c)
        self.d.eval()
        prefix_lens = [(j + 1) * c for j in range(k_seg - 1)]
        q = []
        if prefix_lens and num > 0:
            done = self.g.rollout(x, prefix_lens, num, self.rng)
            scores = torch.cat([self.d.prob_real(done[i : i + 4096]) for i in range(0, done.shape[0], 4096)])
            q.append(scores.view(len(prefix_lens), num, b).mean(1).T)
        q.append(self.d.prob_real(x).unsqueeze(1))
        q = torch.cat(q, dim=1)
        return q, rank_rescale(q, float(self.settings["leak_delta"]))

    def g_step(self) -> dict[str, float]:
        """One adversarial update of manager and worker on 64 fresh samples."""
        x = self.g.sample(int(self.settings["batch_size"]), self.rng).to(self.device)
        q, r = self.rewards(x)
        out = self.g.teacher_forced(x)
        c = self.g.step_size
        m_loss = -(r * segment_cosines(out["features"], out["goals"], c)).mean()
        with torch.no_grad():
            r_int = intrinsic_rewards(out["features"], out["goals"], c)
        w_loss = -(r_int * self.g.log_probs_from(out, x, detach_goals=True)).mean()
        self._update(w_loss, m_loss, "adv")
        return {"adv_goal_loss": m_loss.item(), "adv_worker_loss": w_loss.item(), "d_reward": q.mean().item(), "intrinsic_reward": r_int.mean().item()}
