"""Server-side Tables for `kubectl get`: the columns and cells the real API server returns."""
from __future__ import annotations

import time
from typing import Any

from lab.kube.resources import parse_rfc3339


def _age(ts: str | None) -> str:
    """kubectl's HumanDuration."""
    if not ts:
        return "<unknown>"
    s = int(time.time() - parse_rfc3339(ts))
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def _pod_cells(p: dict[str, Any]) -> list[Any]:
    st = p.get("status") or {}
    cs = st.get("containerStatuses") or []
    total = len(p["spec"].get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in cs)
    reason = st.get("reason") or st.get("phase") or "Pending"
    for c in cs:
        state = c.get("state") or {}
        if (state.get("waiting", {}).get("reason") and state["waiting"]["reason"] != "ContainerCreating") or \
                (state.get("waiting") and reason == "Pending"):
            reason = state["waiting"].get("reason") or reason
        elif state.get("terminated"):
            reason = state["terminated"].get("reason") or reason
    if p["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [p["metadata"]["name"], f"{ready}/{total}", reason, restarts, _age(p["metadata"].get("creationTimestamp")),
            st.get("podIP") or "<none>", p["spec"].get("nodeName") or "<none>", "<none>", "<none>"]


def selector_text(sel: dict[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in ((sel or {}).get("matchLabels") or sel or {}).items()
                    if isinstance(v, str)) or "<none>"


def _deploy_cells(d: dict[str, Any]) -> list[Any]:
    st, spec = d.get("status") or {}, d["spec"]
    cs = spec["template"]["spec"].get("containers") or []
    return [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0), _age(d["metadata"].get("creationTimestamp")),
            ",".join(c["name"] for c in cs), ",".join(c["image"] for c in cs), selector_text(spec.get("selector"))]


def _svc_cells(s: dict[str, Any]) -> list[Any]:
    spec = s["spec"]
    ports = ",".join(f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                     for p in spec.get("ports") or []) or "<none>"
    ext = ",".join(i.get("ip", "") for i in (s.get("status") or {}).get("loadBalancer", {}).get("ingress") or []) or \
        ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    return [s["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), ext, ports,
            _age(s["metadata"].get("creationTimestamp")), selector_text(spec.get("selector"))]


def _node_cells(n: dict[str, Any]) -> list[Any]:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
    ip = next((a["address"] for a in n["status"].get("addresses", []) if a["type"] == "InternalIP"), "<none>")
    return [n["metadata"]["name"], "Ready" if ready else "NotReady", "<none>", _age(n["metadata"].get("creationTimestamp")),
            n["status"]["nodeInfo"]["kubeletVersion"], ip]


def _col(name: str, priority: int = 0, type_: str = "string", fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": name, "priority": priority}


TABLES: dict[str, tuple[list[dict[str, Any]], Any]] = {
    "pods": ([_col("Name", fmt="name"), _col("Ready"), _col("Status"), _col("Restarts", type_="string"), _col("Age"),
              _col("IP", 1), _col("Node", 1), _col("Nominated Node", 1), _col("Readiness Gates", 1)], _pod_cells),
    "deployments": ([_col("Name", fmt="name"), _col("Ready"), _col("Up-to-date", type_="integer"), _col("Available", type_="integer"),
                     _col("Age"), _col("Containers", 1), _col("Images", 1), _col("Selector", 1)], _deploy_cells),
    "services": ([_col("Name", fmt="name"), _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), _col("Age"),
                  _col("Selector", 1)], _svc_cells),
    "namespaces": ([_col("Name", fmt="name"), _col("Status"), _col("Age")],
                   lambda o: [o["metadata"]["name"], o.get("status", {}).get("phase", "Active"),
                              _age(o["metadata"].get("creationTimestamp"))]),
    "configmaps": ([_col("Name", fmt="name"), _col("Data", type_="integer"), _col("Age")],
                   lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                              _age(o["metadata"].get("creationTimestamp"))]),
    "secrets": ([_col("Name", fmt="name"), _col("Type"), _col("Data", type_="integer"), _col("Age")],
                lambda o: [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}),
                           _age(o["metadata"].get("creationTimestamp"))]),
    "nodes": ([_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version"), _col("Internal-IP", 1)], _node_cells),
}


def table(plural: str, items: list[dict[str, Any]], rv: str, include: str) -> dict[str, Any]:
    cols, cells = TABLES[plural]
    rows = []
    for o in items:
        row: dict[str, Any] = {"cells": cells(o)}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv}, "columnDefinitions": cols, "rows": rows}
