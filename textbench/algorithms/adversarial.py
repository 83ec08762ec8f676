"""The LSTM-generator algorithms of the discriminator-guided family (SeqGAN, RankGAN, MaliGAN, GCN).

They run on the shared phase schedule (``phases.py``: MLE pre-training → D pre-training → adversarial
epochs; the MLE epoch, the D call and the checkpointed boundaries are there). Here: the §3.1 LSTM
generator G and the CNN discriminator D, the MLE update, the policy gradient with its rollout policy,
and ``init_from``.

**MLE update** (protocol §3.1–3.2): on a real minibatch x, loss −mean ln G(x_t|x_<t), Adam ``g_lr``,
clip ``g_clip``; logged as ``mle_loss``. G has two Adam optimizers, one for MLE pre-training and one for
the adversarial updates, as in SeqGAN's generator (``pretrain_opt`` / ``g_opt``): the adversarial phase
starts with fresh Adam moments.

**Adversarial epoch** of the policy-gradient GANs (``PolicyGradientGAN``): ``adv_g_steps`` × {B = 64
fresh samples x ~ G, rewards R(x), one PG step}, then ``d_steps`` D calls.

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
``RunDir`` (weights only, never unpickled code) and the phases it covers are skipped (their length becomes 0, so ``steps`` must be
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

from ..config import COUNT, COUNT0, TEXT, Spec
from ..errors import TextbenchError
from ..models.discriminator import SEQGAN_FILTERS, CNNDiscriminator
from ..models.rollout import rollout_rewards, sequence_reward
from ..registry import ALGORITHMS
from .base import PROGRESS_MEASURES, Algorithm, BatchCycler, clip_and_step, progress_at
from .phases import D_DEFAULTS, D_HELP, D_SPECS, D_STEPS_DEFAULTS, D_STEPS_HELP, D_STEPS_SPECS, SCHEDULE_DEFAULTS, SCHEDULE_HELP, SCHEDULE_SPECS, PhasedAlgorithm

# -- settings (the shared schedule and D ones: phases.py) -------------------------------------------
PHASE_DEFAULTS: dict[str, Any] = {**SCHEDULE_DEFAULTS, "init_from": "", **D_DEFAULTS}
PHASE_HELP: dict[str, str] = {
    **SCHEDULE_HELP,
    "init_from": "run directory whose generator (and discriminator) replace the pre-training phases it covers",
    **D_HELP,
}
PG_DEFAULTS: dict[str, Any] = {**D_STEPS_DEFAULTS, "pg_reduction": "sum"}
PG_HELP = {**D_STEPS_HELP, "pg_reduction": "policy-gradient loss: sum over B x L terms (published) or mean"}
ROLLOUT_DEFAULTS: dict[str, Any] = {"rollout_num": 16, "rollout_update_rate": 0.0, "rollout_chunk": 0}
ROLLOUT_HELP = {
    "rollout_num": "Monte-Carlo completions per prefix (K)",
    "rollout_update_rate": "0 = roll out with the current generator (what the references ran); r > 0 = delayed copy pi <- r pi + (1-r) G",
    "rollout_chunk": "rows per batched rollout sampling chunk (0 = auto: 2^20 / vocab rows, ~4 MB of logits)",
}

# type and range of every key above that its name family does not cover (config.FAMILY_SPECS)
PHASE_SPECS: dict[str, Spec] = {**SCHEDULE_SPECS, "init_from": TEXT, **D_SPECS}
PG_SPECS: dict[str, Spec] = {**D_STEPS_SPECS, "pg_reduction": Spec("str", choices=("sum", "mean"))}
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


# -- the base class --------------------------------------------------------------------------------
class LSTMGAN(PhasedAlgorithm):
    """The LSTM generator and a CNN discriminator on the shared phases; see the module docstring."""

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
        self.init_info: dict[str, Any] = {}
        covered_mle, covered_d = False, False
        if s.get("init_from"):
            covered_mle, covered_d = self._load_init(Path(s["init_from"]))
        self.set_phases(skip_mle=covered_mle, skip_d=covered_d)

    # -- construction helpers ----------------------------------------------------------------------
    def make_discriminator(self) -> torch.nn.Module:
        s = self.settings
        return CNNDiscriminator(
            self.suite.vocab_size, s["d_emb"], s["d_filter_sizes"], s["d_num_filters"], s["d_dropout"], s["d_l2"], generator=self.rng
        ).to(self.device)

    def _load_init(self, path: Path) -> tuple[bool, bool]:
        """Load G (and D) from a previous run; returns which phases that covers."""
        from ..engine.rundir import RunDir

        if not path.is_dir():
            raise TextbenchError(f"init_from={path}: not a run directory")
        src = RunDir(path)
        cfg = src.read_config() if src.config_path.is_file() else None
        if cfg is not None and cfg.get("suite_signature") and cfg["suite_signature"] != self.suite.signature():
            raise TextbenchError(
                f"init_from={path}: its suite differs from this run's ({json.dumps(cfg['suite_signature'])} vs "
                f"{json.dumps(self.suite.signature())})"
            )
        state, step = None, None
        if src.has_checkpoint():
            state = src.read_checkpoint()
            try:
                g_weights, step = state["modules"]["generator"], int(state["step"])
            except (KeyError, TypeError, ValueError):
                raise TextbenchError(f"{src.checkpoint_path}: not a textbench checkpoint") from None
        elif src.generator_path.is_file():
            g_weights = src.read_generator()
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
        self.init_info = {"source": str(path), "source_algo": src_algo, "source_step": step, "loaded_d": covered_d,
                          "progress": self._source_progress(cfg, step)}
        return True, covered_d

    @staticmethod
    def _source_progress(cfg: dict | None, step: int | None) -> list[int] | None:
        """(generator updates, real sequences) of the source run at the loaded step: from its stored
        ``progress``, else — runs made before it was stored — one update per minibatch step for algorithms
        with the default cost (MLE, CoT); None when unknown."""
        if cfg is None:
            return None
        if step is None:
            step = int(cfg["settings"]["steps"])
        if isinstance(cfg.get("progress"), dict):
            at = progress_at(cfg["progress"], [step])
            return [at[m][0] for m in PROGRESS_MEASURES]
        src_cls = ALGORITHMS.get(cfg["algo"]) if cfg.get("algo") in ALGORITHMS else None
        if src_cls is not None and src_cls.step_cost is Algorithm.step_cost:
            return [step, step * int(cfg["settings"]["batch_size"])]
        return None

    def progress_offset(self) -> tuple[int, int]:
        known = self.init_info.get("progress")
        return (int(known[0]), int(known[1])) if known else (0, 0)

    def progress(self):
        out = super().progress()
        if self.init_info:
            out["init_from"] = {k: self.init_info[k] for k in ("source", "source_algo", "source_step", "loaded_d")}
            out["offset_known"] = self.init_info.get("progress") is not None
        return out

    # -- MLE ---------------------------------------------------------------------------------------
    def mle_update(self, x: torch.Tensor) -> dict[str, float]:
        self.g.train()
        self.pre_opt.zero_grad(set_to_none=True)
        loss = -self.g.token_log_probs(x).mean()
        loss.backward()
        clip_and_step(self.pre_opt, self.g.parameters(), self.settings["g_clip"])
        return {"mle_loss": loss.item()}

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


class PolicyGradientGAN(LSTMGAN):
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
        return super().adversarial_step(index)

    def g_step(self) -> dict[str, float]:
        x = self.g.sample(int(self.settings["batch_size"]), self.rng).to(self.device)
        r = self.rewards(x)
        return {"g_loss": self.pg_update(x, r), **self.reward_logs(x, r)}

    def reward_logs(self, x: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
        """Scalars logged per G step: the mean reward (MaliGAN, whose rewards sum to 0, overrides)."""
        return {"reward": rewards.mean().item()}
