"""Regression of the committed results against the published numbers, the paper's claims and themselves.

Four kinds of check, one table (check, published, ours, tolerance, status ∈ pass / fail / missing):

- ``published``: the seed-mean of our complete ``paper``-profile runs against each published value of
  :mod:`textbench.reports.published` (``check`` rows), pass when ``|ours − published| ≤ tolerance``.
  Published numbers are paper-scale, so they are compared with ``paper``-profile runs only; a value with no
  such run is *missing* ("paper-scale run absent" when only other profiles exist) — never passing.
  Synthetic runs on another oracle than SeqGAN's (``settings.oracle``) are not comparable either.
- ``claim``: the paper's qualitative claims (CoT NLL_oracle < MLE NLL_oracle, ...) on seed-means. Each claim
  lists the profiles it is meaningful for: the paper's orderings are ``paper``-scale only (a 2-minute quick
  run does not reach that regime); the harness sanity claims (the final model beats the untrained one, the
  exact JSD ≤ ln 2) hold for ``quick`` runs too. ``--profile quick`` checks quick runs against those.
- ``integrity``: every run directory is readable and consistent: config.json agrees with the directory
  name; metrics.csv starts at step 0 with strictly increasing steps; summary.json's final / best /
  best_step / steps agree with metrics.csv. A number edited by hand in either file fails here (or in the
  replay below).
- ``replay``: each complete run's first K evaluation intervals are re-run from its own config.json by
  ``textbench.engine.replay.replay_run(run_dir, max_evals)`` and the reproduced metrics.csv rows must equal
  the committed ones exactly in every column except timing columns (``*_s``). ``K = 0`` replays the whole
  run. The replay function is a parameter (tests pass a fake one).

Incomplete runs are listed in the notes and not checked. The exit status of ``textbench regress`` is 1 if
any check fails (and, with ``--fail-on-missing``, if any is missing).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import TextbenchError
from . import published as pub
from .leaderboard import (
    DEFAULT_RUNS,
    Run,
    aggregate,
    fmt_num,
    group_value,
    is_timing_column,
    load_runs,
    series_at,
    stats_frame,
    text_table,
)

ReplayFn = Callable[[Path, int], pd.DataFrame]

PASS, FAIL, MISSING = "pass", "fail", "missing"
#: relative tolerance when comparing summary.json with metrics.csv (both are written from the same floats)
SUMMARY_RTOL = 1e-9
#: relative tolerance of the replay comparison: 0 = exact
REPLAY_RTOL = 0.0


@dataclass
class Check:
    kind: str  # published | claim | integrity | replay
    check: str
    published: str
    ours: str
    tolerance: str
    status: str  # pass | fail | missing
    note: str = ""


@dataclass
class RegressReport:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: str = "paper"
    runs_dir: str = ""

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in (PASS, FAIL, MISSING)}

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def exit_code(self, fail_on_missing: bool = False) -> int:
        return int(self.failed or (fail_on_missing and any(c.status == MISSING for c in self.checks)))

    def frame(self) -> pd.DataFrame:
        cols = ["kind", "check", "published", "ours", "tolerance", "status", "note"]
        return pd.DataFrame([c.__dict__ for c in self.checks], columns=cols)

    def format(self, max_width: int = 70) -> str:
        headers = ["kind", "check", "published", "ours", "tolerance", "status", "note"]
        rows = [[c.kind, c.check, c.published, c.ours, c.tolerance, c.status, c.note] for c in self.checks]
        n = self.counts()
        out = [f"textbench regress: runs {self.runs_dir}, profile {self.profile}", ""]
        out.append(text_table(headers, rows, max_width) if rows else "(no checks)\n")
        out += [f"- {x}" for x in self.notes]
        out.append(f"{n[PASS]} pass, {n[FAIL]} fail, {n[MISSING]} missing")
        return "\n".join(out) + "\n"


def within(ours: float, published: float, tolerance: float) -> bool:
    """|ours − published| ≤ tolerance; the edge passes (float rounding of e.g. 8.34 − 8.19 allowed for)."""
    return abs(ours - published) <= tolerance * (1 + 1e-9) + 1e-12


def _ours(mean: float | None, std: float | None, n: int, digits: int = 3) -> str:
    if mean is None:
        return "—"
    s = fmt_num(mean, digits)
    if std is not None and n >= 2:
        s += f" ± {std:.{digits}f}"
    return s + f" (n={n})"


def _digits(metric: str) -> int:
    return 4 if metric in ("jsd", "jsd_se") else 3


def _stats_canonical(runs: Sequence[Run]) -> pd.DataFrame:
    st = stats_frame(runs)
    if not st.empty:
        st = st.assign(suite=st["suite"].map(pub.canonical_suite))
    return st


def _oracle_ok(st: pd.DataFrame) -> pd.Series:
    """Rows comparable with the published synthetic numbers (SeqGAN oracle, or no oracle setting)."""
    return (st["suite"] != "synthetic") | st["oracle"].isna() | (st["oracle"].astype(str) == pub.PUBLISHED_ORACLE)


def _short_source(src: str) -> str:
    for k, v in (("Table 1", "T1"), ("Table 2", "T2"), ("Table 3", "T3"), ("README", "CoT README"),
                 ("experiment-log", "SeqGAN log")):
        if k in src:
            return v
    return src


# ------------------------------------------------------------------------------------------------
# Published numbers
# ------------------------------------------------------------------------------------------------


def compare_published(runs: Sequence[Run], suite: str | None = None,
                      published: pd.DataFrame | None = None) -> list[Check]:
    """Each checked published value against the seed-mean of complete paper-profile runs."""
    pubdf = pub.published_numbers() if published is None else published
    pubdf = pubdf[pubdf["check"].astype(bool)]
    if suite is not None:
        pubdf = pubdf[pubdf["suite"] == pub.canonical_suite(suite)]
    st = _stats_canonical(runs)
    complete = {(pub.canonical_suite(r.suite), r.algo, r.profile) for r in runs if r.complete}
    started = {(pub.canonical_suite(r.suite), r.algo, r.profile) for r in runs if not r.complete}
    if st.empty:
        paper = st
        agg = aggregate(st)
    else:
        paper = st[(st["profile"] == "paper") & _oracle_ok(st)]
        agg = aggregate(paper)
    groups = {(r["suite"], r["algo"]): r for _, r in agg.iterrows()} if not agg.empty else {}
    seen = {k[:2] for k in complete | started}
    checks = []
    for row in pubdf.itertuples(index=False):
        step = None if pd.isna(row.step) else int(row.step)
        label = f"{row.suite}/{row.algo} {row.metric} {row.stat}" + (f"@{step}" if step is not None else "")
        label += f" [{_short_source(row.source)}]"
        tol = f"±{row.tolerance:g}"
        c = Check("published", label, str(row.printed), "—", tol, MISSING)
        key = (row.suite, row.algo)
        if key not in seen:
            c.note = "no runs"
        elif (row.suite, row.algo, "paper") not in complete:
            others = sorted({k[2] for k in complete if k[:2] == key})
            if others:
                c.note = f"paper-scale run absent (complete runs of profile {', '.join(others)} only)"
            else:
                c.note = "paper-scale run absent (no complete run)"
        else:
            g = groups.get(key)
            if g is None:
                c.note = f"runs use another oracle than {pub.PUBLISHED_ORACLE!r}; published numbers are on it"
                checks.append(c)
                continue
            if row.stat == "at_step":
                vals = []
                dirs = set(g["run_dirs"])
                for r in runs:
                    if r.complete and str(r.path) in dirs:
                        v = series_at(r.metrics, row.metric, step)
                        if v is not None:
                            vals.append(v)
                mean = float(np.mean(vals)) if vals else None
                std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
                n = len(vals)
                missing_note = f"no evaluation of {row.metric} at step {step}"
            else:
                mean, std, n = group_value(g, row.metric, row.stat)
                missing_note = f"{row.metric} not recorded"
            if mean is None:
                c.note = missing_note
            else:
                c.ours = _ours(mean, std, n, _digits(row.metric))
                diff = mean - float(row.value)
                c.status = PASS if within(mean, float(row.value), float(row.tolerance)) else FAIL
                c.note = f"Δ = {diff:+.3f}"
        checks.append(c)
    return checks


# ------------------------------------------------------------------------------------------------
# Qualitative claims
# ------------------------------------------------------------------------------------------------


def evaluate_claims(runs: Sequence[Run], profile: str = "paper", suite: str | None = None,
                    claims: pd.DataFrame | None = None) -> list[Check]:
    """Claims meaningful for ``profile`` on the seed-means of that profile's complete runs."""
    cl = pub.qualitative_claims() if claims is None else claims
    cl = cl[cl["profiles"].map(lambda p: profile in str(p).split(";"))]
    st = _stats_canonical(runs)
    st = st[st["profile"] == profile] if not st.empty else st
    agg = aggregate(st)
    suites_with_runs = sorted(set(agg["suite"])) if not agg.empty else []
    other_profiles: dict[tuple[str, str], set[str]] = {}
    for r in runs:
        if r.complete and r.profile != profile:
            other_profiles.setdefault((pub.canonical_suite(r.suite), r.algo), set()).add(r.profile)
    checks: list[Check] = []

    groups = {(r["suite"], r["algo"]): r for _, r in agg.iterrows()} if not agg.empty else {}

    def value(s: str, algo: str, metric: str, stat: str) -> tuple[float | None, int]:
        g = groups.get((s, algo))
        if g is None:
            return None, 0
        m, _, n = group_value(g, metric, stat)
        return m, n

    for c in cl.itertuples(index=False):
        if suite is not None and c.suite not in ("*", pub.canonical_suite(suite)):
            continue
        ss = suites_with_runs if c.suite == "*" else [c.suite]
        if suite is not None:
            ss = [s for s in ss if s == pub.canonical_suite(suite)]
        pairs = []
        for s in ss:
            if c.lhs_algo == "*":
                algos = [a for (gs, a) in groups if gs == s and value(s, a, c.lhs_metric, c.lhs_stat)[0] is not None]
                pairs += [(s, a) for a in algos]
            else:
                pairs.append((s, c.lhs_algo))
        if not pairs:
            pairs = [(c.suite, c.lhs_algo)]
        rhs_const = c.rhs_value is not None and not (isinstance(c.rhs_value, float) and math.isnan(c.rhs_value))
        for s, algo in pairs:
            rhs_algo = algo if c.rhs_algo == "=" else c.rhs_algo
            if rhs_const:
                rhs_txt = f"{c.rhs_value:.6g}"
                label = f"{s}/{algo}: {c.lhs_metric} {c.lhs_stat} {c.op} {rhs_txt}"
            elif rhs_algo == algo:
                label = f"{s}/{algo}: {c.lhs_metric} {c.lhs_stat} {c.op} {c.rhs_metric} {c.rhs_stat}"
            elif (c.lhs_metric, c.lhs_stat) == (c.rhs_metric, c.rhs_stat):
                label = f"{s}: {algo} {c.op} {rhs_algo}, {c.lhs_metric} {c.lhs_stat}"
            else:
                label = f"{s}: {algo} {c.lhs_metric} {c.lhs_stat} {c.op} {rhs_algo} {c.rhs_metric} {c.rhs_stat}"
            lp = pub.lookup(s, algo, c.lhs_metric, c.lhs_stat)
            rp = None if rhs_const else pub.lookup(s, rhs_algo, c.rhs_metric, c.rhs_stat)
            published = "—"
            if lp is not None and (rhs_const or rp is not None):
                published = f"{lp['printed']} {c.op} {rhs_txt if rhs_const else rp['printed']}"
            lv, ln = value(s, algo, c.lhs_metric, c.lhs_stat)
            if rhs_const:
                rv, rn = float(c.rhs_value), None
            else:
                rv, rn = value(s, rhs_algo, c.rhs_metric, c.rhs_stat)
            d = _digits(c.lhs_metric)
            ours = f"{fmt_num(lv, d)} {c.op} {fmt_num(rv, d) if not rhs_const else rhs_txt}"
            chk = Check("claim", label, published, ours, "—", MISSING)
            if lv is None or rv is None:
                absent = [f"{algo} {c.lhs_metric}"] if lv is None else []
                if rv is None:
                    absent.append(f"{rhs_algo} {c.rhs_metric}")
                why = f"no complete {profile} run with " + ", ".join(absent)
                others = set()
                for a in ([algo] if lv is None else []) + ([rhs_algo] if rv is None and not rhs_const else []):
                    others |= other_profiles.get((s, a), set())
                if profile == "paper" and others:
                    why = f"paper-scale run absent (only {', '.join(sorted(others))} runs); " + why
                chk.note = f"[{c.id}] {why}"
            else:
                chk.status = PASS if pub.OPS[c.op](lv, rv) else FAIL
                chk.note = f"[{c.id}] n={ln}" + (f" vs {rn}" if rn is not None else "") + f"; {c.description}"
            checks.append(chk)
    return checks


# ------------------------------------------------------------------------------------------------
# Integrity: summary.json vs metrics.csv vs config.json
# ------------------------------------------------------------------------------------------------


def _close(a: float, b: float, rtol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


def summary_problems(summary: dict, metrics: pd.DataFrame, rtol: float = SUMMARY_RTOL) -> list[str]:
    """Disagreements between summary.json and metrics.csv (empty list: consistent)."""
    probs: list[str] = []
    if metrics.empty:
        return ["metrics.csv has no rows"]
    if int(metrics["step"].iloc[0]) != 0:
        probs.append(f"metrics.csv starts at step {int(metrics['step'].iloc[0])}, not 0 (the untrained model)")
    final = summary.get("final") or {}
    best = summary.get("best") or {}
    best_step = summary.get("best_step") or {}
    cols = [c for c in metrics.columns if c != "step" and not is_timing_column(c)]
    by_step = metrics.set_index("step")
    for m in cols:
        s = by_step[m].dropna()
        if s.empty:
            continue
        if m not in final:
            probs.append(f"summary final has no {m!r}")
        else:
            try:
                fv = float(final[m])
            except (TypeError, ValueError):
                probs.append(f"summary final {m} = {final[m]!r} is not a number")
                fv = None
            if fv is not None and not _close(fv, float(s.iloc[-1]), rtol):
                probs.append(f"summary final {m} = {fv!r} but metrics.csv's last value is {float(s.iloc[-1])!r} "
                             f"(step {int(s.index[-1])})")
        if m in best:
            try:
                bv = float(best[m])
            except (TypeError, ValueError):
                probs.append(f"summary best {m} = {best[m]!r} is not a number")
                continue
            d = pub.metric_direction(m)
            allowed = {"min": [s.min()], "max": [s.max()], None: [s.min(), s.max()]}[d]
            if not any(_close(bv, float(a), rtol) for a in allowed):
                probs.append(f"summary best {m} = {bv!r} but metrics.csv's {d or 'min/max'} is "
                             f"{float(allowed[0])!r}")
            if m in best_step:
                bs = best_step[m]
                if bs not in s.index:
                    probs.append(f"summary best_step {m} = {bs!r} has no {m} value in metrics.csv")
                elif not _close(bv, float(s.loc[bs]), rtol):
                    probs.append(f"summary best {m} = {bv!r} but metrics.csv has {float(s.loc[bs])!r} at step {bs}")
    for m in final:
        if m not in metrics.columns and not is_timing_column(m):
            probs.append(f"summary final has {m!r}, absent from metrics.csv")
    steps = summary.get("steps")
    if steps is not None:
        try:
            if int(steps) < int(metrics["step"].iloc[-1]):
                probs.append(f"summary steps = {steps} < last metrics.csv step {int(metrics['step'].iloc[-1])}")
        except (TypeError, ValueError):
            probs.append(f"summary steps = {steps!r} is not an integer")
    return probs


def check_integrity(run: Run) -> Check:
    c = Check("integrity", f"{run.name} files", "—", "consistent", "exact", PASS)
    probs = list(run.errors)
    if not probs and run.summary is not None and run.metrics is not None:
        probs += summary_problems(run.summary, run.metrics)
    if probs:
        c.status, c.ours, c.note = FAIL, "inconsistent", "; ".join(probs)
    else:
        c.note = f"{len(run.metrics)} evaluations, summary.json agrees with metrics.csv"
    return c


# ------------------------------------------------------------------------------------------------
# Replay
# ------------------------------------------------------------------------------------------------


def compare_replay(committed: pd.DataFrame, replayed: pd.DataFrame, max_evals: int,
                   rtol: float = REPLAY_RTOL) -> list[str]:
    """Problems found comparing replayed metrics rows with the committed prefix (empty list: identical).

    The replay of K evaluation intervals gives the rows of steps 0, e, ..., K·e (K + 1 rows; ``max_evals``
    = 0 means the whole run). Cells are compared exactly (NaN = empty cell = NaN) over the union of the
    non-timing columns: a column absent on one side counts as empty there.
    """
    if not isinstance(replayed, pd.DataFrame):
        return [f"replay returned {type(replayed).__name__}, not a DataFrame"]
    if "step" not in replayed.columns:
        return ["replayed rows have no 'step' column"]
    if replayed.empty:
        return ["replay returned no rows"]
    probs = []
    n = len(replayed)
    if n > len(committed):
        probs.append(f"replay returned {n} rows, metrics.csv has only {len(committed)}")
        n = len(committed)
    want = min(max_evals + 1, len(committed)) if max_evals > 0 else len(committed)
    if n < want:
        probs.append(f"replay returned {n} rows, expected {want}")
    cols = ["step"] + sorted({c for c in list(committed.columns) + list(replayed.columns)
                              if c != "step" and not is_timing_column(c)})
    com = committed.iloc[:n].reset_index(drop=True).reindex(columns=cols)
    rep = replayed.iloc[:n].reset_index(drop=True).reindex(columns=cols)
    for col in cols:
        a = pd.to_numeric(com[col], errors="coerce").to_numpy(dtype=float)
        b = pd.to_numeric(rep[col], errors="coerce").to_numpy(dtype=float)
        same = (np.isnan(a) & np.isnan(b)) | (a == b)
        if rtol > 0:
            same |= np.isclose(a, b, rtol=rtol, atol=0.0)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            k = int((~same).sum())
            where = f"row {i + 1}" if col == "step" else f"step {int(com['step'].iloc[i])}"
            probs.append(f"{where}, {col}: committed {_cell(a[i])} != replayed {_cell(b[i])} "
                         f"({k} cell{'s' if k > 1 else ''} differ)")
    return probs


def _cell(x: float) -> str:
    return "empty" if math.isnan(x) else repr(float(x))


def default_replay() -> ReplayFn:
    """The engine's replay (imported lazily: the engine may not be installed / written yet)."""
    from ..engine.replay import replay_run  # noqa: PLC0415

    return replay_run


def check_replay(run: Run, max_evals: int, replay: ReplayFn | None = None) -> Check:
    what = "all evaluations" if max_evals <= 0 else f"first {max_evals} evaluation{'s' if max_evals != 1 else ''}"
    c = Check("replay", f"{run.name} {what}", "committed rows", "—", "exact", MISSING)
    if replay is None:
        try:
            replay = default_replay()
        except ImportError as e:
            c.note = f"replay unavailable (textbench.engine.replay: {e})"
            return c
    # 0 = the whole run: ask for as many intervals as there are committed evaluations (the replay stops at
    # the run's own number of steps)
    k = int(max_evals) if max_evals > 0 else max(1, len(run.metrics))
    try:
        got = replay(Path(run.path), k)
    except Exception as e:  # the replay crashing is a failure to reproduce, reported, not raised
        c.status, c.ours = FAIL, "replay error"
        c.note = f"{type(e).__name__}: {e}".replace("\n", " ")
        return c
    probs = compare_replay(run.metrics, got, max_evals)
    if probs:
        c.status, c.ours, c.note = FAIL, "differs", "; ".join(probs)
    else:
        c.status, c.ours = PASS, f"{len(got)} rows identical"
    return c


# ------------------------------------------------------------------------------------------------
# Everything
# ------------------------------------------------------------------------------------------------


def regress(runs_dir: str | os.PathLike = DEFAULT_RUNS, *, profile: str = "paper", suite: str | None = None,
            replay_evals: int = 2, do_replay: bool = True, replay: ReplayFn | None = None,
            runs: Sequence[Run] | None = None) -> RegressReport:
    """Run every check; see the module docstring. ``replay`` defaults to the engine's ``replay_run``."""
    if replay_evals < 0:
        raise TextbenchError(f"--replay-evals must be >= 0 (0 = all evaluations), not {replay_evals}")
    if runs is None:
        runs = load_runs(runs_dir, suite)
    rep = RegressReport(profile=profile, runs_dir=str(runs_dir))
    if profile == "paper":
        rep.checks += compare_published(runs, suite)
    else:
        rep.notes.append(f"published numbers are paper-scale: not compared with {profile!r} runs "
                         "(only the claims meaningful at that scale are checked)")
    rep.checks += evaluate_claims(runs, profile, suite)
    for r in runs:
        if r.incomplete is not None and not r.errors:
            rep.notes.append(f"not checked, incomplete: {r.name} ({r.incomplete})")
            continue
        rep.checks.append(check_integrity(r))
    if do_replay:
        for r in runs:
            if r.complete:
                rep.checks.append(check_replay(r, replay_evals, replay))
    else:
        rep.notes.append("replay skipped (--no-replay)")
    if not runs:
        rep.notes.append(f"no runs found under {runs_dir}")
    return rep
