"""The failover stack as the target describes it: Terraform with the target's identity, and the checks
that keep a drill from touching a stack it did not make.

Terraform gets everything through its environment, never its command line (argv is visible to
every user of the host in `ps`):
  - ARM_SUBSCRIPTION_ID, which azurerm v4 requires ("Specifying Subscription ID is now Mandatory",
    AzureRM 4.0 upgrade guide; without it plan/apply fail with "subscription ID could not be
    determined and was not specified"). It is the target's `azure.subscription_id`, the one the
    production guard checks against `guard.azure_subscription_ids`.
  - the provider's credentials for the chosen mode (azurerm provider docs, "Authenticating to
    Azure"): ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID for a service principal with a secret,
    ARM_USE_OIDC for a federated (OIDC) token, ARM_USE_MSI for a managed identity, ARM_USE_CLI for
    `az login`. ARM_* identity variables inherited from the drill's own environment are dropped, so
    what Terraform authenticates as is what the target says.
  - input variables as TF_VAR_<name> (Terraform docs, "Input variables: environment variables"):
    the MySQL admin password from `azure.mysql.admin_password`, and `failover_stack.variables`.

Before the first change of a drill that will apply the stack (`preflight`):
  - the stack must be absent: `terraform output` shows no outputs and `terraform plan` proposes only
    creations. Otherwise it is a real failover in progress or a warm standby, and the drill refuses:
    its unwind would `terraform destroy` whatever the state holds.
  - the data-tier `-target` list must cover the data tier: `-target` brings in a resource's
    dependencies, never its dependents (Terraform docs, "Resource targeting"), so a database, a
    firewall rule or a server parameter left off the list would be missing while the backup is
    restored. `plan -target=...` is compared with the full plan.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drill.config import Target
from drivers.terraform_plan import PlanningTerraform

# Identity and variables come from the target only: these are not inherited from the drill's process.
INHERITED_DROPPED = (
    "ARM_SUBSCRIPTION_ID", "ARM_TENANT_ID", "ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_CLIENT_CERTIFICATE_PATH",
    "ARM_CLIENT_CERTIFICATE_PASSWORD", "ARM_USE_OIDC", "ARM_USE_MSI", "ARM_USE_CLI", "ARM_USE_AKS_WORKLOAD_IDENTITY",
)
TF_VAR_PREFIX = "TF_VAR_"
# Resources of the data tier (Azure Database for MySQL flexible server and what hangs off it).
DATA_TIER_PREFIX = "azurerm_mysql_flexible_"
# Outputs each stage of Phase 2 reads (steps/config_needs.py checks that the steps read these).
DATA_TIER_OUTPUTS = ("mysql_fqdn", "mysql_admin_username", "mysql_database_name", "mysql_server_name")
STACK_OUTPUTS = (*DATA_TIER_OUTPUTS, "appgw_public_ip")


class StackError(RuntimeError):
    """The failover stack cannot be driven as the target says; one line naming the key or output."""


def auth_mode(target: Target) -> str:
    fs, az = target.failover_stack, target.azure
    assert fs is not None and az is not None
    return fs.auth or ("client_secret" if az.credential.client_secret else "cli")


def terraform_env(target: Target) -> tuple[dict[str, str], list[str]]:
    """Terraform's environment for this target, and the secret values in it (to mask)."""
    fs, az = target.failover_stack, target.azure
    if fs is None:
        raise StackError(f"target {target.name!r} has no `failover_stack:` section")
    if az is None:
        raise StackError(f"target {target.name!r} has no `azure:` section: Terraform needs its subscription and credentials")
    c = az.credential
    env = {"ARM_SUBSCRIPTION_ID": az.subscription_id}
    secrets: list[str] = []
    mode = auth_mode(target)

    def need(*keys: str) -> None:
        missing = [k for k in keys if not getattr(c, k)]
        if missing:
            raise StackError(f"failover_stack.auth {mode}: azure.credential.{', azure.credential.'.join(missing)} must be set")

    if mode == "client_secret":
        need("tenant_id", "client_id", "client_secret")
        assert c.client_secret is not None  # need() above
        secret = c.client_secret.get_secret_value()
        env.update(ARM_TENANT_ID=str(c.tenant_id), ARM_CLIENT_ID=str(c.client_id), ARM_CLIENT_SECRET=secret)
        secrets.append(secret)
    elif mode == "oidc":
        need("tenant_id", "client_id")
        env.update(ARM_USE_OIDC="true", ARM_TENANT_ID=str(c.tenant_id), ARM_CLIENT_ID=str(c.client_id))
    elif mode == "msi":
        env["ARM_USE_MSI"] = "true"
        if c.client_id:  # a user-assigned identity
            env["ARM_CLIENT_ID"] = c.client_id
        if c.tenant_id:
            env["ARM_TENANT_ID"] = c.tenant_id
    else:  # cli: whoever `az login` is, on the subscription given here
        env["ARM_USE_CLI"] = "true"
        if c.tenant_id:
            env["ARM_TENANT_ID"] = c.tenant_id
    password = az.mysql.admin_password.get_secret_value()
    env[TF_VAR_PREFIX + fs.admin_password_variable] = password
    secrets.append(password)
    for name, value in fs.variables.items():
        env[TF_VAR_PREFIX + name] = value
    return env, [s for s in secrets if s]


def stack_terraform(
    target: Target,
    log: Callable[[str], None] | None = None,
    timeout: float = 3600.0,
    on_secret: Callable[[Iterable[str]], None] | None = None,
    chdir: Path | str | None = None,
    binary: str | None = None,
) -> PlanningTerraform:
    """The Terraform CLI on the target's failover stack, with the target's identity and variables.

    `chdir`/`binary` override the target's (a persisted ledger names the ones a drill used)."""
    fs = target.failover_stack
    if fs is None:
        raise StackError(f"target {target.name!r} has no `failover_stack:` section")
    env, secrets = terraform_env(target)
    return PlanningTerraform(Path(chdir or fs.chdir), binary=binary or fs.terraform_binary, env=env, timeout=timeout, log=log,
                             secrets=secrets, drop_inherited=INHERITED_DROPPED, drop_inherited_prefixes=(TF_VAR_PREFIX,),
                             on_secret=on_secret)


# -- the subscription Terraform will really use ----------------------------------------------------------

_PROVIDER = re.compile(r'provider\s+"azurerm"\s*\{')
_SUBSCRIPTION = re.compile(r'^\s*subscription_id\s*=\s*(.+?)\s*$', re.M)


def provider_subscriptions(chdir: Path | str) -> list[tuple[str, str]]:
    """(file, expression) of every `subscription_id` set in a `provider "azurerm"` block of the root module.

    A subscription set there wins over ARM_SUBSCRIPTION_ID, so the guard must see it.
    """
    found: list[tuple[str, str]] = []
    for tf in sorted(Path(chdir).glob("*.tf")):
        text = re.sub(r"(?m)(#|//).*$", "", tf.read_text(encoding="utf-8", errors="replace"))
        for m in _PROVIDER.finditer(text):
            depth, i = 1, m.end()
            while i < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            found += [(tf.name, s.group(1)) for s in _SUBSCRIPTION.finditer(text[m.end():i])]
    return found


# -- before the first change ------------------------------------------------------------------------------

@dataclass
class Preflight:
    """What was checked about the stack before the drill's first change (kept in the ledger as proof)."""

    outputs: list[str] = field(default_factory=list)
    plan: str = ""
    creations: list[str] = field(default_factory=list)
    data_tier: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"outputs": self.outputs, "plan": self.plan, "creations": self.creations, "data_tier": self.data_tier}


class StackNotAbsent(StackError):
    """The stack is (partly) there already: a drill must not create over it, nor destroy it."""


def check_absent(tf: PlanningTerraform) -> Preflight:
    """Refuse (StackNotAbsent) unless the stack has no outputs and its plan proposes only creations."""
    from drill.readiness import parse_plan

    outputs = tf.output()
    if outputs:
        raise StackNotAbsent(
            f"the failover stack in {tf.chdir} already has outputs ({', '.join(sorted(outputs))}): it exists — a real "
            "failover in progress or a warm standby. The drill only creates, and destroys, a stack of its own")
    plan = tf.plan()
    summary = parse_plan(plan.stdout)
    counts = ", ".join(f"{n} to {kind}" for kind, n in sorted(summary.counts.items()) if n) or "no changes"
    others = [f"{a} ({act})" for a, act in summary.drift]
    if others or not summary.clean:
        raise StackNotAbsent(
            f"terraform plan of the failover stack proposes more than creations ({', '.join(others) or counts}): "
            "part of it exists. The drill only creates, and destroys, a stack of its own")
    if not summary.creations:
        raise StackNotAbsent(f"terraform plan of the failover stack proposes no creations ({counts}): it is up already, "
                             "or its configuration is empty")
    return Preflight(outputs=[], plan=counts, creations=sorted(summary.creations))


def check_data_tier(tf: PlanningTerraform, targets: Sequence[str], full: Preflight) -> list[str]:
    """`plan -target=...` of the data tier, against the full plan: every target and every resource of the
    data tier must be in it. Returns the targeted plan's creations; StackError names what is missing."""
    from drill.readiness import parse_plan

    plan = tf.plan(targets=targets)
    planned = set(parse_plan(plan.stdout).creations)
    unknown = [t for t in targets if not any(p == t or p.startswith(t + "[") or p.startswith(t + ".") for p in planned)]
    if unknown:
        raise StackError(f"failover_stack.data_tier_targets: {', '.join(unknown)} not in the configuration's plan "
                         f"(terraform ignores an unknown -target; planned: {', '.join(sorted(planned)) or 'nothing'})")
    left_out = [a for a in full.creations if _resource_type(a).startswith(DATA_TIER_PREFIX) and a not in planned]
    if left_out:
        raise StackError(f"failover_stack.data_tier_targets leaves out {', '.join(left_out)}, which the data tier needs: "
                         "-target brings in dependencies, not dependents; add them to the list")
    return sorted(planned)


def preflight(tf: PlanningTerraform, targets: Sequence[str]) -> Preflight:
    """Both checks, in order (init first: a remote backend needs it before any other command)."""
    tf.init()
    found = check_absent(tf)
    found.data_tier = check_data_tier(tf, targets, found)
    return found


def require_outputs(outputs: Mapping[str, Any], names: Sequence[str], after: str) -> None:
    """One clear error naming every output the drill needs that `after` did not produce."""
    missing = [n for n in names if outputs.get(n) in (None, "")]
    if missing:
        raise StackError(f"{after} gave no {', '.join(missing)} output{'s' if len(missing) > 1 else ''}: the failover stack "
                         f"must output {', '.join(names)} (README, Drilling production); it gave {', '.join(sorted(outputs)) or 'none'}")


def _resource_type(address: str) -> str:
    parts = [p for p in address.split(".") if p != "data"]
    # module.x.type.name -> type
    while parts and parts[0] == "module":
        parts = parts[2:]
    return parts[0] if parts else address
