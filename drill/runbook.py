"""Where the runbook is wrong: the steps the drill had to carry out differently, and why.

The runbook (`dr-failover-test-guide.md`) was written by hand; some of its steps, as written, are
refused or fail on the real clouds (see shared/notes/production-truth.md). The drill does what works
and records each departure here, so the report can tell the operators, step by step, what to fix in
their runbook ("runbook step 2.6 as written is refused by CloudFront; the drill used …").
Core module: stdlib only.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

RUNBOOK = "dr-failover-test-guide.md"


@dataclass(frozen=True)
class Deviation:
    step: str  # the runbook's step number, e.g. "2.6"
    as_written: str  # what the runbook does, in a few words (e.g. "sets the secondary origin to $APPGW_IP")
    refused_because: str  # what the real cloud does with it, and why (name the documented behaviour)
    drill_did: str  # what the drill did instead
    source: str = ""  # the document that says so (e.g. "CloudFront Developer Guide, Origin settings")

    def sentence(self) -> str:
        """One line for reports: 'runbook step 2.6 as written … ; the drill …'."""
        return (f"runbook step {self.step} as written ({self.as_written}) {self.refused_because}; "
                f"the drill {self.drill_did}" + (f" [{self.source}]" if self.source else ""))

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _key(step: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in step.split("."))
    except ValueError:
        return (10**6,)


class Deviations:
    """The departures recorded during one run, once each, in the runbook's step order."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Deviation] = {}

    def record(self, deviation: Deviation) -> Deviation:
        self._items.setdefault((deviation.step, deviation.as_written), deviation)
        return deviation

    def __iter__(self) -> Any:
        return iter(sorted(self._items.values(), key=lambda d: _key(d.step)))

    def __len__(self) -> int:
        return len(self._items)

    def as_list(self) -> list[dict[str, str]]:
        return [d.as_dict() for d in self]


def from_summary(items: Iterable[Any] | None) -> list[Deviation]:
    """Deviations back from summary.json (tolerant: a malformed entry is skipped, not fatal)."""
    out = []
    for d in items or []:
        if isinstance(d, dict):
            try:
                out.append(Deviation(**{k: str(d.get(k, "")) for k in ("step", "as_written", "refused_because", "drill_did", "source")}))
            except TypeError:
                continue
    return sorted(out, key=lambda d: _key(d.step))
