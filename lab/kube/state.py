"""The lab AKS's object store: the part of kube-apiserver + etcd that holds and validates objects.

Kept apart from the HTTP surface (server.py) and the controllers (controller.py), as moto splits
models from responses; the rules it applies live beside it (resources, errors, selectors,
validation, patches). Everything here is plain dicts shaped exactly like the Kubernetes JSON, so
what the store holds is what a client reads back. The behaviour copied from the real API server is
the behaviour clients depend on: one global resourceVersion, uid/creationTimestamp/generation,
defaulting, 404/409/422 Status errors, optimistic concurrency on update, immutable fields,
graceful pod deletion, namespaces that terminate before they disappear, and a watch history from
which a watcher resumes at a resourceVersion (410 Expired once it has been compacted away).

The official Python client (37.x) deserializes into strict models that reject unknown fields, so
nothing here adds a field the Kubernetes 1.37 OpenAPI schema does not have.
"""
from __future__ import annotations

import copy
import random
import threading
import time
import uuid
import zlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from lab.kube.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    details,
    invalid,
    method_not_allowed,
    not_found,
)
from lab.kube.network import ClusterNetwork
from lab.kube.patches import PATCH_TYPES, json_patch, merge_patch, strategic_merge
from lab.kube.resources import (
    DNS_SERVICE_IP,
    KUBERNETES_SERVICE_IP,
    NODE_PORT_RANGE,
    POD_TEMPLATE_HASH,
    RESOURCES,
    SERVICE_CIDR,
    SYSTEM_NAMESPACES,
    UNDELETABLE_NAMESPACES,
    WATCH_HISTORY,
    Resource,
    now_rfc3339,
    random_suffix,
    replicaset_uid,
)
from lab.kube.selectors import FieldSelector, Selector
from lab.kube.validation import PREPARERS, check_labels, check_name


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

    def __init__(self, cluster_name: str = "aks-dr-blue", node_count: int = 2, network: ClusterNetwork | None = None) -> None:
        self.cluster_name = cluster_name
        self.network = network or ClusterNetwork()
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
            self._put_internal("nodes", "", _node(cluster_name, i, self.network.node_ip(i)))

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
            det = details(res, name)
            det["causes"] = [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated",
                              "field": "metadata.namespace"}]
            raise ApiError(403, "Forbidden", msg, det)

    def _check_body(self, res: Resource, ns: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request was in an unknown format - expected a {res.kind} object")
        if body.get("kind") not in (None, "", res.kind):
            raise bad_request(f'the object provided is unrecognized (must be of type {res.kind}): kind {body.get("kind")!r}')
        if body.get("apiVersion") not in (None, "", res.api_version):
            raise bad_request(f'the API version in the data ({body.get("apiVersion")}) does not match the expected '
                              f'API version ({res.api_version})')
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
        errs = check_labels(meta.get("labels"), "metadata.labels")
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
            errs = check_name(res, name)
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
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                           f"media types include: {', '.join(PATCH_TYPES)}")
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
                raise conflict(res, name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                          f"UID in object meta: {obj['metadata']['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise conflict(res, name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                          f"ResourceVersion in object meta: {obj['metadata']['resourceVersion']}")
            if plural == "namespaces":
                if name in UNDELETABLE_NAMESPACES:
                    raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                   details(res, name))
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
              field_selector: str | None, timeout: float,
              stop: threading.Event | None = None) -> Generator[dict[str, Any] | None, None, None]:
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
    det = details(res, obj["metadata"]["name"])
    det["uid"] = obj["metadata"]["uid"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": det}


def _node(cluster: str, i: int, ip: str) -> dict[str, Any]:
    name = f"aks-default-{zlib.crc32(cluster.encode()) % 100000000:08d}-vmss{i:06d}"
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
