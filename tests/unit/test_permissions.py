"""The permission documents in permissions/ allow every cloud call the drivers really make.

The calls are found in the code (boto3 client methods, azure-mgmt operations, the Kubernetes kinds
the kube driver writes) and mapped to IAM actions (through botocore's own operation names) and to
Azure RBAC actions; a call the documents do not allow fails here, and so does an Azure SDK call
nobody has mapped yet (map it, and add its action to the role). Names in the documents are the
production example's (account, distribution, subscription).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import boto3
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "permissions"
# permissions/*.json are the CloudFront system's (targets/production.example.yaml); the goupang
# system's own drivers (Route 53, the DR VM, its resolver) are its documents' (permissions/goupang/).
GOUPANG_ONLY = {"route53.py", "azure_compute.py", "dns_resolver.py"}
SOURCES = sorted([*(p for p in REPO.glob("drivers/*.py") if p.name not in GOUPANG_ONLY), *REPO.glob("steps/*.py")])
IAM_PREFIX = {"eks": "eks", "cloudfront": "cloudfront", "elbv2": "elasticloadbalancing", "secretsmanager": "secretsmanager",
              "sts": "sts", "autoscaling": "autoscaling", "cloudwatch": "cloudwatch", "sqs": "sqs", "route53": "route53"}
# AWS STS API reference, GetCallerIdentity: "No permissions are required to perform this operation."
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}
AZURE_OPERATIONS = {
    ("application_gateways", "get"): ["Microsoft.Network/applicationGateways/read"],
    ("application_gateways", "list"): ["Microsoft.Network/applicationGateways/read"],
    # A PUT of a gateway re-links its subnet and public IP: ARM checks join on both (linked access check).
    ("application_gateways", "begin_create_or_update"): [
        "Microsoft.Network/applicationGateways/write", "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.Network/publicIPAddresses/join/action"],
    ("application_gateways", "begin_backend_health"): ["Microsoft.Network/applicationGateways/backendhealth/action"],
    ("virtual_networks", "get"): ["Microsoft.Network/virtualNetworks/read"],
    ("virtual_networks", "list"): ["Microsoft.Network/virtualNetworks/read"],
    ("storage_accounts", "get_properties"): ["Microsoft.Storage/storageAccounts/read"],
    ("management_policies", "get"): ["Microsoft.Storage/storageAccounts/managementPolicies/read"],
    # Phase 2 on real Azure (issue #12): the client firewall rule and the new cluster's credentials.
    ("firewall_rules", "get"): ["Microsoft.DBforMySQL/flexibleServers/firewallRules/read"],
    ("firewall_rules", "list_by_server"): ["Microsoft.DBforMySQL/flexibleServers/firewallRules/read"],
    ("firewall_rules", "begin_create_or_update"): ["Microsoft.DBforMySQL/flexibleServers/firewallRules/write"],
    ("firewall_rules", "begin_delete"): ["Microsoft.DBforMySQL/flexibleServers/firewallRules/delete"],
    ("managed_clusters", "get"): ["Microsoft.ContainerService/managedClusters/read"],
    ("managed_clusters", "list_cluster_user_credentials"): [
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"],
    # The goupang system's DR VM (Azure RBAC, *Azure permissions for Compute*: Microsoft.Compute). Start
    # and deallocate are long-running: the SDK's poller reads the operation's status (Azure-AsyncOperation,
    # under Microsoft.Compute/locations/{location}/operations).
    ("virtual_machines", "instance_view"): ["Microsoft.Compute/virtualMachines/instanceView/read"],
    ("virtual_machines", "begin_start"): ["Microsoft.Compute/virtualMachines/start/action",
                                          "Microsoft.Compute/locations/operations/read"],
    ("virtual_machines", "begin_deallocate"): ["Microsoft.Compute/virtualMachines/deallocate/action",
                                               "Microsoft.Compute/locations/operations/read"],
}
AZURE_GROUPS = sorted({group for group, _ in AZURE_OPERATIONS})
KUBE_RESOURCES = {"Namespace": "namespaces", "ConfigMap": "configmaps", "Secret": "secrets", "Deployment": "apps/deployments",
                  "Service": "services"}


def _doc(name: str) -> dict:
    return json.loads((DOCS / name).read_text())


def _text(src: Path | tuple[Path, set[str]]) -> str:
    """A source file, or only the named classes of it."""
    if isinstance(src, Path):
        return src.read_text()
    path, classes = src
    text = path.read_text()
    tree = ast.parse(text)
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in classes]
    assert {n.name for n in found} == classes, f"{path.name}: no class {classes - {n.name for n in found}}"
    return "\n".join(ast.get_source_segment(text, n) or "" for n in found)


def aws_calls(sources: list[Any] = SOURCES) -> set[str]:
    """IAM action names of every boto3 operation called in the sources (default: drivers/ and steps/)."""
    calls: set[tuple[str, str]] = set()
    for src in sources:
        text = _text(src)
        clients = dict((attr, svc) for attr, svc in re.findall(r"self\.(\w+) = aws\.client\(\"(\w+)\"\)", text))
        for attr, op in re.findall(r"self\.(\w+)\.([a-z_]+)\(", text):
            if attr in clients:
                calls.add((clients[attr], op))
        for attr, op in re.findall(r"self\.(\w+)\.get_paginator\(\"([a-z_]+)\"\)", text):
            if attr in clients:
                calls.add((clients[attr], op))
        calls.update(re.findall(r"client\(\"(\w+)\"\)\.([a-z_]+)\(", text))
        # A paginator calls the operation it is named for.
        calls.update(re.findall(r"client\(\"(\w+)\"\)\.get_paginator\(\"([a-z_]+)\"\)", text))
    out = set()
    for svc, op in calls:
        if op == "get_paginator":
            continue
        api = boto3.client(svc, region_name="ap-northeast-2").meta.method_to_api_mapping[op]
        out.add(f"{IAM_PREFIX[svc]}:{api}")
    return out


def test_the_aws_policy_allows_every_call_the_drivers_make() -> None:
    calls = aws_calls()
    assert {"eks:UpdateNodegroupConfig", "cloudfront:UpdateDistribution", "secretsmanager:GetSecretValue"} <= calls
    allowed = {a for s in _doc("aws-iam-policy.json")["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    assert sorted(calls - allowed - NEEDS_NO_PERMISSION) == []
    assert sorted(allowed - calls) == [], "the policy allows what no driver calls: least privilege"


def test_the_drill_role_allows_every_azure_call_the_drivers_make() -> None:
    role = _doc("azure-role-drill.json")
    found = set()
    for src in SOURCES:
        found.update(re.findall(rf"\.({'|'.join(AZURE_GROUPS)})\.(\w+)\(", src.read_text()))
    assert found, "no Azure SDK call found: the pattern no longer matches the code"
    unmapped = sorted(found - AZURE_OPERATIONS.keys())
    assert not unmapped, f"map these Azure SDK calls to RBAC actions here, and allow them in the role: {unmapped}"
    needed = {a for op in found for a in AZURE_OPERATIONS[op]}
    assert sorted(needed - set(role["Actions"])) == []


def test_the_drill_role_allows_what_the_kube_driver_writes() -> None:
    kube = (REPO / "drivers" / "kube.py").read_text()
    kinds = re.findall(r'"(\w+)": \{"read": ', kube)
    assert set(kinds) == set(KUBE_RESOURCES), kinds
    data = set(_doc("azure-role-drill.json")["DataActions"])
    for kind in kinds:
        for verb in ("read", "write", "delete"):
            assert f"Microsoft.ContainerService/managedClusters/{KUBE_RESOURCES[kind]}/{verb}" in data
    if "list_namespaced_pod" in kube:
        assert "Microsoft.ContainerService/managedClusters/pods/read" in data


def test_the_documents_name_the_production_examples_account_distribution_and_subscription() -> None:
    example = yaml.safe_load((REPO / "targets" / "production.example.yaml").read_text())
    account = example["guard"]["aws_account_ids"][0]
    policy = json.dumps(_doc("aws-iam-policy.json"))
    assert f":{account}:" in policy and example["aws"]["cloudfront"]["distribution_id"] in policy
    assert example["database"]["secret_id"] in policy and example["readiness"]["scratch_database"]["secret_id"] in policy
    scope = f"/subscriptions/{example['azure']['subscription_id']}/resourceGroups/{example['azure']['resource_group']}"
    for name in ("azure-role-drill.json", "azure-role-failover-stack.json"):
        assert _doc(name)["AssignableScopes"] == [scope]


# -- the goupang system (permissions/goupang/, targets/production-goupang.example.yaml) -----------------------
GOUPANG_DOCS = DOCS / "goupang"
GOUPANG_EXAMPLE = REPO / "targets" / "production-goupang.example.yaml"
# What the goupang drill calls on AWS: the shared web-tier fault and its restore (NodeGroups, their
# Auto Scaling groups), the ALB's target health, the primary's secret (canaries, the marker owner),
# Route 53 (its steps and preflight), the guard (STS). CloudFront and CloudWatch are called only for a
# target with aws.cloudfront or alarms, which this system's example has not (checked below).
GOUPANG_AWS = [(REPO / "drivers" / "aws.py", {"Secrets", "NodeGroups", "LoadBalancing"}), REPO / "drivers" / "route53.py",
               REPO / "drivers" / "safety.py"]
# ... and on ARM: the guard's read (safety.py), the DR VM (azure_compute.py, through DrillRun.dr_vm and
# the preflight's power state).
GOUPANG_AZURE = [REPO / "drivers" / "azure_compute.py", REPO / "drivers" / "safety.py"]


def test_the_goupang_aws_policy_allows_every_call_its_drill_makes_and_no_other() -> None:
    calls = aws_calls(GOUPANG_AWS)
    assert {"route53:GetHealthCheckStatus", "route53:GetHealthCheck", "route53:ListResourceRecordSets",
            "eks:UpdateNodegroupConfig"} <= calls
    assert not {c for c in calls if c.startswith("cloudfront:")}, "the goupang drill does not touch CloudFront"
    allowed = {a for s in _doc("goupang/aws-iam-policy.json")["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    assert sorted(calls - allowed - NEEDS_NO_PERMISSION) == []
    assert sorted(allowed - calls) == [], "the policy allows what the goupang drill does not call: least privilege"


def test_the_goupang_drill_role_allows_every_azure_call_its_drill_makes_and_no_other() -> None:
    found: set[tuple[str, str]] = set()
    for src in GOUPANG_AZURE:
        found.update(re.findall(rf"\.({'|'.join(AZURE_GROUPS)})\.(\w+)\(", src.read_text()))
    assert {("virtual_machines", "begin_start"), ("virtual_machines", "begin_deallocate"),
            ("virtual_machines", "instance_view"), ("virtual_networks", "list")} <= found
    unmapped = sorted(found - AZURE_OPERATIONS.keys())
    assert not unmapped, f"map these Azure SDK calls to RBAC actions here, and allow them in the role: {unmapped}"
    needed = {a for op in found for a in AZURE_OPERATIONS[op]}
    role = _doc("goupang/azure-role-drill.json")
    assert sorted(needed - set(role["Actions"])) == []
    assert sorted(set(role["Actions"]) - needed) == [], "the role allows what the goupang drill does not call: least privilege"
    assert role["DataActions"] == []  # Blob is by built-in data roles on containers (README)


def test_the_goupang_documents_name_its_examples_account_zone_health_check_and_resource_group() -> None:
    example = yaml.safe_load(GOUPANG_EXAMPLE.read_text())
    assert example.get("alarms") is None and not example.get("stop", {}).get("alarms")  # no CloudWatch call (above)
    assert example["aws"].get("cloudfront") is None
    policy = json.dumps(_doc("goupang/aws-iam-policy.json"))
    r53 = example["aws"]["route53"]
    assert f":{example['guard']['aws_account_ids'][0]}:" in policy
    assert f"hostedzone/{r53['hosted_zone_id']}" in policy and f"healthcheck/{r53['health_check_id']}" in policy
    assert f"nodegroup/{example['aws']['eks']['cluster']}/{example['aws']['eks']['web_nodegroup']}/" in policy
    assert f"secret:{example['database']['secret_id']}-" in policy
    scope = f"/subscriptions/{example['azure']['subscription_id']}/resourceGroups/{example['azure']['resource_group']}"
    assert _doc("goupang/azure-role-drill.json")["AssignableScopes"] == [scope]
