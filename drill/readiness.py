"""Readiness verdicts and the judgements behind them: is DR ready today? (core: no SDK imports)

A readiness run (features/cloudfront/readiness.feature) measures what the runbook relies on and compares each
measurement with its threshold. One check, one `Verdict`: its name (`area.what`, e.g.
`backups.freshness`), whether it passed, the measured value and the threshold, and a sentence that
starts with the check's name, so a failing run names what is broken wherever the sentence lands
(pytest's short summary, Allure, readiness.json, readiness.md).

The pure judgements used by the checks live here too, so they are unit-tested without a lab:
backup spacing, the lifecycle rule that applies to the backups, a `terraform plan`'s proposed
actions, and the comparison of a restored backup with the primary.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

READINESS_SCHEMA_VERSION = 1
AREAS = ("backups", "cdn", "aws", "azure", "credentials", "preflight", "drills")


@dataclass
class Verdict:
    check: str  # area.what, e.g. "backups.freshness"
    passed: bool
    measured: Any  # JSON-able: a number, a name, a small mapping
    threshold: Any
    detail: str  # one sentence starting with the check's name
    unit: str | None = None
    at: str | None = None  # ISO 8601 UTC, when measured
    seconds: float | None = None  # how long the measurement took
    data: dict[str, Any] = field(default_factory=dict)  # supporting facts for auditors

    @property
    def area(self) -> str:
        return self.check.split(".", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["area"] = self.area
        return d


def sentence(check: str, text: str) -> str:
    """`check: text` — every verdict's detail starts with its check's name."""
    return f"{check}: {text}"


def overall(verdicts: Sequence[Verdict], failed_tests: Sequence[str] = ()) -> str:
    """`ready` only if at least one check ran, every check passed and no test failed otherwise."""
    return "ready" if verdicts and all(v.passed for v in verdicts) and not failed_tests else "not ready"


def fmt(value: Any, unit: str | None = None) -> str:
    if isinstance(value, float):
        text = f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.0f}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(x) for x in value) if value else "(none)"
    elif isinstance(value, dict):
        text = "; ".join(f"{k}={fmt(v)}" for k, v in value.items()) if value else "(none)"
    elif value is None:
        text = "—"
    else:
        text = str(value)
    return f"{text} {unit}" if unit and value is not None and not isinstance(value, (dict, list, tuple)) else text


def render_markdown(meta: Mapping[str, Any], verdicts: Sequence[Verdict]) -> str:
    """readiness.md: the verdict table an operator reads first."""
    lines = [
        f"# DR readiness {meta.get('run_id', '')} on {meta.get('target', '')}: {str(meta.get('verdict', '')).upper()}",
        "",
        f"- started {meta.get('started_at')}, took {meta.get('duration_seconds')} s; operator {meta.get('operator')}",
        f"- time scale {meta.get('time_scale')} (thresholds below are wall-clock seconds on this target)",
        f"- {sum(v.passed for v in verdicts)} of {len(verdicts)} checks passed",
    ]
    for t in meta.get("failed_tests") or []:
        lines.append(f"- failed outside a check: `{t}`")
    lines += ["", "| check | verdict | measured | threshold | detail |", "|---|---|---|---|---|"]
    for v in verdicts:
        cells = [
            f"`{v.check}`", "PASS" if v.passed else "**FAIL**", fmt(v.measured, v.unit), fmt(v.threshold, v.unit),
            v.detail.split(": ", 1)[-1],
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def table_lines(verdicts: Sequence[Verdict], width: int = 100) -> list[str]:
    """The verdict table for a terminal: one line per check, `measured | threshold`."""
    name_w = max([len(v.check) for v in verdicts] + [5])
    room = max(20, (width - name_w - 12) // 2)
    out = []
    for v in verdicts:
        line = (f"  {'PASS' if v.passed else 'FAIL'}  {v.check:<{name_w}}  {_clip(fmt(v.measured, v.unit), room)}"
                f" | {fmt(v.threshold, v.unit)}")
        out.append(_clip(line, width))
    return out


# -- backups -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupTime:
    name: str
    started: float  # dump start, Unix seconds
    precise: bool  # from sub-second metadata (else the name's whole second)


@dataclass(frozen=True)
class Gap:
    earlier: str
    later: str
    seconds: float


def backup_spacing(
    backups: Sequence[BackupTime], now: float, window: float, interval: float, tolerance: float,
) -> tuple[list[BackupTime], list[Gap], float | None]:
    """Backups judged for the schedule over [now - window, now], and the gaps in it.

    The last backup before the window is included, so a gap that straddles the window's start
    counts. A gap is a spacing longer than `tolerance` x `interval` (plus one second when a side
    only has its name's whole-second time). Returns (backups judged, gaps, largest spacing).
    """
    ordered = sorted(backups, key=lambda b: b.started)
    inside = [b for b in ordered if b.started >= now - window]
    before = [b for b in ordered if b.started < now - window]
    judged = before[-1:] + inside
    gaps: list[Gap] = []
    largest: float | None = None
    for a, b in itertools.pairwise(judged):
        dt = b.started - a.started
        largest = dt if largest is None else max(largest, dt)
        slack = 0.0 if (a.precise and b.precise) else 1.0
        if dt > tolerance * interval + slack:
            gaps.append(Gap(a.name, b.name, round(dt, 3)))
    return judged, gaps, largest


# -- lifecycle policy ----------------------------------------------------------------------------------
def lifecycle_delete_days(policy: Mapping[str, Any] | None, container: str, prefix: str) -> list[tuple[str, float]]:
    """(rule name, days) of each enabled rule that deletes base blobs under container/prefix.

    `policy` is the management policy in ARM's JSON shape (`{"properties": {"policy": {"rules": [...]}}}`
    or just `{"rules": [...]}`). Azure's prefixMatch strings start with the container name; a rule
    without prefixMatch applies to the whole account. Days: after last modification, else creation.
    """
    if not policy:
        return []
    body = policy.get("properties", policy)
    body = body.get("policy", body)
    target = f"{container}/{prefix}"
    out = []
    for rule in body.get("rules") or []:
        if not rule.get("enabled", True) or str(rule.get("type", "Lifecycle")) != "Lifecycle":
            continue
        definition = rule.get("definition") or {}
        filters = definition.get("filters") or {}
        blob_types = filters.get("blobTypes") or ["blockBlob"]
        prefixes = filters.get("prefixMatch") or [""]
        if "blockBlob" not in blob_types or not any(target.startswith(p) or p.startswith(target) for p in prefixes):
            continue
        delete = ((definition.get("actions") or {}).get("baseBlob") or {}).get("delete") or {}
        days = delete.get("daysAfterModificationGreaterThan", delete.get("daysAfterCreationGreaterThan"))
        if days is not None:
            out.append((str(rule.get("name", "?")), float(days)))
    return out


# -- terraform plan -----------------------------------------------------------------------------------
_PLAN_ACTION = re.compile(
    r"^\s*# (?P<addr>\S+) (?P<what>will be created|will be updated in-place|must be replaced|will be destroyed|"
    r"will be read during apply|has moved to \S+|will be imported|will no longer be managed by Terraform)",
    re.M,
)
# "Objects have changed outside of Terraform": `has changed` (noted) or `has been deleted` (drift).
_OUTSIDE = re.compile(r"^\s*# (?P<addr>\S+) (?P<what>has changed|has been deleted)\s*$", re.M)
_PLAN_SUMMARY = re.compile(r"^Plan: (?P<body>.*?)\.?\s*$", re.M)
_PLAN_COUNT = re.compile(r"(\d+) to (import|add|change|destroy|forget)")
_NO_CHANGES = re.compile(r"^No changes\.", re.M)
ACTION_OF = {
    "will be created": "create", "will be updated in-place": "update", "must be replaced": "replace",
    "will be destroyed": "destroy", "will be read during apply": "read", "will be imported": "import",
    "will no longer be managed by Terraform": "forget",
}


@dataclass
class PlanSummary:
    """What a `terraform plan` (human output, -no-color) proposes."""

    counts: dict[str, int]  # add / change / destroy (/ import / forget), from the "Plan:" line
    actions: list[tuple[str, str]]  # (address, create|update|replace|destroy|read|move|import|forget)
    no_changes: bool
    # Changes made outside Terraform that refresh found: (address, "changed" | "deleted").
    outside: list[tuple[str, str]] = field(default_factory=list)

    @property
    def creations(self) -> list[str]:
        return [a for a, act in self.actions if act == "create"]

    @property
    def drift(self) -> list[tuple[str, str]]:
        """Proposed actions on what exists: anything but a creation (or a data read / a move); and
        anything of the stack deleted outside Terraform (its re-creation would look like a creation)."""
        return ([(a, act) for a, act in self.actions if act not in ("create", "read", "move")]
                + [(a, "deleted outside Terraform") for a, what in self.outside if what == "deleted"])

    @property
    def clean(self) -> bool:
        """Clean: nothing to change, or only creations (of a stack that is normally destroyed)."""
        counted = any(self.counts.get(k, 0) for k in ("change", "destroy", "forget"))
        return not counted and not self.drift


def parse_plan(stdout: str) -> PlanSummary:
    actions = []
    for m in _PLAN_ACTION.finditer(stdout):
        what = m.group("what")
        actions.append((m.group("addr"), "move" if what.startswith("has moved") else ACTION_OF[what]))
    counts: dict[str, int] = {}
    summary = _PLAN_SUMMARY.search(stdout)
    if summary:
        for n, kind in _PLAN_COUNT.findall(summary.group("body")):
            counts[kind] = int(n)
    outside = [(m.group("addr"), "deleted" if m.group("what") == "has been deleted" else "changed")
               for m in _OUTSIDE.finditer(stdout)]
    return PlanSummary(counts, actions, bool(_NO_CHANGES.search(stdout)), outside)


# -- restored backup vs primary -------------------------------------------------------------------------
def compare_restore(
    primary_counts: Mapping[str, int],
    restored_counts: Mapping[str, int],
    primary_fingerprints: Mapping[str, Any],
    restored_fingerprints: Mapping[str, Any],
    reference: Iterable[str],
    append_only: Iterable[str],
) -> list[str]:
    """Problems (empty = the restore matches): reference tables equal in rows and fingerprint,
    append-only tables no larger in the restore than on the primary."""
    problems = []
    for t in reference:
        if restored_counts.get(t) != primary_counts.get(t):
            problems.append(f"{t} has {restored_counts.get(t)} rows restored, {primary_counts.get(t)} on the primary")
        elif restored_fingerprints.get(t) != primary_fingerprints.get(t):
            problems.append(f"{t} differs from the primary (same {primary_counts.get(t)} rows, different contents)")
    for t in append_only:
        r, p = restored_counts.get(t), primary_counts.get(t)
        if r is None or p is None:
            problems.append(f"{t} could not be counted (restored {r}, primary {p})")
        elif r > p:
            problems.append(f"{t} has {r} rows restored but only {p} on the primary (the backup is not of this primary, "
                            "or the primary lost rows)")
    return problems
