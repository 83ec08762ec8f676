"""The metric catalogue: every metric column of metrics.csv described once.

Each entry (:class:`MetricInfo`) gives a metric's display label, unit, direction ("lower" / "higher" is
better, or None where there is no simple one), bounds and description. Everything that shows or ranks a
metric reads it from here: the evaluators' :class:`Score`, ``summarize``'s best (engine/rundir.py), the
leaderboard's column headers, the plots' axis labels, ``textbench list`` and the README metrics table
(tests/metrics/test_catalogue.py holds the README to :func:`markdown_table`).

Keys of :data:`CATALOGUE` are the registered metric names (``textbench list``); the n-gram families stand
for their columns (``bleu`` → ``bleu-2`` .. ``bleu-5``), and ``<metric>_se`` is a metric's Monte-Carlo
standard error (:func:`metric` resolves both). Logged training losses are not metrics: :func:`metric`
returns None for them.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

LN2 = math.log(2.0)
INF = math.inf

#: the n-gram orders of the BLEU family in a text suite's metrics.csv (``textbench eval`` takes 1..9)
ORDERS = (2, 3, 4, 5)
#: directions: which way a value is better (None: no simple direction, see ``MetricInfo.good``)
DIRECTIONS = ("lower", "higher", None)


@dataclass(frozen=True)
class MetricInfo:
    """What a metric column means and how it is shown."""

    name: str  # the metrics.csv column ("bleu-n" for a family)
    label: str  # display label, e.g. "NLL_oracle", "BLEU-4"
    unit: str  # "nats/token", "nats", ... ; "" for a dimensionless score, shown as its range
    direction: str | None  # "lower" / "higher" is better; None: no simple direction
    bounds: tuple[float, float]  # range of the quantity (its Monte-Carlo estimates may stray by their s.e.)
    description: str
    good: str = ""  # a good value, where the direction does not say it (RS-BLEU: "≲ 1")
    digits: int = 3  # decimals in tables

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")

    @property
    def unit_text(self) -> str:
        """The unit, or the range of a dimensionless score: ``nats/token``, ``0–1``, ``ratio``."""
        return self.unit or f"{_fmt(self.bounds[0])}–{_fmt(self.bounds[1])}"

    @property
    def range_text(self) -> str:
        """The bounds as an interval: ``[0, ln 2]``, ``[0, ∞)``."""
        lo, hi = self.bounds
        return f"[{_fmt(lo)}, {_fmt(hi)}" + (")" if hi == INF else "]")

    @property
    def direction_text(self) -> str:
        if self.direction is not None:
            return f"{self.direction} is better"
        return f"good {self.good}" if self.good else "no direction"

    @property
    def unit_note(self) -> str:
        """Table-header form: the unit with a finite upper bound, ↑ when higher is better (lower is better is
        the convention of NLLs and divergences, left unmarked) and a good value: ``nats, ≤ ln 2``, ``0–1, ↑``."""
        parts = [self.unit_text]
        if self.unit and self.bounds[1] != INF:
            parts.append(f"≤ {_fmt(self.bounds[1])}")
        if self.direction == "higher":
            parts.append("↑")
        if self.good:
            parts.append(f"good {self.good}")
        return ", ".join(parts)

    @property
    def axis_label(self) -> str:
        """Plot-axis form: ``NLL_oracle (nats/token)``, ``BLEU-2 (0–1, higher is better)``."""
        extra = ", higher is better" if self.direction == "higher" else (f", good {self.good}" if self.good else "")
        return f"{self.label} ({self.unit_text}{extra})"

    def better(self, a: float, b: float) -> bool:
        """``a`` is strictly better than ``b`` (False for a metric without a direction)."""
        return (self.direction == "lower" and a < b) or (self.direction == "higher" and a > b)


def _fmt(x: float) -> str:
    return "ln 2" if x == LN2 else "∞" if x == INF else f"{x:g}"


_NATS_TOKEN = "nats/token"

#: registered metric name -> its entry (the n-gram families by their pattern name ``bleu-n``)
CATALOGUE: dict[str, MetricInfo] = {
    "nll_oracle": MetricInfo(
        "nll_oracle", "NLL_oracle", _NATS_TOKEN, "lower", (0.0, INF),
        "−(1/NL) Σ ln P_oracle(x_t | x_<t) over N fresh generator samples (protocol §2.1)"),
    "nll_test": MetricInfo(
        "nll_test", "NLL_test", _NATS_TOKEN, "lower", (0.0, INF),
        "−(1/NL) Σ ln G(x_t | x_<t) over held-out data (§2.2)"),
    "jsd": MetricInfo(
        "jsd", "exact JSD", "nats", "lower", (0.0, LN2),
        "exact sequence-level JSD(P‖G) = ½E_P[ln P/M] + ½E_G[ln G/M], M = ½(P+G), from exact sequence "
        "log-probabilities", digits=4),
    "cot_jsd": MetricInfo(
        "cot_jsd", "CoT-estimator JSD", "nats/sequence", "lower", (0.0, INF),
        "the CoT repository's estimator (token-level mixture, summed over positions, ≤ L·ln 2; §2.4), "
        "for the paper's curves"),
    "bnll": MetricInfo(
        "bnll", "mediator balanced NLL", _NATS_TOKEN, "lower", (0.0, INF),
        "the mediator's balanced NLL ½[NLL_M(real) + NLL_M(generated)] (§2.3), mean over the interval"),
    "bleu": MetricInfo(
        "bleu-n", "BLEU-n", "", "higher", (0.0, 1.0),
        "sentence BLEU-n (nltk `method1`, identical to nltk to 1e-9) against the test references, mean over the "
        "samples (by default all of both; §2.5); n = 2..5 in metrics.csv, 1..9 in `textbench eval`"),
    "self-bleu": MetricInfo(
        "self-bleu-n", "Self-BLEU-n", "", None, (0.0, 1.0),
        "leave-one-out Self-BLEU-n: each sample's BLEU-n against the other samples, mean (§2.6); higher = "
        "less diverse"),
    "rs-bleu": MetricInfo(
        "rs-bleu-n", "RS-BLEU-n", "ratio", None, (0.0, INF),
        "relative Self-BLEU-n = Self-BLEU-n(samples) / Self-BLEU-n(as many test sentences) (CoT Table 3); "
        "1 = as diverse as real text, above 1 = less diverse", good="≲ 1"),
}

#: the standard-error columns, ``<metric>_se`` (README row; :func:`metric` gives each its own entry)
STANDARD_ERROR = MetricInfo(
    "<metric>_se", "standard error", "unit of <metric>", None, (0.0, INF),
    "Monte-Carlo standard error of `<metric>` (`nll_oracle`, `nll_test`, `jsd`, `cot_jsd`)")

_NGRAM = re.compile(r"^(bleu|self-bleu|rs-bleu)-([1-9][0-9]*)$")


@functools.lru_cache(maxsize=None)
def metric(column: str) -> MetricInfo | None:
    """The entry of a metrics.csv column (``nll_oracle``, ``bleu-4``, ``jsd_se``); None for anything else
    (logged training losses, ``step``, ``wall_s``)."""
    if column in CATALOGUE and "-n" not in CATALOGUE[column].name:
        return CATALOGUE[column]
    m = _NGRAM.match(column)
    if m:
        fam, n = CATALOGUE[m.group(1)], m.group(2)
        return replace(fam, name=column, label=fam.label[:-1] + n, description=fam.description.replace("-n", f"-{n}"))
    if column.endswith("_se"):
        base = metric(column[: -len("_se")])
        if base is not None and not base.name.endswith("_se"):
            return replace(base, name=column, label=f"{base.label} s.e.", direction=None, bounds=(0.0, INF),
                           good="", description=f"Monte-Carlo standard error of `{base.name}`")
    return None


def direction(column: str) -> str | None:
    """"lower", "higher" or None (no simple direction, or not a catalogued metric)."""
    info = metric(column)
    return info.direction if info is not None else None


def axis_label(column: str) -> str:
    """A plot-axis label; the column name itself for anything not in the catalogue."""
    info = metric(column)
    return info.axis_label if info is not None else column


def markdown_table() -> str:
    """The README's metrics table (tests/metrics/test_catalogue.py keeps the README equal to it)."""
    rows = [*CATALOGUE.values(), STANDARD_ERROR]
    lines = ["| name | unit | better | range | definition |", "|---|---|---|---|---|"]
    for e in rows:
        better = e.direction or (f"good: {e.good}" if e.good else "—")
        cells = [f"`{e.name}`", e.unit_text, better, e.range_text, e.description]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Score: one evaluator result
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """One metric value with its Monte-Carlo standard error where it has one and the settings it depends on
    (``signature``: a dict, or :class:`textbench.metrics.bleu.Signature`). ``per_hypothesis``: a BLEU-type
    metric's sentence scores (read-only; RS-BLEU: the samples' Self-BLEU scores / the test Self-BLEU, whose
    mean is the RS-BLEU); ``notes``: remarks (e.g. skipped empty lines). ``info``: its catalogue entry."""

    name: str
    value: float
    se: float | None = None
    signature: Any = field(default_factory=dict)
    per_hypothesis: np.ndarray | None = field(default=None, repr=False, compare=False, hash=False)
    notes: tuple[str, ...] = ()

    @property
    def info(self) -> MetricInfo | None:
        return metric(self.name)

    def signature_dict(self) -> dict:
        return dict(self.signature) if isinstance(self.signature, dict) else self.signature.as_dict()

    def __str__(self) -> str:
        se = f" ± {self.se:.4f}" if self.se is not None else ""
        unit = f" ({self.info.unit_text})" if self.info is not None else ""
        sig = "|".join(f"{k}:{v}" for k, v in self.signature.items()) if isinstance(self.signature, dict) else str(self.signature)
        return f"{self.name} = {self.value:.4f}{se}{unit}  [{sig}]"

    def to_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "se": self.se, "signature": self.signature_dict(),
                "signature_str": str(self.signature), "notes": list(self.notes)}


if __name__ == "__main__":  # python -m textbench.metrics.catalogue: the README metrics table
    print(markdown_table(), end="")
