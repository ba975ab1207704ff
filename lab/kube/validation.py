"""Defaulting and validation per kind: what the API server fills in and refuses (422) on write.

Each preparer gets the object being written and the stored one it replaces (None on create) and
returns field errors worded like apimachinery's; Services also allocate their ClusterIP and node
ports here, from the store.
"""
from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab.kube.errors import bad_request
from lab.kube.resources import SERVICE_CIDR, Resource
from lab.kube.selectors import LABEL_KEY, LABEL_VALUE, Selector

if TYPE_CHECKING:
    from lab.kube.state import Store


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CONFIGLABEL_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def check_name(res: Resource, name: str) -> list[tuple[str, str]]:
    if res.plural in ("namespaces", "services"):
        ok, what = (len(name) <= 63 and bool(_DNS_LABEL.match(name))), "a lowercase RFC 1123 label"
    else:
        ok, what = (len(name) <= 253 and bool(_DNS_SUBDOMAIN.match(name))), "a lowercase RFC 1123 subdomain"
    if ok:
        return []
    return [("metadata.name", f'Invalid value: "{name}": must be {what} (lowercase alphanumerics, \'-\' or \'.\')')]


def check_labels(labels: Any, field: str) -> list[tuple[str, str]]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [(field, "Invalid value: must be a map of strings")]
    errs = []
    for k, v in labels.items():
        if not re.fullmatch(LABEL_KEY, k) or len(k.split("/")[-1]) > 63:
            errs.append((field, f'Invalid value: "{k}": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\''))
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            errs.append((field, f'Invalid value: "{v}": a valid label must be an empty string or consist of '
                                "alphanumeric characters, '-', '_' or '.'"))
    return errs


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        pct = int(s[:-1])
        exact = pct * total / 100
        return int(-(-exact // 1)) if round_up else int(exact // 1)
    return int(s)


# -- defaulting and validation per kind -------------------------------------------------------------


def _prep_namespace(store: Store, obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = copy.deepcopy(old["status"]) if old else {"phase": "Active"}
    return []


def _prep_configmap(store: Store, obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
    errs = []
    for field in ("data", "binaryData"):
        for k, v in (obj.get(field) or {}).items():
            if not _CONFIGLABEL_KEY.match(k):
                errs.append((f"{field}[{k}]", f'Invalid value: "{k}": a valid config key must consist of '
                                              "alphanumeric characters, '-', '_' or '.'"))
            if field == "data" and not isinstance(v, str):
                errs.append((f"data[{k}]", "Invalid value: must be a string"))
    if old is not None and old.get("immutable") and (obj.get("data") != old.get("data") or obj.get("binaryData") != old.get("binaryData")):
        errs.append(("data", "Forbidden: field is immutable when `immutable` is set"))
    return errs


def _prep_secret(store: Store, obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
    data = obj.get("data") or {}
    for k, v in data.items():
        try:
            base64.b64decode(v or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            # As the real server, say where the decoding failed but never echo the value.
            raise bad_request(f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data in data[{k}]') from None
    # stringData is write-only: merged into data, never stored or returned.
    for k, v in (obj.pop("stringData", None) or {}).items():
        data[k] = base64.b64encode(str(v).encode()).decode()
    if data:
        obj["data"] = data
    obj.setdefault("type", "Opaque")
    errs = [(f"data[{k}]", f'Invalid value: "{k}": a valid config key must consist of alphanumeric characters, \'-\', \'_\' or \'.\'')
            for k in data if not _CONFIGLABEL_KEY.match(k)]
    if old is not None:
        if obj["type"] != old.get("type", "Opaque"):
            errs.append(("type", "Invalid value: field is immutable"))
        if old.get("immutable") and obj.get("data") != old.get("data"):
            errs.append(("data", "Forbidden: field is immutable when `immutable` is set"))
    return errs


def _prep_service(store: Store, obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
    spec = obj.setdefault("spec", {})
    errs: list[tuple[str, str]] = []
    stype = spec.setdefault("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        return [("spec.type", f'Unsupported value: "{stype}": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"')]
    spec.setdefault("sessionAffinity", "None")
    ports = spec.get("ports") or []
    if stype != "ExternalName":
        if not ports and spec.get("clusterIP") != "None":
            errs.append(("spec.ports", "Required value"))
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    if stype in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    old_ports = {p.get("port"): p for p in ((old or {}).get("spec", {}).get("ports") or [])}
    for i, p in enumerate(ports):
        if not isinstance(p, dict) or not isinstance(p.get("port"), int) or not 0 < p["port"] < 65536:
            errs.append((f"spec.ports[{i}].port", "Invalid value: must be between 1 and 65535, inclusive"))
            continue
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p["port"])
        if len(ports) > 1 and not p.get("name"):
            errs.append((f"spec.ports[{i}].name", "Required value"))
        if stype in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
            p["nodePort"] = old_ports.get(p["port"], {}).get("nodePort") or store._alloc_node_port()
    if stype == "ExternalName":
        return errs
    old_ip = (old or {}).get("spec", {}).get("clusterIP")
    ip = spec.get("clusterIP") or ""
    if old is not None:
        # The API server copies allocated values the update left out (since 1.20) and refuses changes.
        if not ip:
            spec["clusterIP"], spec["clusterIPs"] = old_ip, copy.deepcopy(old["spec"].get("clusterIPs") or [old_ip])
        elif ip != old_ip:
            errs.append(("spec.clusterIPs[0]", "Invalid value: field is immutable"))
        return errs
    if ip == "None":
        spec["clusterIPs"] = ["None"]
    elif not ip:
        spec["clusterIP"] = store._alloc_cluster_ip()
        spec["clusterIPs"] = [spec["clusterIP"]]
    else:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return errs + [("spec.clusterIPs[0]", f'Invalid value: "{ip}": must be a valid IP address')]
        if addr not in SERVICE_CIDR:
            errs.append(("spec.clusterIPs[0]", f'Invalid value: "{ip}": failed to allocate IP {ip}: the provided IP ({ip}) '
                                               f"is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"))
        elif ip in store._cluster_ips:
            errs.append(("spec.clusterIPs[0]", f'Invalid value: "{ip}": failed to allocate IP {ip}: provided IP is already allocated'))
        else:
            store._cluster_ips.add(ip)
            spec["clusterIPs"] = [ip]
    return errs


def _default_probe(probe: dict[str, Any] | None) -> None:
    if not probe:
        return
    for k, v in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        probe.setdefault(k, v)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """The defaults the API server fills into a pod template (so `kubectl get -o yaml` looks real)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        if not isinstance(c, dict):
            continue
        image = str(c.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = ("@" not in image) and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
        for key in ("readinessProbe", "livenessProbe", "startupProbe"):
            _default_probe(c.get(key))


def _check_pod_spec(spec: Any, field: str) -> list[tuple[str, str]]:
    if not isinstance(spec, dict):
        return [(field, "Required value")]
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        return [(f"{field}.containers", "Required value")]
    errs, seen = [], set()
    for i, c in enumerate(containers):
        f = f"{field}.containers[{i}]"
        if not isinstance(c, dict):
            errs.append((f, "Invalid value: must be an object"))
            continue
        if not c.get("name"):
            errs.append((f"{f}.name", "Required value"))
        elif c["name"] in seen:
            errs.append((f"{f}.name", f'Duplicate value: "{c["name"]}"'))
        seen.add(c.get("name"))
        if not c.get("image"):
            errs.append((f"{f}.image", "Required value"))
        for j, e in enumerate(c.get("env") or []):
            if not isinstance(e, dict) or not _ENV_NAME.match(str(e.get("name", ""))):
                errs.append((f"{f}.env[{j}].name", "Invalid value: a valid environment variable name must consist of "
                                                   "alphabetic characters, digits, '_', '-', or '.'"))
            elif "value" in e and "valueFrom" in e:
                errs.append((f"{f}.env[{j}].valueFrom", "Invalid value: may not be specified when `value` is not empty"))
        for j, p in enumerate(c.get("ports") or []):
            if not isinstance(p, dict) or not isinstance(p.get("containerPort"), int) or not 0 < p["containerPort"] < 65536:
                errs.append((f"{f}.ports[{j}].containerPort", "Invalid value: must be between 1 and 65535, inclusive"))
    return errs


def _prep_deployment(store: Store, obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    errs: list[tuple[str, str]] = []
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    elif strategy["type"] != "Recreate":
        errs.append(("spec.strategy.type", f'Unsupported value: "{strategy["type"]}": supported values: "Recreate", "RollingUpdate"'))
    if not isinstance(spec["replicas"], int) or spec["replicas"] < 0:
        errs.append(("spec.replicas", "Invalid value: must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errs.append(("spec.selector", "Required value"))
    if not isinstance(template, dict):
        return errs + [("spec.template", "Required value")]
    tmeta = template.setdefault("metadata", {})
    errs += check_labels(tmeta.get("labels"), "spec.template.metadata.labels")
    if isinstance(selector, dict) and not Selector.from_label_selector(selector).matches(tmeta.get("labels")):
        errs.append(("spec.template.metadata.labels",
                     f"Invalid value: {json.dumps(tmeta.get('labels') or {})}: `selector` does not match template `labels`"))
    errs += _check_pod_spec(template.get("spec"), "spec.template.spec")
    if isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])
    if old is not None and selector != old["spec"].get("selector"):
        errs.append(("spec.selector", f"Invalid value: {json.dumps(selector)}: field is immutable"))
    return errs


PREPARERS: dict[str, Callable[[Store, dict[str, Any], dict[str, Any] | None], list[tuple[str, str]]]] = {
    "namespaces": _prep_namespace,
    "configmaps": _prep_configmap,
    "secrets": _prep_secret,
    "services": _prep_service,
    "deployments": _prep_deployment,
}
