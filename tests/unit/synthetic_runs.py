"""Synthetic sealed drill bundles for the evidence tests: a summary.json as a drill writes it, sealed
the way a drill seals (drill.seal.seal_bundle: chain link, manifest, attestation, head)."""
from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drill.seal import seal_bundle

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARGETS = {"phase1": 6.0, "phase2-data": 30.0, "phase2": 90.0, "phase3": 20.0}


def summary(run_id: str, started: datetime, rtos: dict[str, float | None], *, target: str = "lab",
            rpo: float | None = 0.5, downtime: float = 0.0, verdict: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    phases = [{"name": n, "title": n, "rto_seconds": v, "rto_target_seconds": TARGETS.get(n, 10.0),
               "passed": v is not None and v <= TARGETS.get(n, 10.0), "measured": "synthetic"} for n, v in rtos.items()]
    ok = all(p["passed"] for p in phases) and (rpo is None or rpo <= 10.0)
    return {
        "schema_version": 1, "run_id": run_id, "target": target, "time_scale": 30.0, "dry_run": dry_run,
        "started_at": started.isoformat(timespec="milliseconds"),
        "finished_at": (started + timedelta(minutes=3)).isoformat(timespec="milliseconds"),
        "duration_seconds": 180.0, "operator": "tester", "git_revision": "0" * 40, "harness_version": "0.1.0",
        "phases": phases, "rpo_seconds": rpo, "rpo_target_seconds": None if rpo is None else 10.0,
        "downtime_seconds": downtime, "verdict": verdict or ("dry-run" if dry_run else ("passed" if ok else "failed")),
    }


def make_run(root: Path, started: datetime, rtos: dict[str, float | None] | None = None, *, key: Any = None,
             **kw: Any) -> Path:
    """reports/evidence/<run-id>/ for a run that started at `started`, sealed (signed with `key`)."""
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    b = Path(root) / run_id
    b.mkdir(parents=True)
    full = {"phase1": 5.3, "phase2-data": 25.0, "phase2": 80.0, "phase3": 8.0}
    (b / "summary.json").write_text(json.dumps(summary(run_id, started, full if rtos is None else rtos, **kw), indent=2))
    (b / "environment.json").write_text(json.dumps({"python": "3.11", "operator": "tester"}))
    (b / "timeline.jsonl").write_text('{"t": 1, "mono": 1, "status": 200, "latency_ms": 3, "class": "aws", "error": null}\n')
    seal_bundle(b, key)
    return b
