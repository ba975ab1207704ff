"""One OpenTelemetry trace per drill: the run, a span per phase, per executed step and per ledger change.

Built with opentelemetry-sdk once the drill is over, from what the run recorded (each Gherkin step's
start and end, each ledger entry's recorded/applied/undone instants), with explicit timestamps, so
the trace is the drill as it happened, unaffected by how it ended. The root span is the run
(`dr_drill.run_id`, target, verdict); each phase is a child of it, each step a child of its phase,
each ledger change a child of the phase it was made in (or of the run: the end-of-run unwind).

Written to the evidence as OTLP/JSON (the ExportTraceServiceRequest of the OTLP specification in
its JSON encoding, as the OpenTelemetry Collector's file exporter writes it, so it can be replayed
into any OTLP receiver), and exported with OTLP/HTTP (protobuf) to `monitoring.otlp_traces_endpoint`
when one is configured. An export that fails is reported, not fatal.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]  # protobuf ships no stubs
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from drill import __version__


def _ns(t: float) -> int:
    return int(t * 1e9)


def build_spans(run: Any, summary: dict[str, Any]) -> list[ReadableSpan]:
    """The drill's spans (ended), from the run's recorded steps and ledger."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "dr-drill", "service.version": __version__,
        "dr_drill.run_id": run.run_id, "dr_drill.target": run.target.name,
    }))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("dr-drill", __version__)
    started = run.started.t
    finished = started + float(summary.get("duration_seconds") or 0.0)
    root = tracer.start_span(f"drill {run.run_id}", start_time=_ns(started), attributes={
        "dr_drill.run_id": run.run_id, "dr_drill.target": run.target.name, "dr_drill.verdict": str(summary["verdict"]),
        "dr_drill.dry_run": bool(summary.get("dry_run")), "dr_drill.time_scale": float(run.target.time_scale),
        "dr_drill.downtime_seconds": float(summary.get("downtime_seconds") or 0.0),
        **({"dr_drill.stopped_by": str(summary["stopped_by"])} if summary.get("stopped_by") else {}),
    })
    root_ctx = trace.set_span_in_context(root)
    phases: dict[str, tuple[float, float]] = {}
    for st in run.steps:
        lo, hi = phases.get(st["phase"], (st["start"], st["end"]))
        phases[st["phase"]] = (min(lo, st["start"]), max(hi, st["end"]))
    results = {p["name"]: p for p in summary.get("phases") or []}
    phase_spans: dict[str, Any] = {}
    for name, (lo, hi) in sorted(phases.items(), key=lambda kv: kv[1][0]):
        attrs: dict[str, Any] = {"dr_drill.run_id": run.run_id, "dr_drill.phase": name}
        for key, r in results.items():
            if key == name or key.startswith(name + "-"):  # phase2 also measured phase2-data
                prefix = f"dr_drill.{key}"
                if r.get("rto_seconds") is not None:
                    attrs[f"{prefix}.rto_seconds"] = float(r["rto_seconds"])
                attrs[f"{prefix}.rto_target_seconds"] = float(r["rto_target_seconds"])
                attrs[f"{prefix}.passed"] = bool(r["passed"])
        span = tracer.start_span(name, context=root_ctx, start_time=_ns(lo), attributes=attrs)
        phase_spans[name] = (span, lo, hi)
    for st in run.steps:
        span, _, _ = phase_spans[st["phase"]]
        s = tracer.start_span(st["step"], context=trace.set_span_in_context(span), start_time=_ns(st["start"]),
                              attributes={"dr_drill.run_id": run.run_id, "dr_drill.phase": st["phase"],
                                          "dr_drill.scenario": st["scenario"], "dr_drill.step.status": st["status"]})
        if st["status"] == "failed":
            s.set_status(Status(StatusCode.ERROR, st.get("error") or "step failed"))
        s.end(end_time=_ns(st["end"]))
    for e in run.ledger.entries:
        at = float(e.recorded_at)
        parent = next((sp for sp, lo, hi in phase_spans.values() if lo <= at <= hi), root)
        end = max(at, *(float(x) for x in (e.applied_at, e.undone_at) if x is not None))
        s = tracer.start_span(f"change #{e.id}: {e.change.op}", context=trace.set_span_in_context(parent), start_time=_ns(at),
                              attributes={"dr_drill.run_id": run.run_id, "dr_drill.ledger.id": e.id,
                                          "dr_drill.ledger.change": run.evidence.mask(e.change.description),
                                          "dr_drill.ledger.inverse": run.evidence.mask(e.inverse.description),
                                          "dr_drill.ledger.state": e.state})
        if e.state == "undo_failed":
            s.set_status(Status(StatusCode.ERROR, run.evidence.mask(e.error or "undo failed")))
        s.end(end_time=_ns(end))
    for span, _, hi in phase_spans.values():
        span.end(end_time=_ns(hi))
    if summary["verdict"] == "failed":
        root.set_status(Status(StatusCode.ERROR, "drill failed"))
    root.end(end_time=_ns(max(finished, started)))
    provider.shutdown()
    return list(memory.get_finished_spans())


def otlp_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """The OTLP/JSON document (ExportTraceServiceRequest) of `spans`."""
    return MessageToDict(encode_spans(spans))


def export_trace(run: Any, summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write the trace to `path`; export it over OTLP/HTTP when the target names an endpoint."""
    try:
        spans = build_spans(run, summary)
    except Exception as e:  # noqa: BLE001 — the evidence is still written; the report says the trace is missing
        return {"file": None, "error": f"{type(e).__name__}: {e}"}
    path.write_text(json.dumps(otlp_json(spans), indent=1) + "\n", encoding="utf-8")
    trace_id = format(spans[0].context.trace_id, "032x") if spans else None
    report: dict[str, Any] = {"file": path.name, "spans": len(spans), "trace_id": trace_id}
    endpoint = run.target.monitoring.otlp_traces_endpoint
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult

        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=10)
        try:
            result = exporter.export(spans)
            report["endpoint"] = endpoint
            report["exported"] = result == SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
    return report
