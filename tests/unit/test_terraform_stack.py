"""Terraform as the target drives it (drivers.terraform_stack), against the fake `terraform`.

The fake records each call's argv and ARM_*/TF_VAR_* environment and behaves as Terraform with
azurerm v4 does: init before anything that reads the state, the subscription id mandatory for
plan/apply/destroy. These tests pin: identity and variables in the environment only (none in
argv), inherited identities dropped, init first, the pre-start checks (stack absent, data-tier
targets sound), missing outputs named, sensitive outputs masked and never shown.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_terraform import INIT, SECRET, argv_log, fake, records, stack  # noqa: F401  (tests/unit is on sys.path)
from test_config import LAB_ENDPOINTS

from drill.config import DATA_TIER_TARGETS, read_raw, resolve_path, substitute, validate
from drivers.provisioner import SENSITIVE, ProvisionerError, TerraformCli
from drivers.safety import Refused, _terraform_subscription
from drivers.terraform_stack import (
    DATA_TIER_OUTPUTS,
    StackError,
    StackNotAbsent,
    preflight,
    provider_subscriptions,
    require_outputs,
    stack_terraform,
    terraform_env,
)

SUBSCRIPTION = LAB_ENDPOINTS["azure_subscription_id"]
CLIENT_SECRET = LAB_ENDPOINTS["azure_client_secret"]
PASSWORD = LAB_ENDPOINTS["azure_mysql_password"]
FULL_PLAN = "\n".join(f"  # {a} will be created" for a in [*DATA_TIER_TARGETS, "azurerm_kubernetes_cluster.main"]) + \
    f"\nPlan: {len(DATA_TIER_TARGETS) + 1} to add, 0 to change, 0 to destroy."
DATA_TIER_PLAN = "\n".join(f"  # {a} will be created" for a in DATA_TIER_TARGETS) + \
    f"\nPlan: {len(DATA_TIER_TARGETS)} to add, 0 to change, 0 to destroy."


@pytest.fixture(autouse=True)
def azurerm(monkeypatch: pytest.MonkeyPatch, argv_log: Path) -> None:
    monkeypatch.delenv("FAKE_TF_NO_AZURERM", raising=False)  # the fake now needs ARM_SUBSCRIPTION_ID as azurerm v4 does


def target(fake: Path, stack: Path, **failover_stack: Any) -> Any:
    """targets/lab.yaml with the fake as its terraform and `failover_stack` overrides."""
    raw = read_raw(resolve_path("lab"))
    raw["failover_stack"].update(failover_stack)
    endpoints = {**LAB_ENDPOINTS, "terraform_binary": str(fake), "failover_stack_dir": str(stack)}
    return validate(substitute(raw, endpoints), "test")


def test_terraform_gets_the_targets_identity_and_variables_in_its_environment_never_argv(
    fake: Path, stack: Path, argv_log: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whatever the drill's own process has must not decide where Terraform applies, nor as whom.
    monkeypatch.setenv("ARM_SUBSCRIPTION_ID", "11111111-another-subscription")
    monkeypatch.setenv("ARM_CLIENT_SECRET", "a-stale-secret-from-the-shell")
    monkeypatch.setenv("TF_VAR_mysql_admin_password", "a-stale-password")
    monkeypatch.setenv("TF_VAR_something_else", "x")
    t = target(fake, stack, variables={"location": "koreacentral"})
    tf = stack_terraform(t)
    tf.apply(targets=DATA_TIER_TARGETS)
    tf.destroy()
    calls = records(argv_log)
    assert [c["argv"][1] for c in calls] == ["init", "apply", "output", "destroy"]  # init first, once
    for c in calls[1:]:
        assert c["env"] == {
            "ARM_SUBSCRIPTION_ID": SUBSCRIPTION, "ARM_TENANT_ID": LAB_ENDPOINTS["azure_tenant_id"],
            "ARM_CLIENT_ID": LAB_ENDPOINTS["azure_client_id"], "ARM_CLIENT_SECRET": CLIENT_SECRET,
            "TF_VAR_mysql_admin_password": PASSWORD, "TF_VAR_location": "koreacentral",
        }
    argv = json.dumps([c["argv"] for c in calls])
    assert CLIENT_SECRET not in argv and PASSWORD not in argv and "koreacentral" not in argv
    assert calls[1]["argv"][-len(DATA_TIER_TARGETS):] == [f"-target={a}" for a in DATA_TIER_TARGETS]
    assert CLIENT_SECRET not in repr(tf) and PASSWORD not in repr(tf)


@pytest.mark.parametrize(("auth", "expected"), [
    ("oidc", {"ARM_USE_OIDC": "true", "ARM_TENANT_ID": "tenant", "ARM_CLIENT_ID": "client"}),
    ("msi", {"ARM_USE_MSI": "true", "ARM_TENANT_ID": "tenant", "ARM_CLIENT_ID": "client"}),
    ("cli", {"ARM_USE_CLI": "true", "ARM_TENANT_ID": "tenant"}),
])
def test_auth_modes(fake: Path, stack: Path, argv_log: Path, monkeypatch: pytest.MonkeyPatch,
                    auth: str, expected: dict[str, str]) -> None:
    monkeypatch.setenv("ARM_CLIENT_SECRET", "a-stale-secret-from-the-shell")
    stack_terraform(target(fake, stack, auth=auth)).plan()
    env = records(argv_log)[-1]["env"]
    assert env == {"ARM_SUBSCRIPTION_ID": SUBSCRIPTION, **expected, "TF_VAR_mysql_admin_password": PASSWORD}


def test_a_service_principal_needs_its_three_values(fake: Path, stack: Path) -> None:
    raw = read_raw(resolve_path("lab"))
    raw["azure"]["credential"].pop("client_id")
    raw["failover_stack"]["auth"] = "client_secret"
    t = validate(substitute(raw, {**LAB_ENDPOINTS, "terraform_binary": str(fake), "failover_stack_dir": str(stack)}), "t")
    with pytest.raises(StackError, match=r"failover_stack.auth client_secret: azure.credential.client_id must be set"):
        terraform_env(t)


def test_without_the_targets_environment_azurerm_v4_refuses(fake: Path, stack: Path) -> None:
    with pytest.raises(ProvisionerError, match="subscription ID could not be determined"):
        TerraformCli(stack, binary=str(fake)).apply()


def test_sensitive_outputs_reach_the_runs_masker_and_are_never_shown(fake: Path, stack: Path) -> None:
    learned: list[str] = []
    tf = stack_terraform(target(fake, stack), on_secret=learned.extend)
    outputs = tf.output()
    assert outputs["mysql_admin_password"] == SECRET and learned == [SECRET]
    assert tf.shown(outputs)["mysql_admin_password"] == SENSITIVE
    assert tf.shown(outputs)["mysql_fqdn"] == outputs["mysql_fqdn"]
    assert SECRET in tf.secret_values() and PASSWORD in tf.secret_values()


def test_missing_outputs_are_one_error_naming_them() -> None:
    with pytest.raises(StackError) as e:
        require_outputs({"mysql_fqdn": "x", "mysql_admin_username": ""}, DATA_TIER_OUTPUTS, "terraform apply of the data tier")
    msg = str(e.value)
    assert "gave no mysql_admin_username, mysql_database_name, mysql_server_name outputs" in msg and "\n" not in msg
    require_outputs({n: "x" for n in DATA_TIER_OUTPUTS}, DATA_TIER_OUTPUTS, "apply")


def _plans(monkeypatch: pytest.MonkeyPatch, full: str = FULL_PLAN, targeted: str = DATA_TIER_PLAN, outputs: str = "{}") -> None:
    monkeypatch.setenv("FAKE_TF_OUTPUTS", outputs)
    monkeypatch.setenv("FAKE_TF_PLAN", full)
    monkeypatch.setenv("FAKE_TF_PLAN_TARGETED", targeted)
    monkeypatch.setenv("FAKE_TF_PLAN_EXIT", "2")


def test_preflight_of_an_absent_stack(fake: Path, stack: Path, argv_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plans(monkeypatch)
    found = preflight(stack_terraform(target(fake, stack)), DATA_TIER_TARGETS)
    assert found.outputs == [] and found.plan == f"{len(DATA_TIER_TARGETS) + 1} to add"
    assert found.data_tier == sorted(DATA_TIER_TARGETS)
    argvs = [c["argv"][1:] for c in records(argv_log)]
    assert argvs[0] == INIT and argvs[1][0] == "output" and argvs[2][0] == "plan"
    assert argvs[3][0] == "plan" and argvs[3][-len(DATA_TIER_TARGETS):] == [f"-target={a}" for a in DATA_TIER_TARGETS]


@pytest.mark.parametrize(("outputs", "full", "words"), [
    (json.dumps({"mysql_fqdn": {"sensitive": False, "type": "string", "value": "mysql-dr-blue.mysql.database.azure.com"}}),
     FULL_PLAN, "already has outputs (mysql_fqdn)"),
    ("{}", "  # azurerm_mysql_flexible_server.main will be updated in-place\nPlan: 0 to add, 1 to change, 0 to destroy.",
     "azurerm_mysql_flexible_server.main (update)"),
    ("{}", "No changes. Your infrastructure matches the configuration.", "proposes no creations"),
], ids=["outputs present", "plan updates", "nothing to create"])
def test_preflight_refuses_a_stack_that_is_there(fake: Path, stack: Path, monkeypatch: pytest.MonkeyPatch,
                                                  outputs: str, full: str, words: str) -> None:
    _plans(monkeypatch, full=full, outputs=outputs)
    with pytest.raises(StackNotAbsent, match=words.replace("(", r"\(").replace(")", r"\)")):
        preflight(stack_terraform(target(fake, stack)), DATA_TIER_TARGETS)


def test_preflight_refuses_a_data_tier_that_leaves_out_a_dependent(fake: Path, stack: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    targets = DATA_TIER_TARGETS[:2]  # the server and the database, not the firewall rule nor the parameter
    _plans(monkeypatch, targeted="\n".join(f"  # {a} will be created" for a in targets) + "\nPlan: 2 to add, 0 to change, 0 to destroy.")
    with pytest.raises(StackError) as e:
        preflight(stack_terraform(target(fake, stack)), targets)
    assert "leaves out " + ", ".join(sorted(DATA_TIER_TARGETS[2:])) + ", which the data tier needs" in str(e.value)


def test_preflight_refuses_a_target_terraform_would_ignore(fake: Path, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plans(monkeypatch)
    with pytest.raises(StackError, match=r"azurerm_mysql_flexible_server.primary not in the configuration's plan"):
        preflight(stack_terraform(target(fake, stack)), [*DATA_TIER_TARGETS, "azurerm_mysql_flexible_server.primary"])


def test_a_provider_block_subscription_is_seen_and_must_be_allowed(stack: Path, fake: Path) -> None:
    (stack / "providers.tf").write_text(
        'terraform {\n  required_providers { azurerm = { source = "hashicorp/azurerm" } }\n}\n'
        'provider "azurerm" {\n  features {}\n  # subscription_id = "commented-out"\n'
        '  subscription_id = "22222222-2222-2222-2222-222222222222"\n}\n'
        'provider "aws" {\n  subscription_id = "not-azurerm"\n}\n')
    assert provider_subscriptions(stack) == [("providers.tf", '"22222222-2222-2222-2222-222222222222"')]
    t = target(fake, stack)
    with pytest.raises(Refused, match=r"sets subscription_id = .*22222222.* wins over ARM_SUBSCRIPTION_ID"):
        _terraform_subscription(t, [SUBSCRIPTION])
    with pytest.raises(Refused, match=f"Terraform would apply the failover stack to subscription {SUBSCRIPTION}"):
        _terraform_subscription(t, ["22222222-2222-2222-2222-222222222222"])
    (stack / "providers.tf").unlink()
    assert "Terraform applies to subscription" in _terraform_subscription(t, [SUBSCRIPTION])
