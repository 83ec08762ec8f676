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

    # -- helpers shared by algorithms ------------------------------------------------------------
    def make_lstm(self, emb: int, hidden: int, dropout: float = 0.0) -> LSTMLM:
        return LSTMLM(
            self.suite.vocab_size, emb, hidden, self.suite.seq_len, start_token=self.suite.start_token, dropout=dropout
        ).to(self.device)

    def make_generator(self) -> LSTMLM:
        """The SeqGAN/CoT generator: emb/hidden from settings, every tensor ~ N(0, init_std²)."""
        s = self.settings
        return self.make_lstm(s["g_emb"], s["g_hidden"]).init_normal_(s["g_init_std"], self.rng)


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
