"""Which part of the repository a `-m` expression can select.

A drill or readiness run (`pytest -m drill`, `-m "drill and phase2"`, `-m readiness`) selects
scenarios only, and scenarios live under steps/. Collecting tests/ as well (testpaths) imported the
harness's own test modules — moto, hypothesis, the lab's emulators — only to deselect every one of
them: ≈ 10 s of each drill's start on a 2-core machine. `pytest_ignore_collect` skips tests/ when
this module says no test there can match.
"""
from __future__ import annotations

import functools
import itertools
import re

# Markers only scenarios carry (steps/<system>/test_phase*.py, test_readiness.py): no item under
# tests/ has any of them (tests/unit/test_selection.py checks the collected suite).
SCENARIO_MARKERS = frozenset({"drill", "readiness", "phase1", "phase2", "phase3"})
_NAME = re.compile(r"[\w:+\-.\[\]\\/]+")  # an identifier in pytest's expression grammar
_MAX_FREE = 10  # beyond this many other names the expression is not worth enumerating: collect all


@functools.lru_cache(maxsize=32)
def selects_scenarios_only(markexpr: str) -> bool:
    """True when `markexpr` is false for every item without a scenario marker, whatever else it
    is marked with; False when unsure (an empty or unparsable expression, too many names)."""
    if not markexpr.strip():
        return False
    try:
        from _pytest.mark.expression import Expression  # pytest is pinned (pyproject.toml)

        expr = Expression.compile(markexpr)
    except Exception:  # noqa: BLE001 - pytest itself reports a bad -m; here it only means "collect all"
        return False
    free = sorted({n for n in _NAME.findall(markexpr) if n not in ("and", "or", "not")} - SCENARIO_MARKERS)
    if len(free) > _MAX_FREE:
        return False
    for values in itertools.product((False, True), repeat=len(free)):
        marked = {n for n, v in zip(free, values, strict=True) if v}

        def matcher(name: str, /, **kwargs: object) -> bool:
            return name in marked  # noqa: B023 - evaluated right here, in this iteration

        try:
            if expr.evaluate(matcher):
                return False
        except Exception:  # noqa: BLE001 - e.g. a marker-with-arguments form: collect all
            return False
    return True
