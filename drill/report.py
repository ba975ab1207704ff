"""report.md and report.html of an evidence bundle: the run, its objectives, the timeline and the checklist.

`render_markdown` and `render_html` turn a bundle into the human-readable report; the HTML is
self-contained (inline CSS, the timeline PNG embedded as base64) and escapes every value it shows.
Both renderers show the same sections in the same order from the same rows (`_header`,
`_objectives`, `_facts`, …), side by side here so that a section added to one is added to the other;
what each checklist item is and how it is proven is drill/checklist.py's. Core module: stdlib only.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

from drill.checklist import (
    DRY_RUN,
    FAILED,
    ITEMS,
    NOT_PROVEN,
    NOT_RUN,
    PASSED,
    PHASE_TITLES,
    STATUSES,
    Check,
    Item,
    _secs,  # the proofs' wording of seconds, so the report and its evidence sentences agree
    evaluate,
)
from drill.runbook import RUNBOOK, from_summary
from drill.vantages import REPORT_PHASE_HEAD, REPORT_VANTAGE_HEAD, report_tables

MARK = {PASSED: "✅", FAILED: "❌", NOT_PROVEN: "⚠️", NOT_RUN: "⏭️", DRY_RUN: "📝"}


def _objectives(s: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(measure, measured, target, real-world, result) rows."""
    rows = []
    scale = s.get("time_scale")
    scaled = scale not in (None, 1, 1.0)
    for p in s.get("phases") or []:
        if not isinstance(p, dict):
            continue
        rto = p.get("rto_seconds")
        real = p.get("rto_real_equivalent_seconds")
        rt = p.get("rto_target_real_seconds")
        rows.append((
            f"{p.get('name')} RTO — {p.get('title', '')}",
            "not reached" if rto is None else _secs(rto),
            _secs(p.get("rto_target_seconds")),
            (f"≈ {real:g} s / {rt:g} s" if isinstance(real, (int, float)) and isinstance(rt, (int, float)) else
             f"— / {rt:g} s" if isinstance(rt, (int, float)) else "—") if scaled else "—",
            "PASS" if p.get("passed") else "FAIL",
        ))
    rpo = s.get("rpo") if isinstance(s.get("rpo"), dict) else None
    if rpo:
        rows.append(("RPO — fault → the restored backup's consistency point",
                     _secs(rpo.get("rpo_seconds")) if rpo.get("rpo_seconds") is not None else "not measured",
                     _secs(rpo.get("rpo_target_seconds")),
                     f"— / {rpo['rpo_target_real_seconds']:g} s"
                     if scaled and isinstance(rpo.get("rpo_target_real_seconds"), (int, float)) else "—",
                     "PASS" if rpo.get("passed") else "FAIL"))
    raw_alarms = s.get("alarms")
    alarms: dict[str, Any] = raw_alarms if isinstance(raw_alarms, dict) else {}
    factor = float(scale) if scaled and isinstance(scale, (int, float)) else None
    for phase, dets in (alarms.get("phases") or {}).items():
        for d in dets if isinstance(dets, list) else []:
            if not isinstance(d, dict):
                continue
            target = d.get("objective_seconds")
            for what, key in (("in ALARM", "detection_seconds"), ("notified", "notification_seconds")):
                v = d.get(key)
                rows.append((f"{phase} detection — {d.get('alarm')} {what} after the fault",
                             "never" if v is None else _secs(v), _secs(target),
                             f"≈ {v * factor:g} s / {target * factor:g} s" if factor and isinstance(v, (int, float))
                             and isinstance(target, (int, float)) else "—",
                             "PASS" if isinstance(v, (int, float)) and isinstance(target, (int, float)) and v <= target else "FAIL"))
    for c in alarms.get("clear") or []:
        if isinstance(c, dict):
            v, target = c.get("clear_seconds"), c.get("objective_seconds")
            rows.append((f"alarm clear — {c.get('alarm')} OK again after the restore"
                         + (" (cleared BEFORE the restore, during the outage)" if c.get("cleared_before_restore") else ""),
                         "never" if v is None else _secs(v), _secs(target),
                         f"≈ {v * factor:g} s / {target * factor:g} s" if factor and isinstance(v, (int, float))
                         and isinstance(target, (int, float)) else "—",
                         "PASS" if c.get("passed") else "FAIL"))
    return rows


def _alarm_facts(s: dict[str, Any]) -> list[tuple[str, str]]:
    """Which alarm fired when: one line per alarm, from summary.json's `alarms`."""
    raw_alarms = s.get("alarms")
    alarms: dict[str, Any] = raw_alarms if isinstance(raw_alarms, dict) else {}
    clears = {c.get("alarm"): c for c in alarms.get("clear") or [] if isinstance(c, dict)}
    out = []
    for phase, dets in (alarms.get("phases") or {}).items():
        for d in dets if isinstance(dets, list) else []:
            if not isinstance(d, dict):
                continue
            c = clears.get(d.get("alarm")) or {}
            text = ("never entered ALARM after the fault" if d.get("fired_at") is None else
                    f"ALARM at {d.get('fired_at')} (fault +{_secs(d.get('detection_seconds'))}); "
                    + ("notification never delivered" if d.get("notified_at") is None
                       else f"notified at {d.get('notified_at')} (fault +{_secs(d.get('notification_seconds'))})"))
            if c:
                text += ("; OK again at " + str(c.get("cleared_at")) + f" (restore {float(c['clear_seconds']):+.2f} s)"
                         if c.get("clear_seconds") is not None else f"; still {c.get('state_now')} after the restore")
            if d.get("reason"):
                text += f" — {d['reason']}"
            out.append((f"alarm {d.get('alarm')} ({phase})", text))
    for x in alarms.get("not_evaluated") or []:
        if isinstance(x, dict):
            out.append((f"alarm {x.get('alarm')} ({x.get('phase')})", f"not evaluated: {x.get('why')}"))
    return out


def _facts(s: dict[str, Any]) -> list[tuple[str, str]]:
    trans = " → ".join(str(t.get("class")) for t in (s.get("transitions") or []) if isinstance(t, dict)) or "(no sustained state)"
    by_class = ", ".join(f"{k} {v:.2f} s" for k, v in (s.get("seconds_by_class") or {}).items() if isinstance(v, (int, float)))
    out = [
        ("users saw", trans),
        ("downtime (errors)", f"{_secs(s.get('downtime_seconds'))} over {s.get('requests', '?')} probe requests"
                              + (f"; unobserved {_secs(s.get('unobserved_seconds'))}" if s.get("unobserved_seconds") else "")),
        ("time by class", by_class or "—"),
    ]
    for iv in s.get("downtime_intervals") or []:
        if isinstance(iv, dict):
            out.append(("error interval", f"{iv.get('from')} → {iv.get('to')} ({_secs(iv.get('seconds'))})"))
    if isinstance(s.get("failback_data_loss"), dict):
        out.append(("lost on failback", f"{s['failback_data_loss'].get('total')} row(s) {s['failback_data_loss'].get('rows')} — "
                                        f"{s['failback_data_loss'].get('policy', '')}"))
    out += _alarm_facts(s)
    outage_write = s.get("outage_write")
    writes = outage_write if isinstance(outage_write, dict) else {}
    for phase, w in writes.items():
        if isinstance(w, dict):
            b = _as_dict(w.get("behavior"))
            out.append((f"user write through the site, {phase}",
                        f"users saw {w.get('users_saw')}; POST {w.get('path')} (behavior {b.get('path_pattern')} → "
                        f"{b.get('target_kind')} {b.get('target')}) got status {w.get('status')}, "
                        f"{'accepted' if w.get('accepted') else 'refused'}; rows in the primary {w.get('rows_in_primary')}"))
    return out


def _as_dict(value: Any) -> dict[str, Any]:
    """An object of the evidence, or an empty one where it is missing or malformed."""
    return value if isinstance(value, dict) else {}


def _restore(s: dict[str, Any]) -> list[tuple[str, str]]:
    r = _as_dict(s.get("restore"))
    rows = [
        ("changes undone at the end", str(r.get("unwound", "?"))),
        ("users at the end", str(r.get("site_class"))),
        ("back on AWS after", _secs(r.get("seconds")) if r.get("seconds") is not None else "—"),
    ]
    for f in r.get("failures") or []:
        rows.append(("rollback FAILURE", str(f)))
    diff = s.get("baseline_diff") or r.get("baseline_diff") or []
    rows.append(("state vs before the drill", "unchanged" if not diff else f"{len(diff)} difference(s)"))
    for d in diff:
        rows.append(("difference", str(d)))
    return rows


def _runbook_rows(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(step, as written, what the real cloud does, what the drill did) for each runbook correction."""
    return [(d.step, d.as_written, d.refused_because, d.drill_did + (f" [{d.source}]" if d.source else ""))
            for d in from_summary(s.get("runbook_deviations"))]


def _preflight(s: dict[str, Any]) -> list[str] | None:
    """Preflight findings' sentences; None when preflight did not run."""
    found = s.get("preflight")
    if not isinstance(found, list):
        return None
    return [str(f.get("detail")) if isinstance(f, dict) else str(f) for f in found]


def _header(s: dict[str, Any]) -> list[tuple[str, str]]:
    scale = s.get("time_scale")
    return [
        ("run", str(s.get("run_id", "?"))),
        ("target", f"{s.get('target', '?')}" + (f" (time scale ×{scale:g}: objectives are real-world seconds ÷ {scale:g})"
                                                if isinstance(scale, (int, float)) and scale != 1 else "")),
        ("verdict", str(s.get("verdict", "unknown (no summary: the run was interrupted)")).upper()),
        ("operator", str(s.get("operator", "?"))),
        ("started / finished", f"{s.get('started_at', '?')} / {s.get('finished_at', '?')}"),
        ("duration", _secs(s.get("duration_seconds"))),
        ("git revision / harness", f"{s.get('git_revision') or '?'} / {s.get('harness_version', '?')}"),
    ]


def _counts(results: list[tuple[Item, Check]]) -> str:
    return ", ".join(f"{sum(1 for _, c in results if c.status == st)} {st}" for st in STATUSES)


def _md(text: Any) -> str:
    """One Markdown table cell: pipes escaped, newlines as <br>, HTML-ish characters escaped."""
    t = html.escape(str(text), quote=False).replace("|", "\\|")
    return "<br>".join(line for line in t.splitlines()) if "\n" in t else t


def render_markdown(summary: dict[str, Any] | None, actions: Sequence[dict[str, Any]] | None = None,
                    events: Sequence[dict[str, Any]] | None = None, chart: str | None = "timeline.png",
                    files: Iterable[str] = ()) -> str:
    """report.md: the run, its objectives, the timeline chart (a relative link) and the checklist."""
    s = summary if isinstance(summary, dict) else {}
    results = evaluate(s, actions, events)
    L: list[str] = [f"# DR drill report — {_md(s.get('run_id', '?'))}", ""]
    L += [f"Runbook checklist of `{RUNBOOK}` (체크리스트), walked item by item with the measurement that proves each.", ""]
    L += ["| | |", "|---|---|"] + [f"| **{_md(k)}** | {_md(v)} |" for k, v in _header(s)] + [""]
    L += ["## Objectives — measured vs target", ""]
    rows = _objectives(s)
    if rows:
        L += ["| measure | measured | target (wall clock) | real-world | result |", "|---|---|---|---|---|"]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in rows]
    else:
        L += ["No phase measured anything (the run stopped before its first measurement)."]
    L += [""] + [f"- **{_md(k)}**: {_md(v)}" for k, v in _facts(s)] + [""]
    vt_tables = report_tables(s)
    if vt_tables:
        ph_rows, why, each = vt_tables
        names = [r[0] for r in each]
        head = [REPORT_PHASE_HEAD[0], *names, *REPORT_PHASE_HEAD[1:]]
        L += [f"## Vantages — what users at each of {len(names)} places saw", ""]
        L += ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in ph_rows] + [""]
        L += [f"- {_md(w)}" for w in why] + [""]
        L += ["| " + " | ".join(REPORT_VANTAGE_HEAD) + " |", "|" + "---|" * len(REPORT_VANTAGE_HEAD)]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in each] + [""]
    L += ["## Timeline", ""]
    L += [f"![what users saw over time]({chart})" if chart else "_The timeline chart is not available._", ""]
    L += [f"## Checklist (체크리스트) — {_counts(results)}", ""]
    for n in (1, 2, 3):
        ko, en = PHASE_TITLES[n]
        L += [f"### {_md(ko)}", f"_{_md(en)}_", ""]
        L += ["| # | 항목 (runbook) | item | result | evidence | source |", "|---|---|---|---|---|---|"]
        for item, c in results:
            if item.phase == n:
                L.append(f"| {item.number} | {_md(item.ko)} | {_md(item.en)} | {MARK[c.status]} {c.status} | "
                         f"{_md(c.evidence)} | {_md(c.source)} |")
        L.append("")
    deviations = _runbook_rows(s)
    if deviations:
        L += [f"## Where the runbook is wrong — {len(deviations)} step(s) of `{RUNBOOK}` corrected", "",
              "The runbook as written would fail at these steps on the real clouds; the drill did what works. Fix the runbook.", "",
              "| step | the runbook does | on the real clouds | the drill did |", "|---|---|---|---|"]
        L += [f"| {' | '.join(_md(c) for c in r)} |" for r in deviations] + [""]
    found = _preflight(s)
    if found is not None:
        L += ["## Preflight — would the plan work on the real clouds?", ""]
        L += [f"- ❌ {_md(x)}" for x in found] if found else ["No finding."]
        L += [""]
    if s.get("dry_run"):
        L += ["## Plan (dry run: nothing was changed)", "", "| # | change | inverse |", "|---|---|---|"]
        L += [f"| {_md(p.get('id'))} | {_md(p.get('change'))} | {_md(p.get('inverse'))} |" for p in s.get("plan") or []]
        L += ["", "Checks of effects not evaluated (the changes were not made):", ""]
        L += [f"- {_md(x)}" for x in s.get("not_evaluated") or []] + [""]
    L += ["## Rollback and end state", ""] + [f"- **{_md(k)}**: {_md(v)}" for k, v in _restore(s)] + [""]
    if s.get("failed_steps"):
        L += ["## Failed steps", ""] + [f"- {_md(x)}" for x in s["failed_steps"]] + [""]
    if s.get("notes"):
        L += ["## Notes", ""] + [f"- {_md(x)}" for x in s["notes"]] + [""]
    L += ["## How each item is proven", ""]
    L += [f"- **{item.number}** {_md(item.en)}: {_md(item.how)}" for item in ITEMS] + [""]
    files = list(files)
    if files:
        L += ["## Files in this bundle", "", "SHA-256 digests and sizes of every file are in `manifest.json`; "
              "`drill verify <bundle>` checks them.", ""] + [f"- `{_md(f)}`" for f in files] + [""]
    return "\n".join(L)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans KR","Malgun Gothic",sans-serif;
margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top;font-size:.9em;text-align:left}
th{background:#f5f5f5}.passed{background:#e8f5e9}.failed{background:#ffebee}.not-proven{background:#fff8e1}.not-run{background:#eceff1;color:#555}.dry-run{background:#e3f2fd}
.verdict-passed{color:#1b5e20}.verdict-failed{color:#b71c1c}.en{color:#555;font-style:italic}img{max-width:100%;border:1px solid #ddd}
code{background:#f5f5f5;padding:0 3px}.muted{color:#666}
"""


def _h(x: Any) -> str:
    return html.escape(str(x), quote=True)


def render_html(summary: dict[str, Any] | None, actions: Sequence[dict[str, Any]] | None = None,
                events: Sequence[dict[str, Any]] | None = None, png: bytes | None = None,
                files: Iterable[str] = ()) -> str:
    """report.html: the same report, self-contained (inline CSS, the PNG as a data: URI), every value escaped."""
    s = summary if isinstance(summary, dict) else {}
    results = evaluate(s, actions, events)
    verdict = str(s.get("verdict", "unknown")).lower()
    H: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>DR drill report — {_h(s.get('run_id', '?'))}</title>", f"<style>{_CSS}</style></head><body>",
        f"<h1>DR drill report — {_h(s.get('run_id', '?'))} "
        f"<span class=\"verdict-{_h(verdict)}\">{_h(verdict.upper())}</span></h1>",
        f"<p>Runbook checklist of <code>{_h(RUNBOOK)}</code> (체크리스트), walked item by item with the measurement that proves each.</p>",
        "<table>" + "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in _header(s)) + "</table>",
        "<h2>Objectives — measured vs target</h2>",
    ]
    rows = _objectives(s)
    if rows:
        H.append("<table><tr><th>measure</th><th>measured</th><th>target (wall clock)</th><th>real-world</th><th>result</th></tr>"
                 + "".join("<tr class=\"{}\">".format("passed" if r[4] == "PASS" else "failed")
                           + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
    else:
        H.append("<p>No phase measured anything (the run stopped before its first measurement).</p>")
    H.append("<ul>" + "".join(f"<li><b>{_h(k)}</b>: {_h(v)}</li>" for k, v in _facts(s)) + "</ul>")
    vt_tables = report_tables(s)
    if vt_tables:
        ph_rows, why, each = vt_tables
        names = [r[0] for r in each]
        head = [REPORT_PHASE_HEAD[0], *names, *REPORT_PHASE_HEAD[1:]]
        H.append(f"<h2>Vantages — what users at each of {len(names)} places saw</h2>")
        H.append("<table><tr>" + "".join(f"<th>{_h(h)}</th>" for h in head) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in ph_rows) + "</table>")
        H.append("<ul>" + "".join(f"<li>{_h(w)}</li>" for w in why) + "</ul>")
        H.append("<table><tr>" + "".join(f"<th>{_h(h)}</th>" for h in REPORT_VANTAGE_HEAD) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in each) + "</table>")
    H.append("<h2>Timeline</h2>")
    if png:
        H.append(f'<img alt="what users saw over time" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
    else:
        H.append('<p class="muted">The timeline chart is not available.</p>')
    H.append(f"<h2>Checklist (체크리스트) — {_h(_counts(results))}</h2>")
    for n in (1, 2, 3):
        ko, en = PHASE_TITLES[n]
        H.append(f'<h3>{_h(ko)}</h3><p class="en">{_h(en)}</p>')
        H.append("<table><tr><th>#</th><th>항목 (runbook)</th><th>item</th><th>result</th><th>evidence</th><th>source</th></tr>")
        for item, c in results:
            if item.phase == n:
                H.append(f'<tr class="{_h(c.status.replace(" ", "-"))}"><td>{_h(item.number)}</td><td lang="ko">{_h(item.ko)}</td>'
                         f"<td>{_h(item.en)}</td><td>{MARK[c.status]} {_h(c.status)}</td><td>{_h(c.evidence)}</td>"
                         f"<td>{_h(c.source)}</td></tr>")
        H.append("</table>")
    deviations = _runbook_rows(s)
    if deviations:
        H.append(f"<h2>Where the runbook is wrong — {len(deviations)} step(s) of <code>{_h(RUNBOOK)}</code> corrected</h2>"
                 "<p>The runbook as written would fail at these steps on the real clouds; the drill did what works. Fix the runbook.</p>"
                 "<table><tr><th>step</th><th>the runbook does</th><th>on the real clouds</th><th>the drill did</th></tr>"
                 + "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in deviations) + "</table>")
    found = _preflight(s)
    if found is not None:
        H.append("<h2>Preflight — would the plan work on the real clouds?</h2>"
                 + ("<ul>" + "".join(f'<li class="failed">❌ {_h(x)}</li>' for x in found) + "</ul>" if found else "<p>No finding.</p>"))
    if s.get("dry_run"):
        H.append("<h2>Plan (dry run: nothing was changed)</h2><table><tr><th>#</th><th>change</th><th>inverse</th></tr>"
                 + "".join(f"<tr><td>{_h(p.get('id'))}</td><td>{_h(p.get('change'))}</td><td>{_h(p.get('inverse'))}</td></tr>"
                           for p in s.get("plan") or []) + "</table>")
        H.append("<p>Checks of effects not evaluated (the changes were not made):</p><ul>"
                 + "".join(f"<li>{_h(x)}</li>" for x in s.get("not_evaluated") or []) + "</ul>")
    H.append("<h2>Rollback and end state</h2><ul>" + "".join(f"<li><b>{_h(k)}</b>: {_h(v)}</li>" for k, v in _restore(s)) + "</ul>")
    if s.get("failed_steps"):
        H.append("<h2>Failed steps</h2><ul>" + "".join(f"<li>{_h(x)}</li>" for x in s["failed_steps"]) + "</ul>")
    if s.get("notes"):
        H.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_h(x)}</li>" for x in s["notes"]) + "</ul>")
    H.append("<h2>How each item is proven</h2><ul>"
             + "".join(f"<li><b>{_h(i.number)}</b> {_h(i.en)}: {_h(i.how)}</li>" for i in ITEMS) + "</ul>")
    files = list(files)
    if files:
        H.append("<h2>Files in this bundle</h2><p>SHA-256 digests and sizes of every file are in <code>manifest.json</code>; "
                 "<code>drill verify &lt;bundle&gt;</code> checks them.</p><ul>"
                 + "".join(f"<li><code>{_h(f)}</code></li>" for f in files) + "</ul>")
    H.append("</body></html>")
    return "\n".join(H) + "\n"
