import torch

from textbench.algorithms.base import BatchCycler
from textbench.engine.loop import Run, train
from textbench.engine.rundir import read_metrics


def test_batches_cycle_in_order_and_drop_the_remainder():
    data = torch.arange(10).unsqueeze(1)
    b = BatchCycler(data, 3, torch.Generator().manual_seed(0))
    seen = [b.next().squeeze(1).tolist() for _ in range(4)]
    assert seen == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 1, 2]]
    state = b.state_dict()
    nxt = b.next()
    b.load_state_dict(state)
    assert torch.equal(b.next(), nxt)


def test_shuffled_batches_cover_each_epoch_once():
    data = torch.arange(12).unsqueeze(1)
    b = BatchCycler(data, 4, torch.Generator().manual_seed(0), shuffle=True)
    epoch = torch.cat([b.next() for _ in range(3)]).squeeze(1).sort().values
    assert epoch.tolist() == list(range(12))


def test_mle_learns_on_tiny_suite(tiny, tmp_path):
    tiny.update(steps=60, eval_every=60)
    train(Run("mle", "synthetic", "quick", 0, tiny, tmp_path / "r"), progress=False, log=lambda _m: None)
    first, last = read_metrics(tmp_path / "r" / "metrics.csv")
    assert last["nll_test"] < first["nll_test"] - 0.2
    assert last["nll_oracle"] < first["nll_oracle"]
