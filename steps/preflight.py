"""Preflight through the drivers: gather the facts the checks in `drill.preflight` judge, run them.

Facts are read without changing anything (the target file, files it names, manifests the drill would
apply, reads of the always-on side). The checks themselves are pure (drill/preflight.py) and are
registered where the knowledge lives: importing this module imports every module that registers some.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from drill import preflight
from drill.config import Target

# Fact gatherers: name -> function of the target. A gatherer that fails leaves its fact out and
# records why under "<name>.error", so the checks that need it say "could not be checked".
_GATHERERS: dict[str, Callable[[Target], Any]] = {}


def fact(name: str) -> Callable[[Callable[[Target], Any]], Callable[[Target], Any]]:
    def register(fn: Callable[[Target], Any]) -> Callable[[Target], Any]:
        _GATHERERS[name] = fn
        return fn

    return register


def gather(target: Target) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name, fn in _GATHERERS.items():
        try:
            facts[name] = fn(target)
        except Exception as e:  # reported by the checks that need this fact, never silently passed
            facts[f"{name}.error"] = f"{type(e).__name__}: {e}"
    return facts


def run(target: Target, phases: Iterable[str] = preflight.PHASES) -> list[preflight.Finding]:
    return preflight.run(target, gather(target), phases)
