"""The registries: discovery of every module, errors for unknown and doubly registered names."""

import pytest

from textbench.errors import TextbenchError
from textbench.registry import ALGORITHMS, METRICS, SUITES, Registry


def test_every_algorithm_suite_and_metric_is_discovered():
    assert {"mle", "cot", "seqgan", "rankgan", "maligan", "gcn", "leakgan"} <= set(ALGORITHMS.names())
    assert {"synthetic", "coco", "emnlp"} <= set(SUITES.names())
    assert {"nll_oracle", "nll_test", "jsd", "cot_jsd", "bleu"} <= set(METRICS.names())
    assert ALGORITHMS.names() == sorted(ALGORITHMS.names())
    assert all(e.description for e in ALGORITHMS.entries() + SUITES.entries())


def test_unknown_name_is_one_clear_error_listing_the_known_ones():
    with pytest.raises(TextbenchError, match=r"unknown algorithm 'nope'; known: .*cot.*mle"):
        ALGORITHMS.get("nope")
    assert "nope" not in ALGORITHMS and "cot" in ALGORITHMS


def test_a_name_registered_twice_is_refused_and_re_registering_the_same_object_is_not():
    reg = Registry("widget")
    obj = object()
    reg.register("a", "first")(obj)
    reg.register("a", "first again")(obj)  # module re-import: the same object
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a", "other")(object())
    assert reg.get("a") is obj and reg.names() == ["a"]
