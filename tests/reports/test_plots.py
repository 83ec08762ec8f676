"""Plots: seed aggregation of curves, PNG files written and non-empty, CLI commands."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_leaderboard import make_runs, write_run  # noqa: E402

from textbench.errors import TextbenchError  # noqa: E402
from textbench.reports import plots  # noqa: E402
from textbench.reports.commands import leaderboard_cmd, plot_cmd  # noqa: E402
from textbench.reports.leaderboard import load_runs  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    runs_dir = make_runs(root / "runs")
    runs = [r for r in load_runs(runs_dir) if r.profile == "paper"]  # quick runs: the same figures again
    written = plots.plot_all(runs_dir, root / "plots", runs=runs, dpi=50)  # low resolution: faster
    return root, written


def test_all_figures_written_and_non_empty(rendered):
    root, written = rendered
    names = sorted(p.name for p in written)
    assert names == sorted([
        "synthetic-paper-vs-updates.png", "synthetic-paper-vs-wall.png", "synthetic-paper-cot-bnll-vs-jsd.png",
        "emnlp-paper-vs-updates.png", "emnlp-paper-vs-wall.png",
    ])
    for p in written:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, p
    assert not list((root / "plots").glob(".*"))  # no temporary files left


def test_seed_curves_mean_min_max_by_hand(tmp_path):
    root = tmp_path / "runs"
    for seed, vals, wall in ((1, [10.0, 9.0, np.nan], [0, 10, 20]), (2, [10.0, 8.0, 7.0], [0, 30, 40])):
        write_run(root, "synthetic", "cot", "paper", seed, {"step": [0, 100, 200], "wall_s": wall, "nll_oracle": vals})
    c = plots.seed_curves(load_runs(root), "nll_oracle").set_index("step")
    assert c.loc[100, "mean"] == 8.5 and c.loc[100, "min"] == 8.0 and c.loc[100, "max"] == 9.0
    assert c.loc[100, "n"] == 2 and c.loc[100, "wall_s"] == 20.0
    assert c.loc[200, "mean"] == 7.0 and c.loc[200, "n"] == 1  # the empty cell is skipped
    assert plots.plot_bnll_vs_jsd(load_runs(root), "synthetic", "paper", tmp_path / "p") is None  # no bnll


def test_no_complete_runs_is_an_error(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "synthetic", "cot", "paper", 1, {"step": [0, 1], "wall_s": [0, 1], "nll_oracle": [2, 1]},
              complete=False)
    with pytest.raises(TextbenchError, match="no complete runs"):
        plots.plot_all(root, tmp_path / "p")


def test_cli_plot_and_leaderboard(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, "emnlp", "cot", "paper", 1, {"step": [0, 10, 20], "wall_s": [0, 1, 2],
                                                      "nll_test": [5.0, 3.0, 2.5], "bleu-2": [np.nan, 0.7, 0.78]})
    res = CliRunner().invoke(plot_cmd, ["--runs", str(runs_dir), "--out", str(tmp_path / "plots"), "--suite", "emnlp"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "plots" / "emnlp-paper-vs-updates.png").stat().st_size > 0
    res = CliRunner().invoke(leaderboard_cmd, ["--runs", str(runs_dir), "--out", str(tmp_path / "lb"), "--format", "md"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "lb" / "table2.md").is_file() and not (tmp_path / "lb" / "table2.csv").exists()
    res = CliRunner().invoke(plot_cmd, ["--runs", str(tmp_path / "missing")])
    assert isinstance(res.exception, TextbenchError)


def test_every_algorithm_has_its_own_colour_and_no_flat_jsd_panel():
    from textbench.registry import ALGORITHMS

    colours = {a: plots.algo_color(a) for a in [e.name for e in ALGORITHMS.entries()]}
    assert len(set(colours.values())) == len(colours), colours  # gcn no longer shares MLE's colour
    assert "jsd" not in plots.SYNTHETIC_PANELS and "cot_jsd" in plots.SYNTHETIC_PANELS


def test_algorithm_colours_are_distinct_and_fixed():
    from matplotlib.colors import to_rgb

    from textbench.reports.plots import ALGO_COLORS, algo_color
    from textbench.reports.published import ALGO_ORDER

    assert set(ALGO_ORDER) <= set(ALGO_COLORS)  # every published algorithm has its own colour
    rgb = [to_rgb(c) for c in ALGO_COLORS.values()]
    assert len(set(rgb)) == len(rgb)
    assert min(sum((a - b) ** 2 for a, b in zip(x, y)) for i, x in enumerate(rgb) for y in rgb[i + 1 :]) > 0.05
    assert algo_color("cot") == ALGO_COLORS["cot"] and algo_color("newalgo") == algo_color("newalgo")


def test_a_run_that_cannot_be_placed_says_why(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    write_run(root, "synthetic", "cot", "paper", 1, {"step": [0, 100], "wall_s": [0, 1], "nll_oracle": [2, 1]})
    (run,) = load_runs(root)
    monkeypatch.setenv("TEXTBENCH_DATA", str(tmp_path / "no-data"))  # rebuilding needs the oracle file
    monkeypatch.setenv("TEXTBENCH_CACHE", str(tmp_path / "no-cache"))
    plots._built_progress.cache_clear()
    assert plots.run_progress(run) is None
    why = plots.unplaced_reason(run)
    assert why and "\n" not in why
    stored = {"measures": ["generator_updates", "real_sequences"], "offset": [0, 0], "segments": [[1, 100, 1, 64]], "unit": "iteration"}
    object.__setattr__(run, "config", {**run.config, "progress": stored})
    assert plots.run_progress(run) is stored and plots.unplaced_reason(run) == ""
    plots._built_progress.cache_clear()


def test_settings_of_one_algorithm_get_their_own_markers():
    groups = {("cot", "paper"): [], ("mle", "paper"): [], ("cot", "paper+n_train"): [], ("cot", "paper+bf16"): []}
    m = plots.setting_markers(groups)
    assert m[("cot", "paper")] is None and m[("mle", "paper")] is None  # each algorithm's first setting: plain
    assert len({m[("cot", "paper")], m[("cot", "paper+n_train")], m[("cot", "paper+bf16")]}) == 3


def _figures(monkeypatch, make) -> list:
    """The matplotlib figures that ``make()`` saves, laid out as they are written."""
    figs = []
    save = plots._save

    def keep(fig, path, dpi=plots.DPI):
        figs.append(fig)
        return save(fig, path, dpi)

    monkeypatch.setattr(plots, "_save", keep)
    make()
    for fig in figs:
        fig.canvas.draw()
    return figs


def test_long_legends_stay_on_the_canvas_below_the_panels(tmp_path, monkeypatch):
    """Many settings with long ``--set`` labels (the committed synthetic paper runs): the legend is below the
    panels, never over them, and nothing is drawn outside the figure (the legend used to run off its left edge
    and, in Figure 3, cover the curves)."""
    from test_leaderboard import synthetic_curve

    root = tmp_path / "runs"
    long_set = {"g_betas": [0.9, 0.999], "g_clip": 0.25, "g_lr": 0.01, "m_betas": [0.9, 0.999], "m_lr": 0.01,
                "m_hidden_size": 64, "rollout_update_rate": 0.8, "steps": 2000}
    for i, algo in enumerate(["mle", "seqgan", "maligan", "cot", "cot", "cot", "cot"]):
        over = {**long_set, "n_train": 640000 + i} if i != 3 else {}  # cot's paper setting, and 6 long ones
        write_run(root, "synthetic", algo, "paper", i, synthetic_curve(algo, 1), config={"overrides": over})
    runs = [r for r in load_runs(root) if r.profile == "paper"]
    assert len({r.signature.key for r in runs if r.algo == "cot"}) == 4
    figs = _figures(monkeypatch, lambda: plots.plot_all(root, tmp_path / "plots", runs=runs, dpi=50))
    assert len(figs) == 3
    for fig in figs:
        renderer = fig.canvas.get_renderer()
        inside = fig.bbox.padded(2)
        for artist in [*fig.legends, *fig.texts, *(t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label))]:
            bb = artist.get_window_extent(renderer)
            assert inside.contains(bb.x0, bb.y0) and inside.contains(bb.x1, bb.y1), (artist, bb, fig.bbox)
        (legend,) = fig.legends
        lb = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not lb.overlaps(ax.get_window_extent(renderer)), "the legend covers a panel"
        assert any("\n" in t.get_text() for t in legend.get_texts())  # the long settings are wrapped


def test_a_diverging_run_leaves_the_axis_and_is_named(tmp_path, monkeypatch):
    """A lower-is-better panel ends a little above the starting points and the paper's values; a run that
    diverges past them is named in the panel with its maximum. A higher-is-better panel is never cut."""
    from test_leaderboard import synthetic_curve

    root = tmp_path / "runs"
    write_run(root, "synthetic", "mle", "paper", 1, synthetic_curve("mle", 1))
    bad = synthetic_curve("maligan", 1)
    bad.loc[bad.index[-3:], "nll_test"] = [12.0, 15.0, 18.13]
    write_run(root, "synthetic", "maligan", "paper", 1, bad)
    runs = load_runs(root)
    (fig,) = _figures(monkeypatch, lambda: plots.plot_curves(runs, "synthetic", "paper", tmp_path / "p", dpi=50))
    by_title = {ax.get_title(): ax for ax in fig.axes}
    test_ax, oracle_ax = by_title["NLL_test"], by_title["NLL_oracle"]
    top = test_ax.get_ylim()[1]
    assert 10.07 < top < 11.0  # above MaliGAN's published 10.07 and the starts (8.52), far below 18.13
    (note,) = [t.get_text() for t in test_ax.texts]
    assert "maligan rises to 18.13" in note and "mle" not in note
    assert not oracle_ax.texts and oracle_ax.get_ylim()[1] > 10.2  # nothing diverges there: nothing cut

    ax = Figure().subplots()
    ax.plot([0, 1, 2], [0.1, 0.7, 0.9])
    plots._clip_top(ax, "bleu-2", [("mle", np.array([0.1, 0.7, 0.9]))], [])
    assert ax.get_ylim()[1] >= 0.9 and not ax.texts
