"""Units of progress: what one engine step of each algorithm costs in generator updates and real sequences,
stored in config.json and used by the plots' comparable axis."""

import json

import pytest

from textbench.algorithms.base import progress_at
from textbench.engine.loop import Run, build, resolve_settings, train


def quiet(run, **kw):
    return train(run, progress=False, log=lambda _m: None, **kw)


def test_progress_at_by_hand():
    prog = {"segments": [[1, 3, 10, 640], [4, 5, 0, 96], [6, 9, 1, 100]], "offset": [7, 70]}
    at = progress_at(prog, [0, 1, 3, 4, 5, 6, 9, 12])
    assert at["generator_updates"] == [7, 17, 37, 37, 37, 38, 41, 41]
    assert at["real_sequences"] == [70, 710, 1990, 2086, 2182, 2282, 2582, 2582]


@pytest.mark.needs_data
@pytest.mark.parametrize(
    "algo,extra,unit,updates",
    [
        ("mle", {}, "minibatch", 120 * 156),  # SeqGAN's pre-training length (Table 1's MLE row)
        ("cot", {}, "iteration", 200_000),
        ("seqgan", {}, "epoch", 120 * 156 + 200 * 1),  # SeqGAN: 120 MLE epochs, 50 D calls, 200 x 1 G step
        ("maligan", {}, "epoch", 80 * 156 + 100 * 50),  # Texygen: 80 MLE epochs, 80 D calls, 100 x 50 G steps
        ("gcn", {}, "epoch", 80 * 156 + 100 * 10 * 1),  # 100 epochs of 10 GCN iterations, 1 G step each
        ("leakgan", {}, "epoch", 80 * 156 + 10 * (10 * 1 + 5 * 156)),  # 10 outer epochs: 10 adv + 5 MLE epochs each
    ],
)
def test_paper_profiles_count_generator_updates(algo, extra, unit, updates):
    s = resolve_settings(algo, "synthetic", "paper", extra)
    _, a = build(algo, "synthetic", s, 0)
    prog = a.progress()
    assert prog["unit"] == unit and prog["offset"] == [0, 0]
    assert progress_at(prog, [int(s["steps"])])["generator_updates"] == [updates]
    assert prog["segments"][0][0] == 1 and prog["segments"][-1][1] == int(s["steps"])


def test_init_from_run_starts_at_its_sources_updates(tiny, tmp_path):
    src = tmp_path / "mle"
    quiet(Run("mle", "synthetic", "quick", 0, dict(tiny, steps=12), src))
    assert json.loads((src / "config.json").read_text())["progress"]["segments"] == [[1, 12, 1, 32]]
    gan = dict(tiny, init_from=str(src), pretrain_steps=2, d_pretrain_steps=1, adv_steps=2, steps=3, mle_batches=4,
               d_samples=32, rollout_num=2, eval_every=3)
    quiet(Run("seqgan", "synthetic", "quick", 0, gan, tmp_path / "gan"))
    prog = json.loads((tmp_path / "gan" / "config.json").read_text())["progress"]
    assert prog["offset"] == [12, 12 * 32] and prog["offset_known"]
    assert prog["init_from"]["source_algo"] == "mle" and prog["init_from"]["source_step"] == 12
    # step 1: a D call (no G update); steps 2-3: adversarial epochs of adv_g_steps = 1 update each
    assert progress_at(prog, [0, 1, 3])["generator_updates"] == [12, 12, 14]


def test_a_run_begun_before_progress_was_stored_gets_it_on_resume(tiny, tmp_path):
    d = tmp_path / "r"
    quiet(Run("mle", "synthetic", "quick", 0, tiny, d), stop_at_step=10)
    cfg = json.loads((d / "config.json").read_text())
    del cfg["progress"]
    (d / "config.json").write_text(json.dumps(cfg))
    quiet(Run("mle", "synthetic", "quick", 0, tiny, d), resume=True)
    assert json.loads((d / "config.json").read_text())["progress"]["unit"] == "minibatch"
