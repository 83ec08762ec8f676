"""Settings: --set parsing by each key's spec, unknown keys with suggestions, layers defined once."""

import pytest

from textbench.config import ENGINE_DEFAULTS, apply_overrides, merge_defaults, spec_for
from textbench.engine.loop import resolve_settings
from textbench.errors import TextbenchError


def test_set_values_are_parsed_by_the_keys_type():
    base = resolve_settings("cot", "synthetic", "quick")
    out = apply_overrides(base, ["g_lr=0.002", "steps=10", "g_betas=[0.5, 0.9]", "precision=bf16"])
    assert out["g_lr"] == 0.002 and out["steps"] == 10 and out["g_betas"] == [0.5, 0.9] and out["precision"] == "bf16"
    assert isinstance(out["steps"], int) and base["steps"] != 10  # the input is not modified
    assert apply_overrides(base, {"steps": 7})["steps"] == 7  # typed values pass through


def test_unknown_or_malformed_set_is_one_clear_error():
    base = resolve_settings("cot", "synthetic", "quick")
    with pytest.raises(TextbenchError, match="did you mean g_lr"):
        apply_overrides(base, ["g_lrr=0.1"])
    with pytest.raises(TextbenchError, match="key=value"):
        apply_overrides(base, ["steps"])
    with pytest.raises(TextbenchError, match="steps"):
        resolve_settings("cot", "synthetic", "quick", ["steps=ten"])


def test_a_key_defined_by_two_layers_is_a_bug_but_engine_keys_may_be_overridden():
    with pytest.raises(ValueError, match="defined by both"):
        merge_defaults(("suite x", {"k": 1}), ("algorithm y", {"k": 2}))
    assert merge_defaults(("engine", ENGINE_DEFAULTS), ("algorithm y", {"steps": 5}))["steps"] == 5


def test_every_engine_setting_has_a_spec():
    assert all(spec_for(k) is not None for k in ENGINE_DEFAULTS)
