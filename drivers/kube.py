"""Kubernetes driver for the drill's Phase 2 (runbook 2.3): PetClinic onto the DR AKS cluster.

Works the same against the lab's emulated AKS and a real cluster: it only needs a kubeconfig
(and optionally a context), and talks through the official `kubernetes` client. For the failover
stack's cluster that kubeconfig is fetched after the apply (drivers/aks.py); ledger entries then also
name the cluster (`aks`), so an unwind in a fresh process can fetch it again.

Every change goes through the rollback ledger first: `ledger.record(change, inverse)` before the
call, `ledger.applied(entry)` after. Inverses are data (`kube.delete`, `kube.delete_namespace`,
`kube.restore`, `kube.restore_secret`) carried out by `execute_kube_action`, so a later process can
unwind from the persisted ledger alone. Secret values never reach the ledger, a log or an error
message: a Secret the drill overwrites is backed up *inside the cluster* (a sibling Secret), and the
ledger records only that backup's name.

Responses are read as raw JSON (`_preload_content=False`) rather than the client's strict models:
37.x models reject fields they do not know, which a newer real API server may send.

The Python client retries nothing (urllib3's own retries are turned off so that one policy decides):
every call goes through tenacity the way client-go's rest client retries (rest/request.go,
checkWait): an answer 429, or 5xx with Retry-After, is retried after that delay whatever the verb
(the server did not carry the request out); idempotent reads are also retried on other 5xx and on
connection errors and timeouts. Each call has a connect and read timeout (target `api:`), so a hung
API server is given up on, and every retried or failed call is recorded (drivers.retries).
"""
from __future__ import annotations

import copy
import json
import secrets as _secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from drill.ledger import Action, Entry, Ledger
from drivers.retries import KUBE_ATTEMPTS, ApiCall, ApiSettings
from drivers.retries import current as _calls

NAMESPACE_DELETE_TIMEOUT = 180.0
BACKUP_LABEL = "dr-drill/backup-of"
ORIGINAL_META = "dr-drill/original-metadata"
KINDS = ("Namespace", "ConfigMap", "Secret", "Deployment", "Service")


class KubeError(RuntimeError):
    """A Kubernetes API call failed; the message carries the API's Status, with secrets masked.
    `transient`: no answer at all (a timeout, a dropped connection), which a retry may fix."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status, self.reason, self.transient = status, reason, transient


def _retry_after(e: BaseException) -> float | None:
    headers = getattr(e, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _kube_transient(e: BaseException, idempotent: bool) -> bool:
    """What client-go retries: 429, or 5xx with Retry-After, for any verb; for an idempotent call (a
    read, a delete) also other 5xx and no answer at all."""
    if isinstance(e, ApiException):
        status = int(e.status or 0)
        return status == 429 or (status >= 500 and (idempotent or _retry_after(e) is not None))
    return idempotent and isinstance(e, urllib3.exceptions.HTTPError)


def _attempt_error(e: BaseException | None) -> str:
    if isinstance(e, ApiException):
        reason = e.reason
        try:
            reason = json.loads(e.body or "{}").get("reason") or reason
        except (ValueError, TypeError, AttributeError):
            pass
        return f"{e.status} {reason}"
    return type(e).__name__


class _Wait:
    """Retry-After when the server gives one (it asks for seconds), else 0.5 s doubling up to 8 s,
    played at the target's time scale."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale

    def __call__(self, state: RetryCallState) -> float:
        e = state.outcome.exception() if state.outcome is not None else None
        after = _retry_after(e) if e is not None else None
        if after is not None:
            return after
        return min(8.0, 0.5 * 2 ** (state.attempt_number - 1)) / self.time_scale


class RolloutFailed(TimeoutError):
    """The Deployment itself gave up: Progressing=False, ProgressDeadlineExceeded (kubectl's error too)."""


def _mask(text: str, values: Iterable[str]) -> str:
    for v in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(v, "***")
    return text


def _api_error(e: ApiException, what: str, mask: Iterable[str] = ()) -> KubeError:
    reason, message = e.reason, ""
    try:
        body = json.loads(e.body or "{}")
        reason, message = body.get("reason") or reason, body.get("message") or ""
    except (ValueError, TypeError):
        message = ""
    text = f"{what}: {e.status} {reason}" + (f": {message}" if message else "")
    return KubeError(_mask(text, mask), e.status, reason)


class Kube:
    """One cluster, reached through a kubeconfig (the lab's or `az aks get-credentials`')."""

    def __init__(self, kubeconfig: str | Path, context: str | None = None, cluster: dict[str, str] | None = None,
                 api: ApiSettings | None = None) -> None:
        self.kubeconfig = str(Path(kubeconfig).expanduser().resolve())
        self.context = context
        self.cluster = cluster  # drivers.aks.cluster_ref of an AKS cluster: how to fetch this kubeconfig again
        self.api = api or ApiSettings()
        cfg = client.Configuration()
        cfg.retries = False  # urllib3 retries nothing: one policy (`_call`) decides and records
        # persist_config=False: never write refreshed credentials back into the operator's file.
        self.api_client = config.new_client_from_config(config_file=self.kubeconfig, context=context, persist_config=False,
                                                        client_configuration=cfg)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    def __repr__(self) -> str:
        return f"Kube(kubeconfig={self.kubeconfig!r}, context={self.context!r})"

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw access ------------------------------------------------------------------------------------

    def _raw(self, fn: Callable[..., Any], *args: Any, idempotent: bool = False, **kw: Any) -> dict[str, Any]:
        """One API call as raw JSON, retried as client-go would (see the module's docstring).

        ApiException after the retries; a call that got no answer at all is a transient KubeError."""
        kw.setdefault("_request_timeout", (self.api.connect_timeout, self.api.read_timeout))
        errors: list[str] = []
        started = time.time()

        def once() -> dict[str, Any]:
            resp = fn(*args, _preload_content=False, **kw)
            try:
                data = resp.data
            finally:
                resp.release_conn()
            return json.loads(data) if data else {}

        retrying = Retrying(retry=retry_if_exception(lambda e: _kube_transient(e, idempotent)), wait=_Wait(self.api.time_scale),
                            stop=stop_after_attempt(KUBE_ATTEMPTS), reraise=True,
                            before_sleep=lambda st: errors.append(_attempt_error(st.outcome.exception() if st.outcome else None)))
        operation = getattr(fn, "__name__", "call")
        try:
            out = retrying(once)
        except (ApiException, urllib3.exceptions.HTTPError) as e:
            if isinstance(e, ApiException) and e.status == 404:
                # An answer (the object is not there), not a failure of the call, retried or not.
                if errors:
                    _calls().record(ApiCall("kubernetes", "kube-apiserver", operation, len(errors) + 1, errors, "ok",
                                            started, round(time.time() - started, 3)))
                raise
            errors.append(_attempt_error(e))
            if len(errors) > 1 or _kube_transient(e, True):
                _calls().record(ApiCall("kubernetes", "kube-apiserver", operation, len(errors), errors, "failed",
                                        started, round(time.time() - started, 3)))
            if isinstance(e, ApiException):
                raise
            raise KubeError(f"{operation}: no answer from the API server after {len(errors)} attempt(s): "
                            f"{type(e).__name__}: {e}", transient=True) from None
        if errors:
            _calls().record(ApiCall("kubernetes", "kube-apiserver", operation, len(errors) + 1, errors, "ok",
                                    started, round(time.time() - started, 3)))
        return out

    def _fns(self, kind: str) -> dict[str, Callable[..., Any]]:
        c, a = self.core, self.apps
        table: dict[str, dict[str, Callable[..., Any]]] = {
            "Namespace": {"read": c.read_namespace, "create": c.create_namespace, "replace": c.replace_namespace,
                          "delete": c.delete_namespace},
            "ConfigMap": {"read": c.read_namespaced_config_map, "create": c.create_namespaced_config_map,
                          "replace": c.replace_namespaced_config_map, "delete": c.delete_namespaced_config_map},
            "Secret": {"read": c.read_namespaced_secret, "create": c.create_namespaced_secret,
                       "replace": c.replace_namespaced_secret, "delete": c.delete_namespaced_secret},
            "Deployment": {"read": a.read_namespaced_deployment, "create": a.create_namespaced_deployment,
                           "replace": a.replace_namespaced_deployment, "delete": a.delete_namespaced_deployment},
            "Service": {"read": c.read_namespaced_service, "create": c.create_namespaced_service,
                        "replace": c.replace_namespaced_service, "delete": c.delete_namespaced_service},
        }
        if kind not in table:
            raise ValueError(f"unsupported kind {kind!r}; one of {', '.join(KINDS)}")
        return table[kind]

    def get(self, kind: str, namespace: str | None, name: str, mask: Iterable[str] = ()) -> dict[str, Any] | None:
        """The object as the API returns it, or None when it does not exist."""
        args = (name,) if kind == "Namespace" else (name, namespace)
        try:
            return self._raw(self._fns(kind)["read"], *args, idempotent=True)
        except ApiException as e:
            if e.status == 404:
                return None
            raise _api_error(e, f"read {kind} {_ref(namespace, name)}", mask) from None

    def _create(self, kind: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        fn = self._fns(kind)["create"]
        return self._raw(fn, body) if kind == "Namespace" else self._raw(fn, namespace, body)

    def _replace(self, kind: str, namespace: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]:
        fn = self._fns(kind)["replace"]
        return self._raw(fn, name, body) if kind == "Namespace" else self._raw(fn, name, namespace, body)

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False if it was already gone."""
        fn = self._fns(kind)["delete"]
        try:
            if kind == "Namespace":
                self._raw(fn, name, propagation_policy="Background", idempotent=True)  # a repeat finds it gone: 404
            else:
                self._raw(fn, name, namespace, propagation_policy="Background", idempotent=True)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise _api_error(e, f"delete {kind} {_ref(namespace, name)}") from None

    # -- ledgered changes --------------------------------------------------------------------------------

    def _ref(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        return {**_where(self.kubeconfig, self.context, self.cluster), "kind": kind, "namespace": namespace, "name": name}

    def _apply(self, kind: str, namespace: str, name: str, body: dict[str, Any], ledger: Ledger,
               summary: dict[str, Any], mask: Iterable[str] = ()) -> str:
        """Create or replace `body`, recording the inverse first; returns "created" or "replaced"."""
        ref = self._ref(kind, namespace, name)
        what = f"{kind} {namespace}/{name}"
        current = self.get(kind, namespace, name, mask)
        if current is None:
            entry = ledger.record(*_create_actions(ref, summary))
            self._change(entry, ledger, lambda: self._create(kind, namespace, body), f"create {what}", mask)
            return "created"
        body = copy.deepcopy(body)
        body.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        if kind == "Service":
            # clusterIP is immutable and allocated: keep the one the App Gateway may already point at.
            spec, old = body.setdefault("spec", {}), current.get("spec") or {}
            for k in ("clusterIP", "clusterIPs"):
                if k in old and not spec.get(k):
                    spec[k] = old[k]
        entry = ledger.record(Action("kube.replace", {**ref, **summary}, f"replace {what}"),
                              Action("kube.restore", {**ref, "object": restorable(current)}, f"restore the previous {what}"))
        self._change(entry, ledger, lambda: self._replace(kind, namespace, name, body), f"replace {what}", mask)
        return "replaced"

    @staticmethod
    def _change(entry: Entry, ledger: Ledger, call: Callable[[], Any], what: str, mask: Iterable[str] = ()) -> None:
        if entry.planned:  # a dry run: recorded with its inverse, not made
            return
        try:
            call()
        except ApiException as e:
            if 400 <= int(e.status or 0) < 500:
                ledger.settled(entry)  # the API refused: nothing changed, nothing to undo
            raise _api_error(e, what, mask) from None
        ledger.applied(entry)

    def ensure_namespace(self, name: str, ledger: Ledger, wait_timeout: float = NAMESPACE_DELETE_TIMEOUT) -> bool:
        """Create the namespace unless it exists; True if the drill created it (and will delete it)."""
        current = self.get("Namespace", None, name)
        if current is not None and (current.get("status") or {}).get("phase") == "Terminating":
            self._wait_namespace_gone(name, wait_timeout)  # a leftover from an earlier run
            current = None
        if current is not None:
            return False
        entry = ledger.record(*_namespace_actions(_where(self.kubeconfig, self.context, self.cluster), name, wait_timeout))
        self._change(entry, ledger, lambda: self._create("Namespace", None, {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}), f"create namespace {name}")
        return True

    def apply_configmap(self, ns: str, name: str, data: dict[str, str], ledger: Ledger) -> str:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
                "data": {k: str(v) for k, v in data.items()}}
        return self._apply("ConfigMap", ns, name, body, ledger, {"keys": sorted(data)})

    def apply_secret(self, ns: str, name: str, string_data: dict[str, str], ledger: Ledger) -> str:
        """Create or replace an Opaque-style Secret from plain values (never logged or ledgered)."""
        values = [str(v) for v in string_data.values()]
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
                                "type": "Opaque", "stringData": {k: str(v) for k, v in string_data.items()}}
        summary = {"keys": sorted(string_data)}
        current = self.get("Secret", ns, name, values)
        if current is None:
            return self._apply("Secret", ns, name, body, ledger, summary, values)
        # The previous values must survive for the rollback, but not in the ledger file: copy them
        # to a sibling Secret in the same namespace (same access control), and ledger its name.
        backup = f"{name[:200]}-drill-backup-{_secrets.token_hex(3)}"
        meta = current.get("metadata") or {}
        original = {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}}
        backup_body = {
            "apiVersion": "v1", "kind": "Secret", "type": current.get("type", "Opaque"), "data": current.get("data") or {},
            "metadata": {"name": backup, "namespace": ns, "labels": {BACKUP_LABEL: name[:63]},
                         "annotations": {ORIGINAL_META: json.dumps(original, sort_keys=True)}},
        }
        bref = self._ref("Secret", ns, backup)
        e1 = ledger.record(Action("kube.create", {**bref, "backup_of": name}, f"back up Secret {ns}/{name} to {backup}"),
                           Action("kube.delete", bref, f"delete the backup Secret {ns}/{backup}"))
        self._change(e1, ledger, lambda: self._create("Secret", ns, backup_body), f"back up Secret {ns}/{name}", values)
        body["type"] = current.get("type", "Opaque")  # type is immutable
        body["metadata"]["resourceVersion"] = meta["resourceVersion"]
        ref = self._ref("Secret", ns, name)
        e2 = ledger.record(Action("kube.replace", {**ref, **summary}, f"replace Secret {ns}/{name}"),
                           Action("kube.restore_secret", {**ref, "backup": backup},
                                  f"restore Secret {ns}/{name} from its backup {backup}"))
        self._change(e2, ledger, lambda: self._replace("Secret", ns, name, body), f"replace Secret {ns}/{name}", values)
        return "replaced"

    def apply_deployment(self, ns: str, manifest: dict[str, Any], ledger: Ledger) -> str:
        return self._apply_manifest("Deployment", ns, manifest, ledger)

    def apply_service(self, ns: str, manifest: dict[str, Any], ledger: Ledger) -> str:
        return self._apply_manifest("Service", ns, manifest, ledger)

    def _apply_manifest(self, kind: str, ns: str, manifest: dict[str, Any], ledger: Ledger) -> str:
        if manifest.get("kind") != kind:
            raise ValueError(f"expected a {kind} manifest, got kind {manifest.get('kind')!r}")
        body = copy.deepcopy(manifest)
        meta = body.setdefault("metadata", {})
        if meta.get("namespace") not in (None, ns):
            raise ValueError(f"manifest namespace {meta['namespace']!r} differs from {ns!r}")
        meta["namespace"] = ns
        name = meta.get("name")
        if not name:
            raise ValueError(f"{kind} manifest has no metadata.name")
        return self._apply(kind, ns, name, body, ledger, {"manifest": manifest})

    # -- reads and waits -----------------------------------------------------------------------------------

    def namespace_exists(self, ns: str) -> bool:
        return self.get("Namespace", None, ns) is not None

    def service_cluster_ip(self, ns: str, name: str) -> str:
        svc = self.get("Service", ns, name)
        if svc is None:
            raise KubeError(f"Service {ns}/{name} not found", 404, "NotFound")
        ip = (svc.get("spec") or {}).get("clusterIP")
        if not ip or ip == "None":
            raise KubeError(f"Service {ns}/{name} has no cluster IP (clusterIP={ip!r})")
        return str(ip)

    def wait_load_balancer_ip(self, ns: str, name: str, timeout: float, poll: float | None = None) -> tuple[str, float]:
        """(IP, seconds waited) once the LoadBalancer Service has its address in
        `status.loadBalancer.ingress[0].ip` (`<pending>` until the cloud has made the load balancer).
        TimeoutError after `timeout`, naming what to check."""
        poll = poll if poll is not None else max(0.1, min(2.0, timeout / 100))
        start = time.monotonic()
        while True:
            svc = self.get("Service", ns, name)
            if svc is None:
                raise KubeError(f"Service {ns}/{name} not found", 404, "NotFound")
            spec = svc.get("spec") or {}
            if spec.get("type") != "LoadBalancer":
                raise KubeError(f"Service {ns}/{name} is of type {spec.get('type')!r}, not LoadBalancer: it gets no "
                                f"load balancer address")
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            ip = next((i.get("ip") for i in ingress if i.get("ip")), None)
            if ip:
                return str(ip), time.monotonic() - start
            if time.monotonic() - start >= timeout:
                raise TimeoutError(
                    f"Service {ns}/{name} has no load balancer IP after {timeout:.0f}s (EXTERNAL-IP <pending>): check the "
                    f"Service's events (`kubectl describe svc -n {ns} {name}`): the cluster identity needs Network "
                    f"Contributor on the subnet, and the internal-subnet annotation must name a subnet of the cluster's VNet")
            time.sleep(min(poll, max(0.05, timeout - (time.monotonic() - start))))

    def wait_rollout(self, ns: str, name: str, timeout: float) -> float:
        """Seconds until the Deployment's current generation is fully rolled out (all replicas
        updated, ready and available, no old ones left). TimeoutError (with the status and the
        pods' waiting reasons) after `timeout`; RolloutFailed at once on ProgressDeadlineExceeded."""
        start = time.monotonic()
        deadline = start + timeout
        dep = self._must_get_deployment(ns, name)
        while True:
            state = rollout_state(dep)
            if state == "done":
                return time.monotonic() - start
            if state == "failed":
                raise RolloutFailed(self._rollout_report(
                    ns, name, dep, f"exceeded its progress deadline after {time.monotonic() - start:.1f}s"))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(self._rollout_report(ns, name, dep, f"not rolled out after {timeout:.0f}s"))
            if remaining < 1.0:  # the watch's timeout has 1 s granularity: poll the rest
                time.sleep(min(remaining, 0.1))
                dep = self._must_get_deployment(ns, name)
                continue
            w = watch.Watch()
            seconds = max(1, int(min(remaining, 30)))
            try:
                for ev in w.stream(self.apps.list_namespaced_deployment, ns, field_selector=f"metadata.name={name}",
                                   resource_version=dep["metadata"]["resourceVersion"], timeout_seconds=seconds,
                                   deserialize=False, _request_timeout=(self.api.connect_timeout, seconds + self.api.read_timeout)):
                    if ev.get("type") == "DELETED":
                        raise KubeError(f"Deployment {ns}/{name} was deleted while waiting for its rollout", 404, "NotFound")
                    if ev.get("type") in ("ADDED", "MODIFIED"):
                        dep = ev["object"]
                        if rollout_state(dep) != "progressing":
                            break
            except (ApiException, urllib3.exceptions.HTTPError) as e:
                # 410: the resourceVersion expired; a throttled, failed or dropped watch: re-read and watch again.
                if isinstance(e, ApiException) and e.status != 410 and not _kube_transient(e, True):
                    raise _api_error(e, f"watch Deployment {ns}/{name}") from None
                if not (isinstance(e, ApiException) and e.status == 410):
                    time.sleep(min(max(0.0, deadline - time.monotonic()), _retry_after(e) or 1.0 / self.api.time_scale))
                dep = self._must_get_deployment(ns, name)
            finally:
                w.stop()
            if rollout_state(dep) == "progressing":
                dep = self._must_get_deployment(ns, name)

    def _must_get_deployment(self, ns: str, name: str) -> dict[str, Any]:
        dep = self.get("Deployment", ns, name)
        if dep is None:
            raise KubeError(f"Deployment {ns}/{name} not found", 404, "NotFound")
        return dep

    def _rollout_report(self, ns: str, name: str, dep: dict[str, Any], what: str) -> str:
        st, spec = dep.get("status") or {}, dep.get("spec") or {}
        conds = "; ".join(f"{c.get('type')}={c.get('status')} ({c.get('reason')})" for c in st.get("conditions") or [])
        counts = (f"replicas {spec.get('replicas', 1)} wanted, {st.get('replicas', 0)} current, {st.get('updatedReplicas', 0)} updated, "
                  f"{st.get('readyReplicas', 0)} ready, {st.get('availableReplicas', 0)} available; generation "
                  f"{dep['metadata'].get('generation')} observed {st.get('observedGeneration', 0)}")
        return f"Deployment {ns}/{name} {what}: {counts}; conditions: {conds or 'none'}; pods: {self._pod_problems(ns, spec)}"

    def _pod_problems(self, ns: str, spec: dict[str, Any]) -> str:
        labels = ((spec.get("selector") or {}).get("matchLabels") or {})
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        try:
            pods = self._raw(self.core.list_namespaced_pod, ns, label_selector=selector, idempotent=True).get("items") or []
        except (ApiException, KubeError):
            return "unavailable"
        out = []
        for p in pods:
            reasons = []
            for cs in (p.get("status") or {}).get("containerStatuses") or []:
                waiting = (cs.get("state") or {}).get("waiting")
                if waiting:
                    reasons.append(f"{waiting.get('reason')}" + (f" ({waiting['message']})" if waiting.get("message") else ""))
                elif not cs.get("ready"):
                    reasons.append("running, not ready")
            phase = (p.get("status") or {}).get("phase", "?")
            out.append(f"{p['metadata']['name']} {phase}" + (f": {', '.join(reasons)}" if reasons else ""))
        return "; ".join(out) or "none"

    def delete_namespace(self, ns: str, wait_timeout: float = NAMESPACE_DELETE_TIMEOUT) -> None:
        """Delete the namespace and wait until it is gone (its pods stopped); TimeoutError if not."""
        self.delete("Namespace", None, ns)
        self._wait_namespace_gone(ns, wait_timeout)

    def _wait_namespace_gone(self, ns: str, wait_timeout: float) -> None:
        deadline = time.monotonic() + wait_timeout
        while self.get("Namespace", None, ns) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {ns} still exists (Terminating) after {wait_timeout:.0f}s")
            time.sleep(0.1)

    # -- inverses --------------------------------------------------------------------------------------

    def restore(self, kind: str, ns: str | None, name: str, obj: dict[str, Any]) -> None:
        """Put back a recorded object: replace it if it exists, else create it again."""
        body = copy.deepcopy(obj)
        current = self.get(kind, ns, name)
        try:
            if current is None:
                self._create(kind, ns, body)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self._replace(kind, ns, name, body)
        except ApiException as e:
            raise _api_error(e, f"restore {kind} {_ref(ns, name)}") from None

    def restore_secret(self, ns: str, name: str, backup: str) -> None:
        saved = self.get("Secret", ns, backup)
        if saved is None:
            raise KubeError(f"cannot restore Secret {ns}/{name}: its backup {backup} is gone", 404, "NotFound")
        original = json.loads(((saved.get("metadata") or {}).get("annotations") or {}).get(ORIGINAL_META) or "{}")
        meta: dict[str, Any] = {"name": name, "namespace": ns}
        for k in ("labels", "annotations"):
            if original.get(k):
                meta[k] = original[k]
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": saved.get("type", "Opaque"),
                "data": saved.get("data") or {}}
        self.restore("Secret", ns, name, body)


def _create_actions(ref: dict[str, Any], summary: dict[str, Any]) -> tuple[Action, Action]:
    what = f"{ref['kind']} {ref['namespace']}/{ref['name']}"
    return (Action("kube.create", {**ref, **summary}, f"create {what}"),
            Action("kube.delete", ref, f"delete {what} (created by the drill)"))


def _where(kubeconfig: str, context: str | None, cluster: dict[str, str] | None) -> dict[str, Any]:
    """Where a kube ledger entry's object lives: the kubeconfig (and context), and the AKS cluster if known."""
    return {"kubeconfig": kubeconfig, "context": context, **({"aks": dict(cluster)} if cluster else {})}


def _namespace_actions(where: dict[str, Any], name: str, wait_timeout: float) -> tuple[Action, Action]:
    params = {**where, "namespace": name}
    return (Action("kube.create_namespace", params, f"create namespace {name}"),
            Action("kube.delete_namespace", {**params, "wait_timeout": wait_timeout},
                   f"delete namespace {name} (created by the drill) and everything in it"))


def plan_on_new_cluster(kubeconfig: str | Path, context: str | None, ns: str,
                        objects: list[tuple[str, str, dict[str, Any]]], ledger: Ledger,
                        cluster: dict[str, str] | None = None) -> list[Entry]:
    """A dry run's plan on a cluster the failover stack has yet to create: nothing can be read
    there, and everything is a creation. `objects` are (kind, name, summary) in apply order."""
    if not ledger.dry_run:
        raise RuntimeError("plan_on_new_cluster is for dry runs: a real run applies through Kube")
    where = _where(str(Path(kubeconfig).expanduser().resolve()), context, cluster)
    entries = [ledger.record(*_namespace_actions(where, ns, NAMESPACE_DELETE_TIMEOUT))]
    for kind, name, summary in objects:
        ref = {**where, "kind": kind, "namespace": ns, "name": name}
        entries.append(ledger.record(*_create_actions(ref, summary)))
    return entries


def _ref(ns: str | None, name: str) -> str:
    return f"{ns}/{name}" if ns else name


def restorable(obj: dict[str, Any]) -> dict[str, Any]:
    """What to write back to restore `obj`: its content, without server-set fields and status."""
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                           "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}}
    for k in ("spec", "data", "binaryData", "type", "immutable"):
        if k in obj:
            out[k] = copy.deepcopy(obj[k])
    return out


def rollout_state(dep: dict[str, Any]) -> str:
    """"done", "failed" (progress deadline exceeded) or "progressing" — kubectl rollout status's rules,
    plus readyReplicas (what the drill's wait is about)."""
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    if int(st.get("observedGeneration") or 0) < int(dep["metadata"].get("generation") or 0):
        return "progressing"
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return "failed"
    want = int(spec.get("replicas", 1))
    counts = [int(st.get(k) or 0) for k in ("updatedReplicas", "replicas", "readyReplicas", "availableReplicas")]
    return "done" if counts[0] == want and counts[1] == want and counts[2] >= want and counts[3] >= want else "progressing"


def execute_kube_action(action: Action, api: ApiSettings | None = None) -> None:
    """Carry out a ledger inverse of this driver (a fresh process can, from the ledger file alone)."""
    p = action.params
    ops = ("kube.delete", "kube.delete_namespace", "kube.restore", "kube.restore_secret")
    if action.op not in ops:
        raise ValueError(f"no executor for operation {action.op!r} (kube inverses: {', '.join(ops)})")
    with Kube(p["kubeconfig"], p.get("context"), api=api) as k:
        if action.op == "kube.delete":
            k.delete(p["kind"], p.get("namespace"), p["name"])
        elif action.op == "kube.delete_namespace":
            k.delete_namespace(p["namespace"], float(p.get("wait_timeout", NAMESPACE_DELETE_TIMEOUT)))
        elif action.op == "kube.restore":
            k.restore(p["kind"], p.get("namespace"), p["name"], p["object"])
        else:
            k.restore_secret(p["namespace"], p["name"], p["backup"])


INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"
INTERNAL_LB_SUBNET = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet"


def petclinic_manifests(image: str, replicas: int, namespace: str = "petclinic", service_type: str = "ClusterIP",
                        lb_subnet: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The runbook's (2.3 steps 4 and 5) PetClinic Deployment and Service, as dicts.

    `service_type="ClusterIP"` is the runbook as written. `"LoadBalancer"` is what an App Gateway can
    reach: an Azure *internal* load balancer (annotation `azure-load-balancer-internal: "true"`),
    whose private IP comes from the cluster's subnet, or from `lb_subnet` (annotation
    `azure-load-balancer-internal-subnet`) — "Use an internal load balancer with AKS".
    """
    if service_type not in ("ClusterIP", "LoadBalancer"):
        raise ValueError(f"service_type {service_type!r}: ClusterIP (the runbook's) or LoadBalancer (internal)")

    def from_config(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"configMapKeyRef": {"name": "petclinic-config", "key": key}}}

    def from_secret(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": "petclinic-secret", "key": key}}}

    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "petclinic", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "petclinic"}},
            "template": {
                "metadata": {"labels": {"app": "petclinic"}},
                "spec": {"containers": [{
                    "name": "petclinic",
                    "image": image,
                    "ports": [{"containerPort": 8080}],
                    "env": [
                        {"name": "SPRING_PROFILES_ACTIVE", "value": "mysql"},
                        from_config("MYSQL_HOST", "MYSQL_HOST"),
                        from_config("MYSQL_PORT", "MYSQL_PORT"),
                        from_config("MYSQL_DATABASE", "MYSQL_DATABASE"),
                        {"name": "SPRING_DATASOURCE_URL", "value": "jdbc:mysql://$(MYSQL_HOST):$(MYSQL_PORT)/$(MYSQL_DATABASE)"},
                        from_secret("SPRING_DATASOURCE_USERNAME", "MYSQL_USER"),
                        from_secret("SPRING_DATASOURCE_PASSWORD", "MYSQL_PASSWORD"),
                    ],
                    "resources": {"requests": {"memory": "512Mi", "cpu": "250m"}, "limits": {"memory": "1Gi", "cpu": "500m"}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": 90, "periodSeconds": 10},
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": 60, "periodSeconds": 5},
                }]},
            },
        },
    }
    service: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "petclinic", "namespace": namespace},
        "spec": {"type": service_type, "selector": {"app": "petclinic"},
                 "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }
    if service_type == "LoadBalancer":
        annotations = {INTERNAL_LB: "true"}
        if lb_subnet:
            annotations[INTERNAL_LB_SUBNET] = lb_subnet
        service["metadata"]["annotations"] = annotations
    return deployment, service
