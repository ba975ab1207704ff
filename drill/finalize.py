"""The end of a drill's evidence: one call after summary.json and the other files are written.

    finalize_bundle(bundle, allure_results, mask=masker)

reads the bundle (summary.json, timeline.jsonl, actions.json, target.json, environment.json,
lab-events.jsonl — any of them may be missing: an interrupted run), then writes

    timeline.png   the chart (drill.chart; matplotlib, imported here lazily)
    report.md      the runbook checklist walked item by item, with the measurements (items: drill.checklist; rendering: drill.report)
    report.html    the same, self-contained (the PNG embedded as base64)

the Allure metadata into `allure_results` (drill.allure_meta), and seals the bundle LAST
(drill.seal): `manifest.json` (SHA-256 and size of every other file, and the link to the target's
previous sealed run), then `attestation.json` (the in-toto Statement over every file, signed with
`signing_key` if the target has one). Each part that fails is reported (returned, printed to
stderr, and written into the report's notes) without stopping the others; the bundle is always
sealed. Calling it again re-renders everything and re-seals the bundle, which the next run's chain
link then shows as an edit — so never run it on a bundle you are checking: `drill verify` does that.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drill.allure_meta import write_allure_metadata
from drill.bundle import ATTESTATION_NAME, MANIFEST_NAME
from drill.report import render_html, render_markdown
from drill.seal import seal_bundle
from drill.timeline import Sample, parse_sample, sort_samples

CHART = "timeline.png"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def _json(path: Path, problems: list[str]) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        problems.append(f"{path.name} unreadable: {e}")
        return None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """Objects of a JSONL file, skipping bad lines (a torn last line of an interrupted run)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict):
            out.append(d)
    return out


def _samples(path: Path, problems: list[str]) -> list[Sample]:
    if not path.exists():
        return []
    samples, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            samples.append(parse_sample(line))
        except (ValueError, KeyError, TypeError):
            bad += 1
    if bad:
        problems.append(f"{path.name}: {bad} unreadable line(s) left out of the chart")
    return sort_samples(samples)


def _max_gap(target: Any) -> float | None:
    """The probe's max_gap as the drill used it (drivers.probe.default_max_gap), from target.json."""
    probe = (target or {}).get("probe") if isinstance(target, dict) else None
    if not isinstance(probe, dict):
        return None
    if isinstance(probe.get("max_gap_seconds"), (int, float)):
        return float(probe["max_gap_seconds"])
    rate, timeout = probe.get("rate_per_second"), probe.get("timeout_seconds")
    if isinstance(rate, (int, float)) and rate > 0 and isinstance(timeout, (int, float)):
        return float(timeout) + 2.0 / float(rate)
    return None


def finalize_bundle(
    bundle: Path,
    allure_results: Path | None = None,
    *,
    mask: Callable[[str], str] | None = None,
    allure_report: Path | None = None,
    signing_key: Any = None,
) -> list[str]:
    """Chart, reports, Allure metadata, then manifest.json last. Returns the problems met (empty: none).

    bundle: reports/evidence/<run-id>/ with summary.json etc. already written (masked).
    allure_results: pytest's --alluredir (None: no Allure metadata is written).
    mask: the run's secret masker (drill.evidence.Masker), applied to every text written here.
    allure_report: the previous HTML report whose history/ is carried over
                   (default: `allure-report` beside `allure_results`).
    signing_key: the target's Ed25519 private key (drill.attestation.signing_key), None: unsigned.
    """
    bundle = Path(bundle)
    m = mask or (lambda s: s)
    problems: list[str] = []
    if not bundle.is_dir():
        raise NotADirectoryError(f"not an evidence bundle: {bundle}")

    summary = _json(bundle / "summary.json", problems)
    if not isinstance(summary, dict):
        problems.append("summary.json is missing: the run was interrupted before it finished")
        summary = {"run_id": bundle.name, "verdict": "unknown"}
    actions = _json(bundle / "actions.json", problems)
    actions = actions if isinstance(actions, list) else []
    environment = _json(bundle / "environment.json", problems)
    target = _json(bundle / "target.json", problems)
    events = _jsonl(bundle / "lab-events.jsonl")
    samples = _samples(bundle / "timeline.jsonl", problems)

    png: bytes | None = None
    try:
        from drill.chart import render_timeline

        render_timeline(summary, samples, bundle / CHART, actions=actions, max_gap=_max_gap(target))
        png = (bundle / CHART).read_bytes()
    except Exception as e:  # noqa: BLE001 — no chart is no reason to lose the report and the manifest
        problems.append(f"timeline chart not rendered: {type(e).__name__}: {e}")
        (bundle / CHART).unlink(missing_ok=True)

    shown = dict(summary)
    shown["notes"] = list(summary.get("notes") or []) + [f"report: {p}" for p in problems]
    files = sorted({p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
                   | {REPORT_MD, REPORT_HTML, MANIFEST_NAME, ATTESTATION_NAME} - {f".{MANIFEST_NAME}.tmp"})
    renders: list[tuple[str, Callable[[], str]]] = [
        (REPORT_MD, lambda: render_markdown(shown, actions, events, chart=CHART if png else None, files=files)),
        (REPORT_HTML, lambda: render_html(shown, actions, events, png=png, files=files)),
    ]
    for name, render in renders:
        try:
            (bundle / name).write_text(m(render()), encoding="utf-8")
        except Exception as e:  # noqa: BLE001 — a report that cannot be written is a problem listed in the bundle, not a reason to leave it unsealed
            problems.append(f"{name} not written: {type(e).__name__}: {e}")

    if allure_results is not None:
        try:
            write_allure_metadata(Path(allure_results), summary, environment if isinstance(environment, dict) else None,
                                  report_dir=allure_report, mask=m)
        except Exception as e:  # noqa: BLE001 — Allure metadata is a convenience: its failure is listed, the bundle is still sealed
            problems.append(f"Allure metadata not written: {type(e).__name__}: {e}")

    seal_bundle(bundle, signing_key)  # last: it seals everything above
    for p in problems:
        print(f"dr-drill: evidence {bundle.name}: {p}", file=sys.stderr)
    return problems
