"""The fault matrix: the lab's cloud APIs misbehave during one step of the drill; is the lab back?

Shared by `benchmarks/fault_matrix.py` (the whole matrix) and `tests/lab/test_fault_matrix.py` (a
few cells in CI). One lab runs apart from the drills (abort_matrix_lib.SharedLab); each cell runs
the drill up to the phase of its step against it, with tests/lab/fault_at.py arming the fault's
rules on every API surface for the duration of that step (lab.faults, through the control endpoint):

  throttle  the services' own throttling errors (AWS 400 Throttling/ThrottlingException, ARM and
            Kubernetes 429 with Retry-After, Blob 503 ServerBusy; Terraform exits 1 with azurerm's 429)
  5xx       500s from every API (Terraform: exit 1 with the provider's 500)
  hang      calls held unanswered past the client's read timeout
  stale     eventually consistent reads returning the previous answer
  partial   `terraform apply`/`destroy` exits 1 after all but the last of its resources

each for the next `count` calls per surface (default 2, within every SDK's retry budget; hang 1,
stale 3). A cell is, read from outside the drill (abort_matrix_lib.Observer, the abort matrix's checks):

  recovered            the drill passed (the SDKs' retries rode the fault out)
  failed-and-restored  the drill failed (at the faulted step or later) and the lab is back at baseline
  NOT restored         anything differs from the baseline after the drill, or the drill reported a
                       failed unwind or a baseline diff
  not hit              the drill passed but the step made no call the fault could answer
  not reached          an earlier step failed (nothing was armed); retried once
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abort_at import DrillStep, drill_steps
from abort_matrix_lib import (
    HERE,
    REPO,
    TAG_VAR,
    Log,
    SharedLab,
    _last_error,
    _summary,
    settle_until_restored,
    unwind_problems,
)
from fault_at import KINDS

DEFAULT_COUNT = {"throttle": 2, "5xx": 2, "hang": 1, "stale": 3, "partial": 1}


def mutating_steps(steps: list[DrillStep] | None = None) -> list[int]:
    """The drill's steps that change something (the ones whose faults an unwind must survive): its
    When steps and the Ands that continue them, read from the features (numbers shift as steps are added)."""
    return [s.index for s in (steps if steps is not None else drill_steps()) if s.type == "when"]
PHASE_FILES = ("steps/cloudfront/test_phase1.py", "steps/cloudfront/test_phase2.py", "steps/cloudfront/test_phase3.py")


@dataclass(frozen=True)
class Cell:
    step: int
    kind: str
    count: int = 0  # 0: DEFAULT_COUNT[kind]

    @property
    def calls(self) -> int:
        return self.count or DEFAULT_COUNT[self.kind]

    @property
    def label(self) -> str:
        return f"step {self.step} × {self.kind}" + (f"×{self.count}" if self.count else "")


@dataclass
class CellResult:
    cell: Cell
    outcome: str  # recovered | failed-and-restored | NOT restored | not hit | not reached
    reasons: list[str] = field(default_factory=list)  # why NOT restored / not reached
    notes: list[str] = field(default_factory=list)  # what the drill said (the failing call, retries)
    seconds: float = 0.0
    attempts: int = 1
    marker: dict[str, Any] | None = None
    workdir: Path | None = None


def drill_argv(reports: Path, endpoints_file: Path, phase: int) -> list[str]:
    """The drill up to `phase` (`pytest -m phase<N>` runs that phase and the ones before it)."""
    return [sys.executable, "-m", "pytest", "-m", f"phase{phase}", "-p", "no:cacheprovider", "-p", "fault_at",
            f"--reports-dir={reports}", f"--alluredir={reports / 'allure-results'}",
            f"--lab-endpoints={endpoints_file}", *PHASE_FILES[:phase]]


def run_cell(lab: SharedLab, cell: Cell, workdir: Path, steps: dict[int, DrillStep], drill_timeout: float = 900.0,
             settle: float = 180.0) -> CellResult:
    assert lab.observer is not None and lab.pristine is not None and lab.endpoints_file is not None
    workdir.mkdir(parents=True, exist_ok=True)
    reports, marker_path, output = workdir / "reports", workdir / "marker.json", workdir / "drill.log"
    tag = uuid.uuid4().hex
    env = dict(os.environ, DRILL_FAULT_AT=f"{cell.step}:{cell.kind}:{cell.calls}", DRILL_FAULT_MARKER=str(marker_path),
               DRILL_FAULT_ENDPOINTS=str(lab.endpoints_file), DRILL_OPERATOR="fault-matrix", **{TAG_VAR: tag})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    result = CellResult(cell, "recovered", workdir=workdir)
    t0 = time.monotonic()
    with open(output, "wb") as out:
        proc = subprocess.Popen(drill_argv(reports, lab.endpoints_file, steps[cell.step].phase), cwd=REPO, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=drill_timeout)
        except BaseException:
            if proc.poll() is None:
                proc.send_signal(2)  # SIGINT: the drill unwinds
                try:
                    proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise
    try:
        result.marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        result.marker = None
    marker = result.marker or {}
    summary = _summary(reports)
    if not marker.get("reached"):
        result.outcome = "not reached"
        result.reasons.append(marker.get("reason") or f"the drill never got to step {cell.step}: {_last_error(output)}")
    elif rc == 0:
        result.outcome = "recovered" if marker.get("hits") else "not hit"
    else:
        result.outcome = "failed-and-restored"
        at = marker.get("failed_step")
        result.notes.append(f"{'step ' + str(at) if at else 'the drill'} failed: {marker.get('error') or _last_error(output)}")
    if summary is None:
        if marker.get("reached"):
            result.reasons.append("the drill wrote no summary.json")
    else:
        result.reasons += unwind_problems(summary)
        failed_calls = Counter(
            f"{c['sdk']} {c['service']} {c['operation']} failed after {c['attempts']} attempt(s) ({', '.join(c['errors'])})"
            for c in summary.get("api_calls") or [] if c.get("outcome") == "failed")
        result.notes += [f"evidence: {text}" + (f" (×{n})" if n > 1 else "") for text, n in failed_calls.items()]
        retried = [c for c in summary.get("api_calls") or [] if c.get("outcome") == "ok"]
        if retried:
            result.notes.append(f"evidence: {len(retried)} call(s) retried and recovered")
    if marker.get("hits"):
        result.notes.insert(0, "hits: " + ", ".join(f"{s} {n}" for s, n in sorted(marker["hits"].items())))
    # Rules the drill left armed (it died mid-step) would answer the observer's reads: gone first.
    from lab.client import clear_faults

    left = clear_faults(lab.endpoints)
    if left:
        result.notes.append(f"{len(left)} fault rule(s) outlived the drill and were removed")
    # Whatever happened, the lab must be back.
    result.reasons += settle_until_restored(lab, tag, settle)
    if result.outcome != "not reached" and result.reasons:
        result.outcome = "NOT restored"
    result.seconds = round(time.monotonic() - t0, 1)
    return result


def run_matrix(cells: Iterable[Cell], root: Path | None = None, retries: int = 1, log: Log = print,
               keep: bool = False) -> list[CellResult]:
    """Run `cells` one after another against one lab (restarted after a NOT restored cell)."""
    cells = list(cells)
    steps = {s.index: s for s in drill_steps()}
    own_root = root is None
    root = Path(root or tempfile.mkdtemp(prefix="dr-drill-fault-matrix-"))
    lab = SharedLab(root, log=log, keep=keep)
    results: list[CellResult] = []
    try:
        lab.start()
        for n, cell in enumerate(cells, start=1):
            attempt = 0
            while True:
                attempt += 1
                log(f"[{n}/{len(cells)}] {cell.label} (attempt {attempt}) …")
                res = run_cell(lab, cell, root / f"cell{n}-{cell.step}-{cell.kind}-{attempt}", steps)
                res.attempts = attempt
                log(f"[{n}/{len(cells)}] {cell.label}: {res.outcome} in {res.seconds:.0f}s"
                    + "".join(f"\n    - {x}" for x in res.reasons + res.notes))
                if res.outcome == "NOT restored" and n < len(cells):
                    lab.restart()
                if res.outcome != "not reached" or attempt > retries:
                    break
            results.append(res)
    finally:
        lab.stop()
        if own_root and not keep and all(r.outcome != "NOT restored" for r in results):
            shutil.rmtree(root, ignore_errors=True)
    return results


def format_matrix(results: list[CellResult], width: int = 60) -> str:
    """The table step × fault → outcome, then what each cell's drill said."""
    steps = {s.index: s for s in drill_steps()}
    def column(c: Cell) -> str:
        return c.kind + (f"×{c.count}" if c.count else "")

    columns = sorted({column(r.cell) for r in results}, key=lambda k: (KINDS.index(k.split("×")[0]), k))
    rows: dict[int, dict[str, CellResult]] = {}
    for r in results:
        rows.setdefault(r.cell.step, {})[column(r.cell)] = r
    head = f"{'step':<{width}}" + "".join(f"  {k:<21}" for k in columns)
    lines = [head, "-" * len(head)]
    for idx, cells in sorted(rows.items()):
        st = steps.get(idx)
        name = f"{idx:>2} P{st.phase} {st.keyword} {st.text}" if st else str(idx)
        name = name if len(name) <= width else name[: width - 1] + "…"
        row = f"{name:<{width}}"
        for k in columns:
            got = cells.get(k)
            row += f"  {'-' if got is None else got.outcome:<21}"
        lines.append(row.rstrip())
    lines.append("")
    for r in results:
        lines.append(f"{r.cell.label}: {r.outcome} ({r.seconds:.0f}s{', try ' + str(r.attempts) if r.attempts > 1 else ''})")
        lines += [f"    - {x}" for x in r.reasons + r.notes]
    counts = Counter(r.outcome for r in results)
    lines.append("")
    lines.append(f"{len(results)} cell(s): " + ", ".join(f"{counts.get(o, 0)} {o}" for o in (
        "recovered", "failed-and-restored", "NOT restored", "not hit", "not reached"))
        + f"; {sum(r.seconds for r in results) / 60:.1f} min of drills")
    return "\n".join(lines)


def parse_cells(steps: str | None, kinds: str | None, count: int = 0, n_steps: int | None = None,
                cells: str | None = None) -> list[Cell]:
    """--steps "4,11-12" (default: the mutating steps) × --kinds "throttle,hang" (default: all five),
    or --cells "4:throttle,15:5xx:50" (step:kind[:count], one by one)."""
    n_steps = n_steps or len(drill_steps())
    if cells:
        out = []
        for spec in cells.split(","):
            parts = spec.strip().split(":")
            if len(parts) not in (2, 3) or parts[1] not in KINDS or not 1 <= int(parts[0]) <= n_steps:
                raise ValueError(f"cell {spec!r}: expected <step 1..{n_steps}>:<{'|'.join(KINDS)}>[:<count>]")
            out.append(Cell(int(parts[0]), parts[1], int(parts[2]) if len(parts) == 3 else count))
        return out
    chosen: list[int] = []
    for part in (steps.split(",") if steps else [str(s) for s in mutating_steps()]):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        for i in range(int(lo), int(hi or lo) + 1):
            if not 1 <= i <= n_steps:
                raise ValueError(f"step {i} does not exist: the drill has steps 1..{n_steps}")
            chosen.append(i)
    ks = [k.strip() for k in (kinds.split(",") if kinds else KINDS) if k.strip()]
    for k in ks:
        if k not in KINDS:
            raise ValueError(f"unknown fault kind {k!r}: {', '.join(KINDS)}")
    return [Cell(i, k, count) for i in chosen for k in ks]
