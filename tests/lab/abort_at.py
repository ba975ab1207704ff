"""pytest plugin for the abort matrix: interrupt the drill at its Nth step with a signal.

Loaded only by the abort matrix's drill subprocess (`-p abort_at`, with tests/lab on PYTHONPATH),
never by the product's conftest, so an ordinary drill cannot be interrupted by it.

  DRILL_ABORT_AT="<step>:<SIGNAL>[:<delay seconds>]"   e.g. "12:SIGINT:3", "26:SIGKILL"
  DRILL_ABORT_MARKER=<file>                            JSON: where the signal was sent (or why not)
  DRILL_ABORT_STEPLOG=<file>                           optional: one JSON line per step start/end

Steps are numbered 1..30 across the whole drill, the three features in phase order (`drill_steps()`),
so the number names a step whatever happened before it. The signal is sent from
`pytest_bdd_before_step_call`: the step's fixtures are set up (at step 1 the drill run exists and
holds the drill lock) and its function is about to run, so the system is exactly as steps 1..N-1
left it. `before_step` would fire before the drill run exists at step 1; `after_step` is never
called for a failing step and cannot land inside one. With a delay the signal is sent from a timer
thread that many seconds into step N, so long steps (a Terraform apply, a CloudFront deployment)
are interrupted mid-wait; the marker says which step was really running when it went.

If an earlier step fails, the drill did not reach step N as a drill would: nothing is sent, the
marker says "not reached" and why, and the session stops after that scenario (the drill unwinds as
after any failure) instead of running on to later phases.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
# Which system's drill is interrupted (features/<system>/): DRILL_ABORT_SYSTEM, default the CloudFront one.
SYSTEM_VAR = "DRILL_ABORT_SYSTEM"
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def phase_features(features_dir: Path) -> tuple[str, ...]:
    """A system's phase features, in phase order (phase1_*.feature, phase2_*, phase3_*)."""
    return tuple(sorted(p.name for p in features_dir.glob("phase[0-9]_*.feature")))


@dataclass(frozen=True)
class DrillStep:
    index: int  # 1-based across the whole drill
    phase: int  # 1..3
    feature: str  # file name
    line: int  # line in the feature file
    keyword: str  # Given/When/Then/And as written
    text: str
    type: str = ""  # given/when/then: what an And/But continues (pytest-bdd's step type)

    def __str__(self) -> str:
        return f"{self.index:>2} P{self.phase} {self.keyword} {self.text}"


def drill_steps(features_dir: Path | None = None) -> list[DrillStep]:
    """Every step of the full drill, in the order `pytest -m drill` runs them."""
    from pytest_bdd.feature import get_feature

    if features_dir is None:
        features_dir = REPO / "features" / os.environ.get(SYSTEM_VAR, "cloudfront")
    steps: list[DrillStep] = []
    for phase, name in enumerate(phase_features(features_dir), start=1):
        feature = get_feature(str(features_dir), name)
        for scenario in feature.scenarios.values():
            for st in scenario.steps:
                steps.append(DrillStep(len(steps) + 1, phase, name, st.line_number, st.keyword, st.name, st.type))
    return steps


def parse_spec(spec: str) -> tuple[int, str, float]:
    """"12:SIGINT:3" → (12, "SIGINT", 3.0); the delay is optional (0: at the start of the step)."""
    parts = spec.strip().split(":")
    if len(parts) not in (2, 3) or parts[1].upper() not in SIGNALS:
        raise ValueError(f"DRILL_ABORT_AT={spec!r}: expected <step>:<SIGINT|SIGTERM|SIGKILL>[:<delay seconds>]")
    step, sig = int(parts[0]), parts[1].upper()
    delay = float(parts[2]) if len(parts) == 3 else 0.0
    if step < 1 or delay < 0:
        raise ValueError(f"DRILL_ABORT_AT={spec!r}: the step is 1-based and the delay not negative")
    return step, sig, delay


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """Atomically and durably: a SIGKILL follows at once."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class AbortAt:
    def __init__(self, spec: str, marker: Path, steplog: Path | None) -> None:
        self.step, self.signal, self.delay = parse_spec(spec)
        self.marker = marker
        self.steplog = steplog
        self.steps = {(s.feature, s.line): s for s in drill_steps()}
        if self.step > len(self.steps):
            raise ValueError(f"DRILL_ABORT_AT: step {self.step} does not exist (the drill has {len(self.steps)} steps)")
        self.current: int | None = None  # the step whose function is running
        self.done: set[int] = set()
        self.failed: dict[str, Any] | None = None
        self.fired = False
        self._lock = threading.Lock()

    def _index(self, feature: Any, step: Any) -> DrillStep | None:
        return self.steps.get((Path(feature.filename).name, step.line_number))

    def _log(self, event: str, st: DrillStep, **extra: Any) -> None:
        if self.steplog is not None:
            with open(self.steplog, "a", encoding="utf-8") as f:
                f.write(json.dumps({"t": time.time(), "event": event, "step": st.index, **extra}) + "\n")

    def _fire(self, target: DrillStep) -> None:
        with self._lock:
            if self.fired:
                return
            self.fired = True
            running = self.current
            _write_json(self.marker, {
                "reached": True, "step": target.index, "signal": self.signal, "delay": self.delay,
                "in_step": running, "step_finished": target.index in self.done,
                "text": f"{target.keyword} {target.text}", "phase": target.phase,
                "pid": os.getpid(), "fired_at": time.time(),
            })
        os.kill(os.getpid(), SIGNALS[self.signal])

    # -- pytest-bdd hooks -------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_bdd_before_step_call(self, request: pytest.FixtureRequest, feature: Any, step: Any) -> None:
        st = self._index(feature, step)
        if st is None:
            return
        self.current = st.index
        self._log("start", st)
        if st.index != self.step or self.fired:
            return
        if self.failed is not None:
            self._not_reached(request, f"step {self.failed['step']} failed first: {self.failed['error']}")
            return
        if self.delay <= 0:
            self._fire(st)
        else:
            timer = threading.Timer(self.delay, self._fire, args=(st,))
            timer.daemon = True
            timer.start()

    def pytest_bdd_after_step(self, feature: Any, step: Any) -> None:
        st = self._index(feature, step)
        if st is not None:
            self.done.add(st.index)
            self.current = None
            self._log("end", st)

    def pytest_bdd_step_error(self, request: pytest.FixtureRequest, feature: Any, step: Any, exception: Exception) -> None:
        st = self._index(feature, step)
        if st is None:
            return
        self.done.add(st.index)
        self.current = None
        self._log("error", st, error=f"{type(exception).__name__}: {exception}"[:500])
        if self.fired or self.failed is not None:
            return
        first_line = str(exception).splitlines()[0] if str(exception) else ""
        self.failed = {"step": st.index, "error": f"{type(exception).__name__}: {first_line}"[:300]}
        if st.index < self.step:
            self._not_reached(request, f"step {st.index} failed first: {self.failed['error']}")

    def _not_reached(self, request: pytest.FixtureRequest, reason: str) -> None:
        if not self.marker.exists():
            _write_json(self.marker, {"reached": False, "step": self.step, "signal": self.signal, "reason": reason})
        # Later phases would only fail at their first step: stop after this scenario; the drill unwinds.
        request.session.shouldstop = f"abort matrix: step {self.step} not reached ({reason})"


def pytest_configure(config: pytest.Config) -> None:
    spec = os.environ.get("DRILL_ABORT_AT")
    if not spec:
        return
    marker = os.environ.get("DRILL_ABORT_MARKER")
    if not marker:
        raise pytest.UsageError("DRILL_ABORT_AT needs DRILL_ABORT_MARKER (where to record what was sent)")
    steplog = os.environ.get("DRILL_ABORT_STEPLOG")
    try:
        plugin = AbortAt(spec, Path(marker), Path(steplog) if steplog else None)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    config.pluginmanager.register(plugin, "abort-at")
