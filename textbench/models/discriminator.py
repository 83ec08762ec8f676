"""The CNN text classifier of SeqGAN (Yu et al., 2017) used as discriminator / ranker / feature extractor.

Architecture (protocol §3.3, SeqGAN ``discriminator.py``; Texygen copies it with other sizes):

    e = Emb(x)                                   [B, L, E]   embedding init U(−1, 1)
    for each filter size f (n_f filters):        conv over the full embedding width (VALID),
        c_f = ReLU(conv_f(e))                    [B, n_f, L − f + 1]   weights trunc-normal std 0.1, bias 0.1
        p_f = max over time of c_f               [B, n_f]
    p = concat_f p_f                             [B, F],  F = Σ n_f
    highway (one layer, transform-gate bias 0 as SeqGAN passes it, not −2; g = ReLU):
        τ = σ(W_τ p + b_τ),  g = ReLU(W_g p + b_g),  z = τ ⊙ g + (1 − τ) ⊙ p
        (W, b: TF ``get_variable`` default = Glorot-uniform; a 1-d bias of size n gets U(±√(3/n)))
    z ← dropout(z)                               only in ``train()`` mode (SeqGAN keep 0.75 ⇒ dropout 0.25)
    logits = W_o z + b_o                         [B, 2]   trunc-normal std 0.1, bias 0.1; class 1 = real

``features(x)`` returns z (after highway and dropout); ``forward(x)`` the logits. The training loss is
mean softmax cross-entropy + ``l2_loss()``, where ``l2_loss()`` = l2 · (½‖W_o‖² + ½‖b_o‖²) is the
*already weighted* penalty on the output layer (TF ``tf.nn.l2_loss`` of its weight and bias).

``dropout`` is the drop *probability* (PyTorch convention): SeqGAN's keep probability 0.75 is
``dropout=0.25``. Unlike Texygen's SeqGAN/MaliGAN (protocol §2.9-8), it is really applied whenever the
module is in training mode; call ``eval()`` to score rewards without it (as SeqGAN does).

Filters wider than the sequence (e.g. SeqGAN's 15 and 20 on a 10-token test suite) do not crash: such a
filter sees the sequence followed by zero embedding vectors, i.e. exactly one window (the embedded
sequence is right-padded with zeros up to the filter width), so the feature width is always Σ n_f and
a model works at any sequence length. At L = 20 with SeqGAN's presets no padding happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FilterPreset:
    emb_dim: int
    filter_sizes: tuple[int, ...]
    num_filters: tuple[int, ...]


SEQGAN_FILTERS = FilterPreset(
    emb_dim=64,
    filter_sizes=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
    num_filters=(100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160),
)
"""SeqGAN's discriminator (total 1,720 features), embedding 64."""

TEXYGEN_FILTERS = FilterPreset(emb_dim=32, filter_sizes=(2, 3), num_filters=(100, 200))
"""Texygen's SeqGAN/RankGAN/MaliGAN discriminator (300 features), embedding 32 (= generator emb)."""


class Highway(nn.Module):
    """z = τ ⊙ ReLU(W_g p + b_g) + (1 − τ) ⊙ p,  τ = σ(W_τ p + b_τ + gate_bias)."""

    def __init__(self, size: int, gate_bias: float = 0.0):
        super().__init__()
        self.lin = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)
        self.gate_bias = gate_bias

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(p) + self.gate_bias)
        g = F.relu(self.lin(p))
        return t * g + (1.0 - t) * p


class CNNDiscriminator(nn.Module):
    """SeqGAN's CNN classifier over token sequences (class 1 = real). See the module docstring."""

    def __init__(
        self,
        vocab_size: int,
        emb_dim: int,
        filter_sizes,
        num_filters,
        dropout: float,
        l2: float,
        highway: bool = True,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        filter_sizes, num_filters = [int(f) for f in filter_sizes], [int(n) for n in num_filters]
        if len(filter_sizes) != len(num_filters) or not filter_sizes:
            raise ValueError(f"filter_sizes {filter_sizes} and num_filters {num_filters} must be non-empty and of equal length")
        if min(filter_sizes) < 1 or min(num_filters) < 1:
            raise ValueError("filter sizes and counts must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1), got {dropout}")
        self.vocab_size = vocab_size
        self.filter_sizes = filter_sizes
        self.num_filters = num_filters
        self.feature_dim = sum(num_filters)
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, n, f) for f, n in zip(filter_sizes, num_filters))
        self.highway = Highway(self.feature_dim, gate_bias=0.0) if highway else None
        self.output = nn.Linear(self.feature_dim, 2)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> "CNNDiscriminator":
        """SeqGAN's initialisation, drawn from ``generator`` (torch's global RNG when None)."""
        g = generator
        self.embedding.weight.uniform_(-1.0, 1.0, generator=g)
        for conv in self.convs:
            nn.init.trunc_normal_(conv.weight, std=0.1, a=-0.2, b=0.2, generator=g)
            conv.bias.fill_(0.1)
        if self.highway is not None:
            for lin in (self.highway.lin, self.highway.gate):
                fan_out, fan_in = lin.weight.shape
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                lin.weight.uniform_(-limit, limit, generator=g)
                b = math.sqrt(3.0 / fan_out)
                lin.bias.uniform_(-b, b, generator=g)
        nn.init.trunc_normal_(self.output.weight, std=0.1, a=-0.2, b=0.2, generator=g)
        self.output.bias.fill_(0.1)
        return self

    # -- scoring ---------------------------------------------------------------------------------
    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Max-pooled ReLU conv features before the highway layer: [B, Σ n_f]."""
        if x.dim() != 2:
            raise ValueError(f"expected token ids of shape [batch, length], got {tuple(x.shape)}")
        e = self.embedding(x).transpose(1, 2)  # [B, E, L]
        length = e.shape[-1]
        pools = []
        for f, conv in zip(self.filter_sizes, self.convs):
            inp = F.pad(e, (0, f - length)) if f > length else e
            pools.append(F.relu(conv(inp)).amax(dim=-1))
        return torch.cat(pools, dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z = dropout(highway(pooled conv features)): [B, Σ n_f] (dropout only in training mode)."""
        z = self.pooled(x)
        if self.highway is not None:
            z = self.highway(z)
        return F.dropout(z, self.dropout, training=self.training) if self.dropout > 0 else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, 2]; class 1 = real."""
        return self.output(self.features(x))

    def prob_real(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) = softmax(logits)[:, 1], the probability of "real" (SeqGAN's ``ypred_for_auc[:, 1]``)."""
        return torch.softmax(self(x), dim=-1)[:, 1]

    def l2_loss(self) -> torch.Tensor:
        """The weighted penalty l2 · (½‖W_o‖² + ½‖b_o‖²) on the output layer (add it to the loss)."""
        w, b = self.output.weight, self.output.bias
        return self.l2 * 0.5 * (w.pow(2).sum() + b.pow(2).sum())

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """mean softmax cross-entropy(logits, labels) + ``l2_loss()``; labels 1 = real, 0 = generated."""
        return F.cross_entropy(self(x), labels) + self.l2_loss()
