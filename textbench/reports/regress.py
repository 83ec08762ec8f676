"""Regression of the committed results against the published numbers, the paper's claims and themselves.

Four kinds of check, one table (check, published, ours, tolerance, status ∈ pass / fail / explained / missing;
*explained* = a published comparison that fails, listed with its cause and evidence in
``published.EXPLAINED_CSV`` and protocol.md, for a group with enough seeds — reported, never counted as a pass):

- ``published``: the seed-mean of our complete ``paper``-profile runs against each published value of
  :mod:`textbench.reports.published` (``check`` rows), pass when ``|ours − published| ≤ tolerance``.
  Published numbers are paper-scale, so they are compared with ``paper``-profile runs only; a value with no
  such run is *missing* ("paper-scale run absent" when only other profiles exist) — never passing.
  Seed-means are taken per *signature* (:func:`textbench.reports.leaderboard.run_signature`: suite data and
  oracle with their fingerprints, algorithm, profile, ``--set`` overrides), never across signatures; only
  signatures in the paper's setting (SeqGAN oracle, no overrides) are compared, one check per signature
  when the data of several differ.
- ``claim``: the paper's qualitative claims (CoT NLL_oracle < MLE NLL_oracle, ...) on the same per-signature
  seed-means (orderings between algorithms: paper setting, same data; see :func:`evaluate_claims`). Each claim
  lists the profiles it is meaningful for: the paper's orderings are ``paper``-scale only (a 2-minute quick
  run does not reach that regime); the harness sanity claims (the final model beats the untrained one, the
  exact JSD ≤ ln 2) hold for ``quick`` runs too. ``--profile quick`` checks quick runs against those.
- ``integrity``: every run directory is readable and consistent: config.json agrees with the directory
  name; metrics.csv starts at step 0 with strictly increasing steps; summary.json's final / best /
  best_step / steps agree with metrics.csv. A number edited by hand in either file fails here (or in the
  replay below).
- ``replay``: each complete run's first K evaluation intervals are re-run from its own config.json by
  ``textbench.engine.replay.replay_run(run_dir, max_evals)`` (``K = 0``: the whole run) and the reproduced
  metrics.csv rows are compared with the committed ones in one of two modes, chosen per run (``auto``, or
  forced by ``--replay-mode``) and shown in the row (``tolerance`` column; the note starts with the mode and
  why):

  - ``exact`` — the machine that recorded the replayed steps matches this one: torch's CPU capability
    (config.json ``versions.cpu_capability`` / ``segments``, e.g. ``AVX512``) and torch version; the replay
    uses the recorded thread count. Every column except the timing columns (``*_s``) must be bit-identical.
  - ``tolerance`` — anywhere else, and for configs that do not record the capability (older runs). Vector
    kernels (AVX-512, AVX2, none) round float32 differently in the last bits and sampling by inverse CDF
    turns such a difference into another token now and then, so another CPU draws a few other samples
    (step 0 of an MLE run: NLL_oracle 11.425719 on AVX512, 11.425190 on AVX2, 11.425405 without vector
    kernels). A metric ``m`` with a Monte-Carlo standard-error column ``m_se`` passes where
    ``|committed − replayed| ≤ k·sqrt(se_c² + se_r²)`` (+ 1e-9 of the value: float noise where se ≈ 0, as
    for JSD = ln 2 at step 0). A metric without one (training-loss interval means such as g_loss or bnll;
    BLEU) is compared in the step-0 row only, before any training, within a relative ``STEP0_RTOL`` = 1e-6
    (``STEP0_SAMPLE_RTOL`` = 0.05 for the BLEU family, which is computed from the samples), and is listed
    after that as "not compared across CPUs (no Monte-Carlo error recorded)". Steps, row counts and empty
    cells are compared as in the exact mode: a cell empty on one side only always fails.

  k = 5, measured (runs recorded on AVX512, replayed in processes with ``ATEN_CPU_CAPABILITY=avx2`` and
  ``=default``; torch 2.13, one thread): replays on the recording kernels were bit-identical (1,548 cells);
  on the other kernels, over 1,880 comparisons of nll_oracle / nll_test / jsd / cot_jsd, |Δ|/se (se =
  sqrt(se_c² + se_r²)) was at most 0.07 at step 0 (456 comparisons); ≤ 0.49 for the tests' tiny setting
  (seeded oracle, 50 tokens: mle, cot, seqgan, maligan, rankgan, 8 seeds each, 4–5 evaluations); ≤ 0.89
  for the SeqGAN oracle with the quick profile's sizes (mle and cot, 6 seeds, evaluations at steps 20 and
  40); ≤ 1.76 for mle and cot over 200 steps (evaluations at 100 and 200: ``--replay-evals 2`` of a quick
  run); ≤ 2.49 for seqgan / maligan / rankgan over their quick schedules' first two evaluations (MLE and
  D pre-training, first adversarial step; 2–4 seeds). Largest 2.49 (maligan NLL_oracle after its first
  adversarial step), 99th percentile 0.88, none above 4. k = 5 is twice the largest: even where the two
  machines' samples have nothing in common, |Δ|/se is about standard normal and exceeds 5 with probability
  6e-7 per comparison (4: 6e-5, too often over a results tree of thousands), while a real change of
  5·√2 ≈ 7 standard errors (e.g. 0.13 nats of NLL_oracle for 1,024 samples) fails. Trajectories of
  algorithms that train on their own samples separate further with every step; these figures cover the
  first evaluations that ``--replay-evals`` replays, not a long replay of a whole run (``K = 0``).
  NLL_test after step 0 also gets ``TRAJECTORY_RTOL`` = 0.5 % of its value: its standard error is that of the
  fixed test set, shared by both sides, so it says nothing of how far two CPUs' trainings have separated. Measured
  on a CPU with AVX2 only (AMD EPYC, no AVX-512; 2026-12-02) replaying runs recorded on AVX-512, first
  evaluation: CoT paper profile fp32 at iteration 100, NLL_test 8.116603 vs 8.102522 (|Δ| 0.17 % = 8.57·se;
  NLL_oracle 2.24·se in the same row); with ``precision=bf16``, 8.096881 vs 8.087122 (0.12 % = 5.63·se); CoT
  quick bf16 seeds 0–2 ≤ 2.40·se; every other committed run within 5·se. 0.5 % is three times the largest
  (0.04 nats at 8.1): a change of the code that moves NLL_test by more after one evaluation interval fails.
  Step-0 metrics without a standard error: NLL_test of a text suite differed by ≤ 1.1e-8 relative, BLEU-2..5
  not at all, Self-BLEU / RS-BLEU by ≤ 2.0e-2 (coco, mle, 200 samples, 4 seeds): hence 1e-6 and 0.05.

Replays are independent: ``--jobs N`` runs N at once, each in a spawned process with its run's recorded
thread count (:func:`replay_checks`), which changes the wall time of the check and nothing else.
``--replay-budget MINUTES`` bounds the replays' wall time however many runs are committed: no replay starts
after that many minutes, and the runs not reached get a *missing* check "not replayed" (never a pass), counted
in the report's notes. Replays start in :func:`replay_order` — each setting's lowest seed before any second
seed, paper-profile settings first, longest first within each — so a budget leaves out extra seeds first.

Incomplete runs are listed in the notes and not checked. The exit status of ``textbench regress`` is 1 if
any check fails (and, with ``--fail-on-missing``, if any is missing).
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import TextbenchError
from ..metrics import catalogue
from . import published as pub
from .leaderboard import (
    DEFAULT_RUNS,
    Run,
    aggregate,
    fmt_num,
    group_value,
    is_timing_column,
    load_runs,
    progress_line,
    same_setting_as_published,
    series_at,
    stats_frame,
    text_table,
)

ReplayFn = Callable[[Path, int], pd.DataFrame]

PASS, FAIL, MISSING, EXPLAINED = "pass", "fail", "missing", "explained"
#: relative tolerance when comparing summary.json with metrics.csv (both are written from the same floats)
SUMMARY_RTOL = 1e-9
#: relative tolerance of the replay comparison: 0 = exact
REPLAY_RTOL = 0.0
#: replay modes: auto = exact on the recording machine's kernels, tolerance elsewhere
REPLAY_MODES = ("auto", "exact", "tolerance")
#: tolerance mode: |committed − replayed| ≤ k·sqrt(se_c² + se_r²) (measured, see the module docstring)
REPLAY_K = 5.0
#: tolerance mode, after step 0: a relative margin added to k·se for metrics scored on the fixed test set. Their
#: standard error is the test set's, the same on both sides, and does not bound how far two CPUs' training
#: trajectories have separated (measured, see the module docstring)
TRAJECTORY_RTOL = {"nll_test": 5e-3}
#: tolerance mode, step-0 row, metrics without a standard error: relative tolerance (measured, see the module
#: docstring); the untrained model is the same on every CPU up to float rounding
STEP0_RTOL = 1e-6
#: the same for metrics of the generated samples (BLEU, Self-BLEU, RS-BLEU: no standard error recorded), which
#: another CPU's sampling changes a little even at step 0
STEP0_SAMPLE_RTOL = 5e-2
SAMPLE_METRIC_PREFIXES = ("bleu-", "self-bleu-", "rs-bleu-")
#: tolerance mode: float64 noise allowed on top of k·se, relative to the value (for se ≈ 0, e.g. JSD = ln 2)
FLOAT_RTOL = 1e-9


@dataclass
class Check:
    kind: str  # published | claim | integrity | replay
    check: str
    published: str
    ours: str
    tolerance: str
    status: str  # pass | fail | explained (a failure with evidence, published.EXPLAINED_CSV) | missing
    note: str = ""


@dataclass
class RegressReport:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: str = "paper"
    runs_dir: str = ""

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in (PASS, FAIL, EXPLAINED, MISSING)}

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
        out.append(f"{n[PASS]} pass, {n[FAIL]} fail, " + (f"{n[EXPLAINED]} explained, " if n[EXPLAINED] else "")
                   + f"{n[MISSING]} missing")
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


def _groups(agg: pd.DataFrame) -> dict[tuple[str, str], list[pd.Series]]:
    """Aggregate rows (one per signature) by (suite, algo), in the aggregate's order."""
    out: dict[tuple[str, str], list[pd.Series]] = {}
    for _, r in agg.iterrows():
        out.setdefault((r["suite"], r["algo"]), []).append(r)
    return out


def _tag(g: pd.Series) -> str:
    """What tells one signature's checks from another's: its key first (labels are cut in the terminal)."""
    return f" [signature {g['signature']}: {g['setting'] or 'default setting'}]"


def _labels(groups: Sequence[pd.Series]) -> str:
    return "; ".join(str(g["label"]) for g in groups)


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
    paper = st[st["profile"] == "paper"] if not st.empty else st
    groups = _groups(aggregate(paper))
    seen = {k[:2] for k in complete | started}
    checks = []
    for row in pubdf.itertuples(index=False):
        step = None if pd.isna(row.step) else int(row.step)
        label = f"{row.suite}/{row.algo} {row.metric} {row.stat}" + (f"@{step}" if step is not None else "")
        label += f" [{_short_source(row.source)}]"
        tol = f"±{row.tolerance:g}"
        key = (row.suite, row.algo)
        c = Check("published", label, str(row.printed), "—", tol, MISSING)
        if key not in seen:
            c.note = "no runs"
        elif (row.suite, row.algo, "paper") not in complete:
            others = sorted({k[2] for k in complete if k[:2] == key})
            if others:
                c.note = f"paper-scale run absent (complete runs of profile {', '.join(others)} only)"
            else:
                c.note = "paper-scale run absent (no complete run)"
        else:
            all_groups = groups.get(key, [])
            same = [g for g in all_groups if same_setting_as_published(g)]
            if not same:
                c.note = (f"paper-scale runs in another setting than the published numbers' ({_labels(all_groups)}); "
                          f"those are on the {pub.PUBLISHED_ORACLE!r} oracle with no --set overrides")
                checks.append(c)
                continue
            # one check per signature in the paper's setting: runs whose data differ are never averaged
            for g in same:
                gc = Check("published", label, str(row.printed), "—", tol, MISSING)
                if len(same) > 1:
                    gc.check += f" · signature {g['signature']}"
                checks.append(_compare_published_group(gc, row, step, g, runs, len(same)))
            continue
        checks.append(c)
    return checks


def _compare_published_group(c: Check, row, step: int | None, g: pd.Series, runs: Sequence[Run], n_same: int) -> Check:
    """Fill ``c`` (one published value) from one signature group ``g`` of paper-profile runs."""
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
        if c.status == FAIL:
            explained, note = pub.explain(row.suite, row.algo, row.metric, row.stat if step is None else f"{row.stat}@{step}", n)
            c.status, c.note = (EXPLAINED if explained else FAIL), c.note + note
    if n_same > 1:
        c.note += (f"; {n_same} signatures in the paper's setting (their data differ): this one is "
                   f"{g['label']}, seeds {g['seeds']}")
    return c


# ------------------------------------------------------------------------------------------------
# Qualitative claims
# ------------------------------------------------------------------------------------------------


def evaluate_claims(runs: Sequence[Run], profile: str = "paper", suite: str | None = None,
                    claims: pd.DataFrame | None = None) -> list[Check]:
    """Claims meaningful for ``profile`` on the seed-means of that profile's complete runs, per signature.

    Seed-means are taken within one signature (:func:`textbench.reports.leaderboard.run_signature`), never
    across. A claim about one algorithm (its final value below its initial one, JSD ≤ ln 2) is checked for
    each of its signatures; a claim comparing two algorithms (the paper's orderings) pairs signatures in the
    paper's setting run on the same data (same data signature), one check per such pair.
    """
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
    groups = _groups(agg)

    def value(g: pd.Series | None, metric: str, stat: str) -> tuple[float | None, int]:
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
        rhs_const = c.rhs_value is not None and not (isinstance(c.rhs_value, float) and math.isnan(c.rhs_value))
        # (suite, lhs algo, rhs algo, lhs group, rhs group, tag appended to the label, why missing)
        cases: list[tuple[str, str, str, pd.Series | None, pd.Series | None, str, str]] = []
        for s in ss:
            if c.lhs_algo == "*":
                algos = [a for (gs, a), gl in groups.items()
                         if gs == s and any(value(g, c.lhs_metric, c.lhs_stat)[0] is not None for g in gl)]
            else:
                algos = [c.lhs_algo]
            for algo in algos:
                rhs_algo = algo if c.rhs_algo == "=" else c.rhs_algo
                lgs = groups.get((s, algo), [])
                if c.lhs_algo == "*":
                    lgs = [g for g in lgs if value(g, c.lhs_metric, c.lhs_stat)[0] is not None]
                if rhs_const or rhs_algo == algo:  # one algorithm: each of its signatures on its own
                    for g in lgs:
                        tag = "" if (same_setting_as_published(g) and len(lgs) == 1) else _tag(g)
                        cases.append((s, algo, rhs_algo, g, None if rhs_const else g, tag, ""))
                    if not lgs:
                        cases.append((s, algo, rhs_algo, None, None, "", ""))
                    continue
                # two algorithms: the paper's setting, same data
                rgs = groups.get((s, rhs_algo), [])
                lp = [g for g in lgs if same_setting_as_published(g)]
                rp = [g for g in rgs if same_setting_as_published(g)]
                pairs = [(gl, gr) for gl in lp for gr in rp if gl["data_signature"] == gr["data_signature"]]
                for gl, gr in pairs:
                    tag = "" if len(pairs) == 1 else f" [data {gl['data_signature']}]"
                    cases.append((s, algo, rhs_algo, gl, gr, tag, ""))
                if pairs:
                    continue
                why = ""
                if lp and rp:
                    why = f"{algo} and {rhs_algo} runs are on different data (suite signatures differ)"
                else:
                    off = (list(lgs) if not lp else []) + (list(rgs) if not rp else [])
                    if off:
                        why = f"runs not in the paper's setting are not compared: {_labels(off)}"
                cases.append((s, algo, rhs_algo, lp[0] if len(lp) == 1 else None, rp[0] if len(rp) == 1 else None,
                              "", why))
        if not cases:
            cases.append((c.suite, c.lhs_algo, c.rhs_algo, None, None, "", ""))
        for s, algo, rhs_algo, lg, rg, tag, why in cases:
            if rhs_const:
                rhs_txt = f"{c.rhs_value:.6g}"
                label = f"{s}/{algo}: {c.lhs_metric} {c.lhs_stat} {c.op} {rhs_txt}"
            elif rhs_algo == algo:
                label = f"{s}/{algo}: {c.lhs_metric} {c.lhs_stat} {c.op} {c.rhs_metric} {c.rhs_stat}"
            elif (c.lhs_metric, c.lhs_stat) == (c.rhs_metric, c.rhs_stat):
                label = f"{s}: {algo} {c.op} {rhs_algo}, {c.lhs_metric} {c.lhs_stat}"
            else:
                label = f"{s}: {algo} {c.lhs_metric} {c.lhs_stat} {c.op} {rhs_algo} {c.rhs_metric} {c.rhs_stat}"
            label += tag
            published = "—"
            if lg is None or same_setting_as_published(lg):
                lp_ = pub.lookup(s, algo, c.lhs_metric, c.lhs_stat)
                rp_ = None if rhs_const else pub.lookup(s, rhs_algo, c.rhs_metric, c.rhs_stat)
                if lp_ is not None and (rhs_const or rp_ is not None):
                    published = f"{lp_['printed']} {c.op} {rhs_txt if rhs_const else rp_['printed']}"
            lv, ln = value(lg, c.lhs_metric, c.lhs_stat)
            if rhs_const:
                rv, rn = float(c.rhs_value), None
            else:
                rv, rn = value(rg, c.rhs_metric, c.rhs_stat)
            d = _digits(c.lhs_metric)
            ours = f"{fmt_num(lv, d)} {c.op} {fmt_num(rv, d) if not rhs_const else rhs_txt}"
            chk = Check("claim", label, published, ours, "—", MISSING)
            if why:
                chk.note = f"[{c.id}] {why}"
            elif lv is None or rv is None:
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
            elif c.rhs_stat == "initial" and _starts_pretrained(lg, runs):
                chk.note = (f"[{c.id}] not applicable: step 0 of these runs is the generator they took from another "
                            "run (init_from), not an untrained one")
            else:
                chk.status = PASS if pub.OPS[c.op](lv, rv) else FAIL
                chk.note = f"[{c.id}] n={ln}" + (f" vs {rn}" if rn is not None else "") + f"; {c.description}"
            checks.append(chk)
    return checks


def _starts_pretrained(group: pd.Series | None, runs: Sequence[Run]) -> bool:
    """Whether the runs of a signature group began from another run's generator (``init_from``)."""
    if group is None:
        return False
    dirs = {str(d) for d in group["run_dirs"]}
    return any(str(r.path) in dirs and r.settings.get("init_from") for r in runs)


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
            d = {"lower": "min", "higher": "max", None: None}[catalogue.direction(m)]
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


def _align(committed: pd.DataFrame, replayed: pd.DataFrame, max_evals: int):
    """(problems, committed rows, replayed rows, columns) for the rows both have, or (problems, None, None,
    None) when the replay cannot be compared at all. Columns: ``step`` and the union of the non-timing
    columns (a column absent on one side counts as empty there)."""
    if not isinstance(replayed, pd.DataFrame):
        return [f"replay returned {type(replayed).__name__}, not a DataFrame"], None, None, None
    if "step" not in replayed.columns:
        return ["replayed rows have no 'step' column"], None, None, None
    if replayed.empty:
        return ["replay returned no rows"], None, None, None
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
    return probs, com, rep, cols


def _floats(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)


def _where(com: pd.DataFrame, col: str, i: int) -> str:
    return f"row {i + 1}" if col == "step" else f"step {int(com['step'].iloc[i])}"


def compare_replay(committed: pd.DataFrame, replayed: pd.DataFrame, max_evals: int,
                   rtol: float = REPLAY_RTOL) -> list[str]:
    """Problems found comparing replayed metrics rows with the committed prefix (empty list: identical).

    The replay of K evaluation intervals gives the rows of steps 0, e, ..., K·e (K + 1 rows; ``max_evals``
    = 0 means the whole run). Cells are compared exactly (NaN = empty cell = NaN) over the union of the
    non-timing columns: a column absent on one side counts as empty there.
    """
    probs, com, rep, cols = _align(committed, replayed, max_evals)
    if com is None:
        return probs
    for col in cols:
        a, b = _floats(com, col), _floats(rep, col)
        same = (np.isnan(a) & np.isnan(b)) | (a == b)
        if rtol > 0:
            same |= np.isclose(a, b, rtol=rtol, atol=0.0)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            k = int((~same).sum())
            probs.append(f"{_where(com, col, i)}, {col}: committed {_cell(a[i])} != replayed {_cell(b[i])} "
                         f"({k} cell{'s' if k > 1 else ''} differ)")
    return probs


def compare_replay_tolerance(committed: pd.DataFrame, replayed: pd.DataFrame, max_evals: int,
                             k: float = REPLAY_K, step0_rtol: float = STEP0_RTOL,
                             step0_sample_rtol: float = STEP0_SAMPLE_RTOL,
                             traj_rtol: dict[str, float] = TRAJECTORY_RTOL) -> tuple[list[str], list[str]]:
    """(problems, notes) comparing replayed rows made on another machine with the committed prefix.

    See the module docstring: a metric ``m`` with a standard-error column ``m_se`` passes where
    ``|committed − replayed| ≤ k·sqrt(se_c² + se_r²)`` (plus :data:`FLOAT_RTOL` of the value, and after step 0
    ``traj_rtol[m]`` of the value for a metric of the fixed test set); a metric
    without one is compared in the step-0 row only, within ``step0_rtol`` of its value (``step0_sample_rtol``
    for the BLEU family, computed from the generated samples), and otherwise listed
    as not compared. ``step`` is compared exactly. A cell empty on one side only is always a problem.
    """
    probs, com, rep, cols = _align(committed, replayed, max_evals)
    if com is None:
        return probs, []
    notes: list[str] = []
    steps = _floats(com, "step")
    at0 = steps == 0
    se_cols = {c for c in cols if c.endswith("_se") and c[:-3] in cols}
    within_se: list[str] = []
    step0_rtol_cols: dict[float, list[str]] = {}
    not_compared: list[str] = []
    worst: tuple[float, str] = (-1.0, "")
    for col in cols:
        a, b = _floats(com, col), _floats(rep, col)
        one_empty = np.isnan(a) != np.isnan(b)
        if one_empty.any():
            i = int(np.flatnonzero(one_empty)[0])
            n = int(one_empty.sum())
            probs.append(f"{_where(com, col, i)}, {col}: committed {_cell(a[i])} != replayed {_cell(b[i])} "
                         f"(empty on one side only; {n} cell{'s' if n > 1 else ''})")
        both = ~np.isnan(a) & ~np.isnan(b)
        if col == "step":
            bad = both & (a != b)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                probs.append(f"row {i + 1}, step: committed {_cell(a[i])} != replayed {_cell(b[i])}")
            continue
        if col in se_cols:
            continue  # the scale of its metric's tolerance
        scale = np.full(len(a), np.nan)
        if col + "_se" in se_cols:
            scale = np.hypot(_floats(com, col + "_se"), _floats(rep, col + "_se"))
        by_se = both & np.isfinite(scale)
        by_rtol = both & ~by_se & at0
        unchecked = both & ~by_se & ~at0
        size = np.maximum(np.abs(a), np.abs(b))
        diff = np.abs(a - b)
        for i in np.flatnonzero(by_se):
            margin = traj_rtol.get(col, 0.0) * size[i] if steps[i] > 0 else 0.0
            tol = k * scale[i] + FLOAT_RTOL * size[i] + margin
            z = diff[i] / scale[i] if scale[i] > 0 else (0.0 if diff[i] <= FLOAT_RTOL * size[i] else math.inf)
            if z > worst[0]:
                worst = (z, f"{col} at step {int(steps[i])}")
            if not diff[i] <= tol:
                extra = f" + {traj_rtol[col]:g} of the value" if margin else ""
                probs.append(f"step {int(steps[i])}, {col}: committed {_cell(a[i])} vs replayed {_cell(b[i])}, "
                             f"|Δ| = {diff[i]:.3g} = {z:.3g}·se > {k:g}·se{extra} (se {scale[i]:.3g})")
        rtol = step0_sample_rtol if col.startswith(SAMPLE_METRIC_PREFIXES) else step0_rtol
        for i in np.flatnonzero(by_rtol):
            if not diff[i] <= rtol * size[i]:
                probs.append(f"step 0, {col}: committed {_cell(a[i])} vs replayed {_cell(b[i])}, relative "
                             f"|Δ| = {diff[i] / size[i]:.3g} > {rtol:g} (untrained model, no standard error)")
        if by_se.any():
            within_se.append(col)
        if by_rtol.any():
            step0_rtol_cols.setdefault(rtol, []).append(col)
        if unchecked.any():
            not_compared.append(col)
    if within_se:
        notes.append(f"within {k:g}·se: {', '.join(within_se)}"
                     + (f" (largest |Δ|/se {worst[0]:.2f}, {worst[1]})" if worst[0] >= 0 else ""))
    for rtol, names in sorted(step0_rtol_cols.items()):
        notes.append(f"step 0 within relative {rtol:g}: {', '.join(names)}")
    if not_compared:
        notes.append("not compared across CPUs (no Monte-Carlo error recorded): " + ", ".join(not_compared)
                     + " (empty cells still must match)")
    return probs, notes


def _cell(x: float) -> str:
    return "empty" if math.isnan(x) else repr(float(x))


def default_replay() -> ReplayFn:
    """The engine's replay (imported lazily: the engine may not be installed / written yet)."""
    from ..engine.replay import replay_run  # noqa: PLC0415

    return replay_run


def _machine_text(m: dict) -> str:
    threads = m.get("threads")
    return (f"{m.get('cpu_capability') or 'unknown CPU capability'}, torch {m.get('torch') or '?'}"
            + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""))


def choose_replay_mode(recorded: dict, machine: dict, requested: str = "auto") -> tuple[str, str]:
    """(mode, why): ``exact`` when the machine that recorded the replayed steps matches this one (CPU
    capability and torch version; the replay uses the recorded thread count), ``tolerance`` otherwise or
    when the recording machine is unknown. ``requested`` = exact / tolerance forces the mode."""
    if requested not in REPLAY_MODES:
        raise TextbenchError(f"unknown replay mode {requested!r}; use {', '.join(REPLAY_MODES)}")
    here = f"this machine {machine.get('cpu_capability') or 'unknown'}, torch {machine.get('torch') or '?'}"
    rec = f"recorded on {_machine_text(recorded)}"
    if requested != "auto":
        return requested, f"--replay-mode {requested}; {rec}; {here}"
    if recorded.get("mixed"):
        return "tolerance", str(recorded["mixed"])
    if not recorded.get("cpu_capability"):
        return "tolerance", "recording CPU capability unknown (config.json without versions.cpu_capability)"
    if str(recorded["cpu_capability"]) != str(machine.get("cpu_capability")):
        return "tolerance", f"{rec}; {here}"
    if str(recorded.get("torch")) != str(machine.get("torch")):
        return "tolerance", f"{rec}; {here}"
    if not recorded.get("threads"):
        return "tolerance", f"{rec}: thread count not recorded"
    return "exact", f"{rec} = {here}"


def _replay_context(run: Run, max_evals: int) -> tuple[dict, dict]:
    """(recorded machine, this machine) from the engine's helpers; unknown ({}) where they fail."""
    try:
        from ..engine.replay import recorded_machine, replay_last_step, this_machine  # noqa: PLC0415
    except ImportError:
        return {}, {}
    cfg = run.config or {}
    try:
        last = replay_last_step(cfg, max_evals)
    except (KeyError, TypeError, ValueError):
        last = 2**62  # settings unreadable: every recorded segment counts
    try:
        rec = recorded_machine(cfg, last)
    except (TypeError, ValueError, AttributeError):
        rec = {}
    return rec, this_machine()


def _replayed_part(max_evals: int) -> str:
    """What a replay of ``max_evals`` covers, as the check's name says it."""
    return "all evaluations" if max_evals <= 0 else f"first {max_evals} evaluation{'s' if max_evals != 1 else ''}"


def check_replay(run: Run, max_evals: int, replay: ReplayFn | None = None, mode: str = "auto",
                 machine: dict | None = None) -> Check:
    """Replay ``run``'s first ``max_evals`` evaluations and compare, exactly or within Monte-Carlo error.

    ``mode``: auto (exact when this machine matches the recording one, see :func:`choose_replay_mode`),
    exact or tolerance. ``machine`` (tests): this machine's ``cpu_capability`` and ``torch`` (default: the
    engine's :func:`textbench.engine.replay.this_machine`).
    """
    what = _replayed_part(max_evals)
    recorded, here = _replay_context(run, max_evals)
    chosen, why = choose_replay_mode(recorded, machine if machine is not None else here, mode)
    tol = "exact" if chosen == "exact" else f"tolerance ≤ {REPLAY_K:g}·se"
    c = Check("replay", f"{run.name} {what}", "committed rows", "—", tol, MISSING)
    head = f"mode {chosen} ({why})"
    if replay is None:
        try:
            replay = default_replay()
        except ImportError as e:
            c.note = f"replay unavailable (textbench.engine.replay: {e}); {head}"
            return c
    # 0 = the whole run: ask for as many intervals as there are committed evaluations (the replay stops at
    # the run's own number of steps)
    k = int(max_evals) if max_evals > 0 else max(1, len(run.metrics))
    try:
        got = replay(Path(run.path), k)
    except Exception as e:  # the replay crashing is a failure to reproduce, reported, not raised
        c.status, c.ours = FAIL, "replay error"
        c.note = f"{type(e).__name__}: {e}".replace("\n", " ") + f"; {head}"
        return c
    if chosen == "exact":
        probs, notes = compare_replay(run.metrics, got, max_evals), []
        good = f"{len(got)} rows identical"
    else:
        probs, notes = compare_replay_tolerance(run.metrics, got, max_evals)
        good = f"{len(got)} rows within tolerance"
    if probs:
        c.status, c.ours = FAIL, "differs"
        c.note = "; ".join([head] + probs + notes)
    else:
        c.status, c.ours = PASS, good
        c.note = "; ".join([head] + notes)
    return c


#: how much longer a ``precision=bf16`` run's replay takes on a CPU without bf16 instructions than its committed
#: wall time (made on AVX512-BF16): measured on an AVX2-only EPYC (2026-12-02, first evaluation, one thread),
#: CoT quick bf16 25.9 s -> 297 s (11.5x) and CoT paper bf16 52.3 s -> 338 s (6.5x); their geometric mean.
BF16_EMULATED_SLOWDOWN = 8.6


@functools.lru_cache(maxsize=1)
def _native_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AVX512-BF16 or AMX); False where torch cannot say."""
    try:
        import torch  # noqa: PLC0415 - the reports need torch only here

        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:  # a torch without these probes
        return False


def _replay_cost(run: Run, max_evals: int, native_bf16: bool | None = None) -> float:
    """The committed wall time up to the last evaluation a replay of ``max_evals`` reaches (0 = all): how
    long that replay took when the run was made, for ordering the replays longest first; a bf16 run's
    times :data:`BF16_EMULATED_SLOWDOWN` where this CPU (``native_bf16``, default: :func:`_native_bf16`) has
    no bf16 instructions."""
    m = run.metrics
    if m is None or m.empty or "wall_s" not in m:
        return 0.0
    wall = pd.to_numeric(m["wall_s"], errors="coerce").to_numpy()
    i = len(wall) - 1 if max_evals <= 0 else min(int(max_evals), len(wall) - 1)
    cost = float(wall[i]) if math.isfinite(wall[i]) else 0.0
    if run.settings.get("precision") == "bf16" and not (_native_bf16() if native_bf16 is None else native_bf16):
        cost *= BF16_EMULATED_SLOWDOWN
    return cost


def _timed_check_replay(run: Run, max_evals: int, replay: ReplayFn | None, mode: str,
                        machine: dict | None) -> tuple[Check, float]:
    """(:func:`check_replay`, its wall seconds): module level, for the worker processes."""
    t = time.perf_counter()
    check = check_replay(run, max_evals, replay, mode, machine)
    return check, time.perf_counter() - t


def replay_order(runs: Sequence[Run], max_evals: int) -> list[int]:
    """The order in which replays start (indices into ``runs``): each setting's lowest seed before any second
    seed (one run per :attr:`Run.signature`), among those the ``paper`` profile first; within each of these
    tiers the longest replay first (:func:`_replay_cost`), so that the last replays to finish are short ones.
    Under a replay budget the runs left out are therefore the extra seeds of the cheapest settings."""
    def key(r: Run) -> str:
        try:
            return r.signature.key
        except Exception:  # an unreadable config: a group of its own (check_replay reports the problem)
            return f"path:{r.path}"

    keys = [key(r) for r in runs]
    first: dict[str, int] = {}  # group -> index of its lowest seed (an unknown seed after every known one)
    for i in sorted(range(len(runs)), key=lambda i: (runs[i].seed is None, runs[i].seed or 0, i)):
        first.setdefault(keys[i], i)

    def tier(i: int) -> int:
        if first[keys[i]] != i:
            return 2
        return 0 if runs[i].profile == "paper" else 1

    return sorted(range(len(runs)), key=lambda i: (tier(i), -_replay_cost(runs[i], max_evals), i))


def _not_replayed(run: Run, max_evals: int, budget_s: float) -> Check:
    """The check of a run whose replay did not start because the replay budget was spent (missing, not failed)."""
    return Check("replay", f"{run.name} {_replayed_part(max_evals)}", "committed rows", "not replayed", "—", MISSING,
                 f"the replay budget of {budget_s / 60:g} min was spent before its turn (order: each setting's first "
                 "seed, paper profile first, then the longest first); replay it with `textbench regress --suite "
                 f"{run.suite}` and no --replay-budget")


def replay_checks(runs: Sequence[Run], max_evals: int, replay: ReplayFn | None = None, mode: str = "auto",
                  machine: dict | None = None, jobs: int = 1,
                  on_done: Callable[[Run, Check, float], None] | None = None,
                  budget_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> list[Check]:
    """:func:`check_replay` of each run, returned in the order of ``runs``; replays start in
    :func:`replay_order`. ``on_done(run, check, seconds)`` is called as each finishes (the CLI prints it: where a
    CI's replay time goes).

    ``jobs`` > 1: that many worker processes (spawned: a fresh interpreter each, so no thread pool or lock is
    inherited from this one), each replaying one run at a time with the run's recorded thread count. A replay
    is a deterministic function of the run's config, data and this machine's kernels; the number of processes
    beside it changes its wall time only, never its numbers. ``replay`` must then be picklable (a module-level
    function). A worker that dies (killed, out of memory) fails its run's check.

    ``budget_s``: no replay starts once this many seconds (``clock``) have passed since the first started;
    the runs not started get a *missing* check saying so (never a pass). Replays already running finish, so
    the wall time is at most the budget plus the longest single replay. ``None``: every run is replayed."""
    if jobs < 1:
        raise TextbenchError(f"--jobs must be >= 1, not {jobs}")
    if budget_s is not None and not budget_s > 0:
        raise TextbenchError(f"--replay-budget must be > 0 minutes, not {budget_s / 60:g}")
    done = on_done or (lambda _run, _check, _s: None)
    order = replay_order(runs, max_evals)
    t0 = clock()

    def spent() -> bool:
        return budget_s is not None and clock() - t0 >= budget_s

    got: dict[int, Check] = {}
    if jobs == 1 or len(runs) < 2:
        for i in order:
            if spent():
                got[i] = _not_replayed(runs[i], max_evals, budget_s)
                done(runs[i], got[i], 0.0)
                continue
            got[i], seconds = _timed_check_replay(runs[i], max_evals, replay, mode, machine)
            done(runs[i], got[i], seconds)
        return [got[i] for i in range(len(runs))]
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait  # noqa: PLC0415

    if replay is None:  # resolved here, so that the workers replay with what this process would use
        try:
            replay = default_replay()
        except ImportError:
            pass  # check_replay reports it as missing
    waiting = list(order)
    with ProcessPoolExecutor(max_workers=min(jobs, len(runs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        running: dict = {}

        def fill() -> None:  # one replay per free worker, while the budget lasts
            while waiting and len(running) < jobs and not spent():
                i = waiting.pop(0)
                running[pool.submit(_timed_check_replay, runs[i], max_evals, replay, mode, machine)] = i

        fill()
        while running:
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                try:
                    got[i], seconds = fut.result()
                except Exception as e:  # the worker itself failed (check_replay reports a crashing replay itself)
                    got[i] = Check("replay", f"{runs[i].name} {_replayed_part(max_evals)}", "committed rows",
                                   "replay worker error", "—", FAIL, f"{type(e).__name__}: {e}".replace("\n", " "))
                    seconds = math.nan
                done(runs[i], got[i], seconds)
            fill()
    for i in waiting:  # the budget was spent before their turn
        got[i] = _not_replayed(runs[i], max_evals, budget_s)
        done(runs[i], got[i], 0.0)
    return [got[i] for i in range(len(runs))]


# ------------------------------------------------------------------------------------------------
# Everything
# ------------------------------------------------------------------------------------------------


def regress(runs_dir: str | os.PathLike = DEFAULT_RUNS, *, profile: str = "paper", suite: str | None = None,
            replay_evals: int = 2, do_replay: bool = True, replay: ReplayFn | None = None,
            runs: Sequence[Run] | None = None, replay_mode: str = "auto",
            machine: dict | None = None, jobs: int = 1,
            on_replayed: Callable[[Run, Check, float], None] | None = None,
            replay_budget_min: float | None = None) -> RegressReport:
    """Run every check; see the module docstring. ``replay`` defaults to the engine's ``replay_run``;
    ``replay_mode``: auto / exact / tolerance; ``machine`` (tests): see :func:`check_replay`; ``jobs``:
    replays run at once, ``on_replayed``: called as each finishes, ``replay_budget_min``: no replay starts after
    this many minutes (:func:`replay_checks`)."""
    if replay_evals < 0:
        raise TextbenchError(f"--replay-evals must be >= 0 (0 = all evaluations), not {replay_evals}")
    if replay_mode not in REPLAY_MODES:
        raise TextbenchError(f"unknown --replay-mode {replay_mode!r}; use {', '.join(REPLAY_MODES)}")
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
            rep.notes.append(f"in progress, not a result (not checked): {r.name}: {progress_line(r)}")
            continue
        rep.checks.append(check_integrity(r))
    if do_replay:
        rep.checks += replay_checks([r for r in runs if r.complete], replay_evals, replay, replay_mode, machine, jobs,
                                    on_replayed, budget_s=None if replay_budget_min is None else 60.0 * replay_budget_min)
        if replay_budget_min is not None:
            skipped = sum(c.kind == "replay" and c.ours == "not replayed" for c in rep.checks)
            if skipped:
                rep.notes.append(f"--replay-budget {replay_budget_min:g} min: {skipped} complete run(s) not replayed "
                                 "(listed as missing); each setting's first seed is replayed before any second seed")
    else:
        rep.notes.append("replay skipped (--no-replay)")
    if not runs:
        rep.notes.append(f"no runs found under {runs_dir}")
    return rep
