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
64 (2×), a CuDNN LSTM: embedding/output N(0, 0.1²), orthogonal LSTM kernels, two bias vectors (input and
recurrent, both zero-initialised and trained), dropout 0.5 (keep 0.5)
during its update only, Adam(3e-3, β=(0.9, 0.95)); no gradient clipping, no MLE pre-training;
200,000 iterations. Deviation: none in the objective; PyTorch's LSTM carries the same equations.

Real text (``coco``, ``emnlp``): no budget is published (the CoT paper's EMNLP experiment states none; Texygen has
no CoT). The ``paper`` profile there (``suite_profiles``, ``REAL_TEXT_PAPER_PROFILES``) runs as many iterations — generator
updates, each also one mediator update on 64 real sequences — as MLE's paper run of the suite has minibatches
(Texygen's 80 epochs: 12,480 on COCO), evaluated on MLE's grid (every 5 epochs' worth: 780), every evaluation full:
CoT's curve and MLE's share their x-axis in generator updates and in real sequences seen, and its final row is the
equal-budget comparison (protocol Part I, "COCO and EMNLP").

Computation. ``cot_generator_loss`` and ``mediator_loss`` below state the two objectives; ``train_step``
computes the same numbers with the fused output-layer passes of ``models/fused.py`` (no [B, L, V] autograd
graph): G's conditionals on s are kept from drawing s; the gradient with respect to G's logits is
G ⊙ (ln G − ln M − KL) per row, made in one sweep; M scores the real and the generated batch in one LSTM pass
whose states serve both the logged (dropout off) and the trained (dropout on) balanced NLL, since the dropout
sits after the LSTM. tests/algorithms/test_cot_fused.py holds losses, gradients, ``bnll`` and parameters
after several iterations to the straightforward autograd iteration within 1e-5, with the same draws from the
training generator and from torch's (dropout) in the same order. Only the rounding of sums differs: a tiny
run samples the same sequences; at paper sizes the parameters agree to ~5e-6 for the first ~20 iterations
(Adam magnifies rounding in near-zero gradients), after which one differently drawn token makes the runs
drift apart into statistically equivalent, not bit-identical, trajectories. ``precision=bf16`` (opt-in) gives the large
output-layer products bf16 operands; softmax, KL, reductions, parameters and optimizer state stay fp32, and
evaluation is unchanged.
"""

from __future__ import annotations

import torch

from ..config import COUNT, FLAG, Spec
from ..models.fused import generator_kl_backward, mediator_nll_backward, sample_with_probs
from ..registry import register_algorithm
from .base import GENERATOR_DEFAULTS, GENERATOR_HELP, Algorithm, BatchCycler, clip_and_step
from .mle import TEXYGEN_REAL as MLE_TEXYGEN_REAL


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


PRECISIONS = ("fp32", "bf16")
_MM_DTYPE = {"fp32": None, "bf16": torch.bfloat16}


#: the mediator and data settings shared by every CoT variant (cot, cot-strong)
MEDIATOR_DEFAULTS = {"m_emb": 64, "m_hidden": 64, "m_init_std": 0.1, "m_dropout": 0.5, "m_lr": 3e-3,
                     "m_betas": [0.9, 0.95], "m_steps": 1, "shuffle": False}
MEDIATOR_SPECS = {"m_steps": COUNT, "shuffle": FLAG}  # the rest by name family (config.FAMILY_SPECS)
MEDIATOR_HELP = {
    "m_emb": "mediator embedding size",
    "m_hidden": "mediator LSTM size",
    "m_init_std": "std of the mediator's normal init (embedding, output)",
    "m_dropout": "mediator dropout on the LSTM output during its update",
    "m_lr": "mediator Adam learning rate",
    "m_betas": "mediator Adam betas",
    "m_steps": "mediator updates per iteration",
    "shuffle": "reshuffle the real batches every epoch (published: sequential)",
}
#: the official cadence: NLL_oracle and NLL_test every 100 iterations; the JSDs every 1,000 (protocol)
PAPER_PROFILE = {"steps": 200_000, "eval_every": 100, "full_eval_every": 1000}
#: the ``paper`` profile on real text (``suite_profiles`` of every CoT variant), no published budget: MLE's paper
#: run of the suite in generator updates (Texygen's 80 epochs) and its evaluation grid, every evaluation full
#: (module docstring)
REAL_TEXT_PAPER_PROFILES = {("paper", suite): {**mle_budget, "full_eval_every": 0} for suite, mle_budget in MLE_TEXYGEN_REAL.items()}


@register_algorithm("cot", "Cooperative Training: generator minimises JSD through a mediator trained on ½(P+G)")
class CoT(Algorithm):
    name = "cot"
    unit = "iteration"  # one G update on 64 own samples + one mediator update on 64 real + 64 generated
    defaults = {
        **GENERATOR_DEFAULTS,
        "g_lr": 1e-3,
        "g_betas": [0.9, 0.95],
        "g_clip": 0.0,
        **MEDIATOR_DEFAULTS,
        "precision": "fp32",
    }
    specs = {**MEDIATOR_SPECS, "precision": Spec("str", choices=PRECISIONS)}  # the rest by name family (config.FAMILY_SPECS)
    help = {
        **GENERATOR_HELP,
        "g_lr": "generator Adam learning rate",
        "g_betas": "generator Adam betas",
        "g_clip": "generator global-norm clip (0 = off, as published)",
        **MEDIATOR_HELP,
        "precision": "training arithmetic: fp32 (as published) or bf16 (bf16 operands for the output-layer "
        "products, faster where the CPU has bf16 matrix instructions (AVX512-BF16, AMX); softmax, KL, "
        "parameters, optimizer state and evaluation stay fp32)",
    }
    profiles = {"quick": {"steps": 300, "eval_every": 100}, "paper": dict(PAPER_PROFILE)}
    # a CoT step on coco (V≈4,660, L=38) costs ~0.5 s of CPU: keep the quick profile to minutes
    suite_profiles = {
        ("quick", "coco"): {"steps": 200, "eval_every": 50},
        ("quick", "emnlp"): {"steps": 200, "eval_every": 50},
        **REAL_TEXT_PAPER_PROFILES,
    }

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        s = settings
        self.g = self.make_generator()
        self.m = self.make_lstm(s["m_emb"], s["m_hidden"], dropout=s["m_dropout"], two_biases=True).init_mediator_(s["m_init_std"], rng)
        # foreach: the same numbers as the default per-parameter loop (bit for bit), 4x faster on CPU
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=s["g_lr"], betas=tuple(s["g_betas"]), eps=1e-8, foreach=True)
        self.m_opt = torch.optim.Adam(self.m.parameters(), lr=s["m_lr"], betas=tuple(s["m_betas"]), eps=1e-8, foreach=True)
        self.batches = BatchCycler(suite.train, s["batch_size"], rng, shuffle=s["shuffle"])
        self._bufs: tuple[torch.Tensor, torch.Tensor] | None = None

    def modules(self):
        return {"generator": self.g, "mediator": self.m}

    def optimizers(self):
        return {"generator": self.g_opt, "mediator": self.m_opt}

    def train_step(self, step):
        """One CoT iteration (module docstring, "Computation"). Draws from ``self.rng`` (sampling) and from
        torch's global generator (dropout) come in the same order as in the straightforward iteration."""
        b = self.settings["batch_size"]
        mm_dtype = _MM_DTYPE[self.settings["precision"]]
        # 1. generator: minimise per-token KL(G || M) on its own prefixes
        self.g.train()
        self.m.eval()
        probs, log_probs = self._buffers(b)
        s = sample_with_probs(self.g, b, self.rng, probs, log_probs, mm_dtype=mm_dtype)
        self.g_opt.zero_grad(set_to_none=True)
        g_loss = generator_kl_backward(self.g, self.m, s, probs, log_probs, mm_dtype=mm_dtype)
        clip_and_step(self.g_opt, self.g.parameters(), self.settings["g_clip"])
        # 2. mediator: maximum likelihood on balanced real / generated batches
        for _ in range(self.settings["m_steps"]):
            real = self.batches.next().to(self.device)
            fake = sample_with_probs(self.g, b, self.rng, mm_dtype=mm_dtype)
            self.m.train()
            self.m_opt.zero_grad(set_to_none=True)
            m_loss, bnll = mediator_nll_backward(self.m, real, fake, self.m.dropout, mm_dtype=mm_dtype)
            self.m_opt.step()
            self.m.eval()
        return {"g_loss": g_loss, "bnll": bnll, "m_loss": m_loss}

    def _buffers(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """[L, b, V] buffers for G's conditionals on its samples, reused across iterations."""
        shape = (self.suite.seq_len, b, self.suite.vocab_size)
        if self._bufs is None or self._bufs[0].shape != shape:
            self._bufs = (torch.empty(shape, device=self.device), torch.empty(shape, device=self.device))
        return self._bufs

    def extra_state(self):
        return {"batches": self.batches.state_dict()}

    def load_extra_state(self, state):
        self.batches.load_state_dict(state["batches"])
