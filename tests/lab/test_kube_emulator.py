"""The lab's AKS emulator against the official client (37.x, strict models) and kubectl 1.32.

Each test gets its own API server (tmp_path) and checks on teardown that no pod process outlives
stop(). Pods run real PetClinic processes; time_scale=60 turns the runbook's 60 s readiness delay
into 1 s.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from lab.events import EventLog, read_events
from lab.kube import KubeApiServer, PetClinicRunner
from lab.kube import state as kube_state
from lab.kube.controller import RunningContainer
from lab.mariadb import MariaDB

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SQL_DIR = REPO / "lab" / "petclinic"
TIME_SCALE = 60.0
DB, DB_USER, DB_PASSWORD = "petclinic", "petclinic", "kube-lab-pw-5d1c"
TITLE = "<title>PetClinic :: a Spring Framework demonstration</title>"

# Runbook Phase 2.3, steps 4 and 5, verbatim.
RUNBOOK_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: petclinic
  namespace: petclinic
spec:
  replicas: 2
  selector:
    matchLabels:
      app: petclinic
  template:
    metadata:
      labels:
        app: petclinic
    spec:
      containers:
      - name: petclinic
        image: springcommunity/spring-petclinic:latest
        ports:
        - containerPort: 8080
        env:
        - name: SPRING_PROFILES_ACTIVE
          value: mysql
        - name: MYSQL_HOST
          valueFrom:
            configMapKeyRef:
              name: petclinic-config
              key: MYSQL_HOST
        - name: MYSQL_PORT
          valueFrom:
            configMapKeyRef:
              name: petclinic-config
              key: MYSQL_PORT
        - name: MYSQL_DATABASE
          valueFrom:
            configMapKeyRef:
              name: petclinic-config
              key: MYSQL_DATABASE
        - name: SPRING_DATASOURCE_URL
          value: jdbc:mysql://$(MYSQL_HOST):$(MYSQL_PORT)/$(MYSQL_DATABASE)
        - name: SPRING_DATASOURCE_USERNAME
          valueFrom:
            secretKeyRef:
              name: petclinic-secret
              key: MYSQL_USER
        - name: SPRING_DATASOURCE_PASSWORD
          valueFrom:
            secretKeyRef:
              name: petclinic-secret
              key: MYSQL_PASSWORD
        resources:
          requests:
            memory: "512Mi"
            cpu: "250m"
          limits:
            memory: "1Gi"
            cpu: "500m"
        livenessProbe:
          httpGet:
            path: /
            port: 8080
          initialDelaySeconds: 90
          periodSeconds: 10
        readinessProbe:
          httpGet:
            path: /
            port: 8080
          initialDelaySeconds: 60
          periodSeconds: 5
"""
RUNBOOK_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: petclinic
  namespace: petclinic
spec:
  type: ClusterIP
  selector:
    app: petclinic
  ports:
  - port: 80
    targetPort: 8080
    protocol: TCP
"""


class RecordingRunner:
    """PetClinicRunner that remembers every container, so tests can prove none outlives stop()."""

    def __init__(self, log_dir: Path) -> None:
        self.inner = PetClinicRunner(log_dir)
        self.started: list[Any] = []
        self.lock = threading.Lock()

    def start(self, pod_name: str, image: str, env: dict[str, str], host_port: int) -> RunningContainer:
        c = self.inner.start(pod_name, image, env, host_port)
        with self.lock:
            self.started.append(c)
        return c

    def pids(self) -> list[int]:
        with self.lock:
            return [c.proc.pid for c in self.started]

    def alive(self) -> list[Any]:
        with self.lock:
            return [c for c in self.started if c.alive()]


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


class Lab:
    def __init__(self, srv: KubeApiServer, runner: RecordingRunner, events: EventLog) -> None:
        self.srv, self.runner, self.events = srv, runner, events
        self.api = config.new_client_from_config(str(srv.kubeconfig_path), persist_config=False)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def ns(self, name: str = "petclinic") -> str:
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def wait(self, what: str, cond: Callable[[], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = cond()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def deployment_ready(self, ns: str, name: str, replicas: int) -> bool:
        d = self.apps.read_namespaced_deployment(name, ns)
        st = d.status
        return bool(st.observed_generation == d.metadata.generation and (st.ready_replicas or 0) == replicas
                    and (st.updated_replicas or 0) == replicas and (st.replicas or 0) == replicas)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    events = EventLog(tmp_path / "events.jsonl")
    runner = RecordingRunner(tmp_path / "pods")
    srv = KubeApiServer(tmp_path, runner, time_scale=TIME_SCALE, events=events)
    srv.start()
    lab = Lab(srv, runner, events)
    try:
        yield lab
    finally:
        lab.api.close()
        srv.stop()
        srv.stop()  # idempotent
        events.close()
    assert runner.alive() == [], "pod processes outlived KubeApiServer.stop()"
    assert all(_gone(pid) for pid in runner.pids())


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    db = MariaDB(tmp_path_factory.mktemp("kube-db"), "aksdb")
    db.start()
    try:
        db.create_database(DB, DB_USER, DB_PASSWORD)
        db.execute_script((SQL_DIR / "schema.sql").read_text(), DB)
        db.execute_script((SQL_DIR / "data.sql").read_text(), DB)
        yield db
    finally:
        db.cleanup()


def _status(e: ApiException) -> dict[str, Any]:
    return json.loads(e.body)


def _petclinic_config(lab: Lab, ns: str, db_port: int, password: str = DB_PASSWORD,
                      keys: tuple[str, ...] = ("MYSQL_USER", "MYSQL_PASSWORD")) -> None:
    lab.core.create_namespaced_config_map(ns, {"metadata": {"name": "petclinic-config"}, "data": {
        "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(db_port), "MYSQL_DATABASE": DB}})
    values = {"MYSQL_USER": DB_USER, "MYSQL_PASSWORD": password}
    lab.core.create_namespaced_secret(ns, {"metadata": {"name": "petclinic-secret"},
                                           "stringData": {k: values[k] for k in keys}})


# -- discovery and auth -------------------------------------------------------------------------------


def test_discovery_version_and_kubeconfig(lab: Lab) -> None:
    assert client.VersionApi(lab.api).get_code().git_version == "v1.32.6"
    assert client.CoreApi(lab.api).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(lab.api).get_api_versions().groups
    assert [g.name for g in groups] == ["apps"]
    core = {r.name: r for r in lab.core.get_api_resources().resources}
    assert {"namespaces", "configmaps", "secrets", "services", "pods", "nodes"} <= set(core)
    assert core["pods"].verbs == ["delete", "get", "list", "watch"] and core["services"].short_names == ["svc"]
    apps = {r.name: r for r in lab.apps.get_api_resources().resources}
    assert {"deployments", "deployments/status", "deployments/scale"} <= set(apps)
    # The kubeconfig: named after the cluster, CA + token, private.
    cfg = yaml.safe_load(lab.srv.kubeconfig_path.read_text())
    assert cfg["current-context"] == "aks-dr-blue"
    assert cfg["clusters"][0]["cluster"] == {"server": lab.srv.url, "certificate-authority": str(lab.srv.ca_path)}
    assert (lab.srv.kubeconfig_path.stat().st_mode & 0o777) == 0o600
    assert lab.srv.token not in repr(lab.srv)
    assert lab.srv.url.startswith("https://127.0.0.1:")


def test_wrong_or_missing_token_is_401(lab: Lab, tmp_path: Path) -> None:
    cfg = yaml.safe_load(lab.srv.kubeconfig_path.read_text())
    cfg["users"][0]["user"]["token"] = "not-the-token"
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(yaml.safe_dump(cfg))
    api = config.new_client_from_config(str(bad), persist_config=False)
    with pytest.raises(ApiException) as ei:
        client.CoreV1Api(api).list_namespace()
    api.close()
    assert ei.value.status == 401
    assert _status(ei.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    ctx = ssl.create_default_context(cafile=str(lab.srv.ca_path))
    r = httpx.get(f"{lab.srv.url}/api/v1/namespaces", verify=ctx)
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"
    assert httpx.get(f"{lab.srv.url}/readyz", verify=ctx).status_code == 200


# -- CRUD and errors -----------------------------------------------------------------------------------


def test_namespace_crud_and_system_namespaces(lab: Lab) -> None:
    ns = lab.core.create_namespace({"metadata": {"name": "drill", "labels": {"team": "dr"}}})
    assert ns.status.phase == "Active" and ns.metadata.uid and ns.metadata.resource_version
    assert ns.metadata.labels == {"team": "dr", "kubernetes.io/metadata.name": "drill"}
    names = [n.metadata.name for n in lab.core.list_namespace().items]
    assert {"default", "kube-system", "kube-public", "kube-node-lease", "drill"} <= set(names)
    assert [n.metadata.name for n in lab.core.list_namespace(label_selector="team=dr").items] == ["drill"]
    patched = lab.core.patch_namespace("drill", {"metadata": {"labels": {"phase": "2"}}})
    assert patched.metadata.labels["phase"] == "2" and patched.metadata.labels["team"] == "dr"
    with pytest.raises(ApiException) as ei:
        lab.core.create_namespace({"metadata": {"name": "drill"}})
    assert ei.value.status == 409 and _status(ei.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as ei:
        lab.core.create_namespace({"metadata": {"name": "Not_Valid"}})
    assert ei.value.status == 422 and _status(ei.value)["reason"] == "Invalid"
    deleted: Any = lab.core.delete_namespace("drill")
    assert deleted["status"]["phase"] == "Terminating"  # a dict in 37.x; the Namespace, as the real API returns
    lab.wait("namespace gone", lambda: not lab.srv.namespace_exists("drill"), 5)
    with pytest.raises(ApiException) as ei:
        lab.core.delete_namespace("default")
    assert ei.value.status == 403 and _status(ei.value)["reason"] == "Forbidden"
    assert len(lab.core.list_node().items) == 2


def test_configmap_crud_errors_and_optimistic_concurrency(lab: Lab) -> None:
    ns = lab.ns("cm")
    cm = lab.core.create_namespaced_config_map(ns, {"metadata": {"name": "c1"}, "data": {"A": "1"}})
    assert cm.data == {"A": "1"} and cm.metadata.namespace == ns
    got = lab.core.read_namespaced_config_map("c1", ns)
    assert got.metadata.uid == cm.metadata.uid
    got.data = {"A": "2"}
    replaced = lab.core.replace_namespaced_config_map("c1", ns, got)
    assert int(replaced.metadata.resource_version) > int(cm.metadata.resource_version)
    # A write based on a stale read is refused, as etcd's compare-and-swap makes the real API do.
    cm.data = {"A": "stale"}
    with pytest.raises(ApiException) as ei:
        lab.core.replace_namespaced_config_map("c1", ns, cm)
    assert ei.value.status == 409 and _status(ei.value)["reason"] == "Conflict"
    patched = lab.core.patch_namespaced_config_map("c1", ns, {"data": {"B": "3"}})
    assert patched.data == {"A": "2", "B": "3"}
    with pytest.raises(ApiException) as ei:
        lab.core.read_namespaced_config_map("nope", ns)
    assert ei.value.status == 404
    assert _status(ei.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": 'configmaps "nope" not found', "reason": "NotFound", "code": 404,
                                 "details": {"name": "nope", "kind": "configmaps"}}
    with pytest.raises(ApiException) as ei:
        lab.core.create_namespaced_config_map(ns, {"metadata": {"name": "c1"}})
    assert (ei.value.status, _status(ei.value)["reason"], _status(ei.value)["message"]) == (
        409, "AlreadyExists", 'configmaps "c1" already exists')
    with pytest.raises(ApiException) as ei:
        lab.core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "c1"}})
    assert ei.value.status == 404 and _status(ei.value)["message"] == 'namespaces "no-such-ns" not found'
    out: Any = lab.core.delete_namespaced_config_map("c1", ns)
    assert out["status"] == "Success" and out["details"]["name"] == "c1"
    assert lab.core.list_namespaced_config_map(ns).items == []


def test_secret_string_data_is_write_only(lab: Lab) -> None:
    ns = lab.ns("sec")
    s = lab.core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"PW": "hunter2"}})
    assert s.type == "Opaque" and s.string_data is None
    assert base64.b64decode(s.data["PW"]) == b"hunter2"
    with pytest.raises(ApiException) as ei:
        lab.core.create_namespaced_secret(ns, {"metadata": {"name": "bad"}, "data": {"PW": "!!not base64!!"}})
    assert ei.value.status == 400 and "not base64" not in ei.value.body
    deleted_secret: Any = lab.core.delete_namespaced_secret("s", ns)  # a dict in 37.x, as the real API returns
    assert deleted_secret["details"]["kind"] == "secrets"


def test_service_cluster_ip_allocation_and_immutability(lab: Lab) -> None:
    ns = lab.ns("svc")
    body = yaml.safe_load(RUNBOOK_SERVICE)
    body["metadata"]["namespace"] = ns
    svc = lab.core.create_namespaced_service(ns, body)
    ip = svc.spec.cluster_ip
    assert ip.startswith("10.0.") and svc.spec.cluster_ips == [ip] and ip not in ("10.0.0.1", "10.0.0.10")
    assert svc.spec.ports[0].target_port == 8080 and svc.spec.session_affinity == "None"
    other = lab.core.create_namespaced_service(ns, {"metadata": {"name": "other"}, "spec": {"ports": [{"port": 81}]}})
    assert other.spec.cluster_ip != ip and other.spec.ports[0].target_port == 81
    # Replacing without clusterIP keeps the allocated one (API server >= 1.20); changing it is refused.
    body["metadata"]["labels"] = {"v": "2"}
    assert lab.core.replace_namespaced_service("petclinic", ns, body).spec.cluster_ip == ip
    body["spec"]["clusterIP"] = "10.0.99.99"
    with pytest.raises(ApiException) as ei:
        lab.core.replace_namespaced_service("petclinic", ns, body)
    assert ei.value.status == 422 and "immutable" in _status(ei.value)["message"]
    with pytest.raises(ApiException) as ei:
        lab.core.create_namespaced_service(ns, {"metadata": {"name": "dup"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}})
    assert ei.value.status == 422 and "already allocated" in _status(ei.value)["message"]
    deleted = lab.core.delete_namespaced_service("petclinic", ns)
    assert isinstance(deleted, client.V1Service) and deleted.spec.cluster_ip == ip  # 37.x wants the object back
    with pytest.raises(ApiException) as ei:
        lab.core.delete_namespaced_service("petclinic", ns)
    assert ei.value.status == 404


def test_label_and_field_selectors(lab: Lab) -> None:
    ns = lab.ns("sel")
    for name, labels in (("a", {"app": "web", "tier": "front"}), ("b", {"app": "web", "tier": "back"}),
                         ("c", {"app": "db"}), ("d", {})):
        lab.core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": labels}})

    def names(**kw: str) -> list[str]:
        return [c.metadata.name for c in lab.core.list_namespaced_config_map(ns, **kw).items]

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app==web,tier!=back") == ["a"]
    assert names(label_selector="app!=web") == ["c", "d"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c", "d"]
    assert names(label_selector="app in (db,web),tier notin (front)") == ["b", "c"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=c", label_selector="app") == ["a", "b"]
    assert [c.metadata.name for c in lab.core.list_config_map_for_all_namespaces(label_selector="app=db").items] == ["c"]
    with pytest.raises(ApiException) as ei:
        names(label_selector="app=we b")
    assert ei.value.status == 400
    with pytest.raises(ApiException) as ei:
        names(field_selector="data.x=1")
    assert ei.value.status == 400 and "field label not supported" in _status(ei.value)["message"]


def test_deployment_patch_types_scale_and_status(lab: Lab) -> None:
    ns = lab.ns("dep")
    d = yaml.safe_load(RUNBOOK_DEPLOYMENT)
    d["metadata"]["namespace"] = ns
    d["spec"]["replicas"] = 0  # no pods: this test is about the API
    created = lab.apps.create_namespaced_deployment(ns, d)
    assert created.metadata.generation == 1
    c = created.spec.template.spec.containers[0]
    assert c.image_pull_policy == "Always" and c.readiness_probe.timeout_seconds == 1 and c.readiness_probe.failure_threshold == 3
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    # Strategic merge: the container is merged by name, its env kept.
    p = lab.apps.patch_namespaced_deployment("petclinic", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "petclinic", "image": "springcommunity/spring-petclinic:3.3"}]}}}})
    c = p.spec.template.spec.containers[0]
    assert c.image == "springcommunity/spring-petclinic:3.3" and len(c.env) == 7 and p.metadata.generation == 2
    # JSON merge patch (RFC 7386).
    p = lab.apps.patch_namespaced_deployment("petclinic", ns, {"metadata": {"labels": {"x": "y"}}},
                                             _content_type="application/merge-patch+json")
    assert p.metadata.labels == {"x": "y"} and p.metadata.generation == 2  # metadata only: no new generation
    p = lab.apps.patch_namespaced_deployment("petclinic", ns, [{"op": "replace", "path": "/spec/replicas", "value": 0},
                                                               {"op": "add", "path": "/metadata/labels/z", "value": "1"}],
                                             _content_type="application/json-patch+json")
    assert p.metadata.labels == {"x": "y", "z": "1"}
    scale = lab.apps.read_namespaced_deployment_scale("petclinic", ns)
    assert scale.spec.replicas == 0 and scale.status.selector == "app=petclinic"
    scale = lab.apps.patch_namespaced_deployment_scale("petclinic", ns, {"spec": {"replicas": 0}})
    assert scale.spec.replicas == 0
    st = lab.apps.read_namespaced_deployment_status("petclinic", ns)
    lab.wait("status observed", lambda: lab.apps.read_namespaced_deployment("petclinic", ns).status.observed_generation == 2)
    # The selector is immutable in apps/v1, and must match the template labels.
    bad = lab.apps.read_namespaced_deployment("petclinic", ns)
    bad.spec.selector.match_labels = {"app": "other"}
    with pytest.raises(ApiException) as ei:
        lab.apps.replace_namespaced_deployment("petclinic", ns, bad)
    assert ei.value.status == 422 and _status(ei.value)["details"]["kind"] == "Deployment"
    with pytest.raises(ApiException) as ei:
        lab.apps.read_namespaced_deployment("nope", ns)
    assert _status(ei.value)["message"] == 'deployments.apps "nope" not found'
    assert _status(ei.value)["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    with pytest.raises(ApiException) as ei:
        lab.core.create_namespaced_pod(ns, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert ei.value.status == 405
    out: Any = lab.apps.delete_namespaced_deployment("petclinic", ns)  # a dict in 37.x
    assert out["status"] == "Success" and out["details"]["group"] == "apps" and st.metadata.name == "petclinic"


def test_watch_streams_events_and_resumes(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    ns = lab.ns("w")
    start_rv = lab.core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str, Any]] = []

    def consume() -> None:
        w = watch.Watch()
        for ev in w.stream(lab.core.list_namespaced_config_map, ns, label_selector="watched=yes",
                           resource_version=start_rv, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name, ev["object"]))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.2)
    lab.core.create_namespaced_config_map(ns, {"metadata": {"name": "ignored"}})
    lab.core.create_namespaced_config_map(ns, {"metadata": {"name": "w1", "labels": {"watched": "yes"}}})
    lab.core.patch_namespaced_config_map("w1", ns, {"data": {"k": "v"}})
    lab.core.delete_namespaced_config_map("w1", ns)
    t.join(10)
    assert not t.is_alive()
    assert [(a, b) for a, b, _ in seen] == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    assert isinstance(seen[0][2], client.V1ConfigMap) and seen[1][2].data == {"k": "v"}
    # Without a resourceVersion a watch starts with ADDED for what exists (the informer's list).
    w = watch.Watch()
    first = next(iter(w.stream(lab.core.list_namespaced_config_map, ns, timeout_seconds=2)))
    w.stop()
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "ignored")
    # A watch from a compacted resourceVersion gets 410 Expired.
    monkeypatch.setattr(kube_state, "WATCH_HISTORY", 10)
    for i in range(30):
        lab.core.patch_namespaced_config_map("ignored", ns, {"data": {"i": str(i)}})
    with pytest.raises(ApiException) as ei:
        for _ in watch.Watch().stream(lab.core.list_namespaced_config_map, ns, resource_version=start_rv, timeout_seconds=2):
            pass
    assert ei.value.status == 410


# -- the controllers: real pods ----------------------------------------------------------------------


def test_runbook_deployment_runs_petclinic_behind_the_service(lab: Lab, mariadb: MariaDB, tmp_path: Path) -> None:
    ns = lab.ns()
    _petclinic_config(lab, ns, mariadb.port)
    lab.apps.create_namespaced_deployment(ns, yaml.safe_load(RUNBOOK_DEPLOYMENT))
    svc = lab.core.create_namespaced_service(ns, yaml.safe_load(RUNBOOK_SERVICE))
    t0 = time.monotonic()
    lab.wait("2/2 ready", lambda: lab.deployment_ready(ns, "petclinic", 2))
    # initialDelaySeconds 60 at time_scale 60: ready no sooner than 1 s.
    assert time.monotonic() - t0 >= 60 / TIME_SCALE - 0.05
    dep = lab.apps.read_namespaced_deployment("petclinic", ns)
    conds = {c.type: (c.status, c.reason) for c in dep.status.conditions}
    assert conds == {"Available": ("True", "MinimumReplicasAvailable"), "Progressing": ("True", "NewReplicaSetAvailable")}
    pods = lab.core.list_namespaced_pod(ns, label_selector="app=petclinic").items
    assert len(pods) == 2
    for p in pods:
        assert p.status.phase == "Running" and p.status.pod_ip.startswith("10.244.")
        assert {c.type: c.status for c in p.status.conditions}["Ready"] == "True"
        assert p.status.container_statuses[0].ready and p.metadata.labels["pod-template-hash"]
        assert p.metadata.owner_references[0].kind == "ReplicaSet" and p.spec.node_name
    assert len({p.status.pod_ip for p in pods}) == 2
    endpoints = lab.srv.service_endpoints(svc.spec.cluster_ip, 80)
    assert len(endpoints) == 2 and all(h == "127.0.0.1" for h, _ in endpoints)
    assert lab.srv.service_endpoints(svc.spec.cluster_ip, 8080) == [] and lab.srv.service_endpoints("10.0.0.2", 80) == []
    for host, port in endpoints:
        assert TITLE in httpx.get(f"http://{host}:{port}/", timeout=5).text
        # The DB answers through the env the kubelet resolved: $(MYSQL_PORT) expanded, secret decoded.
        owners = httpx.get(f"http://{host}:{port}/owners", params={"lastName": ""}, timeout=5)
        assert owners.status_code == 200 and "Franklin" in owners.text
    names = [e["event"] for e in read_events(tmp_path / "events.jsonl")]
    assert names.count("pod ready") == 2 and "deployment available" in names
    pod_logs = "".join(p.read_text() for p in (tmp_path / "pods").glob("*.log"))
    assert DB_PASSWORD not in pod_logs
    # Deleting the namespace stops the pods and frees the Service's IP.
    pids = lab.runner.pids()
    lab.core.delete_namespace(ns)
    lab.wait("namespace gone", lambda: not lab.srv.namespace_exists(ns), 15)
    assert lab.runner.alive() == [] and all(_gone(pid) for pid in pids)
    assert lab.srv.service_endpoints(svc.spec.cluster_ip, 80) == []
    assert "namespace deleted" in [e["event"] for e in read_events(tmp_path / "events.jsonl")]


def test_missing_secret_key_is_create_container_config_error(lab: Lab) -> None:
    ns = lab.ns()
    _petclinic_config(lab, ns, 3306, password="never-shown", keys=("MYSQL_USER",))  # no MYSQL_PASSWORD
    lab.apps.create_namespaced_deployment(ns, yaml.safe_load(RUNBOOK_DEPLOYMENT))

    def waiting() -> list[Any]:
        pods = lab.core.list_namespaced_pod(ns).items
        out = [p.status.container_statuses[0].state.waiting for p in pods if p.status.container_statuses]
        return out if len(out) == 2 else []

    states = lab.wait("config error", waiting)
    assert {s.reason for s in states} == {"CreateContainerConfigError"}
    assert states[0].message == f"couldn't find key MYSQL_PASSWORD in Secret {ns}/petclinic-secret"
    time.sleep(60 / TIME_SCALE + 0.3)  # past the readiness delay: still nothing runs
    dep = lab.apps.read_namespaced_deployment("petclinic", ns)
    assert not dep.status.ready_replicas and dep.status.unavailable_replicas == 2
    assert {c.type: c.status for c in dep.status.conditions}["Available"] == "False"
    assert lab.runner.started == []
    assert all(p.status.phase == "Pending" for p in lab.core.list_namespaced_pod(ns).items)
    # Like the kubelet, it retries: once the key exists the pods start.
    lab.core.patch_namespaced_secret("petclinic-secret", ns, {"stringData": {"MYSQL_PASSWORD": "x"}})
    lab.wait("2/2 ready after the fix", lambda: lab.deployment_ready(ns, "petclinic", 2))


def test_unknown_image_is_err_image_pull(lab: Lab) -> None:
    ns = lab.ns("img")
    lab.apps.create_namespaced_deployment(ns, {"metadata": {"name": "nginx"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}})

    def reason() -> str | None:
        pods = lab.core.list_namespaced_pod(ns).items
        cs = pods[0].status.container_statuses if pods else None
        return cs[0].state.waiting.reason if cs and cs[0].state.waiting else None

    assert lab.wait("ErrImagePull", lambda: reason() in ("ErrImagePull", "ImagePullBackOff"))
    assert lab.runner.started == []


def test_rolling_update_scale_and_pod_deletion(lab: Lab) -> None:
    ns = lab.ns("roll")
    lab.apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
            "name": "web", "image": "petclinic:lab", "ports": [{"containerPort": 8080, "name": "http"}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}]}}}})
    lab.wait("2 ready", lambda: lab.deployment_ready(ns, "web", 2))
    first = lab.runner.alive()
    old_hash = lab.core.list_namespaced_pod(ns).items[0].metadata.labels["pod-template-hash"]
    # A changed template replaces every pod (maxSurge 1, maxUnavailable 0 for 2 replicas).
    lab.apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"metadata": {"annotations": {"rev": "2"}}}}})
    lab.wait("rolled out", lambda: lab.deployment_ready(ns, "web", 2)
             and all(p.metadata.labels["pod-template-hash"] != old_hash for p in lab.core.list_namespaced_pod(ns).items))
    lab.wait("old containers stopped", lambda: not any(c.alive() for c in first))
    # Scale down through the scale subresource: the surplus processes stop.
    lab.apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 1}})
    lab.wait("1 ready", lambda: lab.deployment_ready(ns, "web", 1) and len(lab.core.list_namespaced_pod(ns).items) == 1)
    lab.wait("one process", lambda: len(lab.runner.alive()) == 1)
    # A deleted pod is replaced; the delete returns the (terminating) pod, as 37.x expects.
    pod = lab.core.list_namespaced_pod(ns).items[0]
    deleted = lab.core.delete_namespaced_pod(pod.metadata.name, ns)
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.deletion_timestamp is not None
    lab.wait("replaced", lambda: [p.metadata.name for p in lab.core.list_namespaced_pod(ns).items
                                  if p.metadata.name != pod.metadata.name] and lab.deployment_ready(ns, "web", 1))
    lab.apps.delete_namespaced_deployment("web", ns)
    lab.wait("pods gone", lambda: lab.core.list_namespaced_pod(ns).items == [])
    lab.wait("no process", lambda: lab.runner.alive() == [])


# -- kubectl ------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_runbook_flow(lab: Lab, mariadb: MariaDB, tmp_path: Path) -> None:
    kc = str(lab.srv.kubeconfig_path)

    def kubectl(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        return subprocess.run(["kubectl", "--kubeconfig", kc, *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)

    # Runbook 2.3 steps 2-3: typed `kubectl create` sends protobuf bodies.
    assert kubectl("create", "namespace", "petclinic").returncode == 0
    r = kubectl("create", "configmap", "petclinic-config", "-n", "petclinic", "--from-literal=MYSQL_HOST=127.0.0.1",
                f"--from-literal=MYSQL_PORT={mariadb.port}", f"--from-literal=MYSQL_DATABASE={DB}")
    assert r.returncode == 0, r.stderr
    r = kubectl("create", "secret", "generic", "petclinic-secret", "-n", "petclinic", f"--from-literal=MYSQL_USER={DB_USER}",
                f"--from-literal=MYSQL_PASSWORD={DB_PASSWORD}")
    assert r.returncode == 0, r.stderr
    secret = lab.core.read_namespaced_secret("petclinic-secret", "petclinic")
    assert secret.type == "Opaque" and base64.b64decode(secret.data["MYSQL_PASSWORD"]).decode() == DB_PASSWORD
    # Steps 4-5: apply from a file (create, then an unchanged re-apply goes through the 3-way patch).
    manifest = tmp_path / "petclinic.yaml"
    manifest.write_text(RUNBOOK_DEPLOYMENT + "---\n" + RUNBOOK_SERVICE)
    r = kubectl("apply", "--validate=false", "-f", str(manifest))
    assert r.returncode == 0, r.stderr
    assert "deployment.apps/petclinic created" in r.stdout and "service/petclinic created" in r.stdout
    r = kubectl("rollout", "status", "deployment/petclinic", "-n", "petclinic", "--timeout=60s")
    assert r.returncode == 0, r.stderr
    assert 'deployment "petclinic" successfully rolled out' in r.stdout
    r = kubectl("get", "pods", "-n", "petclinic")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(lines) == 3 and all(line.split()[1:3] == ["1/1", "Running"] for line in lines[1:])
    r = kubectl("apply", "--validate=false", "-f", str(manifest))
    assert r.returncode == 0 and "deployment.apps/petclinic unchanged" in r.stdout, r.stderr
    r = kubectl("get", "svc", "petclinic", "-n", "petclinic", "-o", "jsonpath={.spec.clusterIP}")
    ip = r.stdout.strip()
    assert ip.startswith("10.0.") and len(lab.srv.service_endpoints(ip, 80)) == 2
    # A changed manifest is a strategic-merge PATCH and a rolling update that rollout status follows.
    manifest.write_text(RUNBOOK_DEPLOYMENT.replace("replicas: 2", "replicas: 3") + "---\n" + RUNBOOK_SERVICE)
    r = kubectl("apply", "--validate=false", "-f", str(manifest))
    assert "deployment.apps/petclinic configured" in r.stdout, r.stderr
    assert kubectl("rollout", "status", "deployment/petclinic", "-n", "petclinic", "--timeout=60s").returncode == 0
    assert lab.apps.read_namespaced_deployment("petclinic", "petclinic").status.ready_replicas == 3
    # rollout status gives up at its own timeout while pods cannot start.
    broken = yaml.safe_load(RUNBOOK_DEPLOYMENT)
    broken["metadata"]["name"] = "broken"
    broken["spec"]["selector"]["matchLabels"]["app"] = broken["spec"]["template"]["metadata"]["labels"]["app"] = "broken"
    broken["spec"]["template"]["spec"]["containers"][0]["env"][6]["valueFrom"]["secretKeyRef"]["key"] = "NOPE"
    r = kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(broken))
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    r = kubectl("rollout", "status", "deployment/broken", "-n", "petclinic", "--timeout=2s")
    assert r.returncode == 1 and time.monotonic() - t0 < 10
    assert "CreateContainerConfigError" in kubectl("get", "pods", "-n", "petclinic", "-l", "app=broken").stdout
    assert kubectl("delete", "namespace", "petclinic", "--timeout=30s").returncode == 0
    assert not lab.srv.namespace_exists("petclinic")
