"""Settings: engine defaults < suite defaults < algorithm defaults < profile < ``--set key=value``.

All settings live in one flat namespace (a key means the same thing wherever it appears), so that
``config.json`` of a run is a single dictionary that fully determines it.
"""

from __future__ import annotations

import difflib
from typing import Any

from .errors import TextbenchError

ENGINE_DEFAULTS: dict[str, Any] = {
    "steps": 1000,  # training steps (one algorithm update each; an MLE step is one minibatch)
    "batch_size": 64,
    "eval_every": 100,  # evaluate after every this many steps (and at step 0 and at the end)
    "eval_samples": 9984,  # fresh samples per evaluation (protocol §2.1: 156 x 64)
    "final_samples": 9984,  # samples written to samples.txt at the end
    "checkpoint_every": 0,  # 0: checkpoint at every evaluation
    "device": "cpu",
}

ENGINE_HELP: dict[str, str] = {
    "steps": "number of training steps",
    "batch_size": "sequences per minibatch",
    "eval_every": "evaluate every N steps",
    "eval_samples": "generator samples per evaluation",
    "final_samples": "samples written to samples.txt",
    "checkpoint_every": "checkpoint every N steps (0 = at each evaluation)",
    "device": "torch device (cpu, cuda)",
}


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
    """Parse ``text`` with the type of the default value."""
    try:
        if isinstance(default, bool):
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(float(text)) if float(text).is_integer() else int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (tuple, list)):
            parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
            kind = type(default[0]) if default else float
            return [kind(p) for p in parts]
        if default is None:
            return None if text.lower() in ("none", "null", "") else text
        return str(text)
    except ValueError:
        raise TextbenchError(
            f"setting {key}={text!r}: expected {type(default).__name__} (default {default!r})"
        ) from None


def apply_overrides(settings: dict[str, Any], overrides: dict[str, Any] | list[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings (CLI) or a dict of typed values; unknown keys are an error."""
    out = dict(settings)
    items = overrides.items() if isinstance(overrides, dict) else [_split(o) for o in overrides]
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


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise TextbenchError(f"--set expects key=value, got {item!r}")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()
