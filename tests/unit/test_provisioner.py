"""TerraformCli against a fake `terraform` that records its argv and checks Terraform's argument rules."""
from __future__ import annotations

import json
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

from drill.ledger import Action, Ledger
from drivers.provisioner import (
    DESTROY_OP,
    ProvisionerError,
    TerraformCli,
    destroy_action,
    execute_provisioner_action,
    resolve_binary,
)

SECRET = "Sup3r-Secret-Admin-Pw!"
ENV_SECRET = "arm-client-secret-0xDEADBEEF"

FAKE = r'''#!{python}
import json, os, sys, time

args = sys.argv[1:]
with open(os.environ["FAKE_TF_ARGV_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
# Terraform's rule: global options (-chdir) before the subcommand.
if not args or not args[0].startswith("-chdir="):
    print("Error: -chdir must be given before the subcommand (got %r)" % args[:1], file=sys.stderr)
    sys.exit(64)
chdir, cmd, rest = args[0].split("=", 1)[1], args[1], args[2:]
if any(a.startswith("-chdir") for a in rest):
    print("flag provided but not defined: -chdir", file=sys.stderr)
    sys.exit(64)
if not os.path.isdir(chdir):
    print("Error: chdir %s: no such directory" % chdir, file=sys.stderr)
    sys.exit(1)
if os.environ.get("FAKE_TF_FAIL") == cmd:
    for i in range(30):
        print("stderr line %d" % i, file=sys.stderr)
    print("Error: creating Flexible Server: admin password %s rejected" % os.environ.get("FAKE_TF_LEAK", ""), file=sys.stderr)
    sys.exit(int(os.environ.get("FAKE_TF_FAIL_CODE", "1")))
if cmd in ("apply", "destroy") and ("-auto-approve" not in rest or "-input=false" not in rest):
    print("Error: No value for required variable: approval", file=sys.stderr)
    sys.exit(1)
if cmd == "init":
    print("Terraform has been successfully initialized!")
elif cmd == "apply":
    time.sleep(float(os.environ.get("FAKE_TF_SLEEP", "0")))
    print("azurerm_mysql_flexible_server.main: Creating...", flush=True)
    if os.environ.get("FAKE_TF_LEAK"):
        print("provider debug: password=%s" % os.environ["FAKE_TF_LEAK"], flush=True)
    print("azurerm_mysql_flexible_server.main: Creation complete after 8m3s [id=/subscriptions/x]")
    print("")
    print("Apply complete! Resources: 4 added, 0 changed, 0 destroyed.")
    print("Outputs:")
    print("mysql_admin_password = <sensitive>")
    print('mysql_fqdn = "mysql-dr-blue.mysql.database.azure.com"')
elif cmd == "output":
    if "-json" not in rest:
        sys.exit(1)
    print(json.dumps({{
        "mysql_fqdn": {{"sensitive": False, "type": "string", "value": "mysql-dr-blue.mysql.database.azure.com"}},
        "mysql_admin_username": {{"sensitive": False, "type": "string", "value": "mysqladmin"}},
        "mysql_admin_password": {{"sensitive": True, "type": "string", "value": "{secret}"}},
        "mysql_database_name": {{"sensitive": False, "type": "string", "value": "petclinic"}},
        "aks_cluster_name": {{"sensitive": False, "type": "string", "value": "aks-dr-blue"}},
        "appgw_name": {{"sensitive": False, "type": "string", "value": "appgw-blue"}},
        "appgw_public_ip": {{"sensitive": False, "type": "string", "value": "20.0.0.10"}},
        "node_counts": {{"sensitive": False, "type": ["map", "number"], "value": {{"system": 2}}}},
    }}, indent=2))
elif cmd == "plan":
    print("Plan: 0 to add, 0 to change, 0 to destroy.")
    sys.exit(int(os.environ.get("FAKE_TF_PLAN_EXIT", "0")) if "-detailed-exitcode" in rest else 0)
elif cmd == "destroy":
    print("Destroy complete! Resources: 4 destroyed.")
else:
    print("Terraform has no command named %r." % cmd, file=sys.stderr)
    sys.exit(1)
'''


def make_fake(path: Path) -> Path:
    path.write_text(FAKE.format(python=sys.executable, secret=SECRET))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def argv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_TF_ARGV_LOG", str(log))
    for var in ("FAKE_TF_FAIL", "FAKE_TF_LEAK", "FAKE_TF_SLEEP", "FAKE_TF_PLAN_EXIT"):
        monkeypatch.delenv(var, raising=False)
    return log


@pytest.fixture
def fake(tmp_path: Path, argv_log: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    return make_fake(bindir / "terraform")


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    d = tmp_path / "codes" / "azure" / "2-failover"
    d.mkdir(parents=True)
    return d


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


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
    assert argvs[0] == [f"-chdir={stack}", "init", "-input=false", "-no-color"]
    assert argvs[1][1:] == ["apply", "-auto-approve", "-input=false", "-no-color", "-target=azurerm_mysql_flexible_server.main"]
    assert argvs[3] == [f"-chdir={stack}", "destroy", "-auto-approve", "-input=false", "-no-color"]


@pytest.mark.parametrize("code,clean", [("0", True), ("2", False)])
def test_plan_is_clean(fake: Path, stack: Path, argv_log: Path, monkeypatch: pytest.MonkeyPatch, code: str, clean: bool) -> None:
    monkeypatch.setenv("FAKE_TF_PLAN_EXIT", code)
    assert TerraformCli(stack, binary=str(fake)).plan_is_clean() is clean
    assert calls(argv_log) == [[f"-chdir={stack}", "plan", "-detailed-exitcode", "-input=false", "-no-color"]]


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
    entry = ledger.record(
        Action("provisioner.apply", {"chdir": str(stack)}, "apply the failover stack"), destroy_action(stack, str(fake))
    )
    ledger.applied(entry)
    loaded = Ledger.load(tmp_path / "ledger.json")
    assert loaded.entries[0].inverse.op == DESTROY_OP
    assert loaded.unwind(execute_provisioner_action) == []
    assert calls(argv_log) == [[f"-chdir={stack}", "destroy", "-auto-approve", "-input=false", "-no-color"]]
    with pytest.raises(ValueError, match="not a provisioner operation"):
        execute_provisioner_action(Action("aws.eks.set_scaling", {}, "x"))


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
