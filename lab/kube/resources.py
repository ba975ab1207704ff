"""The lab AKS's resource types and the small rules every part shares (names, hashes, timestamps).

What the API serves (`RESOURCES`: kind, group, verbs), the cluster's fixed address ranges and the
helpers that make names and timestamps the way the real control plane does.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any


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
SERVICE_CIDR = ipaddress.IPv4Network("10.0.0.0/16")  # AKS's default service CIDR
KUBERNETES_SERVICE_IP = "10.0.0.1"
DNS_SERVICE_IP = "10.0.0.10"
NODE_PORT_RANGE = (30000, 32767)
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.SafeEncodeString: no vowels, no 0/1/3
WATCH_HISTORY = 20000
POD_TEMPLATE_HASH = "pod-template-hash"


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> float:
    return _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC).timestamp()


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


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions") or [])
