"""The lab's `terraform`: the CLI surface the drill's Terraform driver uses, for the lab's stack.

  terraform -chdir=DIR init | apply -auto-approve [-target=ADDR]... | destroy -auto-approve [-target=ADDR]... |
            output -json | plan -detailed-exitcode [-target=ADDR]... | version

DIR holds lab-stack.json (control URL, token, the stack's required variables) written by the lab.
Like Terraform, `-chdir` must come before the subcommand, apply/destroy refuse to run without
-auto-approve when there is no terminal, and plan's -detailed-exitcode exits 2 when changes are
pending. Like the azurerm v4 provider, plan/apply/destroy need ARM_SUBSCRIPTION_ID (the provider
is configured for them; init and output read no cloud), and the root module's variables come from
TF_VAR_<name> in the environment (a required one missing is an error, as with -input=false).
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class Usage(Exception):
    pass


def _call(cfg: dict[str, str], method: str, path: str, body: Any = None, command: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(cfg["control_url"] + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {cfg['token']}")
    if command:  # what the lab's faults (lab.faults, surface "terraform") match on
        req.add_header("X-Terraform-Command", command)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        detail = json.loads(e.read() or b"{}").get("error", e.reason)
        raise RuntimeError(str(detail)) from None


def _variables(cfg: dict[str, Any]) -> dict[str, str]:
    """The root module's variables from TF_VAR_<name>; Terraform's error for a required one unset."""
    values: dict[str, str] = {}
    for name in cfg.get("variables", []):
        value = os.environ.get(f"TF_VAR_{name}")
        if value is None:
            raise RuntimeError(
                f"No value for required variable\n\n  on main.tf line 1:\n   1: variable \"{name}\" {{\n\nThe root module input "
                f"variable \"{name}\" is not set, and has no default value. Use a -var or -var-file command line argument "
                "or set a TF_VAR_ environment variable to provide a value for this variable.")
        values[name] = value
    return values


def _subscription() -> str:
    """azurerm v4: the subscription id is mandatory (provider block or ARM_SUBSCRIPTION_ID)."""
    sub = os.environ.get("ARM_SUBSCRIPTION_ID", "")
    if not sub:
        raise RuntimeError(
            "building account: unable to configure ResourceManagerAccount: subscription ID could not be determined "
            "and was not specified\n\n  with provider[\"registry.terraform.io/hashicorp/azurerm\"],\n"
            "  on main.tf line 1, in provider \"azurerm\"")
    return sub


def _run_operation(cfg: dict[str, Any], kind: str, targets: list[str]) -> int:
    body = {"targets": targets, "subscription_id": _subscription(), "variables": _variables(cfg)}
    op = _call(cfg, "POST", f"/stacks/2-failover/{kind}", body, command=kind)["operation"]
    printed = 0
    t0 = time.monotonic()
    next_note = 10.0  # Terraform says "Still creating..." every 10 s
    while True:
        st = _call(cfg, "GET", f"/operations/{op}")
        for line in st["log"][printed:]:
            print(line, flush=True)
        printed = len(st["log"])
        if st["state"] != "running":
            break
        if time.monotonic() - t0 >= next_note:
            print(f"Still {'creating' if kind == 'apply' else 'destroying'}... [{int(next_note)}s elapsed]", flush=True)
            next_note += 10.0
        time.sleep(0.05)  # the lab's own endpoint, on loopback: a slow poll would only add slack
    if st["state"] != "succeeded":
        print(f"Error: {st['error']}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    chdir = Path(".")
    args = list(argv)
    while args and args[0].startswith("-chdir="):
        chdir = Path(args.pop(0).split("=", 1)[1])
    if not args:
        raise Usage("Usage: terraform [global options] <subcommand> [args]")
    cmd, rest = args[0], args[1:]
    if any(a.startswith("-chdir") for a in rest):
        raise Usage("Error: -chdir must be given before the subcommand")
    cfg_path = chdir / "lab-stack.json"
    if not cfg_path.exists():
        print(f"Error: {chdir} is not the lab's failover stack (no lab-stack.json)", file=sys.stderr)
        return 1
    cfg = json.loads(cfg_path.read_text())
    targets = [a.split("=", 1)[1] for a in rest if a.startswith("-target=")]
    if cmd == "init":
        print("Terraform has been successfully initialized!")
        return 0
    if cmd in ("apply", "destroy"):
        if "-auto-approve" not in rest:
            print("Error: No value for required variable: approval (use -auto-approve; no terminal)", file=sys.stderr)
            return 1
        return _run_operation(cfg, cmd, targets)
    if cmd == "output":
        outs = _call(cfg, "GET", "/stacks/2-failover", command="output")["outputs"]
        if "-json" in rest:
            print(json.dumps({k: {"sensitive": False, "type": "string", "value": v} for k, v in outs.items()}, indent=2))
        else:
            for k, v in outs.items():
                print(f'{k} = "{v}"')
        return 0
    if cmd == "plan":
        sub = _subscription()
        _variables(cfg)
        pending = _call(cfg, "POST", "/stacks/2-failover/plan", {"targets": targets, "subscription_id": sub},
                        command="plan")["create"]
        for a in pending:
            print(f"  # {a} will be created")
        print(f"Plan: {len(pending)} to add, 0 to change, 0 to destroy." if pending
              else "No changes. Your infrastructure matches the configuration.")
        if targets:
            print("Warning: Resource targeting is in effect")
        return 2 if pending and "-detailed-exitcode" in rest else 0
    if cmd == "version":
        print("Terraform v1.14.0 (dr-drill lab shim)")
        return 0
    raise Usage(f"Terraform has no command named {cmd!r}.")


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except Usage as e:
        print(str(e), file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
