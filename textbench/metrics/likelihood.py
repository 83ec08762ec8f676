"""Likelihood metrics of the synthetic Turing test (protocol §2.1–2.4), as pure functions.

Each takes per-token log-probabilities (nats) of observed tokens, shape [N, L] (float64 recommended),
and returns a ``Score`` (metrics/catalogue.py): the value, its Monte-Carlo standard error where it has one,
and a signature.
Computing the log-probabilities (batched, teacher-forced) is ``token_log_probs``.
"""

from __future__ import annotations

import math

import torch

from ..registry import register_metric
from .catalogue import CATALOGUE, LN2, Score


@torch.no_grad()
def token_log_probs(model, x: torch.Tensor, batch_size: int = 1024, mask: torch.Tensor | None = None) -> torch.Tensor:
    """ln model(x_t | x_<t) for every sequence and position, [N, L] float64, computed in batches.

    ``mask`` (optional, [N, L] of 0/1) zeroes positions that do not count (e.g. padding after EOS).
    """
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        out.append(model.token_log_probs(x[i : i + batch_size]).double())
    model.train(was_training)
    lp = torch.cat(out) if out else torch.empty((0, x.shape[1]), dtype=torch.float64)
    return lp * mask if mask is not None else lp


@register_metric("nll_oracle", CATALOGUE["nll_oracle"].description)
def nll_oracle(oracle_lp_on_g: torch.Tensor, signature: dict | None = None) -> Score:
    """NLL_oracle = −(1/(N·L)) Σ_n Σ_t ln P(x_{n,t} | x_{n,<t}),  x_n ~ G  (SeqGAN/CoT ``target_loss``)."""
    return _mean_nll("nll_oracle", oracle_lp_on_g, signature)


@register_metric("nll_test", CATALOGUE["nll_test"].description)
def nll_test(g_lp_on_test: torch.Tensor, signature: dict | None = None, mask: torch.Tensor | None = None) -> Score:
    """NLL_test = −(1/(N·L)) Σ_n Σ_t ln G(x_{n,t} | x_{n,<t}),  x_n from the held-out test set."""
    return _mean_nll("nll_test", g_lp_on_test, signature, mask)


def _mean_nll(name: str, lp: torch.Tensor, signature: dict | None, mask: torch.Tensor | None = None) -> Score:
    if mask is not None:
        lp = lp * mask
    tokens = mask.sum(dim=1).double() if mask is not None else torch.full((lp.shape[0],), float(lp.shape[1]), dtype=torch.float64)
    total = tokens.sum()
    value = -float(lp.sum() / total)
    # s.e. of a ratio estimator over sequences (tokens per sequence may vary with a mask)
    per_seq = -lp.sum(dim=1)
    n = lp.shape[0]
    resid = per_seq - value * tokens
    se = float(torch.sqrt((resid**2).sum() / max(n - 1, 1) / n) / (total / n)) if n > 1 else None
    return Score(name, value, se, dict(signature or {}))


@register_metric("jsd", CATALOGUE["jsd"].description)
def exact_jsd(
    p_lp_on_p: torch.Tensor,
    g_lp_on_p: torch.Tensor,
    p_lp_on_g: torch.Tensor,
    g_lp_on_g: torch.Tensor,
    signature: dict | None = None,
) -> Score:
    """JSD(P‖G) = ½ E_{x~P}[ln P(x)/M(x)] + ½ E_{x~G}[ln G(x)/M(x)],  M = ½(P + G)  (CoT paper Eq. 3).

    Uses exact sequence log-probabilities ln P(x) = Σ_t ln P(x_t|x_<t) (likewise G), so
    ln M(x) = logaddexp(ln P(x), ln G(x)) − ln 2, and each term lies in (−∞, ln 2]. The standard error
    is that of the two independent sample means: ½ √(Var_P/N_P + Var_G/N_G).
    """
    lp_p, lg_p = p_lp_on_p.double().sum(1), g_lp_on_p.double().sum(1)
    lp_g, lg_g = p_lp_on_g.double().sum(1), g_lp_on_g.double().sum(1)
    a = lp_p - (torch.logaddexp(lp_p, lg_p) - LN2)  # ln P/M on x ~ P
    b = lg_g - (torch.logaddexp(lp_g, lg_g) - LN2)  # ln G/M on x ~ G
    value = 0.5 * float(a.mean()) + 0.5 * float(b.mean())
    se = 0.5 * math.sqrt(float(a.var()) / a.numel() + float(b.var()) / b.numel()) if min(a.numel(), b.numel()) > 1 else None
    return Score("jsd", value, se, dict(signature or {}))


@register_metric("cot_jsd", CATALOGUE["cot_jsd"].description)
def cot_jsd(
    p_lp_on_p: torch.Tensor,
    g_lp_on_p: torch.Tensor,
    p_lp_on_g: torch.Tensor,
    g_lp_on_g: torch.Tensor,
    signature: dict | None = None,
) -> Score:
    """CoT repository's estimator (``jsd_calculate``), kept under its own name for the paper's curves.

    With m_t = ½(p_t + g_t) the *per-token* mixture of the observed token's conditionals,
    value = ½ Ê_{x~P}[Σ_t ln(p_t/m_t)] + ½ Ê_{x~G}[Σ_t ln(g_t/m_t)]. It is ½KL(P‖M') + ½KL(G‖M') with
    M'(x) = Π_t ½(P(x_t|x_<t) + G(x_t|x_<t)), per sequence (bounded by L·ln 2), not the JSD.
    """
    pp, gp, pg, gg = (t.double() for t in (p_lp_on_p, g_lp_on_p, p_lp_on_g, g_lp_on_g))
    real = (pp - (torch.logaddexp(pp, gp) - LN2)).sum(1)
    fake = (gg - (torch.logaddexp(pg, gg) - LN2)).sum(1)
    value = 0.5 * float(real.mean()) + 0.5 * float(fake.mean())
    se = 0.5 * math.sqrt(float(real.var()) / real.numel() + float(fake.var()) / fake.numel()) if min(real.numel(), fake.numel()) > 1 else None
    return Score("cot_jsd", value, se, dict(signature or {}))


@register_metric("bnll", CATALOGUE["bnll"].description)
def balanced_nll(m_lp_on_real: torch.Tensor, m_lp_on_fake: torch.Tensor) -> float:
    """BNLL = ½ [ −mean_{n,t} ln M(x0_{n,t}|x0_<t) − mean_{n,t} ln M(x1_{n,t}|x1_<t) ], x0 real, x1 ~ G."""
    return -0.5 * (float(m_lp_on_real.mean()) + float(m_lp_on_fake.mean()))
