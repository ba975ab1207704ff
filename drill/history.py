"""Every drill of a target over time: per-phase RTO vs target, RPO, downtime, verdict; regressions;
days since the last passing drill. Core module (stdlib; the chart is drill.history_chart).

Read from sealed bundles (drill.chain.discover): a run whose bundle does not verify is listed as
EDITED and never counts — not as a baseline, not as the last passing drill. Dry runs are listed and
never count either (they prove no objective).

**Regression rule.** A figure (a phase's RTO, the RPO, downtime) regresses when it is worse than
the median of the same figure over the previous `window` counting runs (default 5) by more than
`ratio` of that median (default 20 %) *and* by more than `floor` seconds (default 30 real-world
seconds, i.e. floor / time_scale on the wall clock). The median keeps one odd run from moving the
baseline; the floor keeps jitter on small figures (an RPO of 0.4 s against 0.2 s) from being
called a regression. A phase that was reached before and is not reached now has regressed.

**Staleness.** The last passing drill is the newest counting run whose verdict is `passed` and
that ran every phase in `passing_phases` (a Phase 1-only drill does not prove a failover); more
than `stale_after_days` calendar days since it finished (or none on record) is stale — quarterly
drills give 90. Readiness reports it as the check `drills.last_passing`.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drill import chain

PHASE_ORDER = ("phase1", "phase2-data", "phase2", "phase3")


@dataclass(frozen=True)
class Thresholds:
    ratio: float = 0.2
    floor_seconds: float = 30.0  # real-world
    window: int = 5
    stale_after_days: float = 90.0
    passing_phases: tuple[str, ...] = ("phase1", "phase2", "phase3")

    @classmethod
    def from_config(cls, evidence: Any) -> Thresholds:
        return cls(evidence.regression_ratio, evidence.regression_floor_seconds, evidence.regression_window,
                   evidence.stale_after_days, tuple(evidence.passing_phases))


@dataclass
class Run:
    run_id: str
    target: str
    path: str
    started_at: datetime | None
    finished_at: datetime | None
    verdict: str
    dry_run: bool
    time_scale: float
    phases: dict[str, dict[str, Any]]  # name → {rto_seconds, rto_target_seconds, passed}
    rpo_seconds: float | None
    rpo_target_seconds: float | None
    downtime_seconds: float | None
    duration_seconds: float | None
    operator: str | None
    intact: bool
    problems: list[str] = field(default_factory=list)

    @property
    def counts(self) -> bool:
        """Counts for baselines and staleness: intact and not a dry run."""
        return self.intact and not self.dry_run and self.verdict in ("passed", "failed")

    def figures(self) -> dict[str, tuple[float | None, float | None]]:
        """name → (value, target) in wall seconds; value None = not reached / not measured."""
        out: dict[str, tuple[float | None, float | None]] = {}
        for name, p in self.phases.items():
            out[f"{name} RTO"] = (p.get("rto_seconds"), p.get("rto_target_seconds"))
        if self.rpo_seconds is not None or self.rpo_target_seconds is not None:
            out["RPO"] = (self.rpo_seconds, self.rpo_target_seconds)
        if self.downtime_seconds is not None:
            out["downtime"] = (self.downtime_seconds, None)
        return out

    def covers(self, phases: Iterable[str]) -> bool:
        return all(any(n == p or n.startswith(f"{p}-") for n in self.phases) for p in phases)


def _time(value: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    if t is not None and t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_from(sealed: chain.Sealed, extra_problems: Sequence[str] = ()) -> Run:
    s = chain.load_summary(sealed) or {}
    phases = {}
    for p in s.get("phases") or []:
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            phases[p["name"]] = {"rto_seconds": _num(p.get("rto_seconds")),
                                 "rto_target_seconds": _num(p.get("rto_target_seconds")), "passed": bool(p.get("passed"))}
    problems = list(sealed.problems) + list(extra_problems)
    return Run(
        run_id=sealed.run_id, target=sealed.target, path=str(sealed.path),
        started_at=_time(s.get("started_at")), finished_at=_time(s.get("finished_at")),
        verdict=str(s.get("verdict", "unknown")), dry_run=bool(s.get("dry_run")),
        time_scale=_num(s.get("time_scale")) or 1.0, phases=phases,
        rpo_seconds=_num(s.get("rpo_seconds")), rpo_target_seconds=_num(s.get("rpo_target_seconds")),
        downtime_seconds=_num(s.get("downtime_seconds")), duration_seconds=_num(s.get("duration_seconds")),
        operator=s.get("operator"), intact=not problems, problems=problems,
    )


def load(root: Path, target: str | None = None, extra_problems: dict[str, list[str]] | None = None) -> list[Run]:
    """Every sealed drill run under `root` (of one target), oldest first.

    extra_problems: run id → problems found beyond the manifest (a signature check), which make
    the run EDITED like a changed file does.
    """
    runs = [run_from(s, (extra_problems or {}).get(s.run_id, ())) for s in chain.discover(root, target)]
    return sorted(runs, key=lambda r: (r.started_at or datetime.min.replace(tzinfo=UTC), r.run_id))


# -- regressions -------------------------------------------------------------------------------------
@dataclass
class Regression:
    run_id: str
    figure: str
    value: float | None  # None: not reached
    baseline: float  # median of the previous counting runs
    runs: int  # how many runs the median is of
    threshold: float  # the value above which it is a regression (wall seconds)

    def sentence(self) -> str:
        got = "not reached" if self.value is None else f"{self.value:.2f}s"
        worse = "" if self.value is None or self.baseline <= 0 else f" (+{(self.value / self.baseline - 1) * 100:.0f}%)"
        return (f"run {self.run_id}: {self.figure} {got}{worse} vs the median {self.baseline:.2f}s of the previous "
                f"{self.runs} run(s); regression above {self.threshold:.2f}s")


def regressions(runs: Sequence[Run], t: Thresholds = Thresholds()) -> list[Regression]:
    """Every figure of every counting run that is worse than its baseline beyond the thresholds."""
    out: list[Regression] = []
    seen: list[Run] = []
    for run in runs:
        if not run.counts:
            continue
        for name, (value, _) in run.figures().items():
            earlier = [r.figures()[name][0] for r in seen if name in r.figures()]
            before = [v for v in earlier if v is not None][-t.window:]
            if not before:
                continue
            base = statistics.median(before)
            limit = base + max(t.ratio * base, t.floor_seconds / (run.time_scale or 1.0))
            if value is None or value > limit:
                out.append(Regression(run.run_id, name, value, round(base, 3), len(before), round(limit, 3)))
        seen.append(run)
    return out


# -- staleness ---------------------------------------------------------------------------------------
@dataclass
class Staleness:
    last: Run | None
    days: float | None
    stale: bool
    limit_days: float
    phases: tuple[str, ...]

    def sentence(self) -> str:
        scope = ", ".join(self.phases)
        if self.last is None:
            return f"no passing drill covering {scope} on record: stale (limit {self.limit_days:g} days)"
        when = (self.last.finished_at or self.last.started_at)
        state = "STALE" if self.stale else "within"
        return (f"last passing drill covering {scope}: run {self.last.run_id}, finished "
                f"{when.strftime('%Y-%m-%d %H:%M UTC') if when else '?'}, {self.days:.1f} day(s) ago: "
                f"{state} the limit of {self.limit_days:g} days")


def staleness(runs: Sequence[Run], t: Thresholds = Thresholds(), now: datetime | None = None) -> Staleness:
    now = now or datetime.now(UTC)
    passing = [(when, r) for r in runs if r.counts and r.verdict == "passed" and r.covers(t.passing_phases)
               and (when := r.finished_at or r.started_at) is not None]
    if not passing:
        return Staleness(None, None, True, t.stale_after_days, t.passing_phases)
    when, last = max(passing, key=lambda p: p[0])
    days = (now - when).total_seconds() / 86400
    return Staleness(last, days, days > t.stale_after_days, t.stale_after_days, t.passing_phases)


# -- output ------------------------------------------------------------------------------------------
def phase_names(runs: Sequence[Run]) -> list[str]:
    names = {n for r in runs for n in r.phases}
    return sorted(names, key=lambda n: (PHASE_ORDER.index(n) if n in PHASE_ORDER else len(PHASE_ORDER), n))


def _cell(value: float | None, target: float | None) -> str:
    v = "—" if value is None else f"{value:.2f}"
    return v if target is None else f"{v}/{target:.2f}"


def table_lines(runs: Sequence[Run], regs: Sequence[Regression], stale: Staleness, t: Thresholds = Thresholds()) -> list[str]:
    """The history as a terminal table (wall-clock seconds, measured/target), then regressions and staleness."""
    phases = phase_names(runs)
    flagged: dict[str, list[str]] = {}
    for g in regs:
        flagged.setdefault(g.run_id, []).append(g.figure)
    head = ["run", "started (UTC)", "verdict"] + [f"{p} RTO s" for p in phases] + ["RPO s", "downtime s", "flags"]
    rows = [head]
    for r in runs:
        flags = []
        if not r.intact:
            flags.append("EDITED")
        if r.dry_run:
            flags.append("dry run")
        if r.run_id in flagged:
            flags.append("REGRESSION: " + ", ".join(flagged[r.run_id]))
        cells = [r.run_id, r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "?", r.verdict]
        for p in phases:
            ph = r.phases.get(p)
            cells.append("" if ph is None else _cell(ph["rto_seconds"], ph["rto_target_seconds"]))
        cells.append("" if r.rpo_seconds is None and r.rpo_target_seconds is None else _cell(r.rpo_seconds, r.rpo_target_seconds))
        cells.append("" if r.downtime_seconds is None else f"{r.downtime_seconds:.2f}")
        cells.append("; ".join(flags))
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append("")
    lines.append(f"regressions (worse than the median of the previous {t.window} runs by > {t.ratio * 100:g}% "
                 f"and > {t.floor_seconds:g}s real-world): {len(regs) or 'none'}")
    lines += [f"  {g.sentence()}" for g in regs]
    for r in runs:
        if not r.intact:
            lines.append(f"  EDITED run {r.run_id} (left out of baselines): {'; '.join(r.problems[:2])}")
    lines.append(stale.sentence())
    return lines


def run_dict(r: Run) -> dict[str, Any]:
    d = asdict(r)
    d["started_at"] = r.started_at.isoformat() if r.started_at else None
    d["finished_at"] = r.finished_at.isoformat() if r.finished_at else None
    return d


def as_json(target: str, runs: Sequence[Run], regs: Sequence[Regression], stale: Staleness, t: Thresholds) -> str:
    return json.dumps({
        "target": target,
        "runs": [run_dict(r) for r in runs],
        "regressions": [asdict(g) for g in regs],
        "last_passing": {"run_id": stale.last.run_id if stale.last else None, "days": None if stale.days is None else round(stale.days, 3),
                         "stale": stale.stale, "limit_days": stale.limit_days, "phases": list(stale.phases)},
        "thresholds": asdict(t),
    }, indent=2, default=str)


def as_csv(runs: Sequence[Run], regs: Sequence[Regression]) -> str:
    phases = phase_names(runs)
    flagged: dict[str, list[str]] = {}
    for g in regs:
        flagged.setdefault(g.run_id, []).append(g.figure)
    cols = ["run_id", "target", "started_at", "finished_at", "verdict", "dry_run", "intact"]
    for p in phases:
        cols += [f"{p}_rto_seconds", f"{p}_rto_target_seconds", f"{p}_passed"]
    cols += ["rpo_seconds", "rpo_target_seconds", "downtime_seconds", "regressions"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in runs:
        row: list[Any] = [r.run_id, r.target, r.started_at.isoformat() if r.started_at else "",
                          r.finished_at.isoformat() if r.finished_at else "", r.verdict, r.dry_run, r.intact]
        for p in phases:
            ph = r.phases.get(p) or {}
            row += [ph.get("rto_seconds", ""), ph.get("rto_target_seconds", ""), ph.get("passed", "")]
        row += ["" if r.rpo_seconds is None else r.rpo_seconds, "" if r.rpo_target_seconds is None else r.rpo_target_seconds,
                "" if r.downtime_seconds is None else r.downtime_seconds, ";".join(flagged.get(r.run_id, []))]
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()
