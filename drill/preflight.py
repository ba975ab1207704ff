"""Preflight: would the drill's plan work against the real clouds? Named findings, before any change.

Some mistakes only show on the real clouds, half-way through a drill (an IP address as a CloudFront
origin, an App Gateway backend that its subnet cannot reach, a database client without a TLS CA, no
way to get credentials for a cluster created mid-drill). A preflight check finds such a problem
from the target and from facts read without changing anything, and names it:
`preflight.<name>: <what is wrong and what the real service does with it>`.

Checks are pure functions of the target and a mapping of facts (gathered by `steps/preflight.py`
through the drivers), registered with `@check`. They run in a dry run (each finding printed and in
summary.json's `preflight`), in readiness (`pytest -m readiness`: one verdict per check), and before a
real drill's first change (a finding refuses the drill, like the production guard).
Core module: no SDK imports.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping

from drill.config import Target

PHASES = ("phase1", "phase2", "phase3")


@dataclass(frozen=True)
class Finding:
    check: str  # "preflight.<name>"
    phase: str  # the first phase that would fail on it
    detail: str  # one sentence starting with the check's name
    runbook_step: str | None = None  # the runbook step that makes the same mistake, if any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# A check returns None when all is well, else the problem in words (without its name).
CheckFn = Callable[[Target, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class _Check:
    name: str
    phase: str
    fn: CheckFn
    runbook_step: str | None
    needs: tuple[str, ...]  # target sections without which the check does not apply


_CHECKS: dict[str, _Check] = {}


def check(name: str, phase: str, *, runbook_step: str | None = None,
          needs: Iterable[str] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register a preflight check `preflight.<name>` for `phase` (and the phases after it)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")

    def register(fn: CheckFn) -> CheckFn:
        if name in _CHECKS:
            raise ValueError(f"preflight check {name!r} registered twice")
        _CHECKS[name] = _Check(name, phase, fn, runbook_step, tuple(needs))
        return fn

    return register


def names(phases: Iterable[str] = PHASES) -> list[str]:
    wanted = set(phases)
    return [f"preflight.{c.name}" for c in _CHECKS.values() if c.phase in wanted]


def applicable(target: Target, phases: Iterable[str] = PHASES) -> list[str]:
    """The checks that apply to this target and these phases (their sections are present)."""
    wanted = set(phases)
    return [f"preflight.{c.name}" for c in _CHECKS.values()
            if c.phase in wanted and all(getattr(target, s, None) is not None for s in c.needs)]


def run(target: Target, facts: Mapping[str, Any], phases: Iterable[str] = PHASES) -> list[Finding]:
    """Every finding for the selected phases, in registration order. A check that raises is a finding too."""
    wanted = set(phases)
    out: list[Finding] = []
    for c in _CHECKS.values():
        if c.phase not in wanted or any(getattr(target, s, None) is None for s in c.needs):
            continue
        name = f"preflight.{c.name}"
        try:
            problem = c.fn(target, facts)
        except Exception as e:  # a check that cannot decide must not read as a pass
            problem = f"could not be checked: {type(e).__name__}: {e}"
        if problem:
            out.append(Finding(name, c.phase, f"{name}: {problem}", c.runbook_step))
    return out
