"""TextCoT-strong: Cooperative Training with a LeakGAN-architecture generator (CoT paper, Tables 2–3:
"TextCoT-strong uses a LeakGAN-like generator"; the paper gives no further detail).

The objective is ``cot``'s, unchanged (``textbench.algorithms.cot`` states it; here the generator's KL is
``models.fused.KLToConstant`` on G's logits — the number of ``cot_generator_loss`` with its gradient in closed
form — and the mediator's step is ``cot``'s own ``mediator_nll_backward``):

1. **Generator step.** s ~ G (64 fresh samples, temperature 1, no gradient through the sampling). With M's
   log-probabilities constant, J(θ) = (1/(B·L)) Σ_{b,t} Σ_{v ∈ V} G_θ(v | s_<t)[ln G_θ(v | s_<t) − ln M(v | s_<t)]
   (CoT Eq. 13, full vocabulary, entropy term included). G's per-position distribution over the whole
   vocabulary comes from one teacher-forced pass of the hierarchical model on s
   (``LeakGANGenerator.teacher_forced``; the logits softmax_v(O_t w_t) of every position, ``full_log_probs``),
   which is exactly the distribution the sampler draws from (``textbench.models.leakgan``, tested there).
   One Adam step on every generator parameter.
2. **Mediator step.** As ``cot``: the balanced NLL ½[−mean ln M(real) − mean ln M(fake)] on the next real
   batch and 64 fresh samples of G, dropout 0.5 on M's LSTM output during its update; ``bnll`` logged
   with dropout off (``models.fused.mediator_nll_backward``, tested equal to ``cot.mediator_loss``).

**Generator.** ``LeakGANGenerator`` (manager/worker, goal size k = 16, step size c = 4, E = H = 32, the
LeakGAN sizes and Texygen initialisation) whose leaked features f_t = F(x_<t) come from the model's *own*
CNN feature extractor (LeakGAN's ``LeakDiscriminator`` architecture: embedding 64 with a padding row,
filters [2, 3] × [100, 200] = 300 features, highway; SeqGAN's CNN initialisation; its 2-way output layer
is never used and is not optimised).

Open choices (the paper leaves them open; each also in docs/protocol.md Part I, **cot-strong**):

- *Where the leaked features come from.* There is no discriminator. The features are computed by the
  generator's own CNN extractor, **trained with the generator by the same objective**: the KL gradient
  reaches the extractor through goals → manager → features (``FeatureExtractor.prefix_features`` is the
  differentiable form of ``LeakDiscriminator.prefix_features``). Then G is a function of its own parameters
  θ only and every part of θ follows ∇_θ KL(G‖M). Rejected: the mediator's hidden state (G's distribution
  would change whenever M is updated, outside G's objective, and generator.pt would have to hold M); a
  frozen random CNN (features that never learn); training the CNN as a real/fake classifier (that is an
  adversarial component, not CoT).
- *The manager's objective.* The same KL(G‖M), by backpropagation through the goals (the whole model is
  differentiable given s). LeakGAN's cosine goal losses (MLE: cos(f_{t+c} − f_t, goal); adversarial:
  rescaled reward × cosine) are not used: they need a reward or a fixed feature space, and CoT has neither.
  No intrinsic reward for the worker either: the full-vocabulary KL is its exact gradient.
- *KL for the hierarchical generator.* Per position over the full vocabulary, from the teacher-forced pass
  on G's own samples, averaged over the B·L positions (``cot_generator_loss``), as ``cot``. No mask on text
  suites (as ``cot``: positions after ``<eos>`` are part of the fixed-length sequence model).
- *Optimiser.* One Adam over all generator parameters with CoT's generator settings (1e-3, β = (0.9, 0.95)):
  the loss is CoT's per-token KL, of the same scale as in ``cot``; LeakGAN's 0.01 was tuned for its
  REINFORCE-style losses. Global-norm clip 5 (``g_clip``) as LeakGAN's generator: its unit-norm goals and
  bilinear worker output are the LeakGAN architecture's, and so is the safeguard. No feature dropout (the
  gradient is of G itself; LeakGAN's 0.2 applies to its MLE pre-training only). No MLE pre-training (as ``cot``).
- *Mediator.* CoT's LSTM mediator with twice the generator's hidden size (emb/hidden 64, dropout 0.5,
  Adam 3e-3, β = (0.9, 0.95), orthogonal LSTM kernels), as ``cot`` (paper, Appendix B). It models the
  mixture ½(P+G) with a plain LSTM: the generator's hierarchy is a constraint on G, not a sign that M needs
  one; ``m_emb``/``m_hidden`` make it larger.
- *α sampling (TextCoT-strong (α = 1.5), LeakGAN's conservative generation).* No training setting: α only
  changes how a trained G is sampled, G_α = softmax(α·logits) = temperature T = 1/α. The run's own
  evaluation (metrics.csv) is at α = 1; both published rows come from the same run's final generator with
  ``textbench sweep-temperature --run DIR --temperatures 0.6666666666666666,1`` (the row at T = 1/1.5 is
  α = 1.5: BLEU, Self-BLEU, RS-BLEU and NLL_test of G_α; tests/algorithms/test_cot_strong.py checks that the
  sweep samples and scores softmax(1.5·logits)).

Profiles: ``paper`` = ``cot``'s (200,000 iterations, evaluation every 100, full every 1,000: the CoT paper
reports no separate budget for TextCoT-strong; on ``coco`` and ``emnlp`` ``cot``'s real-text budget, MLE's paper run
in generator updates — 12,480 iterations on COCO, evaluated every 780); ``quick`` = 150 iterations on the synthetic suite, 60 on
coco/emnlp (one iteration costs ≈ 5× a ``cot`` iteration, 0.8 s against 0.17 s on one thread at V = 5,000:
the worker's V × k output, the two sampling passes through the hierarchical model and the CNN features).
"""

from __future__ import annotations

import torch

from ..config import COUNT, Spec
from ..models.fused import KLToConstant, mediator_nll_backward
from ..models.leakgan import LeakDiscriminator, LeakGANGenerator
from ..registry import register_algorithm
from .base import GENERATOR_DEFAULTS, GENERATOR_HELP, Algorithm, BatchCycler, clip_and_step
from .cot import MEDIATOR_DEFAULTS, MEDIATOR_HELP, MEDIATOR_SPECS, PAPER_PROFILE, REAL_TEXT_PAPER_PROFILES


class FeatureExtractor(LeakDiscriminator):
    """LeakGAN's CNN feature extractor, trainable through the features it leaks to the manager.

    ``prefix_features`` is ``LeakDiscriminator.prefix_features`` without its ``no_grad``: the same numbers,
    differentiable in the extractor's parameters (embedding, convolutions, highway). Sampling (under
    ``no_grad``) uses the incremental ``prefix_step`` as before. The classifier output layer is unused."""

    def prefix_features(self, x: torch.Tensor) -> torch.Tensor:
        return LeakDiscriminator.prefix_features.__wrapped__(self, x)

    def feature_parameters(self) -> list[torch.nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("output.")]


def full_logits(g: LeakGANGenerator, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """G's logits O_t w_t for every position, [B·L, V] (batch-major rows), from ``g.teacher_forced(x)``
    (differentiable in the worker, the goals, hence the manager and the feature extractor)."""
    hw = out["worker_h"]
    b, length, hidden = hw.shape
    w = g._goal_weights(out["goals"])[:, out["segment"]]  # [B, L, k]
    return g._logits(hw.reshape(b * length, hidden), w.reshape(b * length, -1))


def full_log_probs(g: LeakGANGenerator, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """ln G(v | x_<t) for every position and vocabulary entry, [B, L, V] (``full_logits``, log-softmax)."""
    b, length = out["worker_h"].shape[:2]
    return torch.log_softmax(full_logits(g, out), dim=-1).view(b, length, -1)


@register_algorithm("cot-strong", "TextCoT-strong: CoT's objective with a LeakGAN manager/worker generator (own CNN features)")
class CoTStrong(Algorithm):
    name = "cot-strong"
    unit = "iteration"  # as cot: one G update on 64 own samples + one mediator update on 64 real + 64 generated
    defaults = {
        **GENERATOR_DEFAULTS,
        "g_lr": 1e-3,
        "g_betas": [0.9, 0.95],
        "g_clip": 5.0,
        "leak_emb": 64,
        "leak_filter_sizes": [2, 3],
        "leak_num_filters": [100, 200],
        "leak_goal_size": 16,
        "leak_step_size": 4,
        **MEDIATOR_DEFAULTS,
    }
    specs = {  # the rest by name family (config.FAMILY_SPECS)
        **MEDIATOR_SPECS,
        "leak_filter_sizes": Spec("list", item="int", ge=1),
        "leak_num_filters": Spec("list", item="int", ge=1),
        "leak_goal_size": COUNT,
        "leak_step_size": COUNT,
    }
    help = {
        **GENERATOR_HELP,
        "g_emb": "worker embedding size",
        "g_hidden": "worker and manager LSTM size",
        "g_init_std": "std of the N(0, s²) init of every worker/manager tensor",
        "g_lr": "Adam learning rate of the whole generator (worker, manager, feature extractor)",
        "g_betas": "generator Adam betas",
        "g_clip": "global-norm clip of the generator's gradient (0 = off; 5 as LeakGAN)",
        "leak_emb": "embedding size of the generator's own CNN feature extractor",
        "leak_filter_sizes": "feature extractor CNN filter widths",
        "leak_num_filters": "feature extractor filters per width (their sum is the leaked-feature size)",
        "leak_goal_size": "goal size k (the worker outputs V × k)",
        "leak_step_size": "step size c: goals are summed per c tokens",
        **MEDIATOR_HELP,
    }
    profiles = {
        "quick": {"steps": 150, "eval_every": 50},
        "paper": dict(PAPER_PROFILE),  # cot's (the CoT paper reports no separate budget for TextCoT-strong)
    }
    suite_profiles = {
        ("quick", "coco"): {"steps": 60, "eval_every": 20},
        ("quick", "emnlp"): {"steps": 60, "eval_every": 20},
        **REAL_TEXT_PAPER_PROFILES,  # cot's real-text budget
    }

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        s = settings
        self.f = FeatureExtractor(
            suite.vocab_size, s["leak_emb"], s["leak_filter_sizes"], s["leak_num_filters"], 0.0, 0.0, generator=rng
        ).to(self.device)
        self.g = LeakGANGenerator(
            suite.vocab_size, suite.seq_len, self.f, s["g_emb"], s["g_hidden"], s["leak_goal_size"], s["leak_step_size"], suite.start_token
        ).init_texygen_(s["g_init_std"], rng).to(self.device)
        self.g.eval()  # nothing in G depends on the mode (no dropout anywhere in it)
        self.m = self.make_lstm(s["m_emb"], s["m_hidden"], dropout=s["m_dropout"], two_biases=True).init_mediator_(s["m_init_std"], rng)
        self.g_params = self.g.worker_parameters() + self.g.manager_parameters() + self.f.feature_parameters()
        self.g_opt = torch.optim.Adam(self.g_params, lr=s["g_lr"], betas=tuple(s["g_betas"]), eps=1e-8, foreach=True)
        self.m_opt = torch.optim.Adam(self.m.parameters(), lr=s["m_lr"], betas=tuple(s["m_betas"]), eps=1e-8, foreach=True)
        self.batches = BatchCycler(suite.train, s["batch_size"], rng, shuffle=s["shuffle"])

    def modules(self):
        # the feature extractor is a submodule of the generator (G's distribution depends on it)
        return {"generator": self.g, "mediator": self.m}

    def optimizers(self):
        return {"generator": self.g_opt, "mediator": self.m_opt}

    def generator_loss(self, s: torch.Tensor) -> torch.Tensor:
        """J(θ) on G's samples s: per-position KL(G‖M) over the full vocabulary, M constant: ``cot_generator_loss``'s
        number, its gradient with respect to G's logits in closed form (``fused.KLToConstant``)."""
        g_logits = full_logits(self.g, self.g.teacher_forced(s))
        was_training = self.m.training
        self.m.eval()
        with torch.no_grad():
            m_lp = self.m.log_probs(s)
        self.m.train(was_training)
        return KLToConstant.apply(g_logits, m_lp.reshape(g_logits.shape))

    def train_step(self, step):
        b = int(self.settings["batch_size"])
        # 1. generator: minimise per-token KL(G || M) on its own prefixes
        s = self.g.sample(b, self.rng).to(self.device)
        self.g_opt.zero_grad(set_to_none=True)
        g_loss = self.generator_loss(s)
        g_loss.backward()
        clip_and_step(self.g_opt, self.g_params, self.settings["g_clip"])
        # 2. mediator: maximum likelihood on balanced real / generated batches (as cot)
        for _ in range(int(self.settings["m_steps"])):
            real = self.batches.next().to(self.device)
            fake = self.g.sample(b, self.rng).to(self.device)
            self.m.train()
            self.m_opt.zero_grad(set_to_none=True)
            m_loss, bnll = mediator_nll_backward(self.m, real, fake, self.m.dropout)
            self.m_opt.step()
            self.m.eval()
        return {"g_loss": float(g_loss.detach()), "bnll": bnll, "m_loss": m_loss}

    def extra_state(self):
        return {"batches": self.batches.state_dict()}

    def load_extra_state(self, state):
        self.batches.load_state_dict(state["batches"])
