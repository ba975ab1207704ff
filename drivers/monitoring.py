"""A drill's figures into the team's Prometheus: a Pushgateway and/or node_exporter's textfile collector.

prometheus-client does the wire formats: `push_to_gateway` (PUT of the job's group, grouped by
target: each drill replaces the previous drill's figures of that target) and `write_to_textfile`
(written to a temporary file and renamed, as the textfile collector requires). The samples are
drill.results_metrics'. A push that fails is reported in summary.json's `monitoring`, not fatal: the
drill's verdict is about the DR plan, and the evidence holds every figure anyway.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from drill.config import Target
from drill.results_metrics import Sample, samples


def registry(items: list[Sample], extra: dict[str, str] | None = None) -> CollectorRegistry:
    """One gauge per metric name (label names from its samples), each sample set."""
    reg = CollectorRegistry()
    extra = extra or {}
    by_name: dict[str, list[Sample]] = {}
    for s in items:
        by_name.setdefault(s.name, []).append(s)
    for name, group in by_name.items():
        labelnames = sorted({*extra, *(k for s in group for k in s.labels)})
        gauge = Gauge(name, group[0].help, labelnames=labelnames, registry=reg)
        for s in group:
            values = {**extra, **s.labels}
            (gauge.labels(**{k: values.get(k, "") for k in labelnames}) if labelnames else gauge).set(s.value)
    return reg


def export_results(target: Target, summary: dict[str, Any]) -> dict[str, Any]:
    """Push and/or write the drill's figures as the target says; what happened, for summary.json."""
    cfg, report = target.monitoring, {}
    items = samples(summary)
    if cfg.pushgateway_url:
        grouping = {"target": target.name}
        try:
            push_to_gateway(cfg.pushgateway_url, job=cfg.pushgateway_job, registry=registry(items), grouping_key=grouping,
                            timeout=10)
            report["pushgateway"] = {"url": cfg.pushgateway_url, "job": cfg.pushgateway_job, "grouping_key": grouping,
                                  "series": len(items), "pushed": True}
        except Exception as e:  # noqa: BLE001 — unreachable or refused: said in the evidence, the drill's verdict stands
            report["pushgateway"] = {"url": cfg.pushgateway_url, "pushed": False, "error": f"{type(e).__name__}: {e}"}
    if cfg.textfile_dir:
        path = Path(cfg.textfile_dir) / f"dr_drill_{target.name.replace('-', '_').replace('.', '_')}.prom"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(path), registry(items, {"target": target.name}))
            report["textfile"] = {"path": str(path), "series": len(items), "written": True}
        except OSError as e:
            report["textfile"] = {"path": str(path), "written": False, "error": f"{type(e).__name__}: {e}"}
    return report
