"""pytest plugin for the fault matrix: the lab's cloud APIs misbehave during the drill's Nth step.

Loaded only by the fault matrix's drill subprocess (`-p fault_at`, tests/lab on PYTHONPATH), never
by the product's conftest, so an ordinary drill meets no fault of ours.

  DRILL_FAULT_AT="<step>:<kind>:<count>"   e.g. "4:throttle:2", "11:partial:1", "15:5xx:50"
  DRILL_FAULT_ENDPOINTS=<file>             the running lab's endpoints.json (its control endpoint)
  DRILL_FAULT_MARKER=<file>                JSON: the rules armed, their hits, how the step ended

Just before step N's function runs (`pytest_bdd_before_step_call`, numbering as the abort matrix's,
tests/lab/abort_at.py) the rules of `kind` are armed on every surface that can answer it, each for
the next `count` matching calls (lab.faults; `fault_rules`); when the step ends they are read back
(hits) and removed, so the unwind meets the lab as it is. Stale rules stay through the next step of
the same scenario too: a change is read back by the step that checks it ("Then … settles"). A step that fails ends the session after
its scenario (later phases could only fail at their first step); the drill unwinds as after any
failure. An earlier step's failure means step N was not reached: nothing is armed.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from abort_at import DrillStep, _write_json, drill_steps

KINDS = ("throttle", "5xx", "hang", "stale", "partial")
# The API surfaces a drill step may call; Terraform answers throttle/5xx only beyond the budget (its
# provider gave up: exit 1) and partial.
API_SURFACES = ("aws", "arm", "kube", "blob")
SDK_BUDGET = 5  # more calls than this per surface are beyond every client's retries (drivers/retries.py)


def fault_rules(kind: str, count: int) -> list[dict[str, Any]]:
    """The rules one cell arms: `kind` on every surface that answers it, for the next `count` calls each."""
    if kind not in KINDS:
        raise ValueError(f"fault kind {kind!r}: one of {', '.join(KINDS)}")
    if kind == "partial":
        return [{"surface": "terraform", "kind": "partial", "match": cmd, "count": count} for cmd in ("apply", "destroy")]
    rules = [{"surface": s, "kind": kind, "match": "*", "count": count} for s in API_SURFACES]
    if kind in ("throttle", "5xx") and count > SDK_BUDGET:
        # azurerm retries ARM's 429s and 5xx itself: Terraform fails only once they are beyond its budget too.
        rules.append({"surface": "terraform", "kind": kind, "match": "apply", "count": count})
    return rules


def parse_spec(spec: str) -> tuple[int, str, int]:
    parts = spec.strip().split(":")
    if len(parts) != 3 or parts[1] not in KINDS:
        raise ValueError(f"DRILL_FAULT_AT={spec!r}: expected <step>:<{'|'.join(KINDS)}>:<count>")
    step, count = int(parts[0]), int(parts[2])
    if step < 1 or count < 1:
        raise ValueError(f"DRILL_FAULT_AT={spec!r}: the step is 1-based and the count positive")
    return step, parts[1], count


class FaultAt:
    def __init__(self, spec: str, endpoints: dict[str, Any], marker: Path) -> None:
        self.step, self.kind, self.count = parse_spec(spec)
        self.endpoints = endpoints
        self.marker = marker
        self.steps = {(s.feature, s.line): s for s in drill_steps()}
        if self.step > len(self.steps):
            raise ValueError(f"DRILL_FAULT_AT: step {self.step} does not exist (the drill has {len(self.steps)} steps)")
        self.failed: dict[str, Any] | None = None
        self.armed: list[dict[str, Any]] = []
        self.started = 0.0
        self.faulted: DrillStep | None = None  # the step the rules were armed for, until they are removed
        self.later_failure: str | None = None

    def _index(self, feature: Any, step: Any) -> DrillStep | None:
        return self.steps.get((Path(feature.filename).name, step.line_number))

    def _control(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        from lab.client import control

        return control(self.endpoints, "/faults", method=method, timeout=10, body=body)

    @pytest.hookimpl(tryfirst=True)
    def pytest_bdd_before_step_call(self, request: pytest.FixtureRequest, feature: Any, step: Any) -> None:
        st = self._index(feature, step)
        if st is None or st.index != self.step:
            return
        if self.failed is not None:
            _write_json(self.marker, {"reached": False, "step": self.step,
                                      "reason": f"step {self.failed['step']} failed first: {self.failed['error']}"})
            request.session.shouldstop = f"fault matrix: step {self.step} not reached"
            return
        self.armed = [self._control("POST", rule) for rule in fault_rules(self.kind, self.count)]
        self.started = time.time()
        self.faulted = st

    def _window_over(self, st: DrillStep, error: str | None) -> bool:
        """Whether the rules' window ends with step `st` (ending as `error` says)."""
        if self.faulted is None:
            return False
        if error is None and st.index == self.faulted.index and self.kind == "stale":
            nxt = next((s for s in self.steps.values() if s.index == st.index + 1), None)
            if nxt is not None and nxt.phase == st.phase:
                return False  # through the next step: the one that reads the change back
        return True

    def _step_over(self, st: DrillStep, error: str | None) -> None:
        faulted, self.faulted = self.faulted, None
        assert faulted is not None
        gone = self._control("DELETE")["cleared"]
        hits: dict[str, int] = {}
        keys: list[str] = []
        for rule in gone:
            if rule["hits"]:
                hits[rule["surface"]] = hits.get(rule["surface"], 0) + len(rule["hits"])
                keys += [f"{rule['surface']} {h['key']}" for h in rule["hits"]]
        _write_json(self.marker, {
            "reached": True, "step": faulted.index, "text": f"{faulted.keyword} {faulted.text}", "phase": faulted.phase,
            "kind": self.kind, "count": self.count, "hits": hits, "calls": keys[:40], "until_step": st.index,
            "step_failed": error is not None, "failed_step": st.index if error else None, "error": error,
            "seconds": round(time.time() - self.started, 1),
        })

    def pytest_bdd_after_step(self, feature: Any, step: Any) -> None:
        st = self._index(feature, step)
        if st is not None and self._window_over(st, None):
            self._step_over(st, None)

    def pytest_bdd_step_error(self, request: pytest.FixtureRequest, feature: Any, step: Any, exception: Exception) -> None:
        st = self._index(feature, step)
        if st is None:
            return
        error = f"{type(exception).__name__}: {str(exception).splitlines()[0] if str(exception) else ''}"[:400]
        if self._window_over(st, error):
            self._step_over(st, error)
            request.session.shouldstop = f"fault matrix: step {st.index} failed under {self.kind}"
        elif st.index > self.step and self.later_failure is None:
            self.later_failure = error
            self._note_later_failure(st, error)
        elif self.failed is None and st.index < self.step:
            self.failed = {"step": st.index, "error": error}
            _write_json(self.marker, {"reached": False, "step": self.step, "reason": f"step {st.index} failed first: {error}"})
            request.session.shouldstop = f"fault matrix: step {self.step} not reached"


    def _note_later_failure(self, st: DrillStep, error: str) -> None:
        """A step after the faulted one failed (an objective missed because of the fault's delay, say)."""
        try:
            marker = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return
        marker.update(failed_step=st.index, error=error)
        _write_json(self.marker, marker)


def pytest_configure(config: pytest.Config) -> None:
    spec = os.environ.get("DRILL_FAULT_AT")
    if not spec:
        return
    marker, endpoints = os.environ.get("DRILL_FAULT_MARKER"), os.environ.get("DRILL_FAULT_ENDPOINTS")
    if not marker or not endpoints:
        raise pytest.UsageError("DRILL_FAULT_AT needs DRILL_FAULT_MARKER and DRILL_FAULT_ENDPOINTS")
    try:
        plugin = FaultAt(spec, json.loads(Path(endpoints).read_text()), Path(marker))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    config.pluginmanager.register(plugin, "fault-at")
