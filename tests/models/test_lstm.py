import itertools
import math

import pytest
import torch

from textbench.errors import TextbenchError
from textbench.models.lstm import CDF_BLOCK, LSTMLM, sample_categorical, search_cdf


def tiny_model(v=3, l=3, seed=0):
    return LSTMLM(v, 4, 5, l).init_normal_(1.0, torch.Generator().manual_seed(seed)).eval()


def test_sequence_probabilities_sum_to_one():
    m = tiny_model()
    seqs = torch.tensor(list(itertools.product(range(3), repeat=3)))
    with torch.no_grad():
        total = float(m.token_log_probs(seqs).double().sum(1).exp().sum())
    assert total == pytest.approx(1.0, abs=1e-5)


def test_sampling_matches_model_probabilities():
    m = tiny_model(v=3, l=2, seed=1)
    x = m.sample(60_000, torch.Generator().manual_seed(0))
    seqs = torch.tensor(list(itertools.product(range(3), repeat=2)))
    p = m.token_log_probs(seqs).double().sum(1).exp()
    freq = torch.stack([((x == s).all(1)).double().mean() for s in seqs])
    se = (p * (1 - p) / 60_000).sqrt()
    assert ((freq - p).abs() <= 5 * se + 1e-4).all(), (freq, p)


def test_sample_categorical_never_draws_zero_probability_and_is_seeded():
    logits = torch.tensor([[0.0, -math.inf, 0.0, -math.inf], [-math.inf, -math.inf, -math.inf, 1.0]]).repeat(500, 1)
    a = sample_categorical(logits, torch.Generator().manual_seed(3))
    b = sample_categorical(logits, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert set(a[0::2].tolist()) <= {0, 2} and set(a[1::2].tolist()) == {3}
    assert 0.4 < (a[0::2] == 0).double().mean() < 0.6


def _cumsum_search(p, u):
    """The reference ``search_cdf`` stands for: one cumulative sum over the whole vocabulary, then searchsorted."""
    cdf = torch.cumsum(p, dim=-1)
    return torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=p.shape[1] - 1)


@pytest.mark.parametrize("vocab", [5000, 4660, 4 * CDF_BLOCK, 4 * CDF_BLOCK + 1, 300])
def test_search_cdf_draws_the_tokens_of_one_cumulative_sum(vocab):
    """The two-level search gives the token of the full float32 cumulative sum on every draw: flat to very
    peaked rows, V a multiple of the block or not, several uniforms per row, and below 4 blocks (plain cumsum)."""
    g = torch.Generator().manual_seed(vocab)
    differ = draws = 0
    for scale in (0.3, 3.0, 12.0, 60.0):
        p = torch.softmax(torch.randn(512, vocab, generator=g) * scale, dim=-1)
        u = torch.rand(512, 3, generator=g)
        a, b = search_cdf(p, u), _cumsum_search(p, u)
        differ += int((a != b).sum())
        draws += a.numel()
    assert draws == 4 * 512 * 3 and differ == 0


def test_search_cdf_edges_match_cumsum():
    """One-hot rows at either end, zero-probability runs (never drawn), u at 0 and just below 1, uniform rows."""
    v = 5000
    p = torch.zeros(6, v)
    p[0, v - 1] = 1.0
    p[1, 0] = 1.0
    p[2, 2500:2600] = 0.01
    p[3] = 1.0 / v
    p[4, ::7] = 1.0
    p[4] /= p[4].sum()
    p[5, CDF_BLOCK - 1 : CDF_BLOCK + 1] = 0.5  # the mass straddles a block boundary
    for u in (0.0, 0.25, 0.5, 0.999, 1.0 - 2.0**-24):
        uu = torch.full((6, 1), u)
        got = search_cdf(p, uu)
        assert torch.equal(got, _cumsum_search(p, uu)), u
        assert bool((p.gather(1, got) > 0).all())


def test_temperature_sharpens():
    m = tiny_model(v=5, l=4, seed=2)
    g = torch.Generator().manual_seed(0)
    cold = m.sample(4000, g, temperature=0.3)
    hot = m.sample(4000, g, temperature=1.0)
    assert m.token_log_probs(cold).mean() > m.token_log_probs(hot).mean()
    with pytest.raises(TextbenchError):
        m.sample(1, g, temperature=0)


def test_bad_ids_are_clear_errors():
    m = tiny_model()
    with pytest.raises(TextbenchError, match="out of range"):
        m.token_log_probs(torch.tensor([[0, 1, 3]]))
    with pytest.raises(TextbenchError, match="shape"):
        m.token_log_probs(torch.tensor([0, 1, 2]))
    with pytest.raises(TextbenchError, match="integer"):
        m.token_log_probs(torch.tensor([[0.0, 1.0, 2.0]]))


def test_inference_and_training_paths_agree():
    m = tiny_model(v=7, l=5)
    x = m.sample(16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = m.token_log_probs(x)
    b = m.token_log_probs(x)
    assert torch.allclose(a, b.detach(), atol=1e-5)


def test_mediator_init_is_orthogonal_per_gate():
    m = LSTMLM(11, 6, 6, 4).init_mediator_(0.1, torch.Generator().manual_seed(0))
    for w in (m.lstm.weight_ih_l0, m.lstm.weight_hh_l0):
        for gate in range(4):
            block = w[gate * 6 : (gate + 1) * 6]
            assert torch.allclose(block @ block.T, torch.eye(6), atol=1e-5)
    assert float(m.lstm.bias_ih_l0.detach().abs().sum() + m.lstm.bias_hh_l0.detach().abs().sum()) == 0.0


@pytest.mark.parametrize("algo", ["mle", "cot", "cot-strong", "seqgan", "leakgan"])
def test_one_bias_cells_keep_bias_hh_at_zero_through_training(algo, tiny, tmp_path):
    """TF's LSTM cell has one bias per gate: bias_hh stays 0 (frozen) in every LSTM an algorithm trains,
    while bias_ih does move (protocol: one bias, trained at the cell's own rate). CoT's mediator is a CuDNN
    LSTM, which has two bias vectors: both are trained (each gets the same gradient)."""
    from textbench.engine.loop import build, resolve_settings

    settings = resolve_settings(algo, "synthetic", "quick", {**tiny, "steps": 3})
    _suite, algorithm = build(algo, "synthetic", settings, 0)
    lstms = {f"{k}.{n}": m for k, mod in algorithm.modules().items() for n, m in mod.named_modules() if isinstance(m, torch.nn.LSTM)}
    one_bias = {k: m for k, m in lstms.items() if not k.startswith("mediator.")}
    two_biases = {k: m for k, m in lstms.items() if k.startswith("mediator.")}
    assert one_bias and bool(two_biases) == algo.startswith("cot")
    before = {k: (m.bias_ih_l0.detach().clone(), m.bias_hh_l0.detach().clone()) for k, m in lstms.items()}
    for step in range(1, 4):
        algorithm.train_step(step)
    for k, m in one_bias.items():
        assert not m.bias_hh_l0.requires_grad, k
        assert torch.count_nonzero(m.bias_hh_l0) == 0, k
    assert any(not torch.equal(before[k][0], m.bias_ih_l0) for k, m in one_bias.items())
    for k, m in two_biases.items():
        assert m.bias_hh_l0.requires_grad, k
        assert not torch.equal(before[k][1], m.bias_hh_l0), k
        # the same gradient and the same zero start: Adam moves the two vectors identically
        assert torch.equal(m.bias_ih_l0, m.bias_hh_l0), k


def _whole_batch_sample(model, n, generator, temperature=1.0, batch_size=2048):
    """``LSTMLM.sample`` before its row blocks: output layer, softmax, cumsum and search on the whole batch."""
    out = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            tok, state = torch.full((b, 1), model.start_token, dtype=torch.long), None
            seq = torch.empty((b, model.seq_len), dtype=torch.long)
            for t in range(model.seq_len):
                h, state = model.lstm(model.embedding(tok), state)
                tok = sample_categorical(model.output(h[:, 0]) / temperature, generator).unsqueeze(1)
                seq[:, t] = tok[:, 0]
            out.append(seq)
    return torch.cat(out)


@pytest.mark.parametrize("vocab,n,temperature", [(7, 37, 1.0), (5000, 300, 1.0), (50, 2100, 0.7)])
def test_row_blocked_sampling_draws_the_whole_batch_tokens_bit_for_bit(vocab, n, temperature):
    """Row blocks of ``BLOCK_ROWS`` (300 and 2,100 rows cross block and batch edges): the same sequences
    and the same generator state after, as the whole-batch sampler."""
    model = LSTMLM(vocab, 8, 8, 6).init_normal_(0.5, torch.Generator().manual_seed(vocab))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = model.sample(n, g1, temperature=temperature)
    b = _whole_batch_sample(model, n, g2, temperature=temperature)
    assert torch.equal(a, b)
    assert torch.equal(g1.get_state(), g2.get_state())
    assert model.training  # mode restored
    assert model.sample(0, g1).shape == (0, 6)


@pytest.mark.parametrize("vocab,n", [(7, 37), (5000, 300)])
def test_row_blocked_scoring_gives_the_full_log_softmax_numbers_bit_for_bit(vocab, n):
    """Evaluation's no-grad ``token_log_probs`` (row blocks) equals log_softmax over [B, L, V] then gather;
    with autograd, or a mediator training with dropout, the full path runs (gradient flows)."""
    model = LSTMLM(vocab, 8, 8, 6, dropout=0.5).init_normal_(0.5, torch.Generator().manual_seed(1)).eval()
    x = torch.randint(0, vocab, (n, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = model.log_probs(x).gather(-1, x.unsqueeze(-1)).squeeze(-1)
        blocked = model.token_log_probs(x)
    assert blocked.shape == (n, 6) and torch.equal(blocked, reference)
    assert model.token_log_probs(x).requires_grad
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        dropped = model.token_log_probs(x)
    assert not torch.equal(dropped, reference)  # dropout applied in train mode: the full path
    with torch.no_grad(), pytest.raises(TextbenchError):
        model.eval().token_log_probs(x + vocab)
