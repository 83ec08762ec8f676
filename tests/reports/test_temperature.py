"""Temperature sweeps: G_T's numbers, the grid parser, the dominance test and a sweep end to end."""

import json

import pandas as pd
import pytest
import torch

from textbench.engine.loop import Run, train
from textbench.errors import TextbenchError
from textbench.models.lstm import LSTMLM
from textbench.reports.temperature import (
    SYNTHETIC_AXES,
    TEXT_AXES,
    Sweep,
    Tempered,
    dominance,
    dominates,
    load_sweeps,
    parse_temperatures,
    plot_sweeps,
    sweep,
    sweep_paths,
    write_sweep,
)


@pytest.mark.parametrize("grad", [False, True])
def test_tempered_scores_are_log_softmax_of_logits_over_t(grad):
    model = LSTMLM(30, 8, 8, 5).init_normal_(0.5, torch.Generator().manual_seed(0)).eval()
    x = torch.randint(0, 30, (40, 5), generator=torch.Generator().manual_seed(1))
    with torch.set_grad_enabled(grad):
        for t in (0.5, 1.0, 1.7):
            ref = torch.log_softmax(model(x) / t, dim=-1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
            got = Tempered(model, t).token_log_probs(x)
            assert torch.allclose(got, ref, atol=1e-6)
    # T = 1 is the model itself, bit for bit; the samples are model.sample(temperature=T)
    with torch.no_grad():
        assert torch.equal(Tempered(model, 1.0).token_log_probs(x), model.token_log_probs(x))
    a = Tempered(model, 0.6).sample(50, torch.Generator().manual_seed(2))
    b = model.sample(50, torch.Generator().manual_seed(2), temperature=0.6)
    assert torch.equal(a, b)
    with pytest.raises(TextbenchError):
        Tempered(model, 0.0)
    with pytest.raises(TextbenchError):
        model.token_log_probs(x, temperature=-1.0)


def test_leakgan_generator_scores_at_temperature(tiny, tmp_path):
    from textbench.engine.loop import build, resolve_settings

    settings = resolve_settings("leakgan", "synthetic", "quick", {k: v for k, v in tiny.items() if k != "steps"})
    suite, algo = build("leakgan", "synthetic", settings, 0)
    g = algo.modules()["generator"].eval()
    x = suite.test[:16]
    with torch.no_grad():
        t1 = g.token_log_probs(x)
        hot = g.token_log_probs(x, temperature=0.5)
        assert torch.equal(Tempered(g, 1.0).token_log_probs(x), t1)
        out = g.teacher_forced(x)  # the worker's logits by hand: ln softmax(logits / 0.5) of the observed tokens
        w = g._goal_weights(out["goals"])[:, out["segment"]]
        logits = g._logits(out["worker_h"].reshape(-1, out["worker_h"].shape[-1]), w.reshape(-1, w.shape[-1]))
        ref = torch.log_softmax(logits / 0.5, dim=-1).gather(1, x.reshape(-1, 1)).view(x.shape)
        assert torch.allclose(hot, ref, atol=1e-6) and not torch.allclose(hot, t1)


def test_parse_temperatures():
    assert parse_temperatures("0.5:1.0:0.25") == [0.5, 0.75, 1.0]
    assert parse_temperatures("0.5:2.0:0.1")[-1] == 2.0 and len(parse_temperatures("0.5:2.0:0.1")) == 16
    assert parse_temperatures("1.3, 0.7,1,1") == [0.7, 1.0, 1.3]
    for bad in ("", "a:b:c", "1:0.5:0.1", "0.5:1:0", "0,1", "-1", "nan", "1:2", "0.001:1000:0.001"):
        with pytest.raises(TextbenchError):
            parse_temperatures(bad)


def _curve(points):
    return pd.DataFrame(points, columns=["temperature", "nll_test", "nll_oracle"])


def test_dominance_by_hand():
    mle = _curve([(0.5, 10.0, 8.0), (1.0, 8.8, 9.1), (1.5, 8.5, 10.0)])
    gan = _curve([(0.5, 11.0, 8.2), (1.0, 9.5, 9.0), (1.5, 9.0, 10.5)])
    # every GAN point is beaten on both axes by some MLE point? (9.5, 9.0): MLE (8.8, 9.1) loses on quality: no
    assert not dominates(mle, gan, SYNTHETIC_AXES)
    assert not dominates(gan, mle, SYNTHETIC_AXES)
    better = _curve([(0.5, 9.0, 7.9), (1.0, 8.0, 8.9), (1.5, 7.9, 9.9)])
    assert dominates(better, mle, SYNTHETIC_AXES) and not dominates(mle, better, SYNTHETIC_AXES)
    a = Sweep({"algo": "cot", "profile": "paper", "seed": 0, "suite": "synthetic"}, better)
    b = Sweep({"algo": "mle", "profile": "paper", "seed": 0, "suite": "synthetic"}, mle)
    assert dominance(b, a).startswith("cot paper-seed0 dominates mle paper-seed0")
    c = Sweep({"algo": "seqgan", "profile": "paper", "seed": 0, "suite": "synthetic"}, gan)
    assert "neither dominates" in dominance(b, c)
    # text axes: BLEU higher is better, Self-BLEU lower is better
    t1 = pd.DataFrame({"temperature": [1.0], "self-bleu-5": [0.3], "bleu-5": [0.4]})
    t2 = pd.DataFrame({"temperature": [1.0], "self-bleu-5": [0.4], "bleu-5": [0.3]})
    assert dominates(t1, t2, TEXT_AXES) and not dominates(t2, t1, TEXT_AXES)


def test_sweep_of_a_run_end_to_end(tiny, tmp_path):
    run_dir = tmp_path / "runs" / "synthetic" / "mle" / "quick-seed0"
    train(Run("mle", "synthetic", "quick", 0, tiny, run_dir), progress=False, log=lambda _m: None)
    table = sweep(run_dir, [0.5, 1.0, 2.0], 64, seed=3)
    assert list(table["temperature"]) == [0.5, 1.0, 2.0]
    # sharper samples score better under the oracle than flatter ones
    assert table["nll_oracle"].iloc[0] < table["nll_oracle"].iloc[-1]
    # T = 1 gives the run's own evaluation numbers for that seed
    from textbench.engine.loop import load_generator

    suite, g, _ = load_generator(run_dir)
    ref = suite.evaluate(g, 3, 64, full=False)
    assert table["nll_oracle"].iloc[1] == ref["nll_oracle"] and table["nll_test"].iloc[1] == ref["nll_test"]
    out = tmp_path / "sweeps"
    csv_path = write_sweep(out, run_dir, table, seed=3, n=64)
    assert csv_path == out / "synthetic" / "mle" / "quick-seed0-temperature.csv"
    meta = json.loads(csv_path.with_suffix(".json").read_text())
    assert meta["samples"] == 64 and meta["eval_seed"] == 3 and meta["temperatures"] == [0.5, 1.0, 2.0]
    (loaded,) = load_sweeps(out, "synthetic")
    pd.testing.assert_frame_equal(loaded.table, table, check_exact=True)
    assert load_sweeps(out, "coco") == []
    png = plot_sweeps([loaded], tmp_path / "plot.png")
    assert png.stat().st_size > 5000
    csv_path.with_suffix(".json").unlink()
    with pytest.raises(TextbenchError, match="provenance"):
        load_sweeps(out)


def test_a_sweep_of_a_run_made_again_is_stale_and_not_shown(tiny, tmp_path):
    """A sweep describes the run it was made from: once the run is re-made at another commit (or is gone) the
    leaderboard lists the sweep as stale, with the command to sweep again, and leaves it out of its table."""
    from textbench.engine.rundir import RunDir
    from textbench.reports.temperature import stale_reason, sweep_table

    run_dir = tmp_path / "runs" / "synthetic" / "mle" / "quick-seed0"
    train(Run("mle", "synthetic", "quick", 0, tiny, run_dir), progress=False, log=lambda _m: None)
    out = tmp_path / "sweeps"
    write_sweep(out, run_dir, sweep(run_dir, [0.8, 1.0], 32), seed=0, n=32)
    (fresh,) = load_sweeps(out)
    assert fresh.stale is None and "| mle quick-seed0 · oracle seeded · set batch_size=32, " in sweep_table(out)[1]  # its tiny settings
    rd = RunDir(run_dir)
    rd.write_config({**rd.read_config(), "git_commit": "0123456789abcdef"})
    (old,) = load_sweeps(out)
    assert "re-made since" in old.stale and "0123456" in old.stale
    table, md = sweep_table(out)
    assert table.empty and "## Stale sweeps (not shown)" in md and f"sweep-temperature --run {run_dir}" in md
    assert "run" in stale_reason({"run": str(tmp_path / "gone")}) and stale_reason({}) is None


def test_sweep_temperature_command(tiny, tmp_path):
    from click.testing import CliRunner

    from textbench.cli import main

    dirs = []
    for seed in (0, 1):
        d = tmp_path / "runs" / "synthetic" / "mle" / f"quick-seed{seed}"
        train(Run("mle", "synthetic", "quick", seed, tiny, d), progress=False, log=lambda _m: None)
        dirs += ["--run", str(d)]
    out = tmp_path / "sweeps"
    result = CliRunner().invoke(main, ["sweep-temperature", *dirs, "--temperatures", "0.7,1,1.4", "-n", "32",
                                       "--out", str(out), "--plot", str(tmp_path / "qd.png")])
    assert result.exit_code == 0, result.output
    assert (out / "synthetic" / "mle" / "quick-seed1-temperature.csv").is_file()
    assert "mle quick-seed0" in result.output and "mle quick-seed1" in result.output  # the dominance sentence
    assert (tmp_path / "qd.png").stat().st_size > 5000
    bad = CliRunner().invoke(main, ["sweep-temperature", *dirs[:2], "--temperatures", "0:1:0.5"])
    assert bad.exit_code != 0 and "temperature" in bad.output


def test_plot_draws_the_committed_sweeps_beside_the_runs(tiny, tmp_path):
    from textbench.reports.plots import plot_all

    runs = tmp_path / "results" / "runs"
    d = runs / "synthetic" / "mle" / "quick-seed0"
    train(Run("mle", "synthetic", "quick", 0, tiny, d), progress=False, log=lambda _m: None)
    write_sweep(tmp_path / "results" / "sweeps" / "temperature", d, sweep(d, [0.8, 1.0], 32), seed=0, n=32)
    written = plot_all(runs, tmp_path / "plots")
    assert tmp_path / "plots" / "synthetic-quick-temperature.png" in written


def test_leaderboard_states_which_curve_dominates(tmp_path):
    """The leaderboard's temperature table: swept runs against each other and against the published points."""
    from textbench.reports import leaderboard as lb

    root = tmp_path / "results"
    (root / "runs").mkdir(parents=True)
    out = root / "sweeps" / "temperature" / "synthetic"
    curves = {"mle": [(0.7, 10.2, 8.2), (0.8, 9.55, 8.6), (1.0, 8.78, 9.11)], "cot": [(0.8, 8.5, 8.0), (1.0, 8.03, 8.19)]}
    for algo, pts in curves.items():
        (out / algo).mkdir(parents=True)
        _curve(pts).to_csv(out / algo / "paper-seed0-temperature.csv", index=False)
        meta = {"algo": algo, "suite": "synthetic", "profile": "paper", "seed": 0, "samples": 9984}
        (out / algo / "paper-seed0-temperature.json").write_text(json.dumps(meta))
    written = lb.write_leaderboard(root / "runs", root / "leaderboard", "md")
    md = (root / "leaderboard" / "temperature.md").read_text()
    assert root / "leaderboard" / "temperature.md" in written
    assert "cot paper-seed0 dominates mle paper-seed0" in md
    assert "mle paper-seed0 dominates the published SeqGAN value (nll_test 10.1, nll_oracle 8.68)" in md  # T = 0.8
    assert "mle paper-seed0 does not dominate the published CoT value" in md
    assert "| mle paper-seed0 | 0.7–1 (3) | 9984 | 9.110 | 8.780 | 8.200 (0.7) | 10.200 |" in md


def test_sweeps_of_one_seed_in_two_settings_are_told_apart(tmp_path):
    """Two CoT runs of seed 0 in the paper profile, one in another setting (``--set n_train=640000``): each row
    and sentence names its run directory and setting (both read "cot paper-seed0" before), and only the
    off-setting run's comparison with the published points says it is in another setting."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_leaderboard import synthetic_curve, write_run

    from textbench.reports.temperature import sweep_table

    root = tmp_path / "results"
    out = root / "sweeps" / "temperature"
    plain = write_run(root / "runs", "synthetic", "cot", "paper", 0, synthetic_curve("cot", 0))
    other = write_run(root / "runs" / "x", "synthetic", "cot", "paper", 0, synthetic_curve("cot", 0),
                      config={"overrides": {"n_train": 640000}})
    other = other.rename(other.parent / "paper-seed0-set1668c873")
    for run, pts in ((plain, [(0.8, 8.5, 8.0), (1.0, 8.03, 8.19)]), (other, [(0.8, 8.4, 7.9), (1.0, 7.9, 8.1)])):
        csv_path, meta_path = sweep_paths(out, {"suite": "synthetic", "algo": "cot"}, run)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        _curve(pts).to_csv(csv_path, index=False)
        meta_path.write_text(json.dumps({"algo": "cot", "suite": "synthetic", "profile": "paper", "seed": 0,
                                         "samples": 9984, "run": str(run)}))
    md = sweep_table(out)[1]
    assert "| cot paper-seed0 | 0.8–1 (2) |" in md
    assert "| cot paper-seed0-set1668c873 · set n_train=640000 | 0.8–1 (2) |" in md
    assert "- cot paper-seed0-set1668c873 · set n_train=640000 dominates cot paper-seed0 on" in md
    assert "- cot paper-seed0-set1668c873 · set n_train=640000 (another setting than the paper's) dominates the published CoT" in md
    assert "- cot paper-seed0 dominates the published CoT" in md  # the paper's setting: no such words


def test_at_quality_interpolates_between_the_bracketing_temperatures(tmp_path):
    """Where a curve reaches a published quality, by hand: NLL_oracle 8.0 at T 0.6 and 8.4 at 0.7 reach 8.19 at
    T 0.6475, NLL_test there 7.9 + 0.475 · (7.7 − 7.9) = 7.805; a quality outside the swept range is not reached;
    the leaderboard's "At the published quality" rows (CoT's published 8.19 / 8.03)."""
    from textbench.reports.temperature import at_quality, sweep_table

    curve = _curve([(0.7, 7.7, 8.4), (0.6, 7.9, 8.0), (1.0, 7.5, 9.3)])  # unsorted on purpose
    t, x = at_quality(curve, SYNTHETIC_AXES, 8.19)
    assert t == pytest.approx(0.6475) and x == pytest.approx(7.805)
    assert at_quality(curve, SYNTHETIC_AXES, 7.5) is None and at_quality(curve, SYNTHETIC_AXES, 9.3) == (1.0, 7.5)
    out = tmp_path / "sweeps"
    (out / "synthetic" / "cot").mkdir(parents=True)
    curve.to_csv(out / "synthetic" / "cot" / "paper-seed0-temperature.csv", index=False)
    (out / "synthetic" / "cot" / "paper-seed0-temperature.json").write_text(
        json.dumps({"algo": "cot", "suite": "synthetic", "profile": "paper", "seed": 0, "samples": 9984}))
    md = sweep_table(out)[1]
    assert "| cot paper-seed0 | 8.19 | 0.65 | 7.805 | 8.03 | -0.225 |" in md
