"""The lab AKS's deployment controller: `spec.replicas` pods of the current template.

Rolling replacement within maxSurge/maxUnavailable (or Recreate), pods owned through their
(implicit) ReplicaSet, and the Deployment status (replicas, updated/ready/available,
observedGeneration, Available/Progressing conditions, the progress deadline) written the way
kube-controller-manager does, so `kubectl rollout status` and client-side waits behave as on AKS.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lab.kube.errors import ApiError
from lab.kube.resources import (
    POD_TEMPLATE_HASH,
    now_rfc3339,
    parse_rfc3339,
    pod_ready,
    random_suffix,
    replicaset_uid,
    template_hash,
)
from lab.kube.state import Store
from lab.kube.validation import int_or_percent


@dataclass
class _Progress:
    generation: int = 0
    counts: tuple[int, ...] = ()
    last_progress: float = field(default_factory=time.monotonic)
    complete: bool = False
    since: dict[str, str] = field(default_factory=dict)  # condition type -> (status, transition time)
    ready_since: dict[str, float] = field(default_factory=dict)  # pod uid -> monotonic


def _qos(spec: dict[str, Any]) -> str:
    rs = [c.get("resources") or {} for c in spec.get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in rs):
        return "BestEffort"
    if all(r.get("limits") and all((r.get("requests") or r["limits"]).get(k) == r["limits"].get(k) for k in ("cpu", "memory"))
           and all(k in r["limits"] for k in ("cpu", "memory")) for r in rs):
        return "Guaranteed"
    return "Burstable"


class DeploymentController:
    def __init__(self, store: Store, time_scale: float, record: Any) -> None:
        self.store, self.time_scale, self.record = store, time_scale, record
        self.progress: dict[str, _Progress] = {}  # by deployment uid

    def sync(self) -> None:
        deployments, _ = self.store.list("deployments")
        pods, _ = self.store.list("pods")
        by_uid = {d["metadata"]["uid"]: d for d in deployments}
        owned: dict[str, list[dict[str, Any]]] = {uid: [] for uid in by_uid}
        for pod in pods:
            h = (pod["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH)
            ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == "ReplicaSet"), None)
            if not h or ref is None:
                continue  # not controller-managed (orphaned on purpose): left alone
            owner = next((uid for uid, d in by_uid.items() if d["metadata"]["namespace"] == pod["metadata"]["namespace"]
                          and replicaset_uid(uid, h) == ref.get("uid")), None)
            if owner is None:
                if not pod["metadata"].get("deletionTimestamp"):
                    self._delete_pod(pod)  # the garbage collector removes pods whose owner is gone
                continue
            owned[owner].append(pod)
        for uid, d in by_uid.items():
            try:
                self._sync_one(d, owned[uid])
            except ApiError as e:
                self.record("deployment sync error", deployment=d["metadata"]["name"],
                            namespace=d["metadata"]["namespace"], error=e.message)
        for uid in list(self.progress):
            if uid not in by_uid:
                del self.progress[uid]

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        try:
            self.store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        except ApiError:
            pass

    def _new_pod(self, d: dict[str, Any], h: str) -> None:
        ns, name, uid = d["metadata"]["namespace"], d["metadata"]["name"], d["metadata"]["uid"]
        tmpl = d["spec"]["template"]
        nodes, _ = self.store.list("nodes")
        pods, _ = self.store.list("pods")
        load = {n["metadata"]["name"]: 0 for n in nodes}
        for p in pods:
            if p["spec"].get("nodeName") in load:
                load[p["spec"]["nodeName"]] += 1
        node = min(load, key=lambda n: (load[n], n)) if load else ""
        spec = {**tmpl.get("spec", {})}
        spec.update(nodeName=node, serviceAccountName=spec.get("serviceAccountName", "default"),
                    enableServiceLinks=spec.get("enableServiceLinks", True), priority=0,
                    preemptionPolicy="PreemptLowerPriority")
        spec.setdefault("tolerations", [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
        meta: dict[str, Any] = {
            "name": f"{name}-{h}-{random_suffix()}", "generateName": f"{name}-{h}-",
            "labels": {**(tmpl.get("metadata", {}).get("labels") or {}), POD_TEMPLATE_HASH: h},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-{h}",
                                 "uid": replicaset_uid(uid, h), "controller": True, "blockOwnerDeletion": True}],
        }
        if tmpl.get("metadata", {}).get("annotations"):
            meta["annotations"] = dict(tmpl["metadata"]["annotations"])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
               "status": {"phase": "Pending", "qosClass": _qos(spec),
                          "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]}}
        self.store.create_pod(ns, pod)

    def _sync_one(self, d: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        name, uid = d["metadata"]["name"], d["metadata"]["uid"]
        spec, status = d["spec"], d.get("status") or {}
        if d["metadata"].get("deletionTimestamp"):
            return
        replicas = int(spec.get("replicas", 1))
        h = template_hash(spec["template"], int(status.get("collisionCount", 0)))
        rs_name = f"{name}-{h}"
        prog = self.progress.setdefault(uid, _Progress())
        now = time.monotonic()
        min_ready = float(spec.get("minReadySeconds", 0)) / self.time_scale

        def available(p: dict[str, Any]) -> bool:
            return pod_ready(p) and now - prog.ready_since.get(p["metadata"]["uid"], now) >= min_ready

        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        for p in pods:  # minReadySeconds counts from when the controller first saw the pod ready
            if pod_ready(p) and not p["metadata"].get("deletionTimestamp"):
                prog.ready_since.setdefault(p["metadata"]["uid"], now)
            else:
                prog.ready_since.pop(p["metadata"]["uid"], None)
        live = {p["metadata"]["uid"] for p in pods}
        prog.ready_since = {u: t for u, t in prog.ready_since.items() if u in live}
        new = [p for p in active if p["metadata"]["labels"].get(POD_TEMPLATE_HASH) == h]
        old = [p for p in active if p not in new]
        # Pods the controller gives up first: not ready, then the newest (as ReplicaSets rank them).
        victims = lambda ps: sorted(ps, key=lambda p: (pod_ready(p), -parse_rfc3339(p["metadata"]["creationTimestamp"])))  # noqa: E731

        if not spec.get("paused"):
            strategy = spec.get("strategy") or {}
            if strategy.get("type") == "Recreate":
                if old:
                    for p in old:
                        self._delete_pod(p)
                elif not any(p["metadata"]["labels"].get(POD_TEMPLATE_HASH) != h for p in pods):
                    for _ in range(replicas - len(new)):
                        self._new_pod(d, h)
                    for p in victims(new)[: max(0, len(new) - replicas)]:
                        self._delete_pod(p)
            else:
                ru = strategy.get("rollingUpdate") or {}
                surge = int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
                unavail = int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
                if surge == 0 and unavail == 0:
                    unavail = 1
                if len(new) < replicas:
                    room = replicas + surge - len(active) if old else replicas - len(new)
                    for _ in range(max(0, min(replicas - len(new), room))):
                        self._new_pod(d, h)
                elif len(new) > replicas:
                    for p in victims(new)[: len(new) - replicas]:
                        self._delete_pod(p)
                if old:
                    for p in [p for p in old if not pod_ready(p)]:
                        self._delete_pod(p)  # unhealthy old pods go first, whatever the budget
                    ready_old = [p for p in old if pod_ready(p)]
                    n_avail = sum(1 for p in active if available(p))
                    budget = n_avail - (replicas - unavail)
                    for p in sorted(ready_old, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)[: max(0, budget)]:
                        self._delete_pod(p)
        self._write_status(d, prog, rs_name, h, now)

    def _write_status(self, d: dict[str, Any], prog: _Progress, rs_name: str, h: str, now: float) -> None:
        ns, name, uid = d["metadata"]["namespace"], d["metadata"]["name"], d["metadata"]["uid"]
        spec = d["spec"]
        replicas = int(spec.get("replicas", 1))
        pods = [p for p in self.store.list("pods", ns)[0]
                if (p["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH)
                and any(r.get("uid") == replicaset_uid(uid, p["metadata"]["labels"][POD_TEMPLATE_HASH])
                        for r in p["metadata"].get("ownerReferences") or [])]
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        min_ready = float(spec.get("minReadySeconds", 0)) / self.time_scale
        n_ready = sum(1 for p in active if pod_ready(p))
        n_avail = sum(1 for p in active if pod_ready(p) and now - prog.ready_since.get(p["metadata"]["uid"], now) >= min_ready)
        n_updated = sum(1 for p in active if p["metadata"]["labels"].get(POD_TEMPLATE_HASH) == h)
        gen = int(d["metadata"].get("generation", 1))
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        max_unavail = 0 if recreate else int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
        complete = n_updated == replicas and len(active) == replicas and n_avail >= replicas and len(pods) == len(active)
        counts = (gen, len(active), n_updated, n_ready, n_avail)
        if counts != prog.counts:
            prog.counts, prog.last_progress = counts, now
        deadline = float(spec.get("progressDeadlineSeconds", 600)) / self.time_scale
        if complete:
            prog_cond = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif now - prog.last_progress > deadline:
            prog_cond = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')
        elif gen == 1 and not prog.since.get("Progressing"):
            prog_cond = ("True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        else:
            prog_cond = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        avail_ok = n_avail >= replicas - max_unavail
        avail_cond = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.") if avail_ok else \
            ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        old_conds = {c["type"]: c for c in (d.get("status") or {}).get("conditions") or []}
        conds = []
        for type_, (st, reason, msg) in (("Available", avail_cond), ("Progressing", prog_cond)):
            prev = old_conds.get(type_)
            ts = now_rfc3339()
            if prev and prev.get("status") == st and prev.get("reason") == reason and prev.get("message") == msg:
                conds.append(prev)
                continue
            transition = prev["lastTransitionTime"] if prev and prev.get("status") == st else ts
            conds.append({"type": type_, "status": st, "lastUpdateTime": ts, "lastTransitionTime": transition,
                          "reason": reason, "message": msg})
            prog.since[type_] = st
        status: dict[str, Any] = {"observedGeneration": gen}
        # Zero counts are omitted, as the real API (omitempty) does.
        for k, v in (("replicas", len(active)), ("updatedReplicas", n_updated), ("readyReplicas", n_ready),
                     ("availableReplicas", n_avail), ("unavailableReplicas", max(0, replicas - n_avail))):
            if v:
                status[k] = v
        status["conditions"] = conds
        if (d.get("status") or {}).get("collisionCount"):
            status["collisionCount"] = d["status"]["collisionCount"]
        self.store.set_status("deployments", ns, name, status, uid=uid)
        if complete and not (prog.complete and prog.generation == gen):
            self.record("deployment available", deployment=name, namespace=ns, replicas=replicas, generation=gen)
        prog.complete, prog.generation = complete, gen
