import itertools
import math

import pytest
import torch

from textbench.metrics.likelihood import balanced_nll, cot_jsd, exact_jsd, nll_oracle, nll_test
from textbench.models.lstm import LSTMLM

LN2 = math.log(2)


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_nll_is_per_token_mean_with_standard_error():
    lp = t([[-1.0, -2.0], [-3.0, -4.0]])
    s = nll_oracle(lp)
    assert s.value == pytest.approx(2.5)
    # per-sequence NLLs 3 and 7 over 2 tokens each: ratio estimator s.e. = std(3 - 2.5*2, 7 - 2.5*2)/sqrt(2)/2
    assert s.se == pytest.approx(math.sqrt(((-2) ** 2 + 2**2) / 1 / 2) / 2)
    masked = nll_test(lp, mask=t([[1, 0], [1, 1]]))
    assert masked.value == pytest.approx((1 + 3 + 4) / 3)


def test_exact_jsd_hand_cases():
    # identical models: ln P/M = 0 everywhere
    same = t([[-1.0, -2.0]])
    assert exact_jsd(same, same, same, same).value == pytest.approx(0.0)
    # disjoint supports: G(x) = 0 on P's samples and vice versa → ln 2
    inf = -1e9
    assert exact_jsd(t([[-1.0]]), t([[inf]]), t([[inf]]), t([[-2.0]])).value == pytest.approx(LN2)
    # one sample each: P(x)=1/2, G(x)=1/4 on x~P;  P(y)=1/8, G(y)=1/2 on y~G
    v = exact_jsd(t([[math.log(0.5)]]), t([[math.log(0.25)]]), t([[math.log(0.125)]]), t([[math.log(0.5)]])).value
    expected = 0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.3125)
    assert v == pytest.approx(expected, abs=1e-12)


def test_exact_jsd_estimates_the_enumerated_jsd():
    """Two tiny LSTMs (V=3, L=3): enumerate all 27 sequences for the exact JSD, compare with the estimate."""
    p = LSTMLM(3, 4, 4, 3).init_normal_(1.5, torch.Generator().manual_seed(0)).eval()
    g = LSTMLM(3, 4, 4, 3).init_normal_(1.5, torch.Generator().manual_seed(1)).eval()
    with torch.no_grad():
        seqs = torch.tensor(list(itertools.product(range(3), repeat=3)))
        lp, lg = p.token_log_probs(seqs).double().sum(1), g.token_log_probs(seqs).double().sum(1)
        lm = torch.logaddexp(lp, lg) - LN2
        truth = float(0.5 * (lp.exp() * (lp - lm)).sum() + 0.5 * (lg.exp() * (lg - lm)).sum())
        rng = torch.Generator().manual_seed(2)
        xp, xg = p.sample(20000, rng), g.sample(20000, rng)
        est = exact_jsd(p.token_log_probs(xp), g.token_log_probs(xp), p.token_log_probs(xg), g.token_log_probs(xg))
    assert 0 < truth < LN2
    assert abs(est.value - truth) < 4 * est.se


def test_cot_jsd_hand_case():
    # one position: p=0.5, g=0.25 on the real sample; p=0.125, g=0.5 on the fake sample
    v = cot_jsd(t([[math.log(0.5)]]), t([[math.log(0.25)]]), t([[math.log(0.125)]]), t([[math.log(0.5)]])).value
    assert v == pytest.approx(0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.3125))
    # two positions are summed per sequence (per-sequence scale, protocol §2.4)
    two = cot_jsd(t([[math.log(0.5)] * 2]), t([[math.log(0.25)] * 2]), t([[math.log(0.125)] * 2]), t([[math.log(0.5)] * 2])).value
    assert two == pytest.approx(2 * v)


def test_balanced_nll():
    assert balanced_nll(t([[-1.0, -3.0]]), t([[-2.0, -2.0]])) == pytest.approx(0.5 * (2.0 + 2.0))
