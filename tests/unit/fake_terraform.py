"""A fake `terraform` for the driver tests: records argv and the ARM_*/TF_VAR_* environment of each call
(FAKE_TF_ARGV_LOG, one JSON line each) and enforces what real Terraform would: -chdir before the
subcommand, `init` before output/plan/apply/destroy (a remote backend fails them), azurerm v4's
mandatory subscription id for plan/apply/destroy (unless FAKE_TF_NO_AZURERM), -auto-approve and
-input=false without a terminal. FAKE_TF_OUTPUTS / FAKE_TF_PLAN / FAKE_TF_PLAN_TARGETED replace what
`output -json` and `plan` (without / with -target) print.
"""
from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

SECRET = "Sup3r-Secret-Admin-Pw!"
ENV_SECRET = "arm-client-secret-0xDEADBEEF"

FAKE = r'''#!{python}
import json, os, sys, time

args = sys.argv[1:]
seen = {{k: v for k, v in os.environ.items() if k.startswith(("ARM_", "TF_VAR_"))}}
with open(os.environ["FAKE_TF_ARGV_LOG"], "a") as f:
    f.write(json.dumps({{"argv": args, "env": seen}}) + "\n")
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
# A remote backend fails every command before `init` (a local one has no .terraform/ either).
if cmd in ("output", "plan", "apply", "destroy") and not os.path.isdir(os.path.join(chdir, ".terraform")):
    print('Error: Backend initialization required, please run "terraform init"', file=sys.stderr)
    sys.exit(1)
# azurerm v4 configures the provider for these, and needs the subscription id to.
if cmd in ("plan", "apply", "destroy") and not os.environ.get("ARM_SUBSCRIPTION_ID") and not os.environ.get("FAKE_TF_NO_AZURERM"):
    print("Error: building account: unable to configure ResourceManagerAccount: subscription ID could not be "
          "determined and was not specified", file=sys.stderr)
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
    os.makedirs(os.path.join(chdir, ".terraform"), exist_ok=True)
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
    if "FAKE_TF_OUTPUTS" in os.environ:
        print(os.environ["FAKE_TF_OUTPUTS"])
        sys.exit(0)
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
    targeted = any(a.startswith("-target=") for a in rest)
    print(os.environ.get("FAKE_TF_PLAN_TARGETED" if targeted else "FAKE_TF_PLAN", "Plan: 0 to add, 0 to change, 0 to destroy."))
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
    for var in ("FAKE_TF_FAIL", "FAKE_TF_LEAK", "FAKE_TF_SLEEP", "FAKE_TF_PLAN_EXIT", "FAKE_TF_OUTPUTS", "FAKE_TF_PLAN",
                "FAKE_TF_PLAN_TARGETED"):
        monkeypatch.delenv(var, raising=False)
    # TerraformCli alone passes no subscription: its argument-handling tests stand for a stack
    # without azurerm. test_terraform_stack.py (the target's environment) deletes this.
    monkeypatch.setenv("FAKE_TF_NO_AZURERM", "1")
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


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def calls(log: Path) -> list[list[str]]:
    return [r["argv"] for r in records(log)]


INIT = ["init", "-input=false", "-no-color"]
