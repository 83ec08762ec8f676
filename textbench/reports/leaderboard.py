"""Leaderboard: scan run directories, aggregate over seeds with pandas, lay the results out like the paper.

A run lives in ``<runs>/<suite>/<algo>/<profile>-seed<N>/`` with ``config.json``, ``metrics.csv`` and
``summary.json``, read by :meth:`textbench.engine.rundir.RunDir.inspect`. Only *complete* runs
(``summary.json`` says ``"complete": true`` and the files are readable and consistent with their directory)
are counted; the others are listed separately.

Per run: the final and best value of every metric (from ``summary.json``, falling back to ``metrics.csv``),
its value at step 0 (``initial``), the pair (NLL_oracle, NLL_test) at the evaluation that minimises their sum
(``best_sum``, the paper's "best NLL_oracle + NLL_test"), wall time and steps.

Runs are averaged over seeds only when they share a *signature* (:func:`run_signature`): everything that
changes the numbers except the seed — the suite, its ``suite_signature`` from config.json (data, oracle and
their fingerprints; only the descriptive ``units`` key is left out), the oracle setting, the algorithm, the
profile and the ``--set`` overrides. Two runs that differ in any of these are two rows, each labelled
(e.g. ``cot (paper) · oracle seeded``, ``mle (quick) · set g_lr=0.02``). Per signature: mean, sample std
(ddof = 1; empty for one run) and n over seeds. Only a row in the paper's setting (no overrides; SeqGAN
oracle for the synthetic suites) stands beside the published numbers (:func:`same_setting_as_published`).

Tables (``results/leaderboard/<table>.csv`` and ``.md``):

- ``table1``: synthetic suites — NLL_oracle, NLL_test final/best, best NLL_oracle + NLL_test, exact JSD
  (CoT paper Table 1 layout);
- ``table2``: text suites — BLEU-2..5 (Table 2);
- ``table3``: text suites — RS-BLEU-2..5 and NLL_test (Table 3);
- ``runs``: every run found, with its status (complete / incomplete / error).

Each cell stands beside the published value (``textbench.reports.published``) and, for ``paper``-profile
rows, the difference ours − paper.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from ..engine.rundir import RUN_NAME_RE, RunContents, RunDir, is_timing_column
from ..errors import TextbenchError
from ..io import atomic_write_text
from ..metrics import catalogue
from . import published as pub

DEFAULT_RUNS = Path("results/runs")
DEFAULT_OUT = Path("results/leaderboard")
#: complete runs held back from the tables until their failed published comparison is explained (issue 11)
HELD_BACK = Path("results/pending")

ID_COLS = ["suite", "algo", "profile", "seed", "run_dir", "oracle", "signature", "data_signature", "setting",
           "published_setting"]
PROFILE_ORDER = ["paper", "quick"]


def metric_columns(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c != "step" and not is_timing_column(c)]


# ------------------------------------------------------------------------------------------------
# Signature: which runs may be averaged together
# ------------------------------------------------------------------------------------------------

#: keys of config.json's ``suite_signature`` that describe rather than determine the numbers
SIGNATURE_DESCRIPTIVE_KEYS = frozenset({"units"})
#: overrides the paper's setting needs on a suite: EMNLP's training split is not distributed and must be
#: supplied with ``--set text_train_path=...`` (its content is identified by the suite signature)
PUBLISHED_SETTING_OVERRIDES: dict[str, frozenset[str]] = {"emnlp": frozenset({"text_train_path"})}


@dataclass(frozen=True)
class Signature:
    """What makes two runs' numbers comparable (everything but the seed); see :func:`run_signature`."""

    key: str  # 8 hex digits of the SHA-256 of the canonical JSON of the fields below
    data_key: str  # the same of the data part only (suite, suite signature, oracle): pairs algorithms in claims
    algo: str
    profile: str
    setting: str  # human label of what differs from the default setting ("" = none), e.g. "oracle seeded"
    published_setting: bool  # the paper's setting: comparable with the published numbers (profile aside)
    fields: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        return f"{self.algo} ({self.profile})" + (f" · {self.setting}" if self.setting else "")


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(_canonical_json(obj).encode("utf-8")).hexdigest()[:8]


def _setting_value(v: Any) -> str:
    return v if isinstance(v, str) else _canonical_json(v)


#: overrides that only say "the pre-training phases come from another run" (``init_from``, and ``steps``
#: shortened by the phases it covers): see :func:`pretrained_from`
PRETRAINING_OVERRIDES = frozenset({"init_from", "steps"})


def pretrained_from(run_path: Path | None, config: dict) -> dict | None:
    """The source of ``init_from`` when it stands for the paper's own pre-training, else None.

    The adversarial algorithms pre-train G by MLE for ``pretrain_steps`` epochs (SeqGAN's 120, Texygen's 80)
    and MLE consumes no randomness of the training generator, so a run that takes G from a *complete*
    ``mle`` run in MLE's paper setting on the same suite (only its length, ``steps``, may be set: exactly the
    algorithm's ``pretrain_steps`` epochs of ⌊N/B⌋ minibatches, :func:`training_sequences`; on COCO MLE's paper
    profile is Texygen's 80 epochs, the GANs' pre-training there), with the same seed and suite signature, and
    runs the rest of its own paper schedule (``steps`` = paper steps − ``pretrain_steps``) follows the paper's
    procedure exactly (protocol Part I: shared pre-training). The overrides a suite's paper setting needs
    (``PUBLISHED_SETTING_OVERRIDES``: EMNLP's training file) are allowed on both runs. Returns the source's
    identity ``{"algo", "profile", "seed", "run", "epochs"}``; the source directory is looked up as written in ``init_from``,
    relative to the folder holding ``run_path``'s ``results/`` (the repository), else to the working directory.
    """
    settings = config.get("settings") if isinstance(config.get("settings"), dict) else {}
    src = settings.get("init_from")
    if not src or run_path is None:
        return None
    candidates = []
    parts = Path(run_path).resolve().parts
    if "results" in parts:  # the repository (or folder) that holds this run's results/ first
        candidates.append(Path(*parts[: len(parts) - parts[::-1].index("results") - 1]) / src)
    candidates.append(Path(src))
    src = next((rd for rd in map(RunDir, candidates) if rd.config_path.is_file()), None)
    if src is None or src.status() != "complete":
        return None
    try:
        src_cfg = src.read_config()
    except TextbenchError:
        return None
    src_settings = src_cfg.get("settings") if isinstance(src_cfg.get("settings"), dict) else {}
    # the paper's setting may need some overrides on a suite (EMNLP's training file); the suite signatures, equal
    # here, say both runs trained on the same data
    allowed = PUBLISHED_SETTING_OVERRIDES.get(pub.canonical_suite(str(config.get("suite"))), frozenset())
    ok = (src_cfg.get("algo") == "mle" and set(src_cfg.get("overrides") or {}) <= {"steps"} | allowed
          and src_cfg.get("seed") == config.get("seed") and src_cfg.get("suite_signature") == config.get("suite_signature"))
    try:
        from ..engine.loop import resolve_settings  # the paper schedules, as the code defines them

        paper = resolve_settings(config["algo"], config["suite"], "paper")
        ok = ok and int(settings["steps"]) == int(paper["steps"]) - int(paper["pretrain_steps"])
        ok = ok and all(settings[k] == v for k, v in paper.items() if k in settings and k not in PRETRAINING_OVERRIDES | allowed)
        # the source is MLE's paper setting on the same suite, trained for exactly this algorithm's pre-training
        # length (COCO: Texygen's 80 epochs = MLE's paper profile there)
        mle_paper = resolve_settings("mle", config["suite"], "paper")
        ok = ok and all(src_settings[k] == v for k, v in mle_paper.items() if k in src_settings and k not in {"steps"} | allowed)
        epoch = int(paper.get("mle_batches") or 0) or training_sequences(paper, config) // int(paper["batch_size"])
        epochs = int(src_settings["steps"]) / epoch
        ok = ok and epochs == int(paper["pretrain_steps"])
    except (TextbenchError, KeyError, TypeError, ValueError):
        return None
    if not ok:
        return None
    return {"algo": "mle", "profile": src_cfg.get("profile"), "seed": src_cfg.get("seed"), "run": src.path.name, "epochs": int(epochs),
            "path": src.path}


def training_sequences(settings: dict, config: dict) -> int:
    """N, the run's training sequences (an MLE epoch is ⌊N/B⌋ minibatches): ``n_train`` on the synthetic suite;
    on a text suite the sequences it used, from config.json's ``suite_signature`` (``train.used``: COCO 10,000)."""
    if "n_train" in settings:
        return int(settings["n_train"])
    return int(config["suite_signature"]["train"]["used"])


def setting_changes(algo: str, suite: str, profile: str, settings: dict, overrides: dict,
                    set_keys: set[str] | None = None) -> tuple[dict, dict]:
    """What sets a run's setting apart from its profile as the code defines it now: (its ``--set`` values that
    differ from the profile's — one equal to it changes nothing —, the other settings whose recorded value
    differs: the run was made under an earlier definition of the profile). Settings the run predates are not
    compared (they did not exist: the run had their later default's behaviour or none)."""
    try:
        from ..engine.loop import resolve_settings

        current = resolve_settings(algo, suite, profile)
    except (TextbenchError, KeyError, TypeError, ValueError):
        return dict(overrides), {}
    changed = {k: v for k, v in overrides.items() if k not in current or _canonical_json(current[k]) != _canonical_json(v)}
    set_keys = set(overrides) if set_keys is None else set_keys  # every --set key, even ones that change nothing
    drift = {k: v for k, v in settings.items()
             if k not in set_keys and k in current and _canonical_json(current[k]) != _canonical_json(v)}
    return changed, drift


def pretraining_source(path: Path | None, config: dict) -> dict | None:
    """:func:`pretrained_from` for a run whose ``--set`` names its pre-training (``init_from``), else None."""
    overrides = config.get("overrides") if isinstance(config, dict) else None
    if not isinstance(overrides, dict) or not set(overrides) & PRETRAINING_OVERRIDES:
        return None
    return pretrained_from(path, config)


_FIND = object()  # run_signature: look the pre-training source up


def run_signature(suite: str, algo: str, profile: str, config: dict | None, path: Path | None = None,
                  source: dict | None | object = _FIND) -> Signature:
    """The signature of a run: the one definition of "same setting" for the leaderboard and regress.

    Hashed (canonical JSON: sorted keys, no spaces; SHA-256, first 8 hex digits): the canonical suite name
    (``oracle`` = ``synthetic``), config.json's ``suite_signature`` without its descriptive keys (``units``)
    and otherwise opaque (data files, token-array fingerprints, oracle), ``settings.oracle`` (the oracle is
    named there even in configs without a suite signature), the algorithm, the profile and what sets the run
    apart from that profile as the code defines it now (:func:`setting_changes`: ``--set`` values that differ
    from it, and settings recorded under an earlier definition of the profile). The seed is not part of it.
    ``source``: the run's :func:`pretraining_source`, when the caller already has it.
    """
    cfg = config if isinstance(config, dict) else {}
    canon = pub.canonical_suite(suite)
    ssig = cfg.get("suite_signature")
    ssig = {k: v for k, v in ssig.items() if k not in SIGNATURE_DESCRIPTIVE_KEYS} if isinstance(ssig, dict) else {}
    settings = cfg.get("settings") if isinstance(cfg.get("settings"), dict) else {}
    oracle = settings.get("oracle")
    if oracle is None and isinstance(ssig.get("oracle"), str):
        oracle = ssig["oracle"]
    overrides = cfg.get("overrides") if isinstance(cfg.get("overrides"), dict) else {}
    set_keys = set(overrides)
    if source is _FIND:
        source = pretraining_source(path, cfg)
    if source is not None:  # the paper's pre-training, taken from an MLE paper run: not a change of setting
        overrides = {k: v for k, v in overrides.items() if k not in PRETRAINING_OVERRIDES}
    overrides, drift = setting_changes(algo, suite, profile, settings, overrides, set_keys)
    drift.pop("oracle", None)  # a field of its own below
    fields = {"suite": canon, "suite_signature": ssig, "oracle": oracle, "algo": algo, "profile": profile,
              "overrides": {**overrides, **drift}}
    key = _short_hash(fields)
    data_key = _short_hash({k: fields[k] for k in ("suite", "suite_signature", "oracle")})
    parts = []
    other_oracle = canon == "synthetic" and oracle is not None and str(oracle) != pub.PUBLISHED_ORACLE
    if other_oracle:
        parts.append(f"oracle {oracle}")
    shown = {k: v for k, v in overrides.items() if k != "oracle" or not other_oracle}
    if shown:
        parts.append("set " + ", ".join(f"{k}={_setting_value(v)}" for k, v in sorted(shown.items())))
    if drift:
        parts.append(f"made under an earlier '{profile}' profile: " + ", ".join(f"{k}={_setting_value(v)}" for k, v in sorted(drift.items())))
    allowed = PUBLISHED_SETTING_OVERRIDES.get(canon, frozenset())
    published = not other_oracle and set(overrides) <= allowed and not drift
    if source is not None:
        parts.append(f"pre-trained by {source['algo']} {source['profile']}-seed{source['seed']} ({source['epochs']} epochs)")
    return Signature(key, data_key, algo, profile, " · ".join(parts), published, fields)


# ------------------------------------------------------------------------------------------------
# Loading runs
# ------------------------------------------------------------------------------------------------


class Run(RunContents):
    """A run as the reports see it: what its directory holds (:class:`RunContents`) and its signature."""

    @property
    def name(self) -> str:
        return f"{self.suite}/{self.algo}/{self.profile}-seed{self.seed}"

    @property
    def settings(self) -> dict:
        s = (self.config or {}).get("settings") or {}
        return s if isinstance(s, dict) else {}

    @property
    def canonical_suite(self) -> str:
        return pub.canonical_suite(self.suite)

    @property
    def steps_done(self) -> int | None:
        """Steps trained so far: summary.json's, or the last evaluation's step if that is later (or alone)."""
        steps = [x for x in (_finite((self.summary or {}).get("steps")), _last(self.metrics, "step")) if x is not None]
        return int(max(steps)) if steps else None

    @property
    def wall_s(self) -> float | None:
        """Training wall-clock seconds so far: summary.json's, else the last evaluation's ``wall_s``."""
        wall = _finite((self.summary or {}).get("wall_s"))
        return wall if wall is not None else _last(self.metrics, "wall_s")

    @functools.cached_property
    def pretraining(self) -> dict | None:
        """:func:`pretraining_source`: the MLE run that stands for this run's paper pre-training, or None."""
        return pretraining_source(self.path, self.config or {})

    def history(self) -> pd.DataFrame:
        """The evaluations of the whole training: for a run pre-trained by an MLE paper run
        (:attr:`pretraining`), that run's evaluations first, at steps shifted to end at 0 (its last
        evaluation is at step 0, like this run's first), then this run's; otherwise ``metrics``."""
        own = self.metrics if self.metrics is not None else pd.DataFrame({"step": []})
        src = self.pretraining
        if src is None:
            return own
        pre = load_run(Path(src["path"]))
        if not pre.complete or pre.metrics is None or pre.metrics.empty:
            return own
        pre_rows = pre.metrics.assign(step=pre.metrics["step"] - int(pre.metrics["step"].max()))
        return pd.concat([pre_rows, own], ignore_index=True)

    @functools.cached_property
    def signature(self) -> Signature:
        """:func:`run_signature`, computed once (it may read the ``init_from`` source run)."""
        return run_signature(self.suite, self.algo, self.profile, self.config, self.path, source=self.pretraining)

    def metric_names(self) -> list[str]:
        names = metric_columns(self.metrics.columns) if self.metrics is not None else []
        for part in ("final", "best"):
            for m in ((self.summary or {}).get(part) or {}):
                if m not in names and not is_timing_column(m):
                    names.append(m)
        return names


def load_run(path: Path) -> Run:
    """Read one run directory (:meth:`RunDir.inspect`); problems are recorded on the Run, never raised."""
    return Run(**vars(RunDir(path).inspect()))


def load_runs(runs_dir: str | os.PathLike = DEFAULT_RUNS, suite: str | None = None) -> list[Run]:
    """Every run directory ``<runs_dir>/<suite>/<algo>/<run>/`` (hidden names skipped), sorted."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise TextbenchError(f"runs directory {runs_dir} not found (run `textbench run ...` first or pass --runs)")
    runs = []
    for suite_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if suite is not None and suite_dir.name != suite and pub.canonical_suite(suite_dir.name) != pub.canonical_suite(suite):
            continue
        for algo_dir in sorted(p for p in suite_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            for run_dir in sorted(p for p in algo_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
                runs.append(load_run(run_dir))
    runs.sort(key=lambda r: (r.suite, pub.algo_sort_key(r.algo), _profile_key(r.profile), r.seed or 0))
    return runs


def _profile_key(p: str) -> tuple[int, str]:
    return (PROFILE_ORDER.index(p) if p in PROFILE_ORDER else len(PROFILE_ORDER), p)


# ------------------------------------------------------------------------------------------------
# Per-run statistics
# ------------------------------------------------------------------------------------------------


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _last(metrics: pd.DataFrame | None, column: str) -> float | None:
    """The last recorded value of a metrics.csv column, or None."""
    if metrics is None or column not in metrics.columns:
        return None
    s = metrics[column].dropna()
    return _finite(s.iloc[-1]) if len(s) else None


def series_final(metrics: pd.DataFrame, metric: str) -> float | None:
    if metric not in metrics.columns:
        return None
    s = metrics[metric].dropna()
    return float(s.iloc[-1]) if len(s) else None


def series_best(metrics: pd.DataFrame, metric: str) -> tuple[float | None, int | None]:
    """(best value, its step) by the metric's catalogue direction (the first on ties); (None, None) if it has none."""
    d = catalogue.direction(metric)
    if d is None or metric not in metrics.columns:
        return None, None
    s = metrics[["step", metric]].dropna().reset_index(drop=True)
    if s.empty:
        return None, None
    i = s[metric].idxmin() if d == "lower" else s[metric].idxmax()
    return float(s.at[i, metric]), int(s.at[i, "step"])


def series_at(metrics: pd.DataFrame, metric: str, step: int) -> float | None:
    if metric not in metrics.columns:
        return None
    row = metrics.loc[metrics["step"] == step, metric].dropna()
    return float(row.iloc[0]) if len(row) else None


def best_sum(metrics: pd.DataFrame) -> tuple[float, float, int] | None:
    """(NLL_oracle, NLL_test, step) at the evaluation minimising NLL_oracle + NLL_test (first on ties)."""
    if not {"nll_oracle", "nll_test"} <= set(metrics.columns):
        return None
    both = metrics[["step", "nll_oracle", "nll_test"]].dropna()
    if both.empty:
        return None
    i = (both["nll_oracle"] + both["nll_test"]).idxmin()
    return float(both.at[i, "nll_oracle"]), float(both.at[i, "nll_test"]), int(both.at[i, "step"])


def run_stats(run: Run) -> dict:
    """One flat row of numbers for a complete run; keys ``<metric>:<stat>`` for the metric statistics."""
    summ = run.summary or {}
    mdf = run.metrics if run.metrics is not None else pd.DataFrame({"step": []})
    sig = run.signature
    row: dict[str, Any] = {
        "suite": run.suite,
        "algo": run.algo,
        "profile": run.profile,
        "seed": run.seed,
        "run_dir": str(run.path),
        "oracle": run.settings.get("oracle"),
        "signature": sig.key,
        "data_signature": sig.data_key,
        "setting": sig.setting,
        "published_setting": sig.published_setting,
        "steps": _finite(summ.get("steps")),
        "wall_s": run.wall_s,
    }
    # "best" covers the whole training: with the pre-training of an MLE paper run (the paper's '–(MLE)'),
    # whose evaluations come at steps <= 0 (Run.history)
    history = run.history() if run.pretraining is not None else None
    for m in run.metric_names():
        final = _finite((summ.get("final") or {}).get(m))
        row[f"{m}:final"] = final if final is not None else series_final(mdf, m)
        best = _finite((summ.get("best") or {}).get(m))
        best_step = _finite((summ.get("best_step") or {}).get(m))
        if best is None or history is not None:
            best, best_step = series_best(mdf if history is None else history, m)
        row[f"{m}:best"] = best
        row[f"{m}:best_step"] = best_step
        row[f"{m}:initial"] = series_at(mdf, m, 0)
    bs = best_sum(mdf if history is None else history)
    if bs is not None:
        row["nll_oracle:best_sum"], row["nll_test:best_sum"], row["best_sum:step"] = bs
    return row


def stats_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per complete run (incomplete and broken runs are left out)."""
    rows = [run_stats(r) for r in runs if r.complete]
    if not rows:
        return pd.DataFrame(columns=ID_COLS + ["steps", "wall_s"])
    df = pd.DataFrame(rows)
    value_cols = [c for c in df.columns if c not in ID_COLS]
    df[value_cols] = df[value_cols].apply(pd.to_numeric, errors="coerce").astype(float)
    return df


GROUP_KEYS = ["suite", "algo", "profile", "signature"]


def aggregate(stats: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and n over seeds for every signature and every value column.

    One row per (suite, algo, profile, signature) — runs of different signatures are never averaged (see
    :func:`run_signature`). Columns: the keys, ``n_runs``, ``seeds``, ``run_dirs`` (list), ``oracle``,
    ``data_signature`` (the data part of the signature), ``setting`` (what differs from the default setting),
    ``published_setting``, ``label`` (e.g.
    ``cot (paper) · oracle seeded``; ``· signature <key>`` appended where two rows would read the same) and
    ``<value>:mean``, ``<value>:std``, ``<value>:n`` for each value column of ``stats`` (e.g.
    ``nll_oracle:final:mean``).
    """
    keys = GROUP_KEYS
    meta_cols = ["n_runs", "seeds", "run_dirs", "oracle", "data_signature", "setting", "published_setting", "label"]
    if stats.empty:
        return pd.DataFrame(columns=keys + meta_cols)
    value_cols = [c for c in stats.columns if c not in ID_COLS]
    g = stats.groupby(keys, sort=False)
    parts = {
        "mean": g[value_cols].mean(),
        "std": g[value_cols].std(ddof=1),
        "n": g[value_cols].count(),
    }
    out = pd.concat(parts, axis=1)
    out.columns = [f"{col}:{stat}" for stat, col in out.columns]
    out = out[[f"{c}:{s}" for c in value_cols for s in ("mean", "std", "n")]].copy()
    meta = pd.DataFrame({
        "n_runs": g.size(),
        "seeds": g["seed"].apply(lambda s: ",".join(str(int(x)) for x in sorted(s.dropna()))),
        "run_dirs": g["run_dir"].apply(list),
        "oracle": g["oracle"].apply(lambda s: ",".join(sorted({str(x) for x in s.dropna()}))),
        "data_signature": g["data_signature"].first(),
        "setting": g["setting"].first(),
        "published_setting": g["published_setting"].first().astype(bool),
    })
    out = pd.concat([meta, out], axis=1).reset_index()
    out["label"] = [f"{a} ({p})" + (f" · {s}" if s else "") for a, p, s in zip(out["algo"], out["profile"], out["setting"])]
    dup = out.duplicated(["suite", "label"], keep=False)
    out.loc[dup, "label"] = out.loc[dup, "label"] + " · signature " + out.loc[dup, "signature"]
    order = out.apply(lambda r: (r["suite"], pub.algo_sort_key(r["algo"]), _profile_key(r["profile"]),
                                 not r["published_setting"], r["label"]), axis=1)
    return out.iloc[sorted(range(len(out)), key=lambda i: order.iloc[i])].reset_index(drop=True)


def group_value(agg_row: pd.Series | None, metric: str, stat: str) -> tuple[float | None, float | None, int]:
    """(mean, std, n) of ``<metric>:<stat>`` in an aggregate row."""
    if agg_row is None:
        return None, None, 0
    key = f"{metric}:{stat}"
    mean = _finite(agg_row.get(f"{key}:mean"))
    std = _finite(agg_row.get(f"{key}:std"))
    n = agg_row.get(f"{key}:n")
    n = 0 if n is None or (isinstance(n, float) and math.isnan(n)) else int(n)
    return mean, std, n


def same_setting_as_published(agg_row: pd.Series) -> bool:
    """The row's signature is the paper's setting: no ``--set`` overrides and (synthetic suites) the SeqGAN
    oracle the published numbers were measured on (:func:`run_signature`)."""
    if "published_setting" in agg_row.index and not pd.isna(agg_row["published_setting"]):
        return bool(agg_row["published_setting"])
    if pub.canonical_suite(agg_row["suite"]) == "synthetic":
        oracles = {o for o in str(agg_row.get("oracle") or "").split(",") if o}
        return oracles <= {pub.PUBLISHED_ORACLE}
    return True


def comparable_with_published(agg_row: pd.Series) -> bool:
    """Paper profile, and the paper's setting (:func:`same_setting_as_published`)."""
    return agg_row["profile"] == "paper" and same_setting_as_published(agg_row)


# ------------------------------------------------------------------------------------------------
# Formatting
# ------------------------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table ('|' in cells escaped); align: 'l' or 'r' per column."""

    def cell(x: Any) -> str:
        s = "" if x is None else str(x)
        return s.replace("|", "\\|").replace("\n", " ")

    align = align or ["l"] * len(headers)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> str:
    """A plain aligned table for the terminal (cells longer than max_width are cut with '…')."""

    def cell(x: Any) -> str:
        s = "" if x is None else str(x)
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    body = [[cell(x) for x in r] for r in rows]
    widths = [max([len(str(h))] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    fmt = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in body]) + "\n"


def fmt_num(x: float | None, digits: int = 3, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if round(x, digits) == 0:
        x = 0.0  # no '-0.000'
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _drop_empty_columns(headers: list, rows: list, align: list, groups_at: list[int]) -> tuple[list, list, list]:
    """Markdown only: drop 'paper'/'Δ' columns without any value, and metric groups that are empty throughout."""
    drop: set[int] = set()
    empty = lambda j: all(r[j] in ("—", "") for r in rows)  # noqa: E731
    for j in groups_at:
        if empty(j) and empty(j + 1):
            drop |= {j, j + 1, j + 2}
        elif empty(j + 1):
            drop |= {j + 1, j + 2}
    keep = [j for j in range(len(headers)) if j not in drop]
    return [headers[j] for j in keep], [[r[j] for j in keep] for r in rows], [align[j] for j in keep]


def fmt_mean_std(mean: float | None, std: float | None, n: int, n_runs: int, digits: int) -> str:
    if mean is None:
        return "—"
    s = fmt_num(mean, digits)
    if std is not None and n >= 2:
        s += f" ± {std:.{digits}f}"
    if n < n_runs:
        s += f" (n={n})"
    return s


def _rel(path: str | os.PathLike, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), start.resolve())).as_posix()


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    """A column: ``stat`` of ``metric``, its header label, unit and decimals from the metric catalogue."""

    metric: str
    stat: str
    show_stat: bool = True  # the header names the stat ("NLL_test best")
    pair: bool = False  # best NLL_oracle + NLL_test (two values in one cell)

    @property
    def info(self) -> catalogue.MetricInfo:
        return catalogue.metric("nll_oracle" if self.pair else self.metric)

    @property
    def label(self) -> str:
        if self.pair:
            return f"best {self.info.label} + {catalogue.metric('nll_test').label}"
        return self.info.label + (f" {self.stat}" if self.show_stat else "")

    @property
    def unit(self) -> str:
        return self.info.unit_note

    @property
    def digits(self) -> int:
        return self.info.digits


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    kind: str  # 'synthetic' or 'text'
    cols: tuple[Col, ...]
    published_suite: str
    published_source: str
    units_note: str = ""
    only: tuple[str, ...] = ()  # canonical suites this table shows (empty: every suite of its kind not in ``skip``)
    skip: tuple[str, ...] = ()
    samples: int = 0  # final samples shown per complete run below the table


TABLE_SPECS = (
    TableSpec(
        "table1", "Table 1 — synthetic Turing test (oracle LSTM)", "synthetic",
        (
            Col("nll_oracle", "final"),
            Col("nll_test", "final"),
            Col("nll_test", "best"),
            Col("best_sum", "best_sum", pair=True),
            Col("jsd", "final"),
            Col("cot_jsd", "final"),
        ),
        "synthetic", pub.SRC_T1,
        "NLL figures are per-token means in nats (nats/token); the exact JSD is the sequence-level Jensen–Shannon "
        "divergence in nats (≤ ln 2 ≈ 0.693); the CoT-estimator JSD is CoT's token-mixture quantity summed over "
        "the 20 tokens (nats/sequence, protocol.md §2.4; not comparable with the exact JSD).",
    ),
    TableSpec(
        "table2", "Table 2 — BLEU on the test set (text suites)", "text",
        tuple(Col(f"bleu-{n}", "final", show_stat=False) for n in catalogue.ORDERS),
        "emnlp", pub.SRC_T2,
        "BLEU-n: sentence BLEU (nltk, smoothing method1, equal n-gram weights) of each generated sentence against "
        "the test set, averaged over sentences; 0–1, higher is better (protocol.md §2.5).",
        skip=("coco",),
    ),
    TableSpec(
        "table3", "Table 3 — RS-BLEU (diversity) and NLL_test (text suites)", "text",
        tuple(Col(f"rs-bleu-{n}", "final", show_stat=False) for n in catalogue.ORDERS)
        + (Col("nll_test", "final", show_stat=False),),
        "emnlp", pub.SRC_T3,
        "RS-BLEU-n = Self-BLEU-n of the samples / Self-BLEU-n of the test data (a ratio; good: ≤ 1 and close to 1, "
        "above 1 = less diverse than real text). NLL_test is per token, in nats (nats/token).",
        skip=("coco",),
    ),
    TableSpec(
        "coco", "Image COCO captions — BLEU, Self-BLEU, RS-BLEU and NLL_test (Texygen's published values beside ours)",
        "text",
        tuple(Col(f"bleu-{n}", "final", show_stat=False) for n in catalogue.ORDERS)
        + tuple(Col(f"self-bleu-{n}", "final", show_stat=False) for n in catalogue.ORDERS)
        + tuple(Col(f"rs-bleu-{n}", "final", show_stat=False) for n in catalogue.ORDERS)
        + (Col("nll_test", "final", show_stat=False),),
        "coco", pub.SRC_TEXYGEN_COCO,
        "Texygen's values (its README, protocol.md §5.3) are shown beside ours but not regressed: Texygen does not "
        "state its reference-set size, hypothesis count, tokenizer or casing, each of which moves BLEU-2 by more than "
        "0.2 (protocol.md §4.5), and its Self-BLEU counts each hypothesis among its own references (ours does not, "
        "§2.6). BLEU-n and Self-BLEU-n are 0–1; RS-BLEU-n = Self-BLEU-n of the samples / Self-BLEU-n of the test data; "
        "NLL_test in nats/token.",
        only=("coco",),
        samples=3,
    ),
)


def suite_kind(suite: str, runs: Sequence[Run]) -> str | None:
    """'synthetic' (has NLL_oracle), 'text' (has BLEU) or None, from the suite name and its runs' metrics."""
    canon = pub.canonical_suite(suite)
    if canon == "synthetic":
        return "synthetic"
    if canon in ("emnlp", "coco"):
        return "text"
    cols: set[str] = set()
    for r in runs:
        if r.suite == suite and r.metrics is not None:
            cols |= set(r.metrics.columns)
    if "nll_oracle" in cols:
        return "synthetic"
    if any(c.startswith(("bleu-", "rs-bleu-", "self-bleu-")) for c in cols):
        return "text"
    return None


@dataclass
class LeaderboardTable:
    name: str
    title: str
    frame: pd.DataFrame  # written as <name>.csv
    markdown: str  # written as <name>.md


def _published_pair(suite: str, algo: str) -> tuple[float, float, str] | None:
    o = pub.lookup(suite, algo, "nll_oracle", "best_sum")
    t = pub.lookup(suite, algo, "nll_test", "best_sum")
    if o is None or t is None:
        return None
    mark = "†" if "MLE pre-training" in str(o["note"]) else ""
    return float(o["value"]), float(t["value"]), f"{o['printed']} + {t['printed']}{mark}"


def _verdict(diff: float | None, tol: float | None) -> str:
    if diff is None or tol is None:
        return ""
    return " ✓" if abs(diff) <= tol * (1 + 1e-9) + 1e-12 else " ✗"


#: evaluation intervals whose pace projects an unfinished run's remaining hours
RECENT_INTERVALS = 10


def recent_pace(metrics: pd.DataFrame | None, intervals: int = RECENT_INTERVALS, since_step: int = 0) -> float | None:
    """Wall seconds per step over the last ``intervals`` evaluation intervals of ``metrics`` (``step``, ``wall_s``:
    training and evaluations, cumulative over resumed segments) that start at or after ``since_step``, or None
    with fewer than two such evaluations. Unlike the average since step 0 it follows the load of the machine now."""
    if metrics is None or "wall_s" not in metrics or len(metrics) < 2:
        return None
    tail = metrics.loc[metrics["step"] >= since_step, ["step", "wall_s"]].dropna().tail(intervals + 1)
    if len(tail) < 2:
        return None
    steps, wall = float(tail["step"].iloc[-1] - tail["step"].iloc[0]), float(tail["wall_s"].iloc[-1] - tail["wall_s"].iloc[0])
    return wall / steps if steps > 0 and wall > 0 else None


def run_phases(run: Run) -> list[tuple[int, int]]:
    """The run's phases as (first step, last step), from the unit of progress stored in config.json (one entry
    per stretch of steps doing the same work per step: SeqGAN's D pre-training calls, then its adversarial
    epochs, each about five D pre-training calls' work); [] when config.json does not store it."""
    prog = (run.config or {}).get("progress")
    segs = prog.get("segments") if isinstance(prog, dict) else None
    try:
        return [(int(seg[0]), int(seg[1])) for seg in segs or []]
    except (TypeError, ValueError, IndexError):
        return []


def _hours_left(run: Run, k: int, total: float, wall: float) -> str:
    """The projection of :func:`progress_line`: the current phase's remaining steps at that phase's recent pace;
    later phases, whose work per step differs, are named as not measured rather than projected at it."""
    m = run.metrics
    phase = next(((a, b) for a, b in run_phases(run) if a <= k + 1 <= b), None)
    if phase is None:  # no phases stored: one pace for the whole run
        pace = recent_pace(m)
        if pace is None:
            return f"≈ {wall * (total - k) / k / 3600:.1f} h left at its average pace"
        return f"≈ {pace * (total - k) / 3600:.1f} h left at its recent pace ({pace:.2f} s/step)"
    first, last = phase
    last = min(last, int(total))
    pace = recent_pace(m, since_step=first - 1)  # the evaluation ending the previous phase starts this one's intervals
    later = int(total) - last
    if pace is None:
        if first <= 1 and later == 0:  # one phase, fewer than two evaluations: the average is this phase's pace
            return f"≈ {wall * (total - k) / k / 3600:.1f} h left at its average pace"
        return f"the pace of its current phase (steps {first}–{last}) is not measured yet: no projection"
    out = f"≈ {pace * (last - k) / 3600:.1f} h left"
    if later:
        out += (f" in its current phase (to step {last}) at that phase's recent pace ({pace:.2f} s/step); "
                f"the {later} steps after it do other work per step, not measured yet")
    else:
        out += f" at its recent pace ({pace:.2f} s/step)"
    return out


def progress_line(run: Run) -> str:
    """Where an unfinished run stands: step k of N, its last NLL_oracle / NLL_test, hours so far and the
    hours left at the recent pace of the phase it is in (:func:`_hours_left`): a projection, not a measurement."""
    total = _finite((run.settings or {}).get("steps"))
    m = run.metrics
    if m is None or m.empty:
        return f"started, no evaluation yet (of {fmt_num(total, 0)} steps)"
    last = m.iloc[-1]
    k, wall = run.steps_done, run.wall_s
    shown = ", ".join(f"{name} {fmt_num(_finite(last.get(name)), 3)}" for name in ("nll_oracle", "nll_test", "bleu-2")
                      if _finite(last.get(name)) is not None)
    out = f"step {k} of {fmt_num(total, 0)}"
    if total:
        out += f" ({100 * k / total:.1f} %)"
    out += f"; last evaluation (step {int(last['step'])}): {shown or '—'}"
    if wall and k and total:
        out += f"; {wall / 3600:.2f} h so far, {_hours_left(run, k, total, wall)}"
    return out


def _profile_cell(g: pd.Series) -> str:
    """The profile and what sets the row's signature apart, e.g. ``paper · oracle seeded · set g_lr=0.02``."""
    label, head = str(g.get("label") or ""), f"{g['algo']} ({g['profile']})"
    return str(g["profile"]) + (label[len(head):] if label.startswith(head) else "")


def held_back_line(run: Run) -> str:
    """A complete run kept out of the tables (``results/pending``): its length, final NLLs and settings."""
    m = run.metrics
    last = m.iloc[-1] if m is not None and not m.empty else {}
    shown = ", ".join(f"{name} {fmt_num(_finite(last.get(name)), 3)}" for name in ("nll_oracle", "nll_test", "bleu-2")
                      if _finite(last.get(name)) is not None)
    over = (run.config or {}).get("overrides") or {}
    sets = ", ".join(f"{k}={v}" for k, v in sorted(over.items()))
    return f"{run.steps_done} steps, final {shown or '—'}" + (f"; set {sets}" if sets else "")


def _build_table(spec: TableSpec, agg: pd.DataFrame, runs: Sequence[Run], suites: list[str], out_dir: Path,
                 held: Sequence[Run] = ()) -> LeaderboardTable:
    frame_rows: list[dict] = []
    md_sections: list[str] = []
    daggers = explained = False
    for suite in suites:
        canon = pub.canonical_suite(suite)
        groups = agg[agg["suite"] == suite] if not agg.empty else agg
        # algorithms with a row that can show the published values (SeqGAN oracle for synthetic suites)
        present = {r["algo"] for _, r in groups.iterrows() if same_setting_as_published(r)} if not groups.empty else set()
        metrics = {c.metric for c in spec.cols} | {"nll_oracle", "nll_test"}
        pubdf = pub.published_numbers()
        pub_algos = pubdf[(pubdf["suite"] == canon) & (pubdf["variant"] == "") & pubdf["primary"]
                          & pubdf["metric"].isin(metrics)]["algo"].unique().tolist() if canon == spec.published_suite else []
        rows: list[tuple[str, pd.Series | None]] = [(r["algo"], r) for _, r in groups.iterrows()]
        rows += [(a, None) for a in pub_algos if a not in present]
        rows.sort(key=lambda t: (pub.algo_sort_key(t[0]), _profile_key(t[1]["profile"]) if t[1] is not None else (9, ""),
                                 (not same_setting_as_published(t[1]), str(t[1].get("label", ""))) if t[1] is not None else (False, "")))
        headers = ["algorithm", "profile", "runs"]
        align = ["l", "l", "r"]
        for c in spec.cols:
            headers += [f"{c.label} ({c.unit})", "paper", "Δ"]
            align += ["r", "r", "r"]
        groups_at = [3 + 3 * i for i in range(len(spec.cols))]
        headers += ["wall time (s/run)", "steps", "run directories"]
        align += ["r", "r", "l"]
        md_rows = []
        for algo, g in rows:
            n_runs = int(g["n_runs"]) if g is not None else 0
            comparable = g is not None and comparable_with_published(g)
            # published values stand beside paper-scale rows in the paper's setting (and missing rows) only
            show_paper = canon == spec.published_suite and (g is None or comparable)
            rec: dict[str, Any] = {"suite": suite, "algo": algo, "profile": g["profile"] if g is not None else "",
                                   "signature": g.get("signature", "") if g is not None else "",
                                   "setting": g.get("setting", "") if g is not None else "",
                                   "label": g.get("label", "") if g is not None else "",
                                   "published_setting": same_setting_as_published(g) if g is not None else True,
                                   "n_runs": n_runs, "seeds": g["seeds"] if g is not None else "",
                                   "oracle": g["oracle"] if g is not None else ""}
            prof = "—" if g is None else _profile_cell(g)
            md = [algo, prof, n_runs]
            for c in spec.cols:
                if c.pair:  # the pair (NLL_oracle, NLL_test) at the evaluation minimising their sum
                    om, os_, on = group_value(g, "nll_oracle", "best_sum")
                    tm, ts, tn = group_value(g, "nll_test", "best_sum")
                    pp = _published_pair(canon, algo) if show_paper else None
                    for k, (mm, ss, nn) in (("nll_oracle", (om, os_, on)), ("nll_test", (tm, ts, tn))):
                        rec[f"{k}_best_sum_mean"], rec[f"{k}_best_sum_std"], rec[f"{k}_best_sum_n"] = mm, ss, nn
                    rec["nll_oracle_best_sum_paper"] = pp[0] if pp else None
                    rec["nll_test_best_sum_paper"] = pp[1] if pp else None
                    d = (om - pp[0], tm - pp[1]) if (pp and comparable and om is not None and tm is not None) else None
                    rec["nll_oracle_best_sum_diff"] = d[0] if d else None
                    rec["nll_test_best_sum_diff"] = d[1] if d else None
                    ours = "—" if om is None else f"{fmt_mean_std(om, os_, on, n_runs, c.digits)} + {fmt_mean_std(tm, ts, tn, n_runs, c.digits)}"
                    paper = "—" if not pp else pp[2]
                    daggers = daggers or paper.endswith("†")
                    tol = pub.tolerance_for(canon, "nll_oracle", "best_sum")[0]
                    delta = "—" if not d else f"{d[0]:+.2f}{_verdict(d[0], tol)} / {d[1]:+.2f}{_verdict(d[1], tol)}"
                    md += [ours, paper, delta]
                    continue
                mean, std, n = group_value(g, c.metric, c.stat)
                p = pub.lookup(canon, algo, c.metric, c.stat) if show_paper else None
                pv = float(p["value"]) if p is not None else None
                diff = mean - pv if (pv is not None and mean is not None and comparable) else None
                base = f"{c.metric}_{c.stat}"
                rec.update({f"{base}_mean": mean, f"{base}_std": std, f"{base}_n": n, f"{base}_paper": pv,
                            f"{base}_diff": diff})
                paper = "—"
                if p is not None:
                    paper = str(p["printed"])
                    if "MLE pre-training" in str(p["note"]):
                        paper += "†"
                        daggers = True
                tol = float(p["tolerance"]) if p is not None else None
                verdict = _verdict(diff, tol)
                if verdict == " ✗" and pub.explain(canon, algo, c.metric, c.stat, n or 0)[0]:  # as regress decides
                    verdict += " explained‡"
                    explained = True
                md += [fmt_mean_std(mean, std, n, n_runs, c.digits), paper,
                       "—" if diff is None else f"{fmt_num(diff, c.digits, signed=True)}{verdict}"]
            wm, ws, wn = None, None, 0
            if g is not None:
                wm, ws, wn = _finite(g.get("wall_s:mean")), _finite(g.get("wall_s:std")), int(g.get("wall_s:n") or 0)
            sm = _finite(g.get("steps:mean")) if g is not None else None
            rec.update({"wall_s_mean": wm, "wall_s_std": ws, "steps_mean": sm})
            dirs = list(g["run_dirs"]) if g is not None else []
            rec["run_dirs"] = ";".join(dirs)
            links = []
            for d in dirs:
                r = _rel(d, out_dir)
                seed = RUN_NAME_RE.match(Path(d).name)
                label = f"seed {seed.group('seed')}" if seed else Path(d).name
                links.append(f"[{label}]({r}/) ([config]({r}/{RunDir.CONFIG}))")
            md += [fmt_mean_std(wm, ws, wn, n_runs, 0), fmt_num(sm, 0), ", ".join(links) or "—"]
            frame_rows.append(rec)
            md_rows.append((g is None or g["profile"] == "paper", md))
        section = [f"## Suite `{suite}`" + (f" (published setting: {canon})" if canon != suite else ""), ""]
        paper_rows = [md for is_paper, md in md_rows if is_paper]
        other_rows = [md for is_paper, md in md_rows if not is_paper]
        if paper_rows:
            section.append("### Paper-scale runs (`paper` profile)\n")
            h, r, a = _drop_empty_columns(headers, paper_rows, align, groups_at)
            section.append(markdown_table(h, r, a))
        in_progress = [r for r in runs if r.suite == suite and not r.complete and not r.errors]
        if in_progress:
            section.append("### In progress — not results\n")
            section.append("\n".join(f"- [{r.name}]({_rel(r.path, out_dir)}/): {progress_line(r)}" for r in in_progress) + "\n")
        held_here = [r for r in held if r.suite == suite]
        if held_here:
            section.append("### Held back — complete, not counted in the tables above\n")
            section.append("Their comparison with the published row fails `textbench regress` and is not yet explained "
                           f"(`{HELD_BACK.as_posix()}/README.md`):\n")
            section.append("\n".join(f"- [{r.name}]({_rel(r.path, out_dir)}/): {held_back_line(r)}" for r in held_here) + "\n")
        if other_rows:
            section.append("### Quick and other runs — not comparable with the paper (short schedules or other settings)\n")
            h, r, a = _drop_empty_columns(headers, other_rows, align, groups_at)
            section.append(markdown_table(h, r, a))
        if not md_rows and not in_progress and not held_here:
            section.append("No complete runs and no published values.\n")
        broken = [r for r in runs if r.suite == suite and r.errors]
        if broken:
            section.append("Not counted (unreadable or inconsistent):\n")
            section.append("\n".join(f"- [{r.name}]({_rel(r.path, out_dir)}/): {r.status}" for r in broken) + "\n")
        md_sections.append("\n".join(section))
    frame = pd.DataFrame(frame_rows)
    head = [
        f"# {spec.title}",
        "",
        "Generated by `textbench leaderboard`. Each cell: mean ± sample std over seeds of the per-run value "
        "(complete runs only; `(n=k)` when only k runs recorded that metric). "
        f"*paper* = {spec.published_source} (copied verbatim in `docs/protocol.md` §5, see "
        "`textbench/reports/published.py`); Δ = ours − paper, shown for `paper`-profile runs only "
        "(quick runs are not paper-scale), ✓ within / ✗ beyond the regression tolerance. Runs are averaged only "
        "within one signature (suite data and oracle with their fingerprints, algorithm, profile, `--set` "
        "overrides); a row whose setting differs from the paper's (another oracle, overrides: named in the "
        "profile column) shows no published values "
        "(`textbench regress` gives the verdict and the reasons for each tolerance).",
        "",
        spec.units_note + " *final* = last evaluation; *best* = best evaluation (min for NLL/JSD, max for BLEU)"
        + ("; *best NLL_oracle + NLL_test* = the pair at the evaluation minimising their sum" if spec.kind == "synthetic" else "")
        + ". Wall time is the training wall-clock per run, in seconds (not reproducible).",
        "",
        "Every value is at sampling temperature T = 1, as published. One number at T = 1 can flatter or hide an "
        "algorithm: the quality–diversity curves over T of the swept runs, and which curve or published point "
        "dominates which, are in [temperature.md](temperature.md).",
        "",
    ]
    if explained:
        head += ["‡ a failure explained with evidence (`textbench regress` reports it as *explained*, never as a pass): "
                 "the cause and the evidence are in docs/protocol.md Part I, \"Explained deviations\".", ""]
    if daggers:
        head += ["† the paper prints '–(MLE)' / '(same as MLE)': the best was reached during MLE pre-training; "
                 "the value is the MLE row's. Ours likewise: for a row pre-trained by an MLE paper run, *best* and "
                 "*best NLL_oracle + NLL_test* are taken over that run's evaluations and the row's own.", ""]
    md = "\n".join(head) + "\n" + "\n".join(md_sections)
    if spec.samples:
        md += _sample_section(runs, suites, spec.samples)
    return LeaderboardTable(spec.name, spec.title, frame, md)


def _sample_section(runs: Sequence[Run], suites: list[str], k: int, seed: int = 0) -> str:
    """``k`` samples per complete run (seeded choice from its final samples.txt), as people read them."""
    import random

    lines = ["", "### Samples", "", f"{k} final samples per run, chosen with `random.Random({seed})` from its `samples.txt`:", ""]
    shown = 0
    for r in sorted((r for r in runs if r.complete and r.suite in suites), key=lambda r: (pub.algo_sort_key(r.algo), r.profile, r.seed or 0)):
        try:
            text = RunDir(r.path).read_samples()
        except OSError:
            continue
        picked = random.Random(seed).sample(text, min(k, len(text)))
        lines.append(f"- **{r.name}** ({r.signature.label}):")
        lines += ["  - " + line.replace("|", "\\|") for line in picked]
        shown += 1
    return "\n".join(lines) + "\n" if shown else ""


def _runs_table(runs: Sequence[Run], out_dir: Path) -> LeaderboardTable:
    keys = ["nll_oracle", "nll_test", "jsd", "bleu-2", "rs-bleu-2"]
    rows = []
    for r in runs:
        sig = r.signature
        rec: dict[str, Any] = {"suite": r.suite, "algo": r.algo, "profile": r.profile, "seed": r.seed,
                               "status": r.status, "run_dir": str(r.path), "signature": sig.key,
                               "setting": sig.setting}
        s = run_stats(r) if (r.summary is not None or r.metrics is not None) and not r.errors else {}
        rec["steps"], rec["wall_s"] = s.get("steps"), s.get("wall_s")
        for k in keys:
            rec[f"{k}_final"] = s.get(f"{k}:final")
        rows.append(rec)
    frame = pd.DataFrame(rows, columns=["suite", "algo", "profile", "seed", "status", "run_dir", "signature", "setting",
                                        "steps", "wall_s"]
                         + [f"{k}_final" for k in keys])
    present = [k for k in keys if frame[f"{k}_final"].notna().any()]
    headers = ["suite", "algorithm", "profile", "seed", "status", "steps", "wall (s)"] + [
        f"{k} final ({catalogue.metric(k).unit_text})" for k in present] + ["run"]
    md_rows = []
    for rec in rows:
        rel = _rel(rec["run_dir"], out_dir)
        md_rows.append([rec["suite"], rec["algo"], rec["profile"], rec["seed"], rec["status"],
                        fmt_num(rec["steps"], 0), fmt_num(rec["wall_s"], 0)]
                       + [fmt_num(rec[f"{k}_final"], catalogue.metric(k).digits) for k in present]
                       + [f"[dir]({rel}/) ([config]({rel}/{RunDir.CONFIG}))"])
    md = ("# All runs\n\nEvery run directory found, complete or not. Only `complete` runs are counted in the "
          "tables; `final` is the last evaluation (summary.json).\n\n"
          + (markdown_table(headers, md_rows) if md_rows else "No runs found.\n"))
    return LeaderboardTable("runs", "All runs", frame, md)


def build_leaderboard(runs_dir: str | os.PathLike = DEFAULT_RUNS, suite: str | None = None,
                      out_dir: str | os.PathLike = DEFAULT_OUT, runs: Sequence[Run] | None = None) -> dict[str, LeaderboardTable]:
    """All tables (table1, table2, table3, runs) as frames and markdown; links relative to ``out_dir``."""
    out_dir = Path(out_dir)
    if runs is None:
        runs = load_runs(runs_dir, suite)
    agg = aggregate(stats_frame(runs))
    suites = sorted({r.suite for r in runs})
    pending = Path(runs_dir).parent / HELD_BACK.name  # complete runs held back (results/pending), listed apart
    held = [r for r in load_runs(pending, suite) if r.complete and not r.errors] if pending.is_dir() else []
    tables: dict[str, LeaderboardTable] = {}
    for spec in TABLE_SPECS:
        ss = [s for s in suites if suite_kind(s, runs) == spec.kind and pub.canonical_suite(s) not in spec.skip
              and (not spec.only or pub.canonical_suite(s) in spec.only)]
        canon_present = {pub.canonical_suite(s) for s in ss}
        want_pub = suite is None or pub.canonical_suite(suite) == spec.published_suite
        if spec.published_suite not in canon_present and want_pub:
            ss.append(spec.published_suite)  # published values with no runs yet: show the gap
        tables[spec.name] = _build_table(spec, agg, runs, ss, out_dir, held)
    tables["runs"] = _runs_table(runs, out_dir)
    from .temperature import sweep_table

    frame, md = sweep_table(Path(runs_dir).parent / "sweeps" / "temperature")
    tables["temperature"] = LeaderboardTable("temperature", "Quality against diversity over sampling temperature", frame, md)
    return tables


def write_leaderboard(runs_dir: str | os.PathLike = DEFAULT_RUNS, out_dir: str | os.PathLike = DEFAULT_OUT,
                      fmt: str = "both", suite: str | None = None) -> list[Path]:
    """Write ``<out_dir>/<table>.csv`` and/or ``.md``; returns the paths written."""
    if fmt not in ("md", "csv", "both"):
        raise TextbenchError(f"unknown format {fmt!r}; use md, csv or both")
    out_dir = Path(out_dir)
    tables = build_leaderboard(runs_dir, suite, out_dir)
    written = []
    for t in tables.values():
        if fmt in ("csv", "both"):
            p = out_dir / f"{t.name}.csv"
            atomic_write_text(p, t.frame.to_csv(index=False))
            written.append(p)
        if fmt in ("md", "both"):
            p = out_dir / f"{t.name}.md"
            atomic_write_text(p, t.markdown)
            written.append(p)
    return written
