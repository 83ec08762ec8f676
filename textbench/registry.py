"""Name -> implementation registries for algorithms, suites, metrics and profiles.

Adding an algorithm is one new module under ``textbench/algorithms/`` that decorates a class with
``@register_algorithm("name", "one-line description")``; the package imports every module in those
folders on first use, so nothing else has to be edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from .errors import TextbenchError


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    obj: Any


class Registry:
    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self.package = package
        self._entries: dict[str, Entry] = {}
        self._loaded = package is None

    def register(self, name: str, description: str) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, description, obj)
            return obj

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        self._load()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise TextbenchError(f"unknown {self.kind} {name!r}; known: {known}")
        return self._entries[name]

    def entries(self) -> list[Entry]:
        self._load()
        return [self._entries[k] for k in sorted(self._entries)]

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


ALGORITHMS = Registry("algorithm", "textbench.algorithms")
SUITES = Registry("suite", "textbench.suites")
METRICS = Registry("metric", "textbench.metrics")
PROFILES = Registry("profile")

register_algorithm = ALGORITHMS.register
register_suite = SUITES.register
register_metric = METRICS.register

PROFILES.register("quick", "small and fast: finishes in about 2 minutes on 2 CPU cores and still shows learning")(
    "quick"
)
PROFILES.register("paper", "the published settings of the paper / reference implementation (hours on CPU)")("paper")
