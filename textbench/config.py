"""Settings: engine defaults < suite defaults < algorithm defaults < profile < ``--set key=value``.

All settings live in one flat namespace (a key means the same thing wherever it appears), so that
``config.json`` of a run is a single dictionary that fully determines it.

Every key has a :class:`Spec` (its type and allowed range): the engine's are declared below beside their
defaults, a suite's or an algorithm's in its class attribute ``specs`` beside ``defaults``, and the
families in ``FAMILY_SPECS`` (``*_lr``, ``*_betas``, ...) by name; a setting whose default is a bool is a
flag. ``--set`` text is parsed by the spec (ASCII digits only: ``1_0`` and ``٣`` are not numbers) and
:func:`validate_settings` checks every resolved setting, and the rules across settings, before a run
writes anything.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import TextbenchError


@dataclass(frozen=True)
class Spec:
    """The values a setting accepts.

    ``kind``: int | float | bool | str | list. Numbers (and list items, of kind ``item``) must be finite and
    within the bounds ``ge``/``gt``/``le``/``lt``; ``choices`` are the only values of a str, and extra allowed
    values of a number (``text_max_len``: 0 = auto, else >= 2). A str may have to match ``pattern`` (whole
    value). A list has exactly ``length`` items, or at least one. ``describe`` replaces the generated range text.
    """

    kind: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple = ()
    pattern: str | None = None
    item: str = "int"
    length: int | None = None
    describe: str = ""

    def type_text(self) -> str:
        return f"list[{self.item}]" if self.kind == "list" else self.kind

    def expected(self) -> str:
        """What an error message says is expected, e.g. ``int >= 1``, ``str: one of: sum, mean``."""
        if self.kind in ("int", "float"):
            return f"{'finite ' if self.kind == 'float' else ''}{self.kind} {self.range_text()}"
        return self.range_text() if self.kind in ("bool", "str") else f"{self.type_text()}: {self.range_text()}"

    def range_text(self) -> str:
        """The allowed values in words, e.g. ``>= 1``, ``in [0, 1)``, ``one of: sum, mean``."""
        if self.describe:
            return self.describe
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return f"one of: {', '.join(map(str, self.choices))}" if self.choices else "any text"
        lo = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None
        hi = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None
        if lo and hi:
            bounds = f"in {lo}, {hi}"
        elif lo:
            bounds = (">= " if lo[0] == "[" else "> ") + lo[1:]
        elif hi:
            bounds = ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
        else:
            bounds = "finite" if (self.item if self.kind == "list" else self.kind) == "float" else "any"
        if self.choices:
            bounds = f"{' or '.join(map(_num, self.choices))} or {bounds}"
        if self.kind == "list":
            count = f"{self.length} values" if self.length else "1 or more values"
            return f"{count}, each {bounds}"
        return bounds

    def accepts(self, value: Any) -> bool:
        if self.kind == "list":
            if not isinstance(value, (list, tuple)) or not (len(value) == self.length if self.length else value):
                return False
            return all(self._scalar_ok(v, self.item) for v in value)
        return self._scalar_ok(value, self.kind)

    def _scalar_ok(self, v: Any, kind: str) -> bool:
        if kind == "bool":
            return isinstance(v, bool)
        if kind == "str":
            return (
                isinstance(v, str)
                and (not self.choices or v in self.choices)
                and (self.pattern is None or re.fullmatch(self.pattern, v, re.ASCII) is not None)
            )
        if isinstance(v, bool) or not isinstance(v, int if kind == "int" else (int, float)):
            return False
        if v in self.choices:
            return True
        return math.isfinite(v) and not (
            (self.ge is not None and v < self.ge)
            or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le)
            or (self.lt is not None and v >= self.lt)
        )

    def parse(self, text: str) -> Any:
        """``--set`` text -> a value of this kind (range not checked); ValueError if it is not one."""
        if self.kind == "list":
            parts = [p.strip() for p in text.strip().strip("[]()").split(",")]
            return [_parse_scalar(p, self.item) for p in parts if p]
        return _parse_scalar(text, self.kind)


_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _parse_scalar(text: str, kind: str) -> Any:
    """Strict ASCII parsing: no ``1_0``, no non-ASCII digits, no ``nan``/``inf``; ``1e3`` is an int 1000."""
    t = text.strip()
    if kind == "bool":
        low = t.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    if kind == "int":
        if _INT.fullmatch(t):
            return int(t)
        if _FLOAT.fullmatch(t) and float(t).is_integer():
            return int(float(t))
        raise ValueError(text)
    if kind == "float":
        if _FLOAT.fullmatch(t) and math.isfinite(float(t)):
            return float(t)
        raise ValueError(text)
    return text


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


COUNT = Spec("int", ge=1)  # sizes and counts
COUNT0 = Spec("int", ge=0)  # counts where 0 is meaningful (said in the setting's help)
FLAG = Spec("bool")
TEXT = Spec("str")  # free text, e.g. a file path ("" = none)

# key: (default, spec, help)
_ENGINE: dict[str, tuple[Any, Spec, str]] = {
    "steps": (1000, COUNT, "number of training steps (one algorithm update each; an MLE step is one minibatch)"),
    "batch_size": (64, COUNT, "sequences per minibatch (at most the training-set size)"),
    "eval_every": (100, COUNT, "evaluate every N steps (and at step 0 and at the end)"),
    "full_eval_every": (
        0,
        COUNT0,
        "compute every metric only every N steps (and at step 0 and at the end); the evaluations between compute "
        "the suite's tracked ones (synthetic: NLL_oracle and NLL_test, as CoT's official code every 100 iterations)"
        ". 0 = every evaluation is full",
    ),
    "eval_samples": (9984, COUNT, "generator samples per evaluation (protocol §2.1: 156 x 64)"),
    "final_samples": (9984, COUNT, "samples written to samples.txt at the end"),
    "checkpoint_every": (0, COUNT0, "checkpoint every N steps (0 = at each evaluation)"),
    "device": (
        "cpu",
        Spec("str", pattern=r"cpu|mps|cuda(:[0-9]+)?", describe="cpu, cuda, cuda:N (N >= 0) or mps"),
        "torch device (cpu, cuda, cuda:N, mps)",
    ),
}
ENGINE_DEFAULTS: dict[str, Any] = {k: v[0] for k, v in _ENGINE.items()}
ENGINE_SPECS: dict[str, Spec] = {k: v[1] for k, v in _ENGINE.items()}
ENGINE_HELP: dict[str, str] = {k: v[2] for k, v in _ENGINE.items()}

# Families of keys without an explicit spec, by name (first match wins).
FAMILY_SPECS: list[tuple[str, Spec]] = [
    ("*_lr", Spec("float", gt=0)),  # learning rates
    ("*_betas", Spec("list", item="float", ge=0, lt=1, length=2)),  # Adam betas
    ("*dropout*", Spec("float", ge=0, lt=1)),  # drop probabilities
    ("*_clip", Spec("float", ge=0)),  # global-norm clip, 0 = off
    ("*_init_std", Spec("float", ge=0)),  # std of a normal init
    ("*_emb", COUNT),  # embedding sizes
    ("*_hidden", COUNT),  # LSTM sizes
]


def _registered() -> list:
    from .registry import ALGORITHMS, SUITES

    return [e.obj for e in SUITES.entries()] + [e.obj for e in ALGORITHMS.entries()]


def spec_for(key: str) -> Spec | None:
    """The spec of ``key``: engine, then every registered suite's and algorithm's ``specs``, then the
    families, then a flag if its default is a bool; None if none applies (the tests forbid that)."""
    if key in ENGINE_SPECS:
        return ENGINE_SPECS[key]
    classes = _registered()
    for cls in classes:
        if key in getattr(cls, "specs", {}):
            return cls.specs[key]
    for pattern, spec in FAMILY_SPECS:
        if fnmatch.fnmatchcase(key, pattern):
            return spec
    if any(isinstance(cls.defaults.get(key), bool) for cls in classes):
        return FLAG
    return None


class SettingInfo(NamedTuple):
    default: Any  # the resolved value (the default under the chosen profile)
    type: str
    range: str
    help: str


def describe_settings(settings: dict[str, Any], *classes) -> dict[str, SettingInfo]:
    """Per key of ``settings``: (value, type, range text, help); help from ``classes`` (e.g. the suite and
    algorithm classes, first wins), else the engine's, else any registered class's."""
    out = {}
    for key in sorted(settings):
        spec = spec_for(key)
        helps = [getattr(c, "help", {}) for c in classes] + [ENGINE_HELP] + [c.help for c in _registered()]
        text = next((h[key] for h in helps if key in h), "")
        out[key] = SettingInfo(
            settings[key],
            spec.type_text() if spec else type(settings[key]).__name__,
            spec.range_text() if spec else "",
            text,
        )
    return out


def validate_settings(settings: dict[str, Any]) -> None:
    """Check every setting against its spec (type, range, finite), then the rules across settings:
    ``batch_size`` <= ``n_train``, equal lengths of ``d_filter_sizes`` and ``d_num_filters``, and that a
    ``cuda``/``mps`` device exists. Raises one TextbenchError line naming the key, value and allowed range."""
    for key, value in settings.items():
        spec = spec_for(key)
        if spec is not None and not spec.accepts(value):
            raise TextbenchError(f"setting {key}={value!r}: expected {spec.expected()}")
    s = settings
    if "batch_size" in s and "n_train" in s and s["batch_size"] > s["n_train"]:
        raise TextbenchError(
            f"setting batch_size={s['batch_size']}: larger than the training set (n_train={s['n_train']}); "
            f"expected <= {s['n_train']}"
        )
    if "d_filter_sizes" in s and "d_num_filters" in s and len(s["d_filter_sizes"]) != len(s["d_num_filters"]):
        raise TextbenchError(
            f"settings d_filter_sizes={s['d_filter_sizes']} and d_num_filters={s['d_num_filters']}: "
            "expected one filter count per filter width (equal lengths)"
        )
    if "device" in s:
        check_device(s["device"])


def check_device(device: str) -> None:
    """``cuda``/``cuda:N``/``mps`` must exist on this machine and in this PyTorch build."""
    if device == "cpu":
        return
    import torch

    version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    if device == "mps" and not torch.backends.mps.is_available():
        raise TextbenchError(f"device=mps: no MPS (Apple GPU) device on this machine (torch {version})")
    if device.startswith("cuda"):
        if torch.version.cuda is None:
            raise TextbenchError(f"device={device}: this PyTorch build has no CUDA device (torch {version}, CPU build)")
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise TextbenchError(f"device={device}: no CUDA device visible (torch {version}, CUDA {torch.version.cuda} build)")
        index = int(device.partition(":")[2] or 0)
        if index >= n:
            raise TextbenchError(f"device={device}: only {n} CUDA device(s) visible (cuda:0 to cuda:{n - 1})")


def merge_defaults(*layers: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge named default layers; a key defined by two layers with different meanings is a bug."""
    out: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, layer in layers:
        for k, v in layer.items():
            if k in out and k not in ENGINE_DEFAULTS:
                raise ValueError(f"setting {k!r} is defined by both {owner[k]} and {name}")
            out[k] = v
            owner[k] = name
    return out


def parse_value(key: str, text: str, default: Any) -> Any:
    """Parse ``--set`` text by the key's spec (or, without one, the type of the default)."""
    spec = spec_for(key)
    if spec is None:
        if isinstance(default, (list, tuple)):
            spec = Spec("list", item="int" if default and isinstance(default[0], int) else "float")
        else:
            spec = Spec({bool: "bool", int: "int", float: "float"}.get(type(default), "str"))
    try:
        return spec.parse(text)
    except ValueError:
        raise TextbenchError(
            f"setting {key}={text!r}: expected {spec.expected()}"
        ) from None


def apply_overrides(settings: dict[str, Any], overrides: dict[str, Any] | list[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings (CLI) or a dict of typed values; unknown keys are an error."""
    out = dict(settings)
    items = overrides.items() if isinstance(overrides, dict) else [split_key_value(o) for o in overrides]
    for key, value in items:
        if key not in out:
            close = difflib.get_close_matches(key, list(out), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(out))}"
            raise TextbenchError(f"unknown setting {key!r}{hint}")
        out[key] = parse_value(key, value, out[key]) if isinstance(value, str) else value
    for k, v in out.items():
        if isinstance(v, tuple):
            out[k] = list(v)
    return out


def split_key_value(item: str, option: str = "--set") -> tuple[str, str]:
    """``'key=value'`` (text given to ``option``) as (key, value), stripped; one clear error without ``=``."""
    if "=" not in item:
        raise TextbenchError(f"{option} expects key=value, got {item!r}")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()
