"""TerraformCli against a fake `terraform` that records its argv and environment and checks Terraform's rules:
global options before the subcommand, `init` before anything that reads the state or configures the
provider, and azurerm v4's mandatory subscription id for plan/apply/destroy."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from fake_terraform import ENV_SECRET, INIT, SECRET, argv_log, calls, fake, make_fake, stack  # noqa: F401  (tests/unit is on sys.path)

from drill.ledger import Action, Ledger
from drivers.provisioner import (
    DESTROY_OP,
    ProvisionerError,
    TerraformCli,
    destroy_action,
    execute_provisioner_action,
    resolve_binary,
)


def test_apply_streams_log_and_returns_plain_outputs(fake: Path, stack: Path, argv_log: Path) -> None:
    lines: list[str] = []
    tf = TerraformCli(stack, binary=str(fake), log=lines.append)
    outputs = tf.apply()
    assert outputs["mysql_fqdn"] == "mysql-dr-blue.mysql.database.azure.com"
    assert outputs["mysql_admin_username"] == "mysqladmin"
    assert outputs["mysql_admin_password"] == SECRET  # the caller needs it to restore into the server
    assert outputs["node_counts"] == {"system": 2}
    assert {"aks_cluster_name", "appgw_name", "appgw_public_ip", "mysql_database_name"} <= outputs.keys()
    assert tf.sensitive_outputs == {"mysql_admin_password"}
    assert calls(argv_log) == [
        [f"-chdir={stack}", *INIT],  # once, before anything else
        [f"-chdir={stack}", "apply", "-auto-approve", "-input=false", "-no-color"],
        [f"-chdir={stack}", "output", "-json", "-no-color"],
    ]
    assert "Apply complete! Resources: 4 added, 0 changed, 0 destroyed." in lines
    assert not any(SECRET in line for line in lines)  # output -json is never streamed
    assert not any('"sensitive"' in line for line in lines)


def test_targets_init_destroy_arguments(fake: Path, stack: Path, argv_log: Path) -> None:
    tf = TerraformCli(stack, binary=str(fake))
    tf.init()
    tf.apply(targets=["azurerm_mysql_flexible_server.main"])
    tf.destroy()
    argvs = calls(argv_log)
    assert all(a[0] == f"-chdir={stack}" for a in argvs)
    assert argvs[0] == [f"-chdir={stack}", *INIT]
    assert [a[1] for a in argvs].count("init") == 1  # init once per CLI object
    assert argvs[1][1:] == ["apply", "-auto-approve", "-input=false", "-no-color", "-target=azurerm_mysql_flexible_server.main"]
    assert argvs[3] == [f"-chdir={stack}", "destroy", "-auto-approve", "-input=false", "-no-color"]


@pytest.mark.parametrize("code,clean", [("0", True), ("2", False)])
def test_plan_is_clean(fake: Path, stack: Path, argv_log: Path, monkeypatch: pytest.MonkeyPatch, code: str, clean: bool) -> None:
    monkeypatch.setenv("FAKE_TF_PLAN_EXIT", code)
    assert TerraformCli(stack, binary=str(fake)).plan_is_clean() is clean
    assert calls(argv_log) == [[f"-chdir={stack}", *INIT], [f"-chdir={stack}", "plan", "-detailed-exitcode", "-input=false", "-no-color"]]


def test_plan_error_raises(fake: Path, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TF_PLAN_EXIT", "1")
    with pytest.raises(ProvisionerError) as ei:
        TerraformCli(stack, binary=str(fake)).plan_is_clean()
    assert ei.value.exit_code == 1


def test_failure_carries_exit_code_and_masked_stderr_tail(fake: Path, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TF_FAIL", "apply")
    monkeypatch.setenv("FAKE_TF_FAIL_CODE", "3")
    monkeypatch.setenv("FAKE_TF_LEAK", ENV_SECRET)
    tf = TerraformCli(stack, binary=str(fake), env={"ARM_CLIENT_SECRET": ENV_SECRET})
    with pytest.raises(ProvisionerError) as ei:
        tf.apply()
    err = ei.value
    assert err.exit_code == 3
    assert "terraform apply failed (exit 3)" in str(err)
    assert "stderr line 29" in str(err) and "admin password *** rejected" in str(err)
    assert "stderr line 5" not in str(err)  # only the tail
    assert ENV_SECRET not in str(err) and ENV_SECRET not in err.stderr_tail


def test_sensitive_values_never_reach_the_log(fake: Path, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    # A secret handed over in env (TF_VAR_*) is masked from the first line on...
    monkeypatch.setenv("FAKE_TF_LEAK", ENV_SECRET)
    tf = TerraformCli(stack, binary=str(fake), env={"TF_VAR_mysql_admin_password": ENV_SECRET}, log=lines.append)
    tf.apply()
    assert "provider debug: password=***" in lines
    # ...and a sensitive output, once known, is masked in every later command's log.
    monkeypatch.setenv("FAKE_TF_LEAK", SECRET)
    tf.apply()
    joined = "\n".join(lines)
    assert SECRET not in joined and ENV_SECRET not in joined
    assert lines.count("provider debug: password=***") == 2


def test_timeout_stops_terraform_and_raises(fake: Path, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TF_SLEEP", "30")
    t0 = time.monotonic()
    with pytest.raises(ProvisionerError, match="timed out"):
        TerraformCli(stack, binary=str(fake), timeout=0.5).apply()
    assert time.monotonic() - t0 < 10  # SIGINT ended it; no 30 s wait


def test_non_json_output_is_a_clear_error(tmp_path: Path, stack: Path, argv_log: Path) -> None:
    bad = tmp_path / "terraform-bad"
    bad.write_text(f"#!{sys.executable}\nprint('Warning: something first')\n")
    bad.chmod(0o755)
    with pytest.raises(ProvisionerError, match="isn't JSON"):
        TerraformCli(stack, binary=str(bad)).output()


def test_binary_falls_back_to_tofu(tmp_path: Path, argv_log: Path, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "onlytofu"
    bindir.mkdir()
    make_fake(bindir / "tofu")
    monkeypatch.setenv("PATH", str(bindir))
    tf = TerraformCli(stack)
    assert Path(tf.binary).name == "tofu"
    assert tf.output()["appgw_name"] == "appgw-blue"
    # An explicitly named binary does not fall back.
    with pytest.raises(ProvisionerError, match="'terragrunt'"):
        TerraformCli(stack, binary="terragrunt")


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProvisionerError, match="no 'terraform' or 'tofu' executable on PATH"):
        TerraformCli(tmp_path)
    not_exec = tmp_path / "terraform"
    not_exec.write_text("#!/bin/sh\n")
    not_exec.chmod(0o644)
    with pytest.raises(ProvisionerError, match="not an executable file"):
        resolve_binary(str(not_exec))


def test_destroy_action_survives_the_ledger_file(fake: Path, stack: Path, argv_log: Path, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    proof = {"outputs": [], "plan": "3 to add", "creations": ["azurerm_mysql_flexible_server.main"], "data_tier": []}
    entry = ledger.record(
        Action("provisioner.apply", {"chdir": str(stack)}, "apply the failover stack"),
        destroy_action(stack, str(fake), "20261122T053232Z-336311", proof),
    )
    ledger.applied(entry)
    loaded = Ledger.load(tmp_path / "ledger.json")
    assert loaded.entries[0].inverse.op == DESTROY_OP
    assert loaded.entries[0].inverse.params["created_by_run"] == "20261122T053232Z-336311"
    assert loaded.unwind(execute_provisioner_action) == []
    # A fresh process (drill unwind) runs init first: a remote backend needs it before destroy.
    assert calls(argv_log) == [[f"-chdir={stack}", *INIT], [f"-chdir={stack}", "destroy", "-auto-approve", "-input=false", "-no-color"]]
    with pytest.raises(ValueError, match="not a provisioner operation"):
        execute_provisioner_action(Action("aws.eks.set_scaling", {}, "x"))


@pytest.mark.parametrize("params", [
    {},  # written before the rule: the destroy was recorded whether or not the drill created the stack
    {"created_by_run": "20261122T053232Z-336311"},  # no record of the stack being absent first
    {"absent_before": {"outputs": []}},
], ids=["no proof", "run but no absence", "absence but no run"])
def test_a_destroy_without_proof_of_creation_is_refused(fake: Path, stack: Path, argv_log: Path, tmp_path: Path,
                                                        params: dict) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    entry = ledger.record(Action("provisioner.apply", {"chdir": str(stack)}, "apply"),
                          Action(DESTROY_OP, {"chdir": str(stack), "binary": str(fake), **params}, "terraform destroy"))
    ledger.applied(entry)
    failures = Ledger.load(tmp_path / "ledger.json").unwind(execute_provisioner_action)
    assert len(failures) == 1 and "not destroying the failover stack" in failures[0][1], failures
    assert "NotCreatedByThisRun" in failures[0][1]
    assert not argv_log.exists() or calls(argv_log) == []  # terraform never ran


def test_repr_has_no_secrets(fake: Path, stack: Path) -> None:
    tf = TerraformCli(stack, binary=str(fake), env={"ARM_CLIENT_SECRET": ENV_SECRET})
    assert ENV_SECRET not in repr(tf)


@pytest.mark.skipif(shutil.which("terraform") is None and shutil.which("tofu") is None, reason="no terraform/tofu binary")
def test_against_the_real_cli(tmp_path: Path) -> None:
    """The same calls against a real Terraform/OpenTofu, with only the built-in provider (no network)."""
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "main.tf").write_text(
        'variable "admin_password" {\n  type = string\n  sensitive = true\n}\n'
        'resource "terraform_data" "mysql" {\n  input = "mysql-dr-blue"\n}\n'
        'output "mysql_fqdn" { value = "${terraform_data.mysql.output}.mysql.database.azure.com" }\n'
        'output "mysql_admin_password" {\n  value = var.admin_password\n  sensitive = true\n}\n'
    )
    lines: list[str] = []
    tf = TerraformCli(stack, env={"TF_VAR_admin_password": SECRET}, log=lines.append, timeout=120)
    tf.init()
    assert tf.plan_is_clean() is False
    outputs = tf.apply()
    assert outputs == {"mysql_fqdn": "mysql-dr-blue.mysql.database.azure.com", "mysql_admin_password": SECRET}
    assert tf.sensitive_outputs == {"mysql_admin_password"}
    assert tf.plan_is_clean() is True
    tf.destroy()
    assert tf.output() == {}
    assert not any(SECRET in line for line in lines)
    assert any("Apply complete!" in line for line in lines)
