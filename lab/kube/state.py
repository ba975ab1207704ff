"""The lab AKS's object store: the part of kube-apiserver + etcd that holds and validates objects.

Kept apart from the HTTP surface (server.py) and the controllers (controller.py), as moto splits
models from responses. Everything here is plain dicts shaped exactly like the Kubernetes JSON, so
what the store holds is what a client reads back. The behaviour copied from the real API server is
the behaviour clients depend on: one global resourceVersion, uid/creationTimestamp/generation,
defaulting, 404/409/422 Status errors, optimistic concurrency on update, immutable fields,
graceful pod deletion, namespaces that terminate before they disappear, and a watch history from
which a watcher resumes at a resourceVersion (410 Expired once it has been compacted away).

The official Python client (37.x) deserializes into strict models that reject unknown fields, so
nothing here adds a field the Kubernetes 1.37 OpenAPI schema does not have.
"""
from __future__ import annotations

import base64
import binascii
import copy
import datetime as _dt
import ipaddress
import json
import random
import re
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Generator

# -- resources ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name the resource: `deployments.apps`, `configmaps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


READ_ONLY = ("get", "list", "watch")
RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("namespaces", "Namespace", "", "v1", False, short_names=("ns",)),
        Resource("configmaps", "ConfigMap", "", "v1", True, short_names=("cm",)),
        Resource("secrets", "Secret", "", "v1", True),
        Resource("services", "Service", "", "v1", True, short_names=("svc",), categories=("all",)),
        # Pods are made by the deployment controller; clients may read and delete them (a deleted
        # pod is replaced, as with a ReplicaSet), not create or edit them.
        Resource("pods", "Pod", "", "v1", True, verbs=("delete",) + READ_ONLY, short_names=("po",), categories=("all",)),
        Resource("nodes", "Node", "", "v1", False, verbs=READ_ONLY, short_names=("no",)),
        Resource("deployments", "Deployment", "apps", "v1", True, short_names=("deploy",), categories=("all",), has_generation=True),
    )
}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")
SERVICE_CIDR = ipaddress.ip_network("10.0.0.0/16")  # AKS's default service CIDR
KUBERNETES_SERVICE_IP = "10.0.0.1"
DNS_SERVICE_IP = "10.0.0.10"
NODE_PORT_RANGE = (30000, 32767)
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString: no vowels, no 0/1/3
WATCH_HISTORY = 20000
POD_TEMPLATE_HASH = "pod-template-hash"


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> float:
    return _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(HASH_ALPHABET) for _ in range(n))


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """The pod-template-hash label: fnv32a of the template, safe-encoded like the controller does."""
    h = 0x811C9DC5
    for b in (json.dumps(template, sort_keys=True, separators=(",", ":")) + str(collision_count)).encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(HASH_ALPHABET[ord(c) % len(HASH_ALPHABET)] for c in str(h))


def replicaset_uid(deployment_uid: str, pod_hash: str) -> str:
    """The uid of the (implicit) ReplicaSet a pod belongs to: pods' ownerReferences point at it."""
    return str(uuid.uuid5(uuid.UUID(deployment_uid), pod_hash))


# -- errors ---------------------------------------------------------------------------------------


class ApiError(Exception):
    """A failure the API server reports as a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _details(res: Resource, name: str, kind: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind or res.plural}
    if res.group:
        d["group"] = res.group
    return d


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def already_exists(res: Resource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', _details(res, name))


def conflict(res: Resource, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": {why}', _details(res, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(res: Resource, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 with one cause per (field, message), worded like apimachinery's field errors."""
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    msg = f'{kind} "{name}" is invalid: ' + (f"[{text}]" if len(causes) > 1 else text)
    det = _details(res, name, kind=res.kind)
    det["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
    return ApiError(422, "Invalid", msg, det)


def method_not_allowed(res: Resource, verb: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"{verb} is not supported on resources of kind {res.qualified!r} in this lab",
                    {"kind": res.plural, "group": res.group} if res.group else {"kind": res.plural})


# -- selectors --------------------------------------------------------------------------------------

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_TERM = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _split_terms(text: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


class Selector:
    """A label selector: equality (`a=b`, `a==b`, `a!=b`) and set-based (`a in (x,y)`, `a notin (..)`, `a`, `!a`)."""

    def __init__(self, reqs: list[tuple[str, str, tuple[str, ...]]] | None = None) -> None:
        self.reqs = reqs or []

    @classmethod
    def parse(cls, text: str | None) -> "Selector":
        reqs: list[tuple[str, str, tuple[str, ...]]] = []
        for term in _split_terms(text or ""):
            m = _SET_TERM.match(term)
            if m:
                reqs.append((m.group(1), m.group(3), tuple(v.strip() for v in m.group(4).split(",") if v.strip())))
            elif term.startswith("!"):
                reqs.append((cls._key(term[1:].strip(), text), "!", ()))
            elif "!=" in term:
                k, v = term.split("!=", 1)
                reqs.append((cls._key(k.strip(), text), "!=", (cls._value(v.strip(), text),)))
            elif "==" in term or "=" in term:
                k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
                reqs.append((cls._key(k.strip(), text), "=", (cls._value(v.strip(), text),)))
            else:
                reqs.append((cls._key(term, text), "exists", ()))
        return cls(reqs)

    @staticmethod
    def _key(k: str, text: str | None) -> str:
        if not re.fullmatch(_KEY, k):
            raise bad_request(f"unable to parse requirement: invalid label key {k!r} in selector {text!r}")
        return k

    @staticmethod
    def _value(v: str, text: str | None) -> str:
        if len(v) > 63 or not _LABEL_VALUE.match(v):
            raise bad_request(f"unable to parse requirement: invalid label value {v!r} in selector {text!r}")
        return v

    @classmethod
    def from_label_selector(cls, sel: dict[str, Any] | None) -> "Selector":
        """metav1.LabelSelector (matchLabels + matchExpressions), as in a Deployment's spec.selector."""
        sel = sel or {}
        reqs: list[tuple[str, str, tuple[str, ...]]] = [(k, "=", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for e in sel.get("matchExpressions") or []:
            reqs.append((e.get("key", ""), ops.get(e.get("operator", ""), "in"), tuple(e.get("values") or ())))
        return cls(reqs)

    @classmethod
    def from_map(cls, labels: dict[str, str] | None) -> "Selector":
        return cls([(k, "=", (str(v),)) for k, v in (labels or {}).items()])

    def empty(self) -> bool:
        return not self.reqs

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        for key, op, values in self.reqs:
            have = key in labels
            val = labels.get(key)
            if op == "=" and val != values[0]:
                return False
            if op == "!=" and have and val == values[0]:
                return False
            if op == "in" and (not have or val not in values):
                return False
            if op == "notin" and have and val in values:
                return False
            if op == "exists" and not have:
                return False
            if op == "!" and have:
                return False
        return True

    def __str__(self) -> str:
        parts = []
        for key, op, values in self.reqs:
            if op in ("=", "!="):
                parts.append(f"{key}{op}{values[0]}")
            elif op in ("in", "notin"):
                parts.append(f"{key} {op} ({','.join(values)})")
            else:
                parts.append(key if op == "exists" else f"!{key}")
        return ",".join(parts)


FIELD_SELECTORS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP"),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "nodes": ("spec.unschedulable",),
}


def _dig(obj: dict[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur).lower() if isinstance(cur, bool) else str(cur)


class FieldSelector:
    def __init__(self, res: Resource, text: str | None) -> None:
        self.reqs: list[tuple[str, bool, str]] = []
        allowed = ("metadata.name", "metadata.namespace") + FIELD_SELECTORS.get(res.plural, ())
        for term in _split_terms(text or ""):
            neg = "!=" in term
            k, v = term.split("!=", 1) if neg else (term.split("==", 1) if "==" in term else term.split("=", 1) if "=" in term else (term, None))
            if v is None:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
            k = k.strip()
            if k not in allowed:
                raise bad_request(f'field label not supported: {k}')
            self.reqs.append((k, neg, v.strip()))

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((_dig(obj, k) != v) if neg else (_dig(obj, k) == v) for k, neg, v in self.reqs)


# -- validation helpers ----------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def _check_name(res: Resource, name: str) -> list[tuple[str, str]]:
    if res.plural in ("namespaces", "services"):
        ok, what = (len(name) <= 63 and bool(_DNS_LABEL.match(name))), "a lowercase RFC 1123 label"
    else:
        ok, what = (len(name) <= 253 and bool(_DNS_SUBDOMAIN.match(name))), "a lowercase RFC 1123 subdomain"
    if ok:
        return []
    return [("metadata.name", f'Invalid value: "{name}": must be {what} (lowercase alphanumerics, \'-\' or \'.\')')]


def _check_labels(labels: Any, field: str) -> list[tuple[str, str]]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [(field, "Invalid value: must be a map of strings")]
    errs = []
    for k, v in labels.items():
        if not re.fullmatch(_KEY, k) or len(k.split("/")[-1]) > 63:
            errs.append((field, f'Invalid value: "{k}": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\''))
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            errs.append((field, f'Invalid value: "{v}": a valid label must be an empty string or consist of alphanumeric characters, \'-\', \'_\' or \'.\''))
    return errs


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        pct = int(s[:-1])
        exact = pct * total / 100
        return int(-(-exact // 1)) if round_up else int(exact // 1)
    return int(s)


# -- defaulting and validation per kind -------------------------------------------------------------


def _prep_namespace(store: "Store", obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = copy.deepcopy(old["status"]) if old else {"phase": "Active"}
    return []


def _prep_configmap(store: "Store", obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
    errs = []
    for field in ("data", "binaryData"):
        for k, v in (obj.get(field) or {}).items():
            if not _CONFIG_KEY.match(k):
                errs.append((f"{field}[{k}]", f'Invalid value: "{k}": a valid config key must consist of alphanumeric characters, \'-\', \'_\' or \'.\''))
            if field == "data" and not isinstance(v, str):
                errs.append((f"data[{k}]", "Invalid value: must be a string"))
    if old is not None and old.get("immutable") and (obj.get("data") != old.get("data") or obj.get("binaryData") != old.get("binaryData")):
        errs.append(("data", "Forbidden: field is immutable when `immutable` is set"))
    return errs


def _prep_secret(store: "Store", obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
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
            for k in data if not _CONFIG_KEY.match(k)]
    if old is not None:
        if obj["type"] != old.get("type", "Opaque"):
            errs.append(("type", "Invalid value: field is immutable"))
        if old.get("immutable") and obj.get("data") != old.get("data"):
            errs.append(("data", "Forbidden: field is immutable when `immutable` is set"))
    return errs


def _prep_service(store: "Store", obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
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
            errs.append(("spec.clusterIPs[0]", f'Invalid value: "{ip}": failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}'))
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
                errs.append((f"{f}.env[{j}].name", "Invalid value: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.'"))
            elif "value" in e and "valueFrom" in e:
                errs.append((f"{f}.env[{j}].valueFrom", "Invalid value: may not be specified when `value` is not empty"))
        for j, p in enumerate(c.get("ports") or []):
            if not isinstance(p, dict) or not isinstance(p.get("containerPort"), int) or not 0 < p["containerPort"] < 65536:
                errs.append((f"{f}.ports[{j}].containerPort", "Invalid value: must be between 1 and 65535, inclusive"))
    return errs


def _prep_deployment(store: "Store", obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
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
    errs += _check_labels(tmeta.get("labels"), "spec.template.metadata.labels")
    if isinstance(selector, dict) and not Selector.from_label_selector(selector).matches(tmeta.get("labels")):
        errs.append(("spec.template.metadata.labels", f"Invalid value: {json.dumps(tmeta.get('labels') or {})}: `selector` does not match template `labels`"))
    errs += _check_pod_spec(template.get("spec"), "spec.template.spec")
    if isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])
    if old is not None and selector != old["spec"].get("selector"):
        errs.append(("spec.selector", f"Invalid value: {json.dumps(selector)}: field is immutable"))
    return errs


PREPARERS: dict[str, Callable[["Store", dict[str, Any], dict[str, Any] | None], list[tuple[str, str]]]] = {
    "namespaces": _prep_namespace,
    "configmaps": _prep_configmap,
    "secrets": _prep_secret,
    "services": _prep_service,
    "deployments": _prep_deployment,
}

# -- patches ------------------------------------------------------------------------------------------

_DELETE = object()


def _merge_key(path: list[str], field: str) -> str | None:
    """patchMergeKey of the built-in types' lists that strategic merge patch merges item by item."""
    if field == "ports":
        return "containerPort" if path and path[-1] in ("containers", "initContainers", "ephemeralContainers") else "port"
    return {
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
        "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
        "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip", "resourceClaims": "name",
        "topologySpreadConstraints": "topologyKey", "addresses": "type",
    }.get(field)


_PRIMITIVE_SETS = {"finalizers"}  # lists of scalars merged as sets


def _strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v if not (isinstance(x, dict) and x.get("$patch") == "delete")]
    return v


def strategic_merge(orig: Any, patch: Any, path: list[str] | None = None) -> Any:
    """Strategic merge patch over the built-in types: merge keys, $patch, $retainKeys,
    $setElementOrder and $deleteFromPrimitiveList (what kubectl apply and `kubectl patch` send)."""
    path = path or []
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return _DELETE
    result = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    orders: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
        elif k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in (v or [])]
        elif k.startswith("$"):
            continue
        elif v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, path + [k])
            if merged is _DELETE:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            key = _merge_key(path, k)
            if key and all(isinstance(x, dict) for x in v):
                result[k] = _merge_list(result.get(k) or [], v, key, path + [k])
            elif k in _PRIMITIVE_SETS:
                result[k] = list(result.get(k) or []) + [x for x in v if x not in (result.get(k) or [])]
            else:
                result[k] = _strip_directives(v)
        else:
            result[k] = v
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        for k in list(result):
            if k not in retain:
                del result[k]
    for field, order in orders.items():
        result[field] = _reorder(result.get(field) or [], order, _merge_key(path, field))
    return result


def _merge_list(orig: list[Any], patch: list[dict[str, Any]], key: str, path: list[str]) -> list[Any]:
    if any(x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if x.get("$patch") != "replace"]
    result = copy.deepcopy(orig)
    for item in patch:
        idx = next((i for i, o in enumerate(result) if isinstance(o, dict) and key in item and o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            result = [o for o in result if not (isinstance(o, dict) and o.get(key) == item.get(key))]
        elif idx is None:
            result.append(_strip_directives(item))
        else:
            result[idx] = strategic_merge(result[idx], item, path)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else json.dumps(x, sort_keys=True)

    want = [ident(o) for o in order]
    ranked = sorted(items, key=lambda x: want.index(ident(x)) if ident(x) in want else len(want))
    return ranked


def merge_patch(orig: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _pointer(doc: Any, ptr: str) -> tuple[Any, str | int]:
    if not ptr.startswith("/"):
        raise ValueError(f"invalid JSON pointer {ptr!r}")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1]
    return cur, (last if isinstance(cur, dict) or last == "-" else int(last))


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        if kind in ("move", "copy"):
            src, skey = _pointer(doc, op["from"])
            value = copy.deepcopy(src[skey])
            if kind == "move":
                del src[skey]
            op = {"op": "add", "path": op["path"], "value": value}
            kind = "add"
        parent, key = _pointer(doc, op["path"])
        if kind == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(op["value"]))
            else:
                parent[key] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[key]
        elif kind == "replace":
            if isinstance(parent, dict) and key not in parent:
                raise ValueError(f"replace operation does not apply: doc is missing path: {op['path']}")
            parent[key] = copy.deepcopy(op["value"])
        elif kind == "test":
            if parent[key] != op.get("value"):
                raise ValueError(f"testing value {op['path']} failed")
        else:
            raise ValueError(f"unexpected kind of operation {kind!r}")
    return doc


PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}

# -- the store ----------------------------------------------------------------------------------------


@dataclass
class WatchEvent:
    rv: int
    plural: str
    namespace: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


Key = tuple[str, str]  # (namespace or "", name)


class Store:
    """All objects of the lab cluster, thread-safe. Reads return deep copies."""

    def __init__(self, cluster_name: str = "aks-dr-blue", node_count: int = 2) -> None:
        self.cluster_name = cluster_name
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rv = 0
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {p: {} for p in RESOURCES}
        self._history: list[WatchEvent] = []
        self._history_base = 1  # rv of self._history[0]
        self._cluster_ips: set[str] = {KUBERNETES_SERVICE_IP, DNS_SERVICE_IP}
        self._node_ports: set[int] = set()
        self.closed = threading.Event()
        for ns in SYSTEM_NAMESPACES:
            self.create("namespaces", "", {"metadata": {"name": ns}})
        self.create("services", "default", {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": KUBERNETES_SERVICE_IP, "ports": [{"name": "https", "port": 443, "targetPort": 443}]},
        }, allow_reserved_ip=True)
        for i in range(node_count):
            self._put_internal("nodes", "", _node(cluster_name, i))

    # -- bookkeeping ----------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def _commit(self, plural: str, ns: str, type_: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Give `obj` the next resourceVersion, store (or drop) it and append the watch event."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = (ns, obj["metadata"]["name"])
        if type_ == "DELETED":
            self._objects[plural].pop(key, None)
        else:
            self._objects[plural][key] = obj
        self._history.append(WatchEvent(self._rv, plural, ns, type_, copy.deepcopy(obj), copy.deepcopy(old) if old else None))
        if len(self._history) > WATCH_HISTORY:
            drop = len(self._history) - WATCH_HISTORY // 2
            del self._history[:drop]
            self._history_base += drop
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def _put_internal(self, plural: str, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            if ns:
                meta["namespace"] = ns
            return self._commit(plural, ns, "ADDED", obj, None)

    def _alloc_cluster_ip(self) -> str:
        # Random within the range, as the real allocator; .0 and the broadcast address excluded.
        for _ in range(10000):
            ip = str(SERVICE_CIDR[random.randint(11, SERVICE_CIDR.num_addresses - 2)])
            if ip not in self._cluster_ips:
                self._cluster_ips.add(ip)
                return ip
        raise ApiError(500, "InternalError", "range is full")

    def _alloc_node_port(self) -> int:
        while True:
            p = random.randint(*NODE_PORT_RANGE)
            if p not in self._node_ports:
                self._node_ports.add(p)
                return p

    def _release(self, plural: str, obj: dict[str, Any]) -> None:
        if plural == "services":
            for ip in obj.get("spec", {}).get("clusterIPs") or []:
                if ip != KUBERNETES_SERVICE_IP:
                    self._cluster_ips.discard(ip)
            for p in obj.get("spec", {}).get("ports") or []:
                self._node_ports.discard(p.get("nodePort"))

    @staticmethod
    def resource(plural: str) -> Resource:
        try:
            return RESOURCES[plural]
        except KeyError:
            raise ApiError(404, "NotFound", "the server could not find the requested resource") from None

    def _require_namespace(self, res: Resource, ns: str, name: str, creating: bool) -> None:
        if not res.namespaced:
            return
        nsobj = self._objects["namespaces"].get(("", ns))
        if nsobj is None:
            raise not_found(RESOURCES["namespaces"], ns)
        if creating and nsobj["metadata"].get("deletionTimestamp"):
            msg = f'{res.qualified} "{name}" is forbidden: unable to create new content in namespace {ns} because it is being terminated'
            det = _details(res, name)
            det["causes"] = [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated", "field": "metadata.namespace"}]
            raise ApiError(403, "Forbidden", msg, det)

    def _check_body(self, res: Resource, ns: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request was in an unknown format - expected a {res.kind} object")
        if body.get("kind") not in (None, "", res.kind):
            raise bad_request(f'the object provided is unrecognized (must be of type {res.kind}): kind {body.get("kind")!r}')
        if body.get("apiVersion") not in (None, "", res.api_version):
            raise bad_request(f'the API version in the data ({body.get("apiVersion")}) does not match the expected API version ({res.api_version})')
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if res.namespaced and meta.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        for k in ("selfLink", "managedFields"):
            meta.pop(k, None)
        return obj

    def _finish(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None, ns: str) -> None:
        meta = obj["metadata"]
        errs = _check_labels(meta.get("labels"), "metadata.labels")
        if meta.get("annotations") is not None and not all(isinstance(v, str) for v in (meta["annotations"] or {}).values()):
            errs.append(("metadata.annotations", "Invalid value: must be a map of strings"))
        prep = PREPARERS.get(res.plural)
        if prep:
            errs += prep(self, obj, old)
        if errs:
            raise invalid(res, meta["name"], errs)
        if res.namespaced:
            meta["namespace"] = ns
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if res.has_generation:
                meta["generation"] = 1
        else:
            for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
            meta["uid"], meta["creationTimestamp"] = old["metadata"]["uid"], old["metadata"]["creationTimestamp"]
            if res.has_generation:
                changed = obj.get("spec") != old.get("spec")
                meta["generation"] = old["metadata"].get("generation", 1) + (1 if changed else 0)

    # -- verbs ----------------------------------------------------------------------------------------

    def create(self, plural: str, ns: str, body: Any, *, dry_run: bool = False, allow_reserved_ip: bool = False) -> dict[str, Any]:
        res = self.resource(plural)
        if "create" not in res.verbs:
            raise method_not_allowed(res, "create")
        return self._create(res, ns, body, dry_run=dry_run, allow_reserved_ip=allow_reserved_ip)

    def create_pod(self, ns: str, pod: dict[str, Any]) -> dict[str, Any]:
        """For the deployment controller: pods bypass the client-facing verb check."""
        return self._create(RESOURCES["pods"], ns, pod)

    def _create(self, res: Resource, ns: str, body: Any, *, dry_run: bool = False, allow_reserved_ip: bool = False) -> dict[str, Any]:
        with self._lock:
            obj = self._check_body(res, ns, body)
            meta = obj["metadata"]
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = meta["generateName"] + random_suffix()
                else:
                    raise invalid(res, "", [("metadata.name", "Required value: name or generateName is required")])
            name = meta["name"]
            errs = _check_name(res, name)
            if errs:
                raise invalid(res, name, errs)
            self._require_namespace(res, ns, name, creating=True)
            if (ns if res.namespaced else "", name) in self._objects[res.plural]:
                raise already_exists(res, name)
            if res.plural != "pods":
                obj.pop("status", None)  # status is the server's and the controllers', never the creator's
            if allow_reserved_ip:
                self._cluster_ips.discard(obj.get("spec", {}).get("clusterIP"))
            meta.pop("resourceVersion", None)
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
                meta.pop(k, None)
            self._finish(res, obj, None, ns if res.namespaced else "")
            if res.plural == "deployments":
                obj["status"] = {}
            if res.plural == "services":
                obj["status"] = {"loadBalancer": {}}
            if dry_run:
                self._release(res.plural, obj)
                return obj
            return self._commit(res.plural, ns if res.namespaced else "", "ADDED", obj, None)

    def get(self, plural: str, ns: str, name: str) -> dict[str, Any]:
        res = self.resource(plural)
        with self._lock:
            obj = self._objects[plural].get((ns if res.namespaced else "", name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def find(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(plural, ns, name)
        except ApiError:
            return None

    def list(self, plural: str, ns: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """Matching objects (all namespaces when ns is None) and the list's resourceVersion."""
        res = self.resource(plural)
        sel, fsel = Selector.parse(label_selector), FieldSelector(res, field_selector)
        with self._lock:
            items = [
                copy.deepcopy(o) for (ons, _), o in sorted(self._objects[plural].items())
                if (ns is None or not res.namespaced or ons == ns)
                and sel.matches(o["metadata"].get("labels")) and fsel.matches(o)
            ]
            return items, str(self._rv)

    def replace(self, plural: str, ns: str, name: str, body: Any, *, subresource: str | None = None,
                dry_run: bool = False) -> dict[str, Any]:
        res = self.resource(plural)
        if "update" not in res.verbs:
            raise method_not_allowed(res, "update")
        with self._lock:
            key = (ns if res.namespaced else "", name)
            old = self._objects[plural].get(key)
            if old is None:
                raise not_found(res, name)
            obj = self._check_body(res, ns, body)
            if obj["metadata"].get("name") not in (None, "", name):
                raise bad_request(f"the name of the object ({obj['metadata']['name']}) does not match the name on the URL ({name})")
            obj["metadata"]["name"] = name
            rv = obj["metadata"].pop("resourceVersion", None)
            if rv not in (None, "") and rv != old["metadata"]["resourceVersion"]:
                raise conflict(res, name, "the object has been modified; please apply your changes to the latest version and try again")
            if subresource == "status":
                merged = copy.deepcopy(old)
                merged["status"] = obj.get("status") or {}
                obj = merged
            elif subresource is None:
                obj["status"] = copy.deepcopy(old.get("status")) if "status" in old else obj.get("status")
                if obj["status"] is None:
                    obj.pop("status")
            else:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({subresource})")
            self._finish(res, obj, old, key[0])
            if _same(obj, old):
                return copy.deepcopy(old)
            if dry_run:
                return obj
            return self._commit(plural, key[0], "MODIFIED", obj, old)

    def patch(self, plural: str, ns: str, name: str, content_type: str, body: Any, *,
              subresource: str | None = None, field_manager: str | None = None, dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns (object, created) — server-side apply may create."""
        res = self.resource(plural)
        ptype = PATCH_TYPES.get(content_type.split(";")[0].strip().lower())
        if ptype is None:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}")
        if "patch" not in res.verbs:
            raise method_not_allowed(res, "patch")
        if ptype == "apply" and not field_manager:
            raise bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
        with self._lock:
            current = self._objects[plural].get((ns if res.namespaced else "", name))
            if current is None:
                if ptype == "apply":
                    # Server-side apply creates what is missing.
                    if not isinstance(body, dict):
                        raise bad_request("apply patch must be an object")
                    body = copy.deepcopy(body)
                    body.setdefault("metadata", {})["name"] = name
                    return self.create(plural, ns, body, dry_run=dry_run), True
                raise not_found(res, name)
            try:
                if ptype == "json":
                    patched = json_patch(current, body)
                elif ptype == "merge":
                    patched = merge_patch(current, body)
                else:
                    # Apply is approximated by a strategic merge of the applied configuration:
                    # fields the manager stopped declaring are not removed (no managedFields here).
                    patched = strategic_merge(current, body)
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {e}") from None
            if not isinstance(patched, dict):
                raise bad_request("the patch produced something other than an object")
            patched.setdefault("metadata", {})
            want_rv = _rv_in_patch(body) if ptype != "json" else None
            patched["metadata"]["resourceVersion"] = want_rv or current["metadata"]["resourceVersion"]
            return self.replace(plural, ns, name, patched, subresource=subresource, dry_run=dry_run), False

    def delete(self, plural: str, ns: str, name: str, options: dict[str, Any] | None = None, *,
               dry_run: bool = False) -> dict[str, Any]:
        """Delete as the real API server does; returns the response body for the resource:
        the object (namespaces: now Terminating; pods: now terminating; services) or a Status."""
        res = self.resource(plural)
        if "delete" not in res.verbs:
            raise method_not_allowed(res, "delete")
        options = options or {}
        with self._lock:
            key = (ns if res.namespaced else "", name)
            obj = self._objects[plural].get(key)
            if obj is None:
                raise not_found(res, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise conflict(res, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata']['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise conflict(res, name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {obj['metadata']['resourceVersion']}")
            if plural == "namespaces":
                if name in UNDELETABLE_NAMESPACES:
                    raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted', _details(res, name))
                if obj["metadata"].get("deletionTimestamp") or dry_run:
                    return copy.deepcopy(obj)
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["status"] = {"phase": "Terminating"}
                return self._commit(plural, "", "MODIFIED", new, obj)
            if plural == "pods":
                grace = options.get("gracePeriodSeconds")
                if grace is None:
                    grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
                if dry_run:
                    return copy.deepcopy(obj)
                if grace == 0:
                    return self._remove(plural, key, obj)  # force delete: gone from the API at once
                if obj["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(obj)
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = int(grace)
                return self._commit(plural, ns, "MODIFIED", new, obj)
            if dry_run:
                return copy.deepcopy(obj) if plural == "services" else _success(res, obj)
            if plural == "deployments" and options.get("propagationPolicy") == "Orphan":
                self._orphan_pods(ns, obj)
            gone = self._remove(plural, key, obj)
            return gone if plural == "services" else _success(res, obj)

    def _remove(self, plural: str, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        self._release(plural, obj)
        return self._commit(plural, key[0], "DELETED", copy.deepcopy(obj), obj)

    def _orphan_pods(self, ns: str, dep: dict[str, Any]) -> None:
        for (pns, _), pod in list(self._objects["pods"].items()):
            h = (pod["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH)
            refs = pod["metadata"].get("ownerReferences") or []
            if pns == ns and h and any(r.get("uid") == replicaset_uid(dep["metadata"]["uid"], h) for r in refs):
                new = copy.deepcopy(pod)
                new["metadata"].pop("ownerReferences", None)
                self._commit("pods", ns, "MODIFIED", new, pod)

    # -- for the controllers ------------------------------------------------------------------------

    def finalize(self, plural: str, ns: str, name: str, uid: str | None = None) -> bool:
        """Remove an object for good (a pod whose containers stopped, a namespace now empty)."""
        with self._lock:
            key = (ns, name)
            obj = self._objects[plural].get(key)
            if obj is None or (uid and obj["metadata"]["uid"] != uid):
                return False
            self._remove(plural, key, obj)
            return True

    def set_status(self, plural: str, ns: str, name: str, status: dict[str, Any], uid: str | None = None) -> dict[str, Any] | None:
        """Controllers' status writes; no write (and no watch event) when nothing changed."""
        with self._lock:
            key = (ns, name)
            old = self._objects[plural].get(key)
            if old is None or (uid and old["metadata"]["uid"] != uid):
                return None
            if old.get("status") == status:
                return copy.deepcopy(old)
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(status)
            return self._commit(plural, ns, "MODIFIED", new, old)

    def wait_for_change(self, seen_rv: int, timeout: float) -> int:
        """Block until the resourceVersion moves past seen_rv (or timeout); return the current one."""
        with self._cond:
            if self._rv <= seen_rv:
                self._cond.wait(timeout)
            return self._rv

    def close(self) -> None:
        self.closed.set()
        with self._cond:
            self._cond.notify_all()

    # -- watch ----------------------------------------------------------------------------------------

    def watch(self, plural: str, ns: str | None, resource_version: str | None, label_selector: str | None,
              field_selector: str | None, timeout: float, stop: threading.Event | None = None) -> Generator[dict[str, Any] | None, None, None]:
        """Watch events as the API sends them ({type, object}); a too-old resourceVersion gives one
        ERROR event with a 410 Expired Status, as the real server does. Yields None about every
        half second without events, so the caller can notice a client that went away."""
        res = self.resource(plural)
        sel, fsel = Selector.parse(label_selector), FieldSelector(res, field_selector)  # errors raise here, not mid-stream
        if resource_version not in (None, "", "0") and not str(resource_version).isdigit():
            raise bad_request(f"invalid resource version: {resource_version}")
        return self._watch(res, ns, resource_version, label_selector, field_selector, sel, fsel, timeout, stop)

    def _watch(self, res: Resource, ns: str | None, resource_version: str | None, label_selector: str | None,
               field_selector: str | None, sel: Selector, fsel: FieldSelector, timeout: float,
               stop: threading.Event | None) -> Generator[dict[str, Any] | None, None, None]:
        plural = res.plural

        def match(o: dict[str, Any] | None) -> bool:
            return o is not None and (ns is None or not res.namespaced or o["metadata"].get("namespace") == ns) \
                and sel.matches(o["metadata"].get("labels")) and fsel.matches(o)

        deadline = time.monotonic() + timeout
        with self._lock:
            if resource_version in (None, "", "0"):
                items, rv = self.list(plural, ns, label_selector, field_selector)
                initial = [{"type": "ADDED", "object": o} for o in items]
                cursor = int(rv)
            else:
                cursor = int(str(resource_version))
                initial = []
                if cursor + 1 < self._history_base:
                    initial = [{"type": "ERROR", "object": ApiError(
                        410, "Expired", f"too old resource version: {cursor} ({self._history_base - 1})").status()}]
                    cursor = -1
        yield from initial
        if cursor < 0:
            return
        while not self.closed.is_set() and not (stop and stop.is_set()):
            out: list[dict[str, Any]] = []
            with self._cond:
                if self._rv <= cursor:
                    self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                start = max(0, cursor + 1 - self._history_base)
                for ev in self._history[start:]:
                    if ev.plural != plural:
                        continue
                    new_ok, old_ok = match(ev.obj), match(ev.old)
                    if ev.type == "ADDED" and new_ok:
                        out.append({"type": "ADDED", "object": copy.deepcopy(ev.obj)})
                    elif ev.type == "DELETED" and (new_ok or old_ok):
                        out.append({"type": "DELETED", "object": copy.deepcopy(ev.obj)})
                    elif ev.type == "MODIFIED" and (new_ok or old_ok):
                        t = "MODIFIED" if new_ok and old_ok else "ADDED" if new_ok else "DELETED"
                        out.append({"type": t, "object": copy.deepcopy(ev.obj)})
                cursor = self._rv
            yield from out
            if not out:
                yield None
            if time.monotonic() >= deadline:
                return


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = lambda o: {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}}  # noqa: E731
    return strip(a) == strip(b)


def _rv_in_patch(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        rv = body["metadata"].get("resourceVersion")
        return str(rv) if rv else None
    return None


def _success(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    det = _details(res, obj["metadata"]["name"])
    det["uid"] = obj["metadata"]["uid"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": det}


def _node(cluster: str, i: int) -> dict[str, Any]:
    name = f"aks-default-{zlib.crc32(cluster.encode()) % 100000000:08d}-vmss{i:06d}"
    ip = f"10.224.0.{4 + i}"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "agentpool": "default", "kubernetes.azure.com/cluster": cluster, "node.kubernetes.io/instance-type": "Standard_D2s_v3",
        }},
        "spec": {"podCIDR": f"10.244.{i}.0/24", "podCIDRs": [f"10.244.{i}.0/24"], "providerID": f"azure:///lab/{name}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "2", "memory": "8129052Ki", "pods": "110"},
            "allocatable": {"cpu": "1900m", "memory": "5896732Ki", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}],
            "nodeInfo": {"architecture": "amd64", "bootID": str(uuid.uuid4()), "containerRuntimeVersion": "containerd://1.7.27-1",
                         "kernelVersion": "5.15.0-1089-azure", "kubeProxyVersion": "", "kubeletVersion": "v1.32.6",
                         "machineID": uuid.uuid4().hex, "operatingSystem": "linux", "osImage": "Ubuntu 22.04.5 LTS",
                         "systemUUID": str(uuid.uuid4())},
        },
    }

