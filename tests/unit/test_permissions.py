"""The permission documents in permissions/ allow every cloud call the drivers really make.

The calls are found in the code (boto3 client methods, azure-mgmt operations, the Kubernetes kinds
the kube driver writes) and mapped to IAM actions (through botocore's own operation names) and to
Azure RBAC actions; a call the documents do not allow fails here, and so does an Azure SDK call
nobody has mapped yet (map it, and add its action to the role). Names in the documents are the
production example's (account, distribution, subscription).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "permissions"
SOURCES = sorted([*REPO.glob("drivers/*.py"), *REPO.glob("steps/*.py")])
IAM_PREFIX = {"eks": "eks", "cloudfront": "cloudfront", "elbv2": "elasticloadbalancing", "secretsmanager": "secretsmanager",
              "sts": "sts", "autoscaling": "autoscaling", "cloudwatch": "cloudwatch", "sqs": "sqs"}
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
}
AZURE_GROUPS = sorted({group for group, _ in AZURE_OPERATIONS})
KUBE_RESOURCES = {"Namespace": "namespaces", "ConfigMap": "configmaps", "Secret": "secrets", "Deployment": "apps/deployments",
                  "Service": "services"}


def _doc(name: str) -> dict:
    return json.loads((DOCS / name).read_text())


def aws_calls() -> set[str]:
    """IAM action names of every boto3 operation called in drivers/ and steps/."""
    calls: set[tuple[str, str]] = set()
    for src in SOURCES:
        text = src.read_text()
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
