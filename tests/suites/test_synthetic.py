import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import needs_data
from textbench import data
from textbench.engine.loop import resolve_settings
from textbench.errors import TextbenchError
from textbench.suites.synthetic import SyntheticSuite, seeded_oracle, seqgan_oracle


def per_token_nll(model, seq):
    return -float(model.token_log_probs(torch.tensor([seq])).double().mean())


@needs_data
def test_oracle_matches_protocol_unit_vectors():
    """Protocol §1.2: teacher-forced per-token NLL of the SeqGAN oracle (float64 reference; f32 < 5e-6)."""
    o = seqgan_oracle()
    assert per_token_nll(o, list(range(20))) == pytest.approx(11.612237, abs=2e-5)
    first3 = o.token_log_probs(torch.tensor([list(range(20))]))[0, :3].tolist()
    assert first3 == pytest.approx([-12.347646, -13.003300, -11.214812], abs=2e-5)
    assert per_token_nll(o, list(range(1, 21))) == pytest.approx(11.865072, abs=2e-5)
    assert per_token_nll(o, [0] * 20) == pytest.approx(13.974231, abs=2e-5)
    assert per_token_nll(o, [4999] * 20) == pytest.approx(15.090446, abs=2e-5)
    assert per_token_nll(o, [3874, 3285, 2068, 4538, 417, 3887, 3984, 3607, 719, 1787] * 2) == pytest.approx(9.212875, abs=2e-5)
    with torch.no_grad():
        lp = o.log_probs(torch.zeros(1, 20, dtype=torch.long))[0, 0].double()
    top = lp.exp().topk(5)
    assert top.indices.tolist() == [3918, 4175, 838, 3607, 1323]
    assert top.values.tolist() == pytest.approx([0.026177, 0.023065, 0.019511, 0.019060, 0.014822], abs=2e-6)
    assert float(-(lp.exp() * lp).sum()) == pytest.approx(6.523954, abs=1e-5)


@needs_data
def test_oracle_entropy_rate_on_its_own_samples():
    o = seqgan_oracle()
    x = o.sample(2000, torch.Generator().manual_seed(0))
    nll = -float(o.token_log_probs(x).double().mean())
    assert 5.70 < nll < 5.80  # protocol §1.2: ≈ 5.75 nats/token (s.e. ≈ 0.012 at 2,000 samples)


def test_seeded_oracle_is_deterministic_and_offline():
    a, b = seeded_oracle(50, 8), seeded_oracle(50, 8)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_suite_data_is_fixed_by_data_seed_and_cached(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTBENCH_CACHE", str(tmp_path))
    settings = {**SyntheticSuite.defaults, **{k: tiny[k] for k in SyntheticSuite.defaults if k in tiny}}
    s1 = SyntheticSuite(settings)
    assert s1.train.shape == (256, 8) and s1.test.shape == (256, 8)
    assert not torch.equal(s1.train, s1.test)
    cached = list((tmp_path / "synthetic").glob("*.npy"))
    assert len(cached) == 2
    # a corrupt cache entry is regenerated, not trusted
    for f in cached:
        f.write_bytes(b"garbage")
    s2 = SyntheticSuite(settings)
    assert torch.equal(s1.train, s2.train) and torch.equal(s1.test, s2.test)


def test_double_model_samples_with_double_uniforms():
    """A float64 model (the oracle's data copy) draws its uniforms in float64: the tokens are those of
    softmax → cumsum → searchsorted(u · C_V) on float64 u (the definition the committed runs' data came from)."""
    o = seeded_oracle(600, 5).double()
    got = o.sample(300, torch.Generator().manual_seed(3), batch_size=200)
    g = torch.Generator().manual_seed(3)
    want = []
    for start in (0, 200):
        b = min(200, 300 - start)
        tok, state, seq = torch.zeros((b, 1), dtype=torch.long), None, []
        for _t in range(5):
            h, state = o._lstm(o.embedding(tok), state)
            cdf = torch.softmax(o.output(h[:, 0]), -1).cumsum(-1)
            u = torch.rand((b, 1), generator=g, dtype=torch.float64)
            tok = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp(max=599)
            seq.append(tok)
        want.append(torch.cat(seq, 1))
    assert torch.equal(got, torch.cat(want))


@needs_data
def test_paper_data_is_the_data_of_the_committed_runs(monkeypatch, tmp_path):
    """The 9,984 + 9,984 oracle samples made on this machine are those every committed synthetic run was
    trained and scored on (their config.json records the fingerprints): resumed and replayed runs need them."""
    monkeypatch.setenv("TEXTBENCH_CACHE", str(tmp_path))
    root = Path(__file__).resolve().parents[2] / "results" / "runs" / "synthetic" / "mle" / "paper-seed0"
    stored = json.loads((root / "config.json").read_text())["suite_signature"]
    settings = resolve_settings("mle", "synthetic", "paper")
    now = SyntheticSuite({k: settings[k] for k in SyntheticSuite.defaults}).signature()
    assert (now["train_sha256"], now["test_sha256"]) == (stored["train_sha256"], stored["test_sha256"])


def test_missing_data_file_gives_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTBENCH_DATA", str(tmp_path))
    monkeypatch.setattr(data, "user_data_dir", lambda: tmp_path / "user")
    with pytest.raises(TextbenchError, match=r"synthetic/seqgan_oracle.npz .*not found; put it at .*TEXTBENCH_DATA"):
        data.locate("synthetic/seqgan_oracle.npz")


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTBENCH_DATA", str(tmp_path))
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "train.txt").write_text("a tampered file\n")
    with pytest.raises(TextbenchError, match="SHA-256 mismatch"):
        data.locate("coco/train.txt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code_and_accepts_arrays():
    with pytest.raises(pickle.UnpicklingError):
        data.restricted_unpickle(pickle.dumps([_Evil()]))
    with pytest.raises(TextbenchError, match="rejected"):
        data.oracle_pickle_to_npz(pickle.dumps(_Evil()))
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3)]
    out = data.restricted_unpickle(pickle.dumps(arrays, protocol=2))
    assert np.array_equal(out[0], arrays[0])


@needs_data
def test_pickle_conversion_reproduces_the_shared_oracle(tmp_path):
    """``data fetch`` path, offline: the upstream pickle's layout → npz with the same array digest."""
    shared = data.load_oracle_arrays(data.locate("synthetic/seqgan_oracle.npz"))
    pkl = pickle.dumps([shared[k] for k in data.ORACLE_ARRAY_ORDER], protocol=3)
    out = tmp_path / "synthetic" / "seqgan_oracle.npz"
    out.parent.mkdir()
    out.write_bytes(data.oracle_pickle_to_npz(pkl))
    assert data.oracle_content_sha256(out) == data.ORACLE_CONTENT_SHA256
    data.verify(out, data.FILES["synthetic/seqgan_oracle.npz"].sha256)  # accepted by content


def test_samples_file_validation(tiny, tmp_path):
    settings = {**SyntheticSuite.defaults, **{k: tiny[k] for k in SyntheticSuite.defaults if k in tiny}}
    suite = SyntheticSuite(settings)
    good = tmp_path / "good.txt"
    good.write_text("\n".join(suite.format_samples(suite.train[:5])) + "\n")
    assert torch.equal(suite.read_samples(good), suite.train[:5])
    cases = {
        "0 1 2\n": "expected 8 token ids",
        "0 1 2 3 4 5 6 50\n": "out of range",
        "0 1 2 3 4 5 6 x\n": "not an integer",
        "0 1 2 3 4 5 6 -1\n": "out of range",
        "\n\n": "empty",
    }
    for text, msg in cases.items():
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(TextbenchError, match=msg):
            suite.read_samples(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TextbenchError, match="UTF-8"):
        suite.read_samples(bad)
