"""Training curves as PNG files (matplotlib's Agg canvas; pyplot and the global backend are left alone).

For every suite and profile with complete runs, under ``results/plots/``:

- ``<suite>-<profile>-vs-updates.png``: NLL_oracle, NLL_test and CoT's JSD estimator (text suites: NLL_test,
  BLEU-2, BLEU-5) against cumulative generator updates — the comparable unit of progress (an MLE minibatch, a CoT
  iteration and a GAN epoch are different amounts of work; each algorithm's own unit is in the legend; an
  ``init_from`` run starts at its pre-training's updates) — all algorithms on shared axes (the CoT paper's
  Figure 2 / 3a), in-progress runs dashed, as far as they got; one line per setting (signature): mean over
  seeds as a line, min–max over seeds as a band; dotted horizontal lines mark the paper's final values
  and crosses the CoT README's early values (``paper`` profile on the SeqGAN oracle only), grey dashes the
  bounds (SeqGAN oracle entropy rate 5.755 nats/token for NLL_test, ln 2 for the JSD);
- ``<suite>-<profile>-vs-wall.png``: the same against wall-clock seconds (x = mean over seeds of the time
  at which each evaluation was reached);
- ``<suite>-<profile>-cot-bnll-vs-jsd.png`` (runs that log ``bnll``): the mediator's balanced NLL and CoT's
  JSD estimate against the iteration, and against each other (the paper's Figure 3; the exact JSD stays at
  ln 2 and would show nothing).

The x axis is logarithmic (symlog, so step 0 stays visible) when the values span more than 1.5 decades.
For a lower-is-better metric the y axis ends a little above the worst starting point (each curve's first
evaluation) and the paper's values: a run that diverges beyond it (MaliGAN's NLL_test reaches 18) leaves the
axis, and the panel names it with its maximum, instead of squeezing every other curve into a sliver.
Legends sit below the panels, long settings wrapped, and nothing is drawn outside the canvas.
"""

from __future__ import annotations

import functools
import os
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator

from ..errors import TextbenchError
from ..metrics import catalogue
from . import published as pub
from ..algorithms.base import progress_at
from .leaderboard import Run, load_runs

DEFAULT_OUT = Path("results/plots")

# the exact sequence-level JSD stays within 1e-6 of ln 2 until G is very close to the oracle (README): a flat
# panel; CoT's estimator (the paper's Figure 3 quantity) moves, so it is the third panel
SYNTHETIC_PANELS = ["nll_oracle", "nll_test", "cot_jsd"]
TEXT_PANELS = ["nll_test", "bleu-2", "bleu-5"]
STEP_LABEL = "training step"
UPDATES_LABEL = "generator updates (Adam steps of G, incl. pre-training)"
WALL_LABEL = "wall-clock time since the start of training (s)"


def _label(metric: str) -> str:
    """The metric's axis label from the metric catalogue; a column outside it by its name."""
    return catalogue.axis_label(metric)


#: one colour per algorithm, the same in every plot
#: (the Okabe–Ito colour-blind-safe palette, with Paul Tol's olive and wine for the ninth and tenth)
ALGO_COLORS = {"mle": "#0072B2", "seqgan": "#E69F00", "rankgan": "#009E73", "maligan": "#CC79A7", "gcn": "#999933",
               "leakgan": "#56B4E9", "textgan": "#000000", "cot": "#D55E00", "cot-strong": "#882255"}


def algo_color(algo: str) -> str:
    """The algorithm's colour (``ALGO_COLORS``); an unknown algorithm gets a grey derived from its name."""
    if algo in ALGO_COLORS:
        return ALGO_COLORS[algo]
    return f"#{0x40 + sum(map(ord, algo)) % 0x80:02x}" * 3


@functools.lru_cache(maxsize=None)
def _built_progress(path: str) -> tuple[dict | None, str]:
    """(progress rebuilt from the run's settings, or None; why not, in one line)."""
    from ..engine.loop import build
    from ..engine.rundir import RunDir

    try:
        cfg = RunDir(path).read_config()
        return build(cfg["algo"], cfg["suite"], cfg["settings"], cfg["seed"])[1].progress(), ""
    except Exception as e:  # noqa: BLE001 - no data folder, a moved init_from source: the run cannot be placed
        return None, str(e).split(";")[0].strip()


def run_progress(run: Run) -> dict | None:
    """The run's unit of progress (``Algorithm.progress``): stored in config.json, or — runs made before it was
    stored — recomputed from its settings (needs the data folder); None when neither works."""
    stored = (run.config or {}).get("progress")
    return stored if isinstance(stored, dict) else _built_progress(str(run.path))[0]


def unplaced_reason(run: Run) -> str:
    """Why :func:`run_progress` is None for ``run`` (empty when it is not)."""
    if isinstance((run.config or {}).get("progress"), dict):
        return ""
    return _built_progress(str(run.path))[1]


def seed_curves(runs: Sequence[Run], metric: str) -> pd.DataFrame:
    """Per step over the runs' seeds: mean, std, min, max, n of ``metric``, the mean ``wall_s`` and the mean
    cumulative ``generator_updates`` (NaN where a run's progress is unknown)."""
    frames = []
    for r in runs:
        if r.metrics is None or metric not in r.metrics.columns:
            continue
        cols = ["step", metric] + (["wall_s"] if "wall_s" in r.metrics.columns else [])
        f = r.metrics[cols].dropna(subset=[metric]).assign(seed=r.seed)
        prog = run_progress(r)
        f["generator_updates"] = progress_at(prog, f["step"])["generator_updates"] if prog else np.nan
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=["step", "mean", "std", "min", "max", "n", "wall_s", "generator_updates"])
    long = pd.concat(frames, ignore_index=True)
    if "wall_s" not in long.columns:
        long["wall_s"] = np.nan
    g = long.groupby("step")
    out = g[metric].agg(["mean", "std", "min", "max", "count"]).rename(columns={"count": "n"})
    out["wall_s"] = g["wall_s"].mean()
    out["generator_updates"] = g["generator_updates"].mean()
    return out.reset_index()


def _set_xscale(ax, xs: np.ndarray) -> None:
    xs = np.asarray(xs, dtype=float)
    pos = xs[np.isfinite(xs) & (xs > 0)]
    if len(pos) and pos.max() / pos.min() > 10**1.5:
        lt = float(pos.min())
        ax.set_xscale("symlog", linthresh=lt, linscale=1.0)
        lo, hi = int(np.ceil(np.log10(lt))), int(np.floor(np.log10(pos.max())))
        ticks = [10.0**k for k in range(lo, hi + 1)]
        if xs.min() >= 0:
            ax.set_xlim(left=0)
            ticks = [0.0] + ticks
        ax.xaxis.set_major_locator(FixedLocator(ticks))


def _by_algo(runs: Sequence[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in sorted(runs, key=lambda r: pub.algo_sort_key(r.algo)):
        out.setdefault(r.algo, []).append(r)
    return out


DPI = 110
PANEL_HEIGHT = 4.2  # inches of a figure above its legend
#: legend entries longer than this many characters are wrapped (two columns fit a three-panel figure)
LEGEND_WRAP = 95


def _wrap(label: str, width: int = LEGEND_WRAP) -> str:
    return "\n".join(textwrap.wrap(label, width, subsequent_indent="    ", break_on_hyphens=False)) or label


def _clip_top(ax, metric: str, curves: Sequence[tuple[str, np.ndarray]], refs: Sequence[float]) -> None:
    """For a lower-is-better ``metric``: end the y axis 8 % (of the shown span) above the highest of the curves'
    first values and the reference lines ``refs``, when a curve rises further (it diverged); the panel names the
    curves that leave the axis, with their maxima. ``curves``: (name, values in step order)."""
    if catalogue.direction(metric) != "lower" or not curves:
        return
    vals = [np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for _, v in curves]
    firsts = [v[0] for v in vals if len(v)]
    if not firsts:
        return
    lo = min(float(v.min()) for v in vals if len(v))
    core = max(firsts + [float(r) for r in refs if np.isfinite(r)])
    top = core + 0.08 * max(core - min(lo, *refs) if refs else core - lo, 1e-9)
    off: dict[str, list[float]] = {}
    for (name, _), v in zip(curves, vals):
        if len(v) and v.max() > top:
            off.setdefault(name, []).append(float(v.max()))
    if not off:
        return
    ax.set_ylim(top=top)
    text = "\n".join(f"{n} rises to {', '.join(f'{m:.2f}' for m in ms)}" for n, ms in off.items())
    ax.text(0.98, 0.97, "off the axis:\n" + text, transform=ax.transAxes, ha="right", va="top", fontsize=7,
            color="0.25", bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="0.7", alpha=0.9))


def _legend_height(labels: Sequence[str], ncols: int) -> float:
    """Inches a figure legend of ``labels`` in ``ncols`` columns needs below the panels (fontsize 8)."""
    lines = sum(lab.count("\n") + 1 for lab in labels)
    return 0.2 * (-(-lines // ncols) + 1)


def _save(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    FigureCanvasAgg(fig)
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight", pad_inches=0.1)  # a legend wider than the panels stays in
    os.replace(tmp, path)
    return path


def _groups(runs: Sequence[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs by (algorithm, signature): only runs of one setting are averaged together."""
    out: dict[tuple[str, str], list[Run]] = {}
    for r in sorted(runs, key=lambda r: (pub.algo_sort_key(r.algo), r.signature.setting, r.seed or 0)):
        out.setdefault((r.algo, r.signature.key), []).append(r)
    return out


#: markers that tell apart the settings (signatures) of one algorithm in a figure: its colour stays its own
SETTING_MARKERS = (None, "s", "^", "D", "v", "P")


def setting_markers(groups) -> dict[tuple[str, str], str | None]:
    """(algorithm, signature) -> marker: one colour per algorithm, and its settings (signatures) told apart by
    the marker, in the order of ``groups`` (the first — the paper setting sorts first — plain)."""
    out: dict[tuple[str, str], str | None] = {}
    for algo, key in groups:
        out[(algo, key)] = SETTING_MARKERS[sum(a == algo for a, _ in out) % len(SETTING_MARKERS)]
    return out


def _group_label(rs: Sequence[Run], unit: str | None) -> str:
    r = rs[0]
    n = len(rs)
    label = f"{r.algo}{' · ' + r.signature.setting if r.signature.setting else ''} ({n} seed{'s' if n != 1 else ''}"
    label += f"; one step = one {unit})" if unit else ")"
    unfinished = [x for x in rs if not x.complete]
    if unfinished:
        last = max(int(x.metrics["step"].max()) for x in unfinished if x.metrics is not None and len(x.metrics))
        label += f" — in progress, step {last:,} of {int(r.settings.get('steps', 0)):,}"
    return label


def plot_curves(runs: Sequence[Run], suite: str, profile: str, out_dir: str | os.PathLike, x: str = "updates",
                dpi: int = DPI) -> Path | None:
    """One PNG with a panel per metric, every algorithm of ``suite``/``profile`` on shared axes.

    ``x = "updates"``: the comparable axis, cumulative generator updates (Adam steps of G, counting an
    ``init_from`` run's pre-training; each algorithm's own unit is in the legend); ``"wall"``: wall-clock
    seconds. In-progress runs are drawn as far as they got and say so in the legend."""
    if x not in ("updates", "wall"):
        raise TextbenchError(f"x must be 'updates' or 'wall', not {x!r}")
    runs = [r for r in runs if not r.errors and r.metrics is not None and len(r.metrics) and r.suite == suite
            and r.profile == profile]
    cols = {c for r in runs for c in r.metrics.columns}
    panels = [m for m in (SYNTHETIC_PANELS if "nll_oracle" in cols else TEXT_PANELS) if m in cols]
    if not runs or not panels:
        return None
    canon = pub.canonical_suite(suite)
    # the published numbers and the entropy floor belong to the SeqGAN oracle (protocol.md §1.4)
    seqgan_oracle = canon != "synthetic" or all(
        r.settings.get("oracle", pub.PUBLISHED_ORACLE) == pub.PUBLISHED_ORACLE for r in runs)
    with_paper = profile == "paper" and seqgan_oracle
    fig = Figure(figsize=(5.0 * len(panels), PANEL_HEIGHT), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharex=True)[0]
    groups = _groups(runs)
    published = pub.published_numbers()
    unplaced: list[str] = []
    setting_marker = setting_markers(groups)
    for ax, metric in zip(axes, panels):
        xs_all = []
        drawn: list[tuple[str, np.ndarray]] = []  # (name, values) of each curve, for the y range
        refs: list[float] = []  # the paper's values drawn in the panel
        for (algo, _key), rs in groups.items():
            c = seed_curves(rs, metric)
            if c.empty:
                continue
            xv = (c["generator_updates"] if x == "updates" else c["wall_s"]).to_numpy(float)
            if np.isnan(xv).all():
                if x == "updates" and rs[0].name not in unplaced:
                    unplaced.append(rs[0].name)
                continue
            xs_all.append(xv)
            color = algo_color(algo)
            prog = run_progress(rs[0])
            dashed = not all(r.complete for r in rs)
            marker = setting_marker[(algo, _key)] or ("o" if len(c) <= 12 else None)
            ax.plot(xv, c["mean"], color=color, lw=1.6, ls="--" if dashed else "-", marker=marker, ms=3.5,
                    markevery=1 if len(c) <= 12 else 0.08, label=_wrap(_group_label(rs, prog["unit"] if prog else None)))
            drawn.append((algo, c["max"].to_numpy(float)))
            if len(rs) > 1:
                ax.fill_between(xv, c["min"], c["max"], color=color, alpha=0.2, lw=0)
            if with_paper:
                p = pub.lookup(canon, algo, metric, "final")
                if p is not None:
                    ax.axhline(float(p["value"]), color=color, ls=":", lw=1.2)
                    refs.append(float(p["value"]))
                if x == "updates":  # early values published per iteration: one generator update each
                    pts = published
                    pts = pts[(pts["suite"] == canon) & (pts["algo"] == algo) & (pts["metric"] == metric)
                              & (pts["stat"] == "at_step") & pts["check"] & (pts["step_unit"] == "iteration")]
                    if not pts.empty:
                        ax.plot(pts["step"].astype(float), pts["value"], ls="none", marker="x", ms=7, mew=1.5,
                                color=color, label=f"{algo}: {pts['source'].iloc[0].split(' (')[0]}")
                        refs.extend(pts["value"].astype(float))
        if canon == "synthetic" and metric == "nll_test" and seqgan_oracle:
            ax.axhline(pub.ORACLE_ENTROPY_RATE, color="0.4", ls="--", lw=1, label="oracle entropy rate (floor)")
        if metric == "jsd":
            ax.axhline(pub.LN2, color="0.4", ls="--", lw=1, label="ln 2 (maximum)")
            ax.set_ylim(bottom=0)
        if xs_all:
            _set_xscale(ax, np.concatenate(xs_all))
        _clip_top(ax, metric, drawn, refs)
        ax.set_xlabel(UPDATES_LABEL if x == "updates" else WALL_LABEL)
        ax.set_ylabel(_label(metric))
        ax.set_title(_label(metric).split(" (")[0])
        ax.grid(True, alpha=0.3)
    handles, labels = [], []
    for ax in axes:  # one legend for the figure, de-duplicated
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if with_paper and any(pub.lookup(canon, a, m, "final") is not None for a, _ in groups for m in panels):
        handles.append(Line2D([], [], color="0.2", ls=":", lw=1.2))
        labels.append("paper's final value (colour of the algorithm)")
    ncols = min(2, len(labels))
    fig.set_size_inches(fig.get_figwidth(), PANEL_HEIGHT + _legend_height(labels, ncols))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
    against = "generator updates" if x == "updates" else "wall-clock time"
    seeds = sorted({len(rs) for rs in groups.values()})
    title = (f"Suite '{suite}', profile '{profile}': metrics against {against} (line = mean over seeds, band = min–max; "
             f"{'/'.join(map(str, seeds))} seed(s) per row; dashed = in progress)")
    if unplaced:
        why = sorted({unplaced_reason(r) for r in runs if r.name in unplaced} - {""})
        title += (f"\nnot drawn (progress not in config.json, and rebuilding it from the settings failed"
                  f"{': ' + ' / '.join(why) if why else ''}): {', '.join(unplaced)}")
    fig.suptitle(title, fontsize=10)
    return _save(fig, Path(out_dir) / f"{suite}-{profile}-vs-{x}.png", dpi)


def plot_bnll_vs_jsd(runs: Sequence[Run], suite: str, profile: str, out_dir: str | os.PathLike,
                     dpi: int = DPI) -> Path | None:
    """The paper's Figure 3: CoT's mediator balanced NLL and its JSD estimate (``cot_jsd``; the exact JSD is
    saturated at ln 2 and shows nothing) against the iteration, and against each other; runs that log both,
    in-progress ones as far as they got."""
    runs = [r for r in runs if not r.errors and r.suite == suite and r.profile == profile and r.metrics is not None
            and {"bnll", "cot_jsd"} <= set(r.metrics.columns)]
    if not runs:
        return None
    fig = Figure(figsize=(11.0, PANEL_HEIGHT), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1r = ax1.twinx()
    xs = []
    groups = _groups(runs)
    setting_marker = setting_markers(groups)
    sc = None
    legend: list[tuple[Line2D, str]] = []  # one entry per setting, then the two line styles
    both = pd.concat([r.metrics[["step", "bnll", "cot_jsd"]].dropna() for r in runs])
    steps_range = (float(both["step"].min()), float(both["step"].max())) if len(both) else (0.0, 1.0)  # one colour scale
    for (algo, _key), rs in groups.items():
        marker = setting_marker[(algo, _key)]
        color = algo_color(algo)
        b, j = seed_curves(rs, "bnll"), seed_curves(rs, "cot_jsd")
        xs.append(b["step"].to_numpy(float))
        tag = _group_label(rs, None)
        ax1.plot(b["step"], b["mean"], color=color, lw=1.6, marker=marker, ms=4, markevery=0.1)
        ax1r.plot(j["step"], j["mean"], color=color, lw=1.6, ls="--", marker=marker, ms=3, markevery=0.1)
        legend.append((Line2D([], [], color=color, lw=1.6, marker=marker or "o", ms=5), _wrap(tag, 110)))
        if len(rs) > 1:
            ax1.fill_between(b["step"], b["min"], b["max"], color=color, alpha=0.15, lw=0)
            ax1r.fill_between(j["step"], j["min"], j["max"], color=color, alpha=0.15, lw=0)
        # right: one path per run (never joined across runs or settings), points coloured by iteration
        d = pd.concat([r.metrics[["step", "bnll", "cot_jsd"]].dropna() for r in rs], keys=range(len(rs)))
        for k in range(len(rs)):
            ds = d.loc[k]
            ax2.plot(ds["cot_jsd"], ds["bnll"], color=color, lw=0.8, alpha=0.5)
        sc = ax2.scatter(d["cot_jsd"], d["bnll"], c=d["step"], cmap="viridis", vmin=steps_range[0], vmax=steps_range[1], s=22, marker=marker or "o",
                         edgecolors=color, linewidths=0.8)
    _set_xscale(ax1, np.concatenate(xs) if xs else np.array([]))
    ax1.set_xlabel("CoT iteration (= generator updates)")
    ax1.set_ylabel(_label("bnll"))
    ax1r.set_ylabel(_label("cot_jsd"))
    ax1.set_title("during training")
    ax1.grid(True, alpha=0.3)
    if sc is not None:
        fig.colorbar(sc, ax=ax2, label="CoT iteration")
    ax2.set_xlabel(_label("cot_jsd"))
    ax2.set_ylabel(_label("bnll"))
    ax2.set_title("against each other (evaluations with both)")
    ax2.grid(True, alpha=0.3)
    legend += [(Line2D([], [], color="0.3", lw=1.6), "solid: balanced NLL (left axis)"),
               (Line2D([], [], color="0.3", lw=1.6, ls="--"), "dashed: JSD estimate (right axis)")]
    fig.set_size_inches(fig.get_figwidth(), PANEL_HEIGHT + _legend_height([lab for _, lab in legend], 1))
    fig.legend(*zip(*legend), loc="outside lower center", ncols=1, fontsize=8, frameon=False)
    fig.suptitle(f"Suite '{suite}', profile '{profile}': CoT's mediator balanced NLL and JSD estimate (the paper's "
                 "Figure 3)\nline = mean over seeds, band = min–max", fontsize=11)
    return _save(fig, Path(out_dir) / f"{suite}-{profile}-cot-bnll-vs-jsd.png", dpi)


def plot_all(runs_dir: str | os.PathLike = "results/runs", out_dir: str | os.PathLike = DEFAULT_OUT,
             suite: str | None = None, runs: Sequence[Run] | None = None, dpi: int = DPI) -> list[Path]:
    """Every figure for every (suite, profile) with complete runs; returns the files written."""
    if runs is None:
        runs = load_runs(runs_dir, suite)
    done = [r for r in runs if r.complete]
    if not done:
        raise TextbenchError(f"no complete runs under {runs_dir}" + (f" for suite {suite!r}" if suite else ""))
    written: list[Path] = []
    for s, p in sorted({(r.suite, r.profile) for r in done}):
        for fn in (lambda: plot_curves(runs, s, p, out_dir, "updates", dpi),
                   lambda: plot_curves(runs, s, p, out_dir, "wall", dpi),
                   lambda: plot_bnll_vs_jsd(runs, s, p, out_dir, dpi)):
            path = fn()
            if path is not None:
                written.append(path)
    written += plot_temperature_sweeps(Path(runs_dir).parent / "sweeps" / "temperature", out_dir, suite)
    return written


def plot_temperature_sweeps(sweeps_dir: Path, out_dir: str | os.PathLike, suite: str | None = None) -> list[Path]:
    """``<suite>-<profile>-temperature.png``: the quality–diversity curves of every swept run (``sweep-temperature``)."""
    from .temperature import load_sweeps, plot_sweeps

    if not Path(sweeps_dir).is_dir():
        return []
    sweeps = [w for w in load_sweeps(sweeps_dir, suite) if not w.stale]  # a stale sweep describes a run that is gone
    return [plot_sweeps([w for w in sweeps if (w.meta["suite"], w.meta["profile"]) == key], Path(out_dir) / f"{key[0]}-{key[1]}-temperature.png")
            for key in sorted({(w.meta["suite"], w.meta["profile"]) for w in sweeps})]
