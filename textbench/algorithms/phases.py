"""The phase schedule shared by the discriminator-guided algorithms (SeqGAN, RankGAN, MaliGAN, GCN, LeakGAN).

**Phases, by global step** (the engine calls ``train_step(step)`` for step = 1..steps, so a killed run
resumes in whichever phase it was). One step is one *epoch* of the phase, as the references count them,
so that ``eval_every = 5`` is their "every 5 epochs" in every phase:

1. steps 1..P (``pretrain_steps``; ``p_end``): MLE pre-training of G, one *MLE epoch* per step (below).
2. steps P+1..P+Q (``d_pretrain_steps``; ``d_end`` = P + Q): D pre-training; a step is one *D call*
   (below). Logged as ``d_loss``.
3. steps P+Q+1..P+Q+A (``adv_steps``): the adversarial phase, the algorithm's ``cycle()`` — a tuple
   of (phase, steps) entries, C steps in all — repeated: step P+Q+i runs the entry that covers
   position (i − 1) mod C of the cycle laid out step by step.
   - SeqGAN, RankGAN, MaliGAN, GCN: ``(("adversarial", 1),)``, every step an adversarial epoch
     (``adversarial_step``): ``adv_g_steps`` generator updates (``g_step``), then ``d_steps`` D calls
     (GCN: ``adv_g_steps`` GCN iterations, with their own D updates).
   - LeakGAN (Texygen ``Leakgan.train_oracle``): outer epochs of ``leak_adv_epochs`` adversarial epochs,
     ``leak_inter_mle_epochs`` MLE epochs and one step of ``leak_inter_d_calls`` D calls (``d_block``).

``steps`` must not exceed P + Q + A (a smaller value runs the schedule truncated). The phase is a pure
function of the step index and the boundaries (``phase``); the boundaries are stored in the checkpoint
(``init_from`` may move them, ``adversarial.py``).

**MLE epoch** (protocol §3.1–3.2): ``mle_batches`` minibatches (0 = one pass over the training set,
⌊N/B⌋ = 156 batches of 64) of the real data in order (``shuffle``: reshuffled every epoch), one
``mle_update`` each — for the LSTM generator loss −mean ln G(x_t|x_<t), Adam ``g_lr``, clip ``g_clip``;
LeakGAN's worker and manager losses are in ``leakgan.py``. Logged: the mean of each loss (``mle_loss``).

**D call** (SeqGAN ``train_discriminator`` / Texygen): draw n = min(``d_samples``, N_train) fresh G
samples (label 0) and n real training sequences (label 1; all of them when n = N_train, else a random
subset), shuffle once, and run ``d_epochs`` passes over the ⌊2n/B⌋ minibatches, each one Adam step on
mean softmax-CE + l2 · (½‖W_out‖² + ½‖b_out‖²) (RankGAN: its ranker loss), with D's dropout on; D is left
in eval mode. SeqGAN: n = 9,984, 3 epochs (936 updates per call). Texygen: 3 minibatches per call — here
``d_samples = 96, d_epochs = 1`` (Texygen draws 9,984 negatives and uses 3 shuffled minibatches of the
pos+neg mix: the same distribution of minibatches, without generating the unused 9,792). D's Adam step
is torch's fused CPU kernel (``_adam_step``), except LeakGAN's, the plain ``opt.step()``
(``fused_d_adam = False``; its runs were recorded so).

**Checkpoint extra state**: ``{"batches": the MLE batch position, "phases": {"p_end", "d_end"}}``;
LeakGAN checkpoints written before LeakGAN shared this schedule hold no ``phases`` (its boundaries are
the settings').
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import COUNT, COUNT0, FLAG, Spec
from ..errors import TextbenchError
from ..models.discriminator import TEXYGEN_FILTERS
from .base import GENERATOR_DEFAULTS, GENERATOR_HELP, Algorithm

# -- settings (each algorithm: SCHEDULE, its own keys, then D) -------------------------------------
SCHEDULE_DEFAULTS: dict[str, Any] = {
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
}
# discriminator: Texygen's (emb 32, filters [2,3] x [100,200]) with SeqGAN's dropout really applied
D_DEFAULTS: dict[str, Any] = {
    "d_emb": TEXYGEN_FILTERS.emb_dim,
    "d_filter_sizes": list(TEXYGEN_FILTERS.filter_sizes),
    "d_num_filters": list(TEXYGEN_FILTERS.num_filters),
    "d_dropout": 0.25,
    "d_l2": 0.2,
    "d_lr": 1e-4,
    "d_samples": 96,
    "d_epochs": 1,
}
D_STEPS_DEFAULTS: dict[str, Any] = {"d_steps": 15}  # the adversarial epoch's D calls (not GCN's)

SCHEDULE_HELP: dict[str, str] = {
    **GENERATOR_HELP,
    "g_lr": "generator Adam learning rate (MLE pre-training and adversarial updates)",
    "g_betas": "generator Adam betas",
    "g_clip": "generator global-norm clip (0 = off)",
    "shuffle": "reshuffle the real MLE batches every epoch (published: sequential)",
    "pretrain_steps": "MLE pre-training steps (each = mle_batches minibatches)",
    "mle_batches": "minibatches per MLE step (0 = one epoch over the training set)",
    "d_pretrain_steps": "discriminator pre-training steps (each = one D call)",
    "adv_steps": "adversarial steps (epochs) after the pre-training phases",
    "adv_g_steps": "generator updates per adversarial step",
}
D_HELP: dict[str, str] = {
    "d_emb": "discriminator embedding size",
    "d_filter_sizes": "discriminator CNN filter widths",
    "d_num_filters": "filters per width",
    "d_dropout": "discriminator dropout (drop probability; SeqGAN keep 0.75 = 0.25) in its updates",
    "d_l2": "weight of the l2 penalty on D's output layer",
    "d_lr": "discriminator Adam learning rate",
    "d_samples": "generated (and as many real) sequences per D call (capped at the training-set size)",
    "d_epochs": "passes over each D call's data",
}
D_STEPS_HELP = {"d_steps": "D calls per adversarial step"}

# type and range of every key above that its name family does not cover (config.FAMILY_SPECS)
SCHEDULE_SPECS: dict[str, Spec] = {
    "shuffle": FLAG,
    **{k: COUNT0 for k in ("pretrain_steps", "mle_batches", "d_pretrain_steps", "adv_steps", "adv_g_steps")},
}
D_SPECS: dict[str, Spec] = {
    "d_filter_sizes": Spec("list", item="int", ge=1),
    "d_num_filters": Spec("list", item="int", ge=1),
    "d_l2": Spec("float", ge=0),
    "d_samples": COUNT,
    "d_epochs": COUNT,
}
D_STEPS_SPECS: dict[str, Spec] = {"d_steps": COUNT0}

#: Texygen's real-data schedule, ``train_real`` of ``models/{seqgan,rankgan,maligan_basic}/*.py`` (protocol Part I,
#: "COCO and EMNLP"): the ``paper`` profile of these GANs on ``coco`` and ``emnlp`` (each adds its D's dropout and
#: rollout). MLE 80 epochs (``pre_epoch_num``) → 80 D calls → 100 adversarial epochs (``adversarial_epoch_num``) of
#: {1 G step (``for index in range(1)`` — MaliGAN's ``train_real`` too, where its ``train_oracle`` takes 50), 15 D
#: calls}; Texygen's D (``emd_dim = emb_dim`` = 32, widths [2, 3] × [100, 200]); a D call = 3 minibatches of the
#: shuffled mix of 9,984 fresh negatives (``main.py``: ``generate_num = 10000``) and the real set (here 96 + 96,
#: the same minibatch distribution, module docstring); evaluation every 5 epochs.
TEXYGEN_REAL: dict[str, Any] = {
    "pretrain_steps": 80,
    "mle_batches": 0,
    "d_pretrain_steps": 80,
    "adv_steps": 100,
    "adv_g_steps": 1,
    "d_steps": 15,
    "d_emb": TEXYGEN_FILTERS.emb_dim,
    "d_filter_sizes": list(TEXYGEN_FILTERS.filter_sizes),
    "d_num_filters": list(TEXYGEN_FILTERS.num_filters),
    "d_samples": 96,
    "d_epochs": 1,
    "steps": 80 + 80 + 100,
    "eval_every": 5,
}
#: the real-text suites where the ``paper`` profile is Texygen's ``train_real`` (``suite_profiles`` keys)
REAL_TEXT_SUITES = ("coco", "emnlp")


# -- helpers ---------------------------------------------------------------------------------------
def mean_logs(step, n: int) -> dict[str, float]:
    """Call ``step()`` n times; per logged name the mean Σ_i v_i/n (in call order)."""
    sums: dict[str, float] = {}
    for _ in range(n):
        for k, v in step().items():
            sums[k] = sums.get(k, 0.0) + v / n
    return sums


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
    """MLE pre-training → D pre-training → the adversarial ``cycle()``; see the module docstring.

    A subclass builds ``self.g``, ``self.d``, ``self.d_opt`` and ``self.batches`` (a ``BatchCycler``),
    calls ``set_phases`` and implements ``mle_update(x)`` and ``g_step()`` (or ``adversarial_step``)."""

    defaults = {**SCHEDULE_DEFAULTS, **D_DEFAULTS}
    help = {**SCHEDULE_HELP, **D_HELP}
    specs = {**SCHEDULE_SPECS, **D_SPECS}
    count_keys: tuple[str, ...] = ("pretrain_steps", "d_pretrain_steps", "adv_steps", "mle_batches")  # each >= 0
    fused_d_adam = True  # D's Adam step: torch's fused CPU kernel (``_adam_step``); False: ``opt.step()``

    def __init__(self, suite, settings, rng):
        super().__init__(suite, settings, rng)
        for key in self.count_keys:
            if int(settings[key]) < 0:
                raise TextbenchError(f"{key} must be >= 0, got {settings[key]}")

    # -- schedule ----------------------------------------------------------------------------------
    def cycle(self) -> tuple[tuple[str, int], ...]:
        """The adversarial phase: (phase, steps) entries, repeated."""
        return (("adversarial", 1),)

    def set_phases(self, skip_mle: bool = False, skip_d: bool = False) -> None:
        """p_end, d_end from the settings (a skipped phase has length 0); ``steps`` must fit the schedule."""
        s = self.settings
        self.p_end = 0 if skip_mle else int(s["pretrain_steps"])
        self.d_end = self.p_end + (0 if skip_d else int(s["d_pretrain_steps"]))
        total = self.d_end + int(s["adv_steps"])
        if int(s["steps"]) > total:
            skipped = " (init_from skipped the pre-training it covers)" if s.get("init_from") else ""
            raise TextbenchError(
                f"steps={s['steps']} exceeds this schedule's {total} steps: {self.p_end} MLE + "
                f"{self.d_end - self.p_end} D pre-training + {s['adv_steps']} adversarial{skipped}; set steps={total}"
            )

    def phase(self, step: int) -> str:
        """The phase of engine step ``step`` (1-based): 'mle', 'd_pretrain' or an entry of ``cycle()``."""
        if step <= self.p_end:
            return "mle"
        if step <= self.d_end:
            return "d_pretrain"
        cycle = self.cycle()
        j = (step - self.d_end - 1) % sum(n for _, n in cycle)
        for name, n in cycle:
            if j < n:
                return name
            j -= n
        raise AssertionError("unreachable")

    def train_step(self, step: int) -> dict[str, float]:
        ph = self.phase(step)
        if ph == "mle":
            return self.mle_step()
        if ph == "d_pretrain":
            return {"d_loss": self.d_call()}
        if ph == "adversarial":
            return self.adversarial_step(step - self.d_end)
        raise TextbenchError(f"{self.name}: no step for phase {ph!r}")

    # -- MLE ---------------------------------------------------------------------------------------
    def mle_step(self) -> dict[str, float]:
        """One MLE epoch: ``mle_batches`` = n minibatches (0 = ⌊N/B⌋), one ``mle_update`` each; logs (Σ_i v_i)/n."""
        n = int(self.settings["mle_batches"]) or self.batches.num_batches
        totals: dict[str, float] = {}
        for _ in range(n):
            for k, v in self.mle_update(self.batches.next().to(self.device)).items():
                totals[k] = totals.get(k, 0.0) + v
        return {k: v / n for k, v in totals.items()}

    def mle_update(self, x: torch.Tensor) -> dict[str, float]:
        """One MLE Adam step on the real minibatch ``x``; returns its losses."""
        raise NotImplementedError

    # -- adversarial -------------------------------------------------------------------------------
    def adversarial_step(self, index: int) -> dict[str, float]:
        """Adversarial epoch number ``index`` (1-based): ``adv_g_steps`` × ``g_step()``, then ``d_steps`` D calls."""
        logs = mean_logs(self.g_step, int(self.settings["adv_g_steps"]))
        logs.update(self.d_calls(int(self.settings["d_steps"])))
        return logs

    def g_step(self) -> dict[str, float]:
        """One adversarial generator update; returns its scalars."""
        raise NotImplementedError

    # -- discriminator -----------------------------------------------------------------------------
    def d_batch_loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of one D minibatch (labels 1 = real); the ranker overrides it."""
        return self.d.loss(x, labels)

    def d_call(self) -> float:
        """One D call (module docstring); returns the mean minibatch loss.

        The negatives are ``self.g.sample(n, self.rng)``; D's Adam steps are ``_adam_step`` (torch's fused
        Adam kernel on CPU) or, with ``fused_d_adam = False``, ``opt.step()``."""
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
                if self.fused_d_adam:
                    _adam_step(self.d_opt)
                else:
                    self.d_opt.step()
                total += loss.item()
        self.d.eval()
        return total / (nb * int(s["d_epochs"]))

    def d_calls(self, n: int) -> dict[str, float]:
        """n D calls; logs their mean loss as ``d_loss`` (nothing when n = 0)."""
        losses = [self.d_call() for _ in range(n)]
        return {"d_loss": sum(losses) / len(losses)} if losses else {}

    # -- unit of progress -------------------------------------------------------------------------
    unit = "epoch"  # of its phase: an MLE epoch, a D call, an adversarial epoch (module docstring)

    def step_cost(self, step: int) -> tuple[int, int]:
        return self.phase_cost(self.phase(step))

    def d_call_real(self) -> int:
        """Real sequences one D call uses: n = min(``d_samples``, N_train), ``d_epochs`` times."""
        s = self.settings
        return min(int(s["d_samples"]), self.suite.train.shape[0]) * int(s["d_epochs"])

    def phase_cost(self, phase: str) -> tuple[int, int]:
        """(generator updates, real sequences) of one step of ``phase``: an MLE epoch = one update per
        minibatch; a D call = none; an adversarial epoch = ``adv_g_steps`` updates + ``d_steps`` D calls."""
        s, b = self.settings, int(self.settings["batch_size"])
        if phase == "mle":
            n = int(s["mle_batches"]) or self.batches.num_batches
            return n, n * b
        if phase == "d_pretrain":
            return 0, self.d_call_real()
        if phase == "adversarial":
            return int(s["adv_g_steps"]), int(s["d_steps"]) * self.d_call_real()
        raise TextbenchError(f"{self.name}: no cost for phase {phase!r}")

    # -- engine contract ---------------------------------------------------------------------------
    def extra_state(self):
        return {"batches": self.batches.state_dict(), "phases": {"p_end": self.p_end, "d_end": self.d_end}}

    def load_extra_state(self, state):
        self.batches.load_state_dict(state["batches"])
        if "phases" in state:  # the boundaries this run started with (init_from may have moved on)
            self.p_end, self.d_end = int(state["phases"]["p_end"]), int(state["phases"]["d_end"])
