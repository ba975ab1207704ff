"""The AKS part without a lab: preflight's AKS checks over given facts, ARM's permission rule, the
private kubeconfig file, kubelogin (a fake executable that checks its arguments) and the Service the
drill deploys."""
from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from drill import preflight
from drill.config import ConfigError, KubeloginConfig, Target, load_target, validate
from drivers.aks import AksCredentialsError, Kubelogin, convert_kubeconfig, kubelogin_problem, write_private
from drivers.kube import petclinic_manifests

CONTRIBUTOR = [{"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write"]}]
HEALTHY = {"aks.permissions": CONTRIBUTOR, "aks.subnets": ["snet-appgw", "snet-aks", "snet-db"], "aks.kubelogin": None}


def aks(target: Target, facts: dict[str, Any]) -> dict[str, str]:
    return {f.check: f.detail for f in preflight.run(target, facts, ["phase2"]) if f.check.startswith("preflight.aks.")}


def with_kube(target: Target, **changes: Any) -> Target:
    return target.model_copy(update={"kubernetes": target.kubernetes.model_copy(update=changes)})


def test_arm_permission_rule() -> None:
    action = preflight.AKS_LIST_USER_CREDENTIAL
    assert preflight.arm_permits(CONTRIBUTOR, action)
    assert preflight.arm_permits([{"actions": ["Microsoft.ContainerService/managedClusters/*"]}], action.upper())
    assert not preflight.arm_permits([{"actions": ["*/read"]}], action)
    assert not preflight.arm_permits([{"actions": ["*"], "notActions": ["Microsoft.ContainerService/*"]}], action)
    # notActions subtract within their own entry only: another entry may still grant it.
    assert preflight.arm_permits([{"actions": ["*"], "notActions": ["Microsoft.ContainerService/*"]},
                                  {"actions": [action]}], action)
    assert not preflight.arm_permits([], action)


def test_aks_checks_over_facts() -> None:
    lab = load_target("lab")
    assert aks(lab, HEALTHY) == {}
    assert list(aks(with_kube(lab, service_type="ClusterIP"), HEALTHY)) == ["preflight.aks.backend_reachable"]
    assert aks(with_kube(lab, internal_lb_subnet=None), {**HEALTHY, "aks.subnets": []}) == {}  # the cluster's own subnet
    found = aks(lab, {**HEALTHY, "aks.subnets": ["snet-appgw"]})
    assert "'snet-aks' is not a subnet of vnet-blue (it has: snet-appgw)" in found["preflight.aks.backend_reachable"]
    found = aks(lab, {k: v for k, v in HEALTHY.items() if k != "aks.permissions"} | {"aks.permissions.error": "403 nope"})
    assert "could not be checked" in found["preflight.aks.credentials_route"] and "403 nope" in found["preflight.aks.credentials_route"]
    found = aks(lab, {**HEALTHY, "aks.permissions": [{"actions": ["*/read"]}]})
    assert ("may not call Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
            in found["preflight.aks.credentials_route"])
    entra = with_kube(lab, kubelogin=KubeloginConfig(mode="msi"))
    assert aks(entra, HEALTHY) == {}
    assert "no binary here" in aks(entra, {**HEALTHY, "aks.kubelogin": "no binary here"})["preflight.aks.credentials_route"]
    assert "fixed file" in aks(with_kube(lab, kubeconfig="~/.kube/config"), HEALTHY)["preflight.aks.credentials_route"]
    # Checks of the AKS part do not apply to a target without Kubernetes (Phase 1 only).
    assert aks(lab.model_copy(update={"kubernetes": None}), {}) == {}


def test_the_target_keys_of_the_aks_part_are_validated() -> None:
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "targets" / "lab.yaml").read_text())
    from drill.config import placeholder_value, substitute

    def bad(**kube: Any) -> str:
        r = {**raw, "kubernetes": {**raw["kubernetes"], **kube}}
        with pytest.raises(ConfigError) as ei:
            validate(substitute(r, placeholder_value), "t.yaml")
        return str(ei.value)

    assert "kubernetes.kubelogin.mode" in bad(kubelogin={"mode": "devicecode"})
    assert "kubernetes.service_type" in bad(service_type="NodePort")
    assert "kubernetes.load_balancer_timeout_seconds" in bad(load_balancer_timeout_seconds=0)
    assert load_target("lab").kubernetes.kubeconfig is None


def test_the_service_the_drill_deploys_is_an_internal_load_balancer() -> None:
    _, runbook = petclinic_manifests("img:petclinic", 2)
    assert runbook["spec"]["type"] == "ClusterIP" and "annotations" not in runbook["metadata"]
    _dep, svc = petclinic_manifests("img:petclinic", 2, "petclinic", "LoadBalancer", "snet-aks")
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["ports"] == runbook["spec"]["ports"]
    assert svc["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
        "service.beta.kubernetes.io/azure-load-balancer-internal-subnet": "snet-aks",
    }
    with pytest.raises(ValueError):
        petclinic_manifests("img", 1, service_type="NodePort")


def test_the_kubeconfig_is_private_from_its_first_byte(tmp_path: Path) -> None:
    path = write_private(tmp_path / "work" / "kubeconfig", b"apiVersion: v1\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"apiVersion: v1\n"
    path.chmod(0o644)
    write_private(path, b"again")  # replaced, private again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"again"
    assert [p.name for p in path.parent.iterdir()] == ["kubeconfig"]  # no temporary left behind


FAKE = r'''#!{python}
import os, sys
args = sys.argv[1:]
open(os.environ["FAKE_KUBELOGIN_LOG"], "w").write("\0".join(args))
ok = len(args) == 5 and args[0] == "convert-kubeconfig" and args[1] == "-l" and args[3] == "--kubeconfig"
if not ok or args[2] not in ("azurecli", "spn", "workloadidentity", "msi"):
    print("Error: unknown flag: %r" % args, file=sys.stderr); sys.exit(1)
if os.environ.get("FAKE_KUBELOGIN_FAIL"):
    print("Error: failed to load kubeconfig", file=sys.stderr); sys.exit(2)
open(args[4], "a").write("# converted %s\n" % args[2])
os.chmod(args[4], 0o644)
'''


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_KUBELOGIN_LOG", str(tmp_path / "argv"))
    monkeypatch.delenv("FAKE_KUBELOGIN_FAIL", raising=False)
    path = tmp_path / "bin" / "kubelogin"
    path.parent.mkdir()
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("mode", ["azurecli", "spn", "workloadidentity", "msi"])
def test_kubelogin_converts_in_place_with_only_the_mode_on_its_command_line(fake: Path, tmp_path: Path, mode: str) -> None:
    kc = write_private(tmp_path / "kubeconfig", b"apiVersion: v1\n")
    convert_kubeconfig(Kubelogin(mode, str(fake)), kc)
    assert (tmp_path / "argv").read_text().split("\0") == ["convert-kubeconfig", "-l", mode, "--kubeconfig", str(kc)]
    assert kc.read_text().endswith(f"# converted {mode}\n") and stat.S_IMODE(kc.stat().st_mode) == 0o600


def test_kubelogin_failures_and_what_each_mode_needs(fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kc = write_private(tmp_path / "kubeconfig", b"apiVersion: v1\n")
    monkeypatch.setenv("FAKE_KUBELOGIN_FAIL", "1")
    with pytest.raises(AksCredentialsError, match=r"exit 2.*failed to load kubeconfig"):
        convert_kubeconfig(Kubelogin("msi", str(fake)), kc)
    with pytest.raises(AksCredentialsError, match="not an executable"):
        convert_kubeconfig(Kubelogin("msi", str(tmp_path / "nope")), kc)
    with pytest.raises(ValueError):
        Kubelogin("devicecode")
    path = {"PATH": str(fake.parent)}
    assert kubelogin_problem(Kubelogin("msi"), path) is None
    assert "not an executable on PATH" in kubelogin_problem(Kubelogin("msi"), {"PATH": str(tmp_path)})
    assert "AAD_SERVICE_PRINCIPAL_CLIENT_ID+AAD_SERVICE_PRINCIPAL_CLIENT_SECRET" in kubelogin_problem(Kubelogin("spn"), path)
    assert kubelogin_problem(Kubelogin("spn"), {**path, "AZURE_CLIENT_ID": "a", "AZURE_CLIENT_SECRET": "s"}) is None
    assert "AZURE_FEDERATED_TOKEN_FILE" in kubelogin_problem(Kubelogin("workloadidentity"), {**path, "AZURE_CLIENT_ID": "a"})
    assert "`az` is not on PATH" in kubelogin_problem(Kubelogin("azurecli"), path)
