"""drivers/kube.py against the lab's AKS emulator: ledgered applies, rollout waits, unwinding."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from drill.ledger import Action, Ledger
from drivers.kube import Kube, KubeError, RolloutFailed, execute_kube_action, petclinic_manifests, plan_on_new_cluster
from lab.kube import KubeApiServer, PetClinicRunner

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
NS = "petclinic"
PASSWORD = "drv-secret-9f2e41"
IMAGE = "springcommunity/spring-petclinic:latest"
CONFIG = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "3306", "MYSQL_DATABASE": "petclinic"}

# Runbook Phase 2.3 steps 4-5, with the fields petclinic_manifests must reproduce.
RUNBOOK = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: petclinic, namespace: petclinic}
spec:
  replicas: 2
  selector: {matchLabels: {app: petclinic}}
  template:
    metadata: {labels: {app: petclinic}}
    spec:
      containers:
      - name: petclinic
        image: springcommunity/spring-petclinic:latest
        ports: [{containerPort: 8080}]
        env:
        - {name: SPRING_PROFILES_ACTIVE, value: mysql}
        - {name: MYSQL_HOST, valueFrom: {configMapKeyRef: {name: petclinic-config, key: MYSQL_HOST}}}
        - {name: MYSQL_PORT, valueFrom: {configMapKeyRef: {name: petclinic-config, key: MYSQL_PORT}}}
        - {name: MYSQL_DATABASE, valueFrom: {configMapKeyRef: {name: petclinic-config, key: MYSQL_DATABASE}}}
        - {name: SPRING_DATASOURCE_URL, value: "jdbc:mysql://$(MYSQL_HOST):$(MYSQL_PORT)/$(MYSQL_DATABASE)"}
        - {name: SPRING_DATASOURCE_USERNAME, valueFrom: {secretKeyRef: {name: petclinic-secret, key: MYSQL_USER}}}
        - {name: SPRING_DATASOURCE_PASSWORD, valueFrom: {secretKeyRef: {name: petclinic-secret, key: MYSQL_PASSWORD}}}
        resources:
          requests: {memory: "512Mi", cpu: "250m"}
          limits: {memory: "1Gi", cpu: "500m"}
        livenessProbe: {httpGet: {path: /, port: 8080}, initialDelaySeconds: 90, periodSeconds: 10}
        readinessProbe: {httpGet: {path: /, port: 8080}, initialDelaySeconds: 60, periodSeconds: 5}
---
apiVersion: v1
kind: Service
metadata: {name: petclinic, namespace: petclinic}
spec:
  type: ClusterIP
  selector: {app: petclinic}
  ports:
  - {port: 80, targetPort: 8080, protocol: TCP}
"""


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[KubeApiServer]:
    s = KubeApiServer(tmp_path, PetClinicRunner(tmp_path / "pods"), time_scale=60.0)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def kube(srv: KubeApiServer) -> Iterator[Kube]:
    with Kube(srv.kubeconfig_path) as k:
        yield k


@pytest.fixture
def admin(srv: KubeApiServer) -> Iterator[tuple[client.CoreV1Api, client.AppsV1Api]]:
    """Direct client access, standing for what existed before the drill."""
    api = config.new_client_from_config(str(srv.kubeconfig_path), persist_config=False)
    yield client.CoreV1Api(api), client.AppsV1Api(api)
    api.close()


def _deploy_all(kube: Kube, ledger: Ledger, replicas: int = 2) -> None:
    kube.ensure_namespace(NS, ledger)
    kube.apply_configmap(NS, "petclinic-config", CONFIG, ledger)
    kube.apply_secret(NS, "petclinic-secret", {"MYSQL_USER": "petclinic", "MYSQL_PASSWORD": PASSWORD}, ledger)
    dep, svc = petclinic_manifests(IMAGE, replicas)
    kube.apply_deployment(NS, dep, ledger)
    kube.apply_service(NS, svc, ledger)


def _no_secret_in(text: str) -> None:
    assert PASSWORD not in text
    assert base64.b64encode(PASSWORD.encode()).decode() not in text


def test_petclinic_manifests_are_the_runbooks() -> None:
    dep, svc = yaml.safe_load_all(RUNBOOK)
    assert petclinic_manifests(IMAGE, 2) == (dep, svc)
    d, s = petclinic_manifests("petclinic:lab", 3, namespace="dr")
    assert (d["spec"]["replicas"], d["metadata"]["namespace"], s["metadata"]["namespace"]) == (3, "dr", "dr")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "petclinic:lab"


def test_fresh_deploy_ledgers_deletes_and_a_new_process_unwinds_it(srv: KubeApiServer, kube: Kube, tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.json"
    ledger = Ledger(ledger_path)
    _deploy_all(kube, ledger)
    inverses = [(e.inverse.op, e.inverse.params.get("kind"), e.inverse.params.get("name") or e.inverse.params.get("namespace"))
                for e in ledger.entries]
    assert inverses == [
        ("kube.delete_namespace", None, NS),
        ("kube.delete", "ConfigMap", "petclinic-config"),
        ("kube.delete", "Secret", "petclinic-secret"),
        ("kube.delete", "Deployment", "petclinic"),
        ("kube.delete", "Service", "petclinic"),
    ]
    assert all(e.state == "applied" for e in ledger.entries)
    assert all(e.inverse.params["kubeconfig"] == str(srv.kubeconfig_path) for e in ledger.entries)
    took = kube.wait_rollout(NS, "petclinic", timeout=30)
    assert 60 / 60 - 0.05 <= took < 10  # readiness initialDelaySeconds 60 at time_scale 60
    ip = kube.service_cluster_ip(NS, "petclinic")
    assert ip.startswith("10.0.") and len(srv.service_endpoints(ip, 80)) == 2
    _no_secret_in(ledger_path.read_text())
    # Unwind from the file alone, in another process, as `drill unwind` would.
    code = ("import sys, json; from pathlib import Path; from drill.ledger import Ledger; from drivers.kube import execute_kube_action;"
            "f = Ledger.load(Path(sys.argv[1])).unwind(execute_kube_action); print(json.dumps([e for _, e in f]))")
    out = subprocess.run([sys.executable, "-c", code, str(ledger_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    assert not kube.namespace_exists(NS) and not srv.namespace_exists(NS)
    assert srv.service_endpoints(ip, 80) == []
    assert all(e["state"] == "undone" for e in json.loads(ledger_path.read_text())["entries"])
    # Idempotent: unwinding again finds nothing outstanding; inverses themselves tolerate "already gone".
    assert Ledger.load(ledger_path).unwind(execute_kube_action) == []
    execute_kube_action(ledger.entries[1].inverse)


def test_reapply_over_existing_objects_restores_them_on_unwind(kube: Kube, admin: tuple[client.CoreV1Api, client.AppsV1Api],
                                                               tmp_path: Path) -> None:
    core, apps = admin
    # What was there before the drill: namespace, config, secret, a 1-replica deployment, the service.
    core.create_namespace({"metadata": {"name": NS}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "petclinic-config", "labels": {"owner": "ops"}},
                                           "data": {"MYSQL_HOST": "old-db"}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "petclinic-secret", "annotations": {"rotated": "2024"}},
                                       "stringData": {"MYSQL_USER": "old", "MYSQL_PASSWORD": "old-pw"}})
    dep, svc = petclinic_manifests("springcommunity/spring-petclinic:2.7", 1)
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = []  # pods of the old app need nothing
    apps.create_namespaced_deployment(NS, dep)
    old_ip = core.create_namespaced_service(NS, svc).spec.cluster_ip

    ledger_path = tmp_path / "ledger.json"
    ledger = Ledger(ledger_path)
    _deploy_all(kube, ledger, replicas=2)
    ops = [(e.change.op, e.inverse.op) for e in ledger.entries]
    assert ops == [  # no namespace entry: the drill did not create it and must not delete it
        ("kube.replace", "kube.restore"),
        ("kube.create", "kube.delete"),  # the in-cluster backup of the secret
        ("kube.replace", "kube.restore_secret"),
        ("kube.replace", "kube.restore"),
        ("kube.replace", "kube.restore"),
    ]
    text = ledger_path.read_text()
    _no_secret_in(text)
    assert "old-pw" not in text and base64.b64encode(b"old-pw").decode() not in text
    backup = ledger.entries[1].inverse.params["name"]
    assert base64.b64decode(core.read_namespaced_secret(backup, NS).data["MYSQL_PASSWORD"]) == b"old-pw"
    assert kube.service_cluster_ip(NS, "petclinic") == old_ip  # replaced in place: the App Gateway target holds
    assert apps.read_namespaced_deployment("petclinic", NS).spec.replicas == 2
    assert kube.wait_rollout(NS, "petclinic", timeout=30) > 0

    assert Ledger.load(ledger_path).unwind(execute_kube_action) == []
    assert kube.namespace_exists(NS)
    cm = core.read_namespaced_config_map("petclinic-config", NS)
    assert cm.data == {"MYSQL_HOST": "old-db"} and cm.metadata.labels == {"owner": "ops"}
    sec = core.read_namespaced_secret("petclinic-secret", NS)
    assert {k: base64.b64decode(v).decode() for k, v in sec.data.items()} == {"MYSQL_USER": "old", "MYSQL_PASSWORD": "old-pw"}
    assert sec.metadata.annotations == {"rotated": "2024"}
    assert [s.metadata.name for s in core.list_namespaced_secret(NS).items] == ["petclinic-secret"]  # backup removed
    d = apps.read_namespaced_deployment("petclinic", NS)
    assert d.spec.replicas == 1 and d.spec.template.spec.containers[0].image == "springcommunity/spring-petclinic:2.7"
    assert core.read_namespaced_service("petclinic", NS).spec.cluster_ip == old_ip
    assert kube.wait_rollout(NS, "petclinic", timeout=30) >= 0  # the old deployment is back to 1 ready replica


def test_wait_rollout_times_out_with_the_reason(kube: Kube, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    kube.ensure_namespace(NS, ledger)
    kube.apply_configmap(NS, "petclinic-config", CONFIG, ledger)
    kube.apply_secret(NS, "petclinic-secret", {"MYSQL_USER": "petclinic"}, ledger)  # no MYSQL_PASSWORD
    dep, _ = petclinic_manifests(IMAGE, 2)
    kube.apply_deployment(NS, dep, ledger)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as ei:
        kube.wait_rollout(NS, "petclinic", timeout=1.5)
    assert 1.5 <= time.monotonic() - t0 < 4
    msg = str(ei.value)
    assert "not rolled out after 2s" in msg
    assert "0 ready" in msg and "CreateContainerConfigError" in msg
    assert f"couldn't find key MYSQL_PASSWORD in Secret {NS}/petclinic-secret" in msg
    assert not isinstance(ei.value, RolloutFailed)


def test_wait_rollout_fails_fast_past_the_progress_deadline(kube: Kube, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    kube.ensure_namespace(NS, ledger)
    dep, _ = petclinic_manifests("nginx:1.27", 1)  # not runnable in the lab: ErrImagePull
    dep["spec"]["progressDeadlineSeconds"] = 60  # 1 s at time_scale 60
    kube.apply_deployment(NS, dep, ledger)
    t0 = time.monotonic()
    with pytest.raises(RolloutFailed) as ei:
        kube.wait_rollout(NS, "petclinic", timeout=20)
    assert time.monotonic() - t0 < 5
    assert "ProgressDeadlineExceeded" in str(ei.value)


def test_secrets_stay_out_of_errors_and_refused_changes_leave_nothing_to_undo(kube: Kube, tmp_path: Path) -> None:
    ledger_path = tmp_path / "ledger.json"
    ledger = Ledger(ledger_path)
    with pytest.raises(KubeError) as ei:
        kube.apply_secret("no-such-namespace", "s", {"MYSQL_PASSWORD": PASSWORD}, ledger)
    assert ei.value.status == 404 and 'namespaces "no-such-namespace" not found' in str(ei.value)
    _no_secret_in(str(ei.value))
    assert [e.state for e in ledger.entries] == ["undone"]  # the API refused: nothing was created
    kube.ensure_namespace(NS, ledger)
    # A server message that quotes a value is masked (here the key, invalid, is also the value).
    with pytest.raises(KubeError) as ei:
        kube.apply_secret(NS, "s", {"bad key!": "bad key!"}, ledger)
    assert ei.value.status == 422 and "bad key!" not in str(ei.value) and "***" in str(ei.value)
    _no_secret_in(ledger_path.read_text())
    assert "bad key!" not in json.dumps([e["change"]["description"] for e in json.loads(ledger_path.read_text())["entries"]])
    assert ledger.unwind(execute_kube_action) == []
    assert not kube.namespace_exists(NS)


def test_ensure_namespace_and_delete_namespace(kube: Kube, srv: KubeApiServer, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    assert kube.ensure_namespace("dr", ledger) is True
    assert kube.ensure_namespace("dr", ledger) is False  # exists: no second entry
    assert len(ledger.entries) == 1 and ledger.entries[0].inverse.params["namespace"] == "dr"
    kube.delete_namespace("dr", wait_timeout=10)
    assert not kube.namespace_exists("dr")
    kube.delete_namespace("dr", wait_timeout=10)  # already gone: fine
    with pytest.raises(KubeError):
        kube.service_cluster_ip("dr", "petclinic")
    with pytest.raises(ValueError):
        execute_kube_action(Action("kube.create", {}, "a change, not an inverse"))
    assert "token" not in repr(kube) and srv.token not in repr(kube)


def test_a_dry_run_reads_but_creates_nothing_and_plans_what_a_new_cluster_would_get(
    srv: KubeApiServer, kube: Kube, tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.json", dry_run=True)
    _deploy_all(kube, ledger)
    assert [e.state for e in ledger.entries] == ["planned"] * 5
    assert not kube.namespace_exists(NS) and not srv.namespace_exists(NS)
    assert kube.get("ConfigMap", NS, "petclinic-config") is None
    # The plan made without any cluster (the failover stack's AKS is created by the apply) is the
    # same, change for change and inverse for inverse, as the one read from an empty cluster.
    dep, svc = petclinic_manifests(IMAGE, 2)
    offline = Ledger(dry_run=True)
    plan_on_new_cluster(srv.kubeconfig_path, None, NS, [
        ("ConfigMap", "petclinic-config", {"keys": sorted(CONFIG)}),
        ("Secret", "petclinic-secret", {"keys": ["MYSQL_PASSWORD", "MYSQL_USER"]}),
        ("Deployment", "petclinic", {"manifest": dep}),
        ("Service", "petclinic", {"manifest": svc}),
    ], offline)
    assert [(e.change, e.inverse) for e in offline.entries] == [(e.change, e.inverse) for e in ledger.entries]
    with pytest.raises(RuntimeError, match="dry runs"):
        plan_on_new_cluster(srv.kubeconfig_path, None, NS, [], Ledger())
