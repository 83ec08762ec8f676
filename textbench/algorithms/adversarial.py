"""Shared machinery of the discriminator-guided algorithms (SeqGAN, RankGAN, MaliGAN, GCN).

**Phases, by global step** (the engine calls ``train_step(step)`` for step = 1..steps, so a killed run
resumes in whichever phase it was). One step is one *epoch* of the phase, as the references count them,
so that ``eval_every = 5`` is their "every 5 epochs" in every phase:

1. steps 1..P (``pretrain_steps``): MLE pre-training of G; a step is ``mle_batches`` minibatches
   (0 = one pass over the training set, ⌊N/B⌋ = 156 batches), loss −mean ln G(x_t|x_<t), Adam ``g_lr``,
   clip ``g_clip`` (protocol §3.1–3.2). Logged as ``mle_loss``.
2. steps P+1..P+Q (``d_pretrain_steps``): D pre-training; a step is one *D call* (below). ``d_loss``.
3. steps P+Q+1..P+Q+A (``adv_steps``): adversarial epochs, algorithm-specific (``adversarial_step``);
   for the policy-gradient GANs: ``adv_g_steps`` generator updates, then ``d_steps`` D calls.

``steps`` must not exceed P + Q + A (a smaller value runs the schedule truncated). G has two Adam
optimizers, one for MLE pre-training and one for the adversarial updates, as in SeqGAN's generator
(``pretrain_opt`` / ``g_opt``): the adversarial phase starts with fresh Adam moments.

**D call** (SeqGAN ``train_discriminator`` / Texygen): draw n = min(``d_samples``, N_train) fresh G
samples (label 0) and n real training sequences (label 1; all of them when n = N_train, else a random
subset), shuffle once, and run ``d_epochs`` passes over the ⌊2n/B⌋ minibatches, each one Adam step on
mean softmax-CE + l2 · (½‖W_out‖² + ½‖b_out‖²), with D's dropout on. SeqGAN: n = 9,984, 3 epochs (936
updates per call). Texygen: 3 minibatches per call — here ``d_samples = 96, d_epochs = 1`` (Texygen
draws 9,984 negatives and uses 3 shuffled minibatches of the pos+neg mix: the same distribution of
minibatches, without generating the unused 9,792).

**Policy gradient** (protocol §3.1): L_PG = −Σ_{b,t} ln G(x_{b,t}|x_{b,<t}) · R_{b,t} on B = 64 fresh
samples, rewards constant. ``pg_reduction = sum`` (published: a sum over the 64×20 terms, no baseline;
with Adam and the global-norm clip 5 the scale mostly affects how often the clip is active) or ``mean``
(divided by B·L). ``reward_gamma`` of the references is unused there and absent here.

**Rollout policy** (``rollout_update_rate`` r): r = 0 (default) rolls out with the *current* generator —
what SeqGAN, Texygen and TextGAN-PyTorch actually ran (their delayed copy had no effect, protocol
§2.9-5, §2.9-9), so this is the setting comparable to published numbers. r > 0 keeps a real delayed copy
π (a module ``rollout``, checkpointed): π ← G at the first adversarial step, and after every G update
π ← r·π + (1−r)·G for every tensor (SeqGAN's intended ``update_params`` with r = 0.8; it copied the
embedding outright, here it is averaged like the rest). Rewards use D in eval mode (no dropout).

**init_from** = a previous run directory: ``checkpoints/last.pt`` (else ``generator.pt``) is loaded with
``safe_torch_load`` and the phases it covers are skipped (their length becomes 0, so ``steps`` must be
reduced by them — the error message says to what):

* a run of any other algorithm (``mle``, ``cot``, ...), or weights only: G ← its generator; MLE
  pre-training is skipped. D is pre-trained as usual.
* a run of an algorithm of this family stopped at or after the end of its MLE phase: G ← its generator
  (MLE skipped); if it also finished its D pre-training, its discriminator is of the same kind (a
  real/fake classifier for SeqGAN, MaliGAN, GCN; a ranker for RankGAN) and has the same shapes as ours,
  D and D's Adam state ← its own (D pre-training skipped). A source stopped inside its MLE phase is
  an error (resume it first).

Optimizer moments of G are not carried over (the adversarial optimizer is fresh anyway). The suite
signature of the source must equal ours. The source is read again when the run is resumed; the phase
boundaries are stored in the checkpoint. This is the paper's procedure: pre-train once (``textbench run
--algo mle``, or ``seqgan`` stopped with ``--stop-at-step`` after its pre-training), reuse for SeqGAN,
RankGAN, MaliGAN and GCN.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from ..config import COUNT, COUNT0, FLAG, TEXT, Spec
from ..errors import TextbenchError
from ..io import read_json, safe_torch_load
from ..models.discriminator import SEQGAN_FILTERS, TEXYGEN_FILTERS, CNNDiscriminator
from ..models.rollout import rollout_rewards, sequence_reward
from ..registry import ALGORITHMS
from .base import GENERATOR_DEFAULTS, GENERATOR_HELP, Algorithm, BatchCycler, clip_and_step

EPOCH = 156  # minibatches of 64 in the 9,984 training sequences

# -- settings --------------------------------------------------------------------------------------
PHASE_DEFAULTS: dict[str, Any] = {
    **GENERATOR_DEFAULTS,
    "g_lr": 0.01,
    "g_betas": [0.9, 0.999],
    "g_clip": 5.0,
    "shuffle": False,
    "pretrain_steps": 80,
    "mle_batches": 0,
    "d_pretrain_steps": 80,
    "adv_steps": 100,
    "adv_g_steps": 1,
    "init_from": "",
    # discriminator: Texygen's (emb 32, filters [2,3] x [100,200]) with SeqGAN's dropout really applied
    "d_emb": TEXYGEN_FILTERS.emb_dim,
    "d_filter_sizes": list(TEXYGEN_FILTERS.filter_sizes),
    "d_num_filters": list(TEXYGEN_FILTERS.num_filters),
    "d_dropout": 0.25,
    "d_l2": 0.2,
    "d_lr": 1e-4,
    "d_samples": 96,
    "d_epochs": 1,
}
PHASE_HELP: dict[str, str] = {
    **GENERATOR_HELP,
    "g_lr": "generator Adam learning rate (MLE pre-training and adversarial updates)",
    "g_betas": "generator Adam betas",
    "g_clip": "generator global-norm clip (0 = off)",
    "shuffle": "reshuffle the real batches every epoch in MLE pre-training (published: sequential)",
    "pretrain_steps": "MLE pre-training steps (each = mle_batches minibatches)",
    "mle_batches": "minibatches per MLE pre-training step (0 = one epoch over the training set)",
    "d_pretrain_steps": "discriminator pre-training steps (each = one D call)",
    "adv_steps": "adversarial steps (epochs) after the pre-training phases",
    "adv_g_steps": "generator updates per adversarial step",
    "init_from": "run directory whose generator (and discriminator) replace the pre-training phases it covers",
    "d_emb": "discriminator embedding size",
    "d_filter_sizes": "discriminator CNN filter widths",
    "d_num_filters": "filters per width",
    "d_dropout": "discriminator dropout (drop probability; SeqGAN keep 0.75 = 0.25) in its updates",
    "d_l2": "weight of the l2 penalty on D's output layer",
    "d_lr": "discriminator Adam learning rate",
    "d_samples": "generated (and as many real) sequences per D call (capped at the training-set size)",
    "d_epochs": "passes over each D call's data",
}
PG_DEFAULTS: dict[str, Any] = {"d_steps": 15, "pg_reduction": "sum"}
PG_HELP = {
    "d_steps": "D calls per adversarial step",
    "pg_reduction": "policy-gradient loss: sum over B x L terms (published) or mean",
}
ROLLOUT_DEFAULTS: dict[str, Any] = {"rollout_num": 16, "rollout_update_rate": 0.0, "rollout_chunk": 0}
ROLLOUT_HELP = {
    "rollout_num": "Monte-Carlo completions per prefix (K)",
    "rollout_update_rate": "0 = roll out with the current generator (what the references ran); r > 0 = delayed copy pi <- r pi + (1-r) G",
    "rollout_chunk": "rows per batched rollout sampling chunk (0 = auto: 2^20 / vocab rows, ~4 MB of logits)",
}

# type and range of every key above that its name family does not cover (config.FAMILY_SPECS)
PHASE_SPECS: dict[str, Spec] = {
    "shuffle": FLAG,
    "pretrain_steps": COUNT0,
    "mle_batches": COUNT0,
    "d_pretrain_steps": COUNT0,
    "adv_steps": COUNT0,
    "adv_g_steps": COUNT0,
    "init_from": TEXT,
    "d_filter_sizes": Spec("list", item="int", ge=1),
    "d_num_filters": Spec("list", item="int", ge=1),
    "d_l2": Spec("float", ge=0),
    "d_samples": COUNT,
    "d_epochs": COUNT,
}
PG_SPECS: dict[str, Spec] = {"d_steps": COUNT0, "pg_reduction": Spec("str", choices=("sum", "mean"))}
ROLLOUT_SPECS: dict[str, Spec] = {
    "rollout_num": COUNT,
    "rollout_update_rate": Spec("float", ge=0, le=1),
    "rollout_chunk": COUNT0,
}

SEQGAN_D = {
    "d_emb": SEQGAN_FILTERS.emb_dim,
    "d_filter_sizes": list(SEQGAN_FILTERS.filter_sizes),
    "d_num_filters": list(SEQGAN_FILTERS.num_filters),
}


# -- losses ----------------------------------------------------------------------------------------
def pg_loss(token_log_probs: torch.Tensor, rewards: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """L = −Σ_{b,t} ln G(x_{b,t}|x_{b,<t}) · R_{b,t}  (``sum``), or that divided by B·L (``mean``)."""
    if token_log_probs.shape != rewards.shape:
        raise ValueError(f"log-probs {tuple(token_log_probs.shape)} and rewards {tuple(rewards.shape)} differ in shape")
    total = -(token_log_probs * rewards.detach()).sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / token_log_probs.numel()
    raise TextbenchError(f"pg_reduction must be sum or mean, got {reduction!r}")


def _adam_step(opt: torch.optim.Optimizer) -> None:
    """``opt.step()``; for a plain ``torch.optim.Adam`` over CPU float32 parameters, with torch's fused
    Adam kernel (the ``fused=True`` code path, switched on for this call only, so the optimizer's
    settings and its ``state_dict`` are unchanged).

    The fused kernel computes the same update in one pass over (param, grad, m, v) instead of the ~8
    passes of the default single-tensor implementation: ~7 ms instead of ~19 ms per step for SeqGAN's D
    (7.0M parameters, one thread). Its float rounding differs from the default's by about one ulp of the
    update (m, v and the parameters agree to ~1e-7 relative after a step), so a fixed-seed run's D
    weights are equal up to rounding, not bit for bit (the discriminator's gradients already differ at
    that level: ``models/discriminator.py``). ``foreach=True`` would be bit-identical but is no faster on
    CPU. Anything else (other optimizers, devices, dtypes, AMSGrad/differentiable/capturable/foreach
    settings, a torch without the CPU kernel) takes ``opt.step()`` unchanged."""
    groups = opt.param_groups
    if not (type(opt) is torch.optim.Adam and _FUSED_CPU_ADAM) or any(
        g.get("fused") or g.get("foreach") or g.get("differentiable") or g.get("capturable")
        or any(p.device.type != "cpu" or p.dtype != torch.float32 for p in g["params"])
        for g in groups
    ):
        opt.step()
        return
    saved = [g.get("fused") for g in groups]
    for g in groups:
        g["fused"] = True
    try:
        opt.step()
    finally:
        for g, f in zip(groups, saved):
            g["fused"] = f


def _fused_cpu_adam_available() -> bool:
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        return "cpu" in _get_fused_kernels_supported_devices() and hasattr(torch, "_fused_adam_")
    except ImportError:
        return False


_FUSED_CPU_ADAM = _fused_cpu_adam_available()


# -- the base class --------------------------------------------------------------------------------
class PhasedAlgorithm(Algorithm):
    """MLE pre-training → D pre-training → ``adversarial_step``; see the module docstring."""

    defaults = PHASE_DEFAULTS
    help = PHASE_HELP
    specs = PHASE_SPECS
    uses_rollout = False
    d_kind = "classifier"  # what the "discriminator" module is trained as (init_from reuses only the same kind)

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        s = settings
        self.g = self.make_generator()
        betas = tuple(s["g_betas"])
        self.pre_opt = torch.optim.Adam(self.g.parameters(), lr=s["g_lr"], betas=betas, eps=1e-8)
        self.adv_opt = torch.optim.Adam(self.g.parameters(), lr=s["g_lr"], betas=betas, eps=1e-8)
        self.d = self.make_discriminator()
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=s["d_lr"], betas=(0.9, 0.999), eps=1e-8)
        self.batches = BatchCycler(suite.train, s["batch_size"], rng, shuffle=s["shuffle"])
        self.rollout_policy = None
        if self.uses_rollout and s["rollout_update_rate"] > 0:
            self.rollout_policy = copy.deepcopy(self.g).requires_grad_(False)
        for key in ("pretrain_steps", "d_pretrain_steps", "adv_steps", "mle_batches"):
            if int(s[key]) < 0:
                raise TextbenchError(f"{key} must be >= 0, got {s[key]}")
        self.init_info: dict[str, Any] = {}
        covered_mle, covered_d = False, False
        if s.get("init_from"):
            covered_mle, covered_d = self._load_init(Path(s["init_from"]))
        self.p_end = 0 if covered_mle else int(s["pretrain_steps"])
        self.d_end = self.p_end + (0 if covered_d else int(s["d_pretrain_steps"]))
        self._check_steps()

    # -- construction helpers ----------------------------------------------------------------------
    def make_discriminator(self) -> torch.nn.Module:
        s = self.settings
        return CNNDiscriminator(
            self.suite.vocab_size, s["d_emb"], s["d_filter_sizes"], s["d_num_filters"], s["d_dropout"], s["d_l2"], generator=self.rng
        ).to(self.device)

    def _check_steps(self) -> None:
        total = self.d_end + int(self.settings["adv_steps"])
        if int(self.settings["steps"]) > total:
            skipped = " (init_from skipped the pre-training it covers)" if self.settings.get("init_from") else ""
            raise TextbenchError(
                f"steps={self.settings['steps']} exceeds this schedule's {total} steps: {self.p_end} MLE + "
                f"{self.d_end - self.p_end} D pre-training + {self.settings['adv_steps']} adversarial{skipped}; set steps={total}"
            )

    def _load_init(self, path: Path) -> tuple[bool, bool]:
        """Load G (and D) from a previous run; returns which phases that covers."""
        if not path.is_dir():
            raise TextbenchError(f"init_from={path}: not a run directory")
        cfg = read_json(path / "config.json") if (path / "config.json").is_file() else None
        if cfg is not None and cfg.get("suite_signature") and cfg["suite_signature"] != self.suite.signature():
            raise TextbenchError(
                f"init_from={path}: its suite differs from this run's ({json.dumps(cfg['suite_signature'])} vs "
                f"{json.dumps(self.suite.signature())})"
            )
        ckpt = path / "checkpoints" / "last.pt"
        state, step = None, None
        if ckpt.is_file():
            state = safe_torch_load(ckpt)
            try:
                g_weights, step = state["modules"]["generator"], int(state["step"])
            except (KeyError, TypeError, ValueError):
                raise TextbenchError(f"{ckpt}: not a textbench checkpoint") from None
        elif (path / "generator.pt").is_file():
            g_weights = safe_torch_load(path / "generator.pt")
        else:
            raise TextbenchError(f"init_from={path}: neither checkpoints/last.pt nor generator.pt found")
        try:
            self.g.load_state_dict(g_weights)
        except (RuntimeError, KeyError) as e:
            raise TextbenchError(f"init_from={path}: its generator does not fit this one ({e})") from None
        covered_d = False
        src_algo = cfg["algo"] if cfg else None
        src_phases = (state or {}).get("extra", {}).get("phases") if state else None
        if src_phases is not None and step is not None:
            p_end, d_end = int(src_phases["p_end"]), int(src_phases["d_end"])
            if step < p_end:
                raise TextbenchError(
                    f"init_from={path}: that {src_algo} run stopped at step {step}, inside its MLE pre-training "
                    f"(steps 1..{p_end}); resume it first"
                )
            src_cls = ALGORITHMS.get(src_algo) if src_algo in ALGORITHMS else None
            same_kind = getattr(src_cls, "d_kind", None) == self.d_kind
            if step >= d_end and same_kind and "discriminator" in state["modules"]:
                try:
                    self.d.load_state_dict(state["modules"]["discriminator"])
                    if "discriminator" in state.get("optimizers", {}):
                        self.d_opt.load_state_dict(state["optimizers"]["discriminator"])
                    covered_d = True
                except (RuntimeError, KeyError, ValueError):
                    covered_d = False  # a different discriminator: pre-train ours
        self.init_info = {"source": str(path), "source_algo": src_algo, "source_step": step, "loaded_d": covered_d}
        return True, covered_d

    # -- phases ------------------------------------------------------------------------------------
    def phase(self, step: int) -> str:
        if step <= self.p_end:
            return "mle"
        if step <= self.d_end:
            return "d_pretrain"
        return "adversarial"

    def train_step(self, step: int) -> dict[str, float]:
        ph = self.phase(step)
        if ph == "mle":
            return self.mle_step()
        if ph == "d_pretrain":
            return {"d_loss": self.d_call()}
        return self.adversarial_step(step - self.d_end)

    def adversarial_step(self, index: int) -> dict[str, float]:
        """Adversarial epoch number ``index`` (1-based)."""
        raise NotImplementedError

    # -- MLE ---------------------------------------------------------------------------------------
    def mle_step(self) -> dict[str, float]:
        n = int(self.settings["mle_batches"]) or self.batches.num_batches
        self.g.train()
        total = 0.0
        for _ in range(n):
            x = self.batches.next().to(self.device)
            self.pre_opt.zero_grad(set_to_none=True)
            loss = -self.g.token_log_probs(x).mean()
            loss.backward()
            clip_and_step(self.pre_opt, self.g.parameters(), self.settings["g_clip"])
            total += loss.item()
        return {"mle_loss": total / n}

    # -- discriminator -----------------------------------------------------------------------------
    def d_batch_loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of one D minibatch (labels 1 = real); the ranker overrides it."""
        return self.d.loss(x, labels)

    def d_call(self) -> float:
        """One D call (module docstring); returns the mean minibatch loss.

        The negatives are ``self.g.sample(n, self.rng)``; D's Adam steps are ``_adam_step`` (torch's fused Adam kernel on CPU)."""
        s, b = self.settings, int(self.settings["batch_size"])
        train = self.suite.train
        n = min(int(s["d_samples"]), train.shape[0])
        neg = self.g.sample(n, self.rng).to(self.device)
        pos = train if n == train.shape[0] else train[torch.randperm(train.shape[0], generator=self.rng)[:n]]
        data = torch.cat([pos.to(self.device), neg])
        labels = torch.cat([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)]).to(self.device)
        perm = torch.randperm(2 * n, generator=self.rng).to(self.device)
        data, labels = data[perm], labels[perm]
        nb = (2 * n) // b
        if nb == 0:
            raise TextbenchError(f"d_samples={n}: fewer than one minibatch of {b} (real + generated)")
        self.d.train()
        total = 0.0
        for _ in range(int(s["d_epochs"])):
            for i in range(nb):
                self.d_opt.zero_grad(set_to_none=True)
                loss = self.d_batch_loss(data[i * b : (i + 1) * b], labels[i * b : (i + 1) * b])
                loss.backward()
                _adam_step(self.d_opt)
                total += loss.item()
        self.d.eval()
        return total / (nb * int(s["d_epochs"]))

    # -- generator ---------------------------------------------------------------------------------
    def pg_update(self, x: torch.Tensor, rewards: torch.Tensor) -> float:
        """One adversarial Adam step of G on L_PG(x, rewards); then the delayed rollout copy moves."""
        self.g.train()
        self.adv_opt.zero_grad(set_to_none=True)
        loss = pg_loss(self.g.token_log_probs(x), rewards, self.settings["pg_reduction"])
        loss.backward()
        clip_and_step(self.adv_opt, self.g.parameters(), self.settings["g_clip"])
        self.update_rollout_policy()
        return loss.item()

    def policy(self):
        """The rollout policy: the generator itself, or its delayed copy."""
        return self.rollout_policy if self.rollout_policy is not None else self.g

    def start_rollout_policy(self) -> None:
        """π ← G (called at the first adversarial step)."""
        if self.rollout_policy is not None:
            self.rollout_policy.load_state_dict(self.g.state_dict())

    @torch.no_grad()
    def update_rollout_policy(self) -> None:
        if self.rollout_policy is None:
            return
        r = float(self.settings["rollout_update_rate"])
        for p_roll, p_g in zip(self.rollout_policy.parameters(), self.g.parameters()):
            p_roll.mul_(r).add_(p_g.detach(), alpha=1.0 - r)

    def rollout(self, x: torch.Tensor, reward_fn) -> torch.Tensor:
        """Batched Monte-Carlo rewards [B, L] of ``x`` under ``reward_fn`` (D in eval mode)."""
        self.d.eval()
        s = self.settings
        return rollout_rewards(self.policy(), x, int(s["rollout_num"]), reward_fn, self.rng, chunk_rows=int(s["rollout_chunk"]))

    def d_reward_fn(self):
        """SeqGAN's reward: D(y) = P(real | y) per sequence."""
        return sequence_reward(self.d.prob_real)

    # -- engine contract ---------------------------------------------------------------------------
    def modules(self):
        mods = {"generator": self.g, "discriminator": self.d}
        if self.rollout_policy is not None:
            mods["rollout"] = self.rollout_policy
        return mods

    def optimizers(self):
        return {"generator": self.pre_opt, "generator_adv": self.adv_opt, "discriminator": self.d_opt}

    def extra_state(self):
        return {"batches": self.batches.state_dict(), "phases": {"p_end": self.p_end, "d_end": self.d_end}}

    def load_extra_state(self, state):
        self.batches.load_state_dict(state["batches"])
        if "phases" in state:  # the boundaries this run started with (init_from may have moved on)
            self.p_end, self.d_end = int(state["phases"]["p_end"]), int(state["phases"]["d_end"])


class PolicyGradientGAN(PhasedAlgorithm):
    """SeqGAN-style adversarial epoch: ``adv_g_steps`` × {64 samples, rewards, PG step}, then ``d_steps`` D calls."""

    defaults = {**PHASE_DEFAULTS, **PG_DEFAULTS}
    help = {**PHASE_HELP, **PG_HELP}
    specs = {**PHASE_SPECS, **PG_SPECS, **ROLLOUT_SPECS}  # seqgan, maligan, rankgan

    def rewards(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards [B, L] of the generated batch ``x``."""
        raise NotImplementedError

    def adversarial_step(self, index: int) -> dict[str, float]:
        if index == 1:
            self.start_rollout_policy()
        b = int(self.settings["batch_size"])
        sums: dict[str, float] = {}
        n = int(self.settings["adv_g_steps"])
        for _ in range(n):
            x = self.g.sample(b, self.rng).to(self.device)
            r = self.rewards(x)
            logs = {"g_loss": self.pg_update(x, r), **self.reward_logs(x, r)}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v / n
        d_losses = [self.d_call() for _ in range(int(self.settings["d_steps"]))]
        if d_losses:
            sums["d_loss"] = sum(d_losses) / len(d_losses)
        return sums

    def reward_logs(self, x: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
        """Scalars logged per G step: the mean reward (MaliGAN, whose rewards sum to 0, overrides)."""
        return {"reward": rewards.mean().item()}
