"""The contract between an algorithm and the engine.

An algorithm declares its settings (``defaults``, ``profiles``), builds its models and optimizers in
``__init__``, and implements one update in ``train_step``. The engine owns everything else: the loop,
evaluation cadence, logging, checkpoints (``modules``/``optimizers``/``extra_state``) and progress.
The model under evaluation is ``modules()["generator"]``: it must provide ``sample(n, generator,
temperature)`` and ``token_log_probs(x)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import TextbenchError
from ..models.lstm import LSTMLM


class Algorithm:
    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    help: ClassVar[dict[str, str]] = {}
    # key -> textbench.config.Spec (type and range) for keys its name family does not cover (config.FAMILY_SPECS)
    specs: ClassVar[dict[str, Any]] = {}
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "paper": {}}
    # (profile, suite) -> extra settings applied after the profile, e.g. longer sequences on emnlp
    suite_profiles: ClassVar[dict[tuple[str, str], dict[str, Any]]] = {}

    def __init__(self, suite, settings: dict[str, Any], rng: torch.Generator):
        self.suite = suite
        self.settings = settings
        self.rng = rng  # every random draw of training goes through this generator (checkpointed)
        self.device = torch.device(settings.get("device", "cpu"))

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, step: int) -> dict[str, float]:
        """One update; returns the scalars to log (losses). A non-finite value stops the run."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    @property
    def generator(self) -> nn.Module:
        return self.modules()["generator"]

    # -- unit of progress --------------------------------------------------------------------------
    #: what one engine step is, in the algorithm's own words (an MLE minibatch, a CoT iteration, a GAN epoch)
    unit: ClassVar[str] = "step"

    def step_cost(self, step: int) -> tuple[int, int]:
        """What engine step ``step`` costs in comparable terms: (generator updates — Adam steps of G —, real
        training sequences used by any model, repeats counted). Default: one G update on one minibatch."""
        return 1, int(self.settings["batch_size"])

    def progress_offset(self) -> tuple[int, int]:
        """(generator updates, real sequences) behind the generator before step 1 (``init_from``: its source's)."""
        return 0, 0

    def progress(self) -> dict[str, Any]:
        """The run's unit of progress, stored in config.json (``progress_at`` reads it): ``unit``; ``segments``
        = [first step, last step, generator updates per step, real sequences per step], consecutive steps of
        equal cost merged; ``offset`` = ``progress_offset()``."""
        segments: list[list[int]] = []
        for step in range(1, int(self.settings["steps"]) + 1):
            g, real = self.step_cost(step)
            if segments and segments[-1][2:] == [g, real]:
                segments[-1][1] = step
            else:
                segments.append([step, step, int(g), int(real)])
        return {"unit": self.unit, "measures": list(PROGRESS_MEASURES), "segments": segments, "offset": list(self.progress_offset())}

    # -- helpers shared by algorithms ------------------------------------------------------------
    def make_lstm(self, emb: int, hidden: int, dropout: float = 0.0, two_biases: bool = False) -> LSTMLM:
        """An ``LSTMLM`` on this suite: a one-bias TF cell, or with ``two_biases`` a CuDNN cell (CoT's mediator)."""
        return LSTMLM(
            self.suite.vocab_size, emb, hidden, self.suite.seq_len, start_token=self.suite.start_token, dropout=dropout,
            two_biases=two_biases,
        ).to(self.device)

    def make_generator(self) -> LSTMLM:
        """The SeqGAN/CoT generator: emb/hidden from settings, every tensor ~ N(0, init_std²)."""
        s = self.settings
        return self.make_lstm(s["g_emb"], s["g_hidden"]).init_normal_(s["g_init_std"], self.rng)


#: the comparable measures of training progress, in the order of ``progress()``'s segments and ``progress_at``
PROGRESS_MEASURES = ("generator_updates", "real_sequences")


def progress_at(progress: dict[str, Any], steps) -> dict[str, list[int]]:
    """Cumulative generator updates and real sequences after each engine step of ``steps`` (0 = before
    step 1: the offset), from a run's stored ``progress`` (``Algorithm.progress``)."""
    offset = progress.get("offset") or [0, 0]
    out: dict[str, list[int]] = {m: [] for m in PROGRESS_MEASURES}
    for step in steps:
        step = int(step)
        totals = [int(offset[0]), int(offset[1])]
        for first, last, g, real in progress["segments"]:
            if step < first:
                break
            n = min(step, last) - first + 1
            totals[0] += n * int(g)
            totals[1] += n * int(real)
        for m, v in zip(PROGRESS_MEASURES, totals):
            out[m].append(v)
    return out


GENERATOR_DEFAULTS: dict[str, Any] = {"g_emb": 32, "g_hidden": 32, "g_init_std": 0.1}
GENERATOR_HELP = {"g_emb": "generator embedding size", "g_hidden": "generator LSTM size", "g_init_std": "std of the N(0, s²) init"}


class BatchCycler:
    """Training minibatches, cycling over the training set in order (SeqGAN/CoT ``Gen_Data_loader``).

    floor(N / B) batches per epoch, the remainder dropped; with ``shuffle`` the order is redrawn each
    epoch from the training generator. Its position is part of the checkpoint.
    """

    def __init__(self, data: torch.Tensor, batch_size: int, rng: torch.Generator, shuffle: bool = False):
        if data.shape[0] < batch_size:
            raise TextbenchError(f"setting batch_size={batch_size}: larger than the training set ({data.shape[0]} sequences)")
        self.data, self.batch_size, self.rng, self.shuffle = data, batch_size, rng, shuffle
        self.num_batches = data.shape[0] // batch_size
        self.pointer = 0
        self.epoch = 0
        self.order = self._new_order()

    def _new_order(self) -> torch.Tensor:
        n = self.num_batches * self.batch_size
        return torch.randperm(self.data.shape[0], generator=self.rng)[:n] if self.shuffle else torch.arange(n)

    def next(self) -> torch.Tensor:
        idx = self.order[self.pointer * self.batch_size : (self.pointer + 1) * self.batch_size]
        self.pointer += 1
        if self.pointer == self.num_batches:
            self.pointer, self.epoch = 0, self.epoch + 1
            self.order = self._new_order()
        return self.data[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "epoch": self.epoch, "order": self.order}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pointer, self.epoch, self.order = int(state["pointer"]), int(state["epoch"]), state["order"]


def clip_and_step(optimizer: torch.optim.Optimizer, params, clip: float) -> None:
    """Optional global-norm gradient clipping (TF ``clip_by_global_norm``; 0 = off), then one step."""
    if clip and clip > 0:
        torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
