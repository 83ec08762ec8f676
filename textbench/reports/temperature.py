"""Temperature sweeps: the quality–diversity curve of a trained generator (Caccia et al., "Language GANs
Falling Short", 2020), and the one module that reads and writes sweep files.

At temperature T the generator becomes G_T(x_t | x_<t) = softmax(logits_t / T): T < 1 sharpens it (better
samples, less diversity), T > 1 flattens it. For each T of a grid, ``sweep`` evaluates G_T on its run's suite
with the same evaluation seed at every T (common random numbers, so the curve is smooth):

* synthetic oracle: quality = NLL_oracle of G_T's samples (lower = better), diversity/coverage = NLL_test
  = −mean ln G_T(x_test) (lower = better);
* text suites: quality = BLEU-5 of G_T's samples against the test references (higher = better), diversity =
  Self-BLEU-5 (lower = better); every BLEU-n, Self-BLEU-n, RS-BLEU-n and NLL_test are kept.

One run's sweep is ``<out>/<suite>/<algo>/<run name>-temperature.csv`` (one row per temperature: the metrics
and the seconds it took) beside ``...-temperature.json`` (the run directory, the run's and this code's git
commit, seed, samples, temperatures, machine). ``dominance`` compares two curves on a suite's
(diversity, quality) axes: run A dominates run B when every point of B is weakly beaten in both coordinates by
some point of A (a point-wise Pareto test on the swept temperatures); otherwise neither dominates (the
curves cross) — the question the paper asks of a GAN against MLE at T = 1. ``at_quality`` reads a curve at a
published quality (the temperature reaching it and the diversity metric there), so a published row can be
placed on our curve: the leaderboard's "At the published quality" table.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from ..engine import rundir
from ..errors import TextbenchError
from ..io import atomic_write_json, atomic_write_text, read_json
from ..metrics import catalogue

DEFAULT_OUT = Path("results/sweeps/temperature")
MAX_TEMPERATURES = 200


@dataclass(frozen=True)
class Axes:
    """The quality–diversity plane of a suite: x = diversity metric, y = quality metric, each with its direction."""

    x: str
    y: str
    x_lower_is_better: bool
    y_lower_is_better: bool


# x: lower = more diverse (Self-BLEU has no better direction of its own); y: the catalogue's direction
SYNTHETIC_AXES = Axes("nll_test", "nll_oracle", True, catalogue.direction("nll_oracle") == "lower")
TEXT_AXES = Axes("self-bleu-5", "bleu-5", True, catalogue.direction("bleu-5") == "lower")


def axes_for(suite: str) -> Axes:
    return SYNTHETIC_AXES if suite == "synthetic" else TEXT_AXES


class Tempered(torch.nn.Module):
    """G_T: ``model`` sampled and scored at temperature T (``sample`` and ``token_log_probs`` of G_T)."""

    def __init__(self, model: torch.nn.Module, temperature: float):
        super().__init__()
        if not (math.isfinite(temperature) and temperature > 0):
            raise TextbenchError(f"temperature must be a finite number > 0, got {temperature}")
        self.model, self.temperature = model, float(temperature)
        self.seq_len, self.vocab_size = model.seq_len, model.vocab_size

    def sample(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        return self.model.sample(n, generator, temperature=self.temperature * temperature)

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.token_log_probs(x, temperature=self.temperature)


def parse_temperatures(spec: str) -> list[float]:
    """``"0.5:2.0:0.1"`` (start:stop:step, stop included) or ``"0.7,1,1.3"`` → sorted distinct temperatures."""
    spec = spec.strip()
    try:
        if ":" in spec:
            parts = [float(p) for p in spec.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if not step > 0 or stop < start:
                raise TextbenchError(f"--temperatures {spec}: expected start:stop:step with step > 0 and stop >= start")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        raise TextbenchError(f"--temperatures {spec}: expected start:stop:step (e.g. 0.5:2.0:0.1) or a list (0.7,1,1.3)") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise TextbenchError(f"--temperatures {spec}: every temperature must be a finite number > 0")
    values = sorted(set(values))
    if len(values) > MAX_TEMPERATURES:
        raise TextbenchError(f"--temperatures {spec}: {len(values)} temperatures, at most {MAX_TEMPERATURES}")
    return values


def sweep(run_dir: Path, temperatures: Sequence[float], n: int, seed: int = 0, log=None) -> pd.DataFrame:
    """Evaluate a run's generator at every temperature; one row per temperature (see the module docstring)."""
    from ..engine.loop import load_generator

    if n < 2:
        raise TextbenchError(f"-n {n}: a sweep needs at least 2 samples per temperature")
    suite, generator, cfg = load_generator(Path(run_dir))
    rows = []
    for t in temperatures:
        start = time.perf_counter()
        with torch.no_grad():
            scores = suite.evaluate(Tempered(generator, t), seed, n, full=cfg["suite"] != "synthetic")
        row = {"temperature": float(t), **{k: float(v) for k, v in scores.items()}, "seconds": time.perf_counter() - start}
        rows.append(row)
        if log:
            ax = axes_for(cfg["suite"])
            log(f"T = {t:g}: {ax.y} {row.get(ax.y, math.nan):.4f}, {ax.x} {row.get(ax.x, math.nan):.4f} ({row['seconds']:.1f} s)")
    return pd.DataFrame(rows)


def sweep_paths(out_dir: Path, cfg: dict, run_dir: Path) -> tuple[Path, Path]:
    base = Path(out_dir) / cfg["suite"] / cfg["algo"] / f"{Path(run_dir).name}-temperature"
    return base.with_suffix(".csv"), base.with_suffix(".json")


def write_sweep(out_dir: Path, run_dir: Path, table: pd.DataFrame, seed: int, n: int) -> Path:
    """Write a sweep's table and its provenance (atomically); returns the CSV path."""
    cfg = rundir.RunDir(run_dir).read_config()
    csv_path, meta_path = sweep_paths(out_dir, cfg, run_dir)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    commit, dirty = rundir.git_info()
    meta = {
        "run": str(run_dir),
        "algo": cfg["algo"],
        "suite": cfg["suite"],
        "profile": cfg["profile"],
        "seed": cfg["seed"],
        "run_git_commit": cfg.get("git_commit"),
        "sweep_git_commit": commit,
        "sweep_git_dirty": dirty,
        "eval_seed": seed,
        "samples": n,
        "temperatures": [float(t) for t in table["temperature"]],
        "axes": vars(axes_for(cfg["suite"])),
        "seconds": float(table["seconds"].sum()),
        "versions": rundir.environment(),
    }
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.17g"))
    atomic_write_json(meta_path, meta)
    return csv_path


@dataclass
class Sweep:
    """One committed sweep: its provenance and its table."""

    meta: dict
    table: pd.DataFrame
    stale: str | None = None  # why the sweep no longer describes its run (``stale_reason``), else None
    setting: str = ""  # what sets the run apart from its profile (the leaderboard's signature label), "" = none
    published_setting: bool = True  # the run is in the paper's setting: its curve is comparable with the paper's points

    @property
    def label(self) -> str:
        """The run by its directory name (which carries the ``-set`` hash), and its setting when it has one:
        ``cot paper-seed0-set1668c873 · set n_train=640000, steps=10000``."""
        name = Path(str(self.meta["run"])).name if self.meta.get("run") else f"{self.meta['profile']}-seed{self.meta['seed']}"
        return f"{self.meta['algo']} {name}" + (f" · {self.setting}" if self.setting else "")


def _run_setting(meta: dict) -> tuple[str, bool]:
    """(setting label, in the paper's setting) of a sweep's run, as the leaderboard names it; ("", True) when the
    run cannot be read (a stale sweep, whose reason is shown instead)."""
    from .leaderboard import run_signature

    run = Path(str(meta.get("run") or ""))
    try:
        cfg = rundir.RunDir(run).read_config()
    except TextbenchError:
        return "", True
    sig = run_signature(cfg["suite"], cfg["algo"], cfg["profile"], cfg, run)
    return sig.setting, sig.published_setting


def stale_reason(meta: dict) -> str | None:
    """Why a sweep no longer describes its run: the run directory is gone, or the run was re-made at another
    commit since it was swept (its config.json names another ``git_commit``). None when it still matches."""
    if not meta.get("run"):
        return None  # no run recorded: nothing to compare with
    run = Path(str(meta["run"]))
    try:
        cfg = rundir.RunDir(run).read_config()
    except TextbenchError:
        return f"its run {run} is not there"
    now, then = cfg.get("git_commit"), meta.get("run_git_commit")
    if now != then:
        return f"its run was re-made since (swept at run commit {str(then)[:8]}, the run is now {str(now)[:8]})"
    return None


def load_sweeps(out_dir: Path = DEFAULT_OUT, suite: str | None = None) -> list[Sweep]:
    """Every sweep under ``out_dir`` (optionally of one suite), in path order."""
    found = []
    for csv_path in sorted(Path(out_dir).glob("*/*/*-temperature.csv")):
        meta_path = csv_path.with_suffix(".json")
        if not meta_path.is_file():
            raise TextbenchError(f"{csv_path}: its provenance file {meta_path.name} is missing")
        meta = read_json(meta_path)
        if suite and meta.get("suite") != suite:
            continue
        table = pd.read_csv(csv_path)
        if "temperature" not in table.columns or table.empty:
            raise TextbenchError(f"{csv_path}: not a temperature sweep (no temperature column or no rows)")
        found.append(Sweep(meta, table, stale_reason(meta), *_run_setting(meta)))
    return found


def _better_or_equal(a: float, b: float, lower_is_better: bool) -> bool:
    return a <= b if lower_is_better else a >= b


def dominates(a: pd.DataFrame, b: pd.DataFrame, axes: Axes) -> bool:
    """True when every (x, y) point of curve ``b`` is weakly beaten on both axes by some point of curve ``a``."""
    pts_a = a[[axes.x, axes.y]].dropna().to_numpy()
    pts_b = b[[axes.x, axes.y]].dropna().to_numpy()
    if len(pts_a) == 0 or len(pts_b) == 0:
        return False
    return all(
        any(_better_or_equal(xa, xb, axes.x_lower_is_better) and _better_or_equal(ya, yb, axes.y_lower_is_better) for xa, ya in pts_a)
        for xb, yb in pts_b
    )


def dominance(a: Sweep, b: Sweep) -> str:
    """One sentence: which of two sweeps of one suite dominates on the quality–diversity plane."""
    axes = axes_for(a.meta["suite"])
    ab, ba = dominates(a.table, b.table, axes), dominates(b.table, a.table, axes)
    if ab and ba:
        return f"{a.label} and {b.label}: the same curve on ({axes.x}, {axes.y})"
    if ab:
        return f"{a.label} dominates {b.label} on ({axes.x}, {axes.y}) over the swept temperatures"
    if ba:
        return f"{b.label} dominates {a.label} on ({axes.x}, {axes.y}) over the swept temperatures"
    return f"{a.label} and {b.label}: neither dominates on ({axes.x}, {axes.y}); the curves cross"


def _published_points(ax, suite: str) -> None:
    """``published_points`` as hollow diamonds (T = 1 by the papers' own sampling), so that a GAN row can be
    read against MLE's curve."""
    from .plots import algo_color

    axes = axes_for(suite)
    for i, p in enumerate(published_points(suite)):
        x, y, color = p.table[axes.x].iloc[0], p.table[axes.y].iloc[0], algo_color(p.meta["algo"])
        ax.plot([x], [y], ls="none", marker="D", ms=6, mfc="none", mec=color, mew=1.4,
                label="published final values (paper)" if i == 0 else None)
        ax.annotate(f"paper: {p.meta['paper_name']}", (x, y), fontsize=7, color=color, xytext=(4, -9),
                    textcoords="offset points")


def plot_sweeps(sweeps: Sequence[Sweep], out_path: Path) -> Path:
    """Quality against diversity for several runs of one suite, one colour per algorithm, T = 1 marked, the
    published final numbers of the suite's table as hollow diamonds."""
    from matplotlib.figure import Figure

    from .plots import PANEL_HEIGHT, _legend_height, _save, _wrap, algo_color

    if not sweeps:
        raise TextbenchError("no temperature sweeps to plot")
    suites = {s.meta["suite"] for s in sweeps}
    if len(suites) != 1:
        raise TextbenchError(f"sweeps of several suites ({', '.join(sorted(suites))}): plot one suite at a time")
    axes = axes_for(suites.pop())
    fig = Figure(figsize=(8.6, PANEL_HEIGHT), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    seen: dict[str, int] = {}  # runs of one algorithm: its colour, told apart by the line style
    for s in sweeps:
        t = s.table.dropna(subset=[axes.x, axes.y])
        color = algo_color(s.meta["algo"])
        style = ("-", "--", ":", "-.")[seen.get(s.meta["algo"], 0) % 4]
        seen[s.meta["algo"]] = seen.get(s.meta["algo"], 0) + 1
        ax.plot(t[axes.x], t[axes.y], color=color, lw=1.4, ls=style, marker="o", ms=2.5, label=_wrap(s.label, 110))
        one = t[(t["temperature"] - 1.0).abs() < 1e-9]
        if not one.empty:
            ax.plot(one[axes.x], one[axes.y], ls="none", marker="*", ms=11, color=color, mec="black", mew=0.6)
        # the curves meet at high T: label each curve's lowest temperature only (the range is in the title)
        low = t.loc[t["temperature"].idxmin()]
        ax.annotate(f"T={low['temperature']:g}", (low[axes.x], low[axes.y]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    _published_points(ax, sweeps[0].meta["suite"])
    # the catalogue's axis label says "higher is better" where it is (BLEU); lower is better is said here
    ax.set_xlabel(catalogue.axis_label(axes.x) + (" (lower = more diverse)" if axes.x_lower_is_better else ""))
    ax.set_ylabel(catalogue.axis_label(axes.y) + (" (lower = better)" if axes.y_lower_is_better else ""))
    n = sorted({int(s.meta["samples"]) for s in sweeps})
    temps = pd.concat([s.table["temperature"] for s in sweeps])
    ax.set_title(f"{sweeps[0].meta['suite']}: quality vs diversity over temperature T = {temps.min():g}–{temps.max():g} "
                 f"(★ = T 1; {'/'.join(map(str, n))} samples)", fontsize=9)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.set_size_inches(fig.get_figwidth(), PANEL_HEIGHT + _legend_height(labels, 1))
    fig.legend(handles, labels, loc="outside lower center", ncols=1, fontsize=8, frameon=False)
    return _save(fig, Path(out_path), dpi=120)


def published_points(suite: str) -> list[Sweep]:
    """The published final (diversity, quality) pair of every algorithm of the suite's table, as one-point curves."""
    from . import published as pub

    axes, out = axes_for(suite), []
    for algo in pub.ALGO_ORDER:
        x, y = (pub.lookup(suite, algo, m, "final") for m in (axes.x, axes.y))
        if x is not None and y is not None:
            meta = {"algo": algo, "suite": suite, "profile": "published", "seed": None, "paper_name": x["paper_name"],
                    "name": f"published {x['paper_name']}"}
            out.append(Sweep(meta, pd.DataFrame({"temperature": [1.0], axes.x: [x["value"]], axes.y: [y["value"]]})))
    return out


def at_quality(table: pd.DataFrame, axes: Axes, quality: float) -> tuple[float, float] | None:
    """(T, diversity metric) where the curve reaches ``quality`` on its quality axis, by linear interpolation in T
    between the two swept temperatures around the first crossing (in order of T); None if no two neighbouring
    points bracket it."""
    t = table.dropna(subset=[axes.x, axes.y]).sort_values("temperature")
    temps, xs, ys = (t[c].to_numpy(float) for c in ("temperature", axes.x, axes.y))
    for i in range(len(t) - 1):
        lo, hi = sorted((ys[i], ys[i + 1]))
        if lo <= quality <= hi:
            f = 0.0 if ys[i + 1] == ys[i] else (quality - ys[i]) / (ys[i + 1] - ys[i])
            return float(temps[i] + f * (temps[i + 1] - temps[i])), float(xs[i] + f * (xs[i + 1] - xs[i]))
    return None


def sweep_table(sweeps_dir: Path = DEFAULT_OUT) -> tuple[pd.DataFrame, str]:
    """The leaderboard's quality–diversity table: per swept run, its point at T = 1 and its best quality, and
    which curve dominates which (swept runs against each other and against the published final values)."""
    rows, lines = [], ["# Quality against diversity over sampling temperature", "",
                       "Generated by `textbench leaderboard` from `textbench sweep-temperature` "
                       "(`results/sweeps/temperature/`). One number at T = 1 can flatter an algorithm: a run "
                       "*dominates* another when every point of the other's curve is weakly beaten on both axes by "
                       "a point of its own (over the swept temperatures); a published value is a single point (T = 1).", ""]
    loaded = load_sweeps(sweeps_dir) if Path(sweeps_dir).is_dir() else []
    sweeps = [w for w in loaded if not w.stale]
    for suite in sorted({w.meta["suite"] for w in sweeps}):
        ours = [w for w in sweeps if w.meta["suite"] == suite]
        axes = axes_for(suite)
        lines += [f"## Suite `{suite}`", "", f"| run | temperatures | samples | {axes.y} at T = 1 | {axes.x} at T = 1 | "
                  f"best {axes.y} (at T) | {axes.x} there |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for w in ours:
            t = w.table
            one = t[(t["temperature"] - 1.0).abs() < 1e-9]
            best = t.loc[t[axes.y].idxmin() if axes.y_lower_is_better else t[axes.y].idxmax()]
            row = {"suite": suite, "run": w.label, "t_min": float(t["temperature"].min()), "t_max": float(t["temperature"].max()),
                   "samples": int(w.meta["samples"]), f"{axes.y}_t1": float(one[axes.y].iloc[0]) if len(one) else None,
                   f"{axes.x}_t1": float(one[axes.x].iloc[0]) if len(one) else None, f"{axes.y}_best": float(best[axes.y]),
                   "t_best": float(best["temperature"]), f"{axes.x}_at_best": float(best[axes.x])}
            rows.append(row)
            t1 = (f"{row[f'{axes.y}_t1']:.3f}", f"{row[f'{axes.x}_t1']:.3f}") if len(one) else ("—", "—")
            lines.append(f"| {w.label} | {row['t_min']:g}–{row['t_max']:g} ({len(t)}) | {row['samples']} | {t1[0]} | {t1[1]} | "
                         f"{row[f'{axes.y}_best']:.3f} ({row['t_best']:g}) | {row[f'{axes.x}_at_best']:.3f} |")
        matched = []
        pub_by_algo = {p.meta["algo"]: p for p in published_points(suite)}
        for w in ours:
            p = pub_by_algo.get(w.meta["algo"]) if w.meta["profile"] == "paper" else None
            if p is None:
                continue
            px, py = float(p.table[axes.x].iloc[0]), float(p.table[axes.y].iloc[0])
            hit = at_quality(w.table, axes, py)
            other = "" if w.published_setting else " (another setting)"
            if hit is None:
                matched.append(f"| {w.label}{other} | {py:g} | not reached at the swept temperatures | — | {px:g} | — |")
            else:
                matched.append(f"| {w.label}{other} | {py:g} | {hit[0]:.2f} | {hit[1]:.3f} | {px:g} | {hit[1] - px:+.3f} |")
        if matched:
            lines += ["", f"At the published quality: the temperature at which each `paper` run's curve reaches its "
                      f"algorithm's published {axes.y} (linear between the two swept temperatures around it), and its "
                      f"{axes.x} there beside the published one (Δ = ours − paper; {'lower' if axes.x_lower_is_better else 'higher'} "
                      f"is more diverse). A published row that is a sharper point of a curve like ours shows as T < 1 "
                      f"with Δ ≤ 0.", "",
                      f"| run | published {axes.y} | T reaching it | our {axes.x} there | published {axes.x} | Δ |",
                      "| --- | ---: | ---: | ---: | ---: | ---: |", *matched]
        lines += ["", "Dominance (between runs of one profile; against the published values for `paper` runs, "
                  "those in another setting than the paper's saying so):", ""]
        published = published_points(suite)
        for i, a in enumerate(ours):
            for b in ours[i + 1 :]:
                if a.meta["profile"] == b.meta["profile"]:
                    lines.append(f"- {dominance(a, b)}")
            other = "" if a.published_setting else " (another setting than the paper's)"
            for p in published if a.meta["profile"] == "paper" else []:
                name = p.meta["name"]
                if dominates(a.table, p.table, axes):
                    lines.append(f"- {a.label}{other} dominates the {name} value ({axes.x} {p.table[axes.x].iloc[0]:g}, "
                                 f"{axes.y} {p.table[axes.y].iloc[0]:g}): some temperature beats it on both axes")
                else:
                    lines.append(f"- {a.label}{other} does not dominate the {name} value ({axes.x} {p.table[axes.x].iloc[0]:g}, "
                                 f"{axes.y} {p.table[axes.y].iloc[0]:g}) at the swept temperatures")
        lines.append("")
    if not sweeps:
        lines.append("No temperature sweeps yet (`textbench sweep-temperature --run DIR`).")
    stale = [w for w in loaded if w.stale]
    if stale:
        lines += ["## Stale sweeps (not shown)", ""]
        lines += [f"- {w.meta['suite']} {w.label}: {w.stale}; sweep it again: `textbench sweep-temperature --run {w.meta['run']}`"
                  for w in stale]
        lines.append("")
    return pd.DataFrame(rows), "\n".join(lines) + "\n"
