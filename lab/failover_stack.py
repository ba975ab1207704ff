"""The Azure "2-failover" Terraform stack, provisioned by the lab.

Resources come up (and go) after their documented times scaled by the lab's time scale, in
parallel as Terraform creates independent resources: MySQL Flexible Server 8-10 min, AKS and the
App Gateway within the runbook's 15-20 min for the whole stack. The server's database, firewall rule
and parameter are resources of their own that depend on it, as in azurerm.

As Terraform (docs, "Resource targeting"): an apply with `-target` creates what it names and what
those depend on, never what depends on them; a destroy with `-target` also destroys the dependents;
an address that is not in the configuration is ignored without a word (hashicorp/terraform#30434).
Like azurerm v4, every operation needs the subscription id (and it must be the lab's), and the
stack's required variable (the MySQL admin password) must be given: the server really uses it.
The lab's `terraform` shim (lab/terraform_shim.py) drives this through lab/control.py, so the
drill's production Terraform driver runs unchanged against the lab.
"""
from __future__ import annotations

import functools
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import fault_shapes
from lab.events import EventLog

MYSQL = "azurerm_mysql_flexible_server.main"
DATABASE = "azurerm_mysql_flexible_database.petclinic"
FIREWALL = "azurerm_mysql_flexible_server_firewall_rule.allow_aks_subnet"
PARAMETER = "azurerm_mysql_flexible_server_configuration.require_secure_transport"
AKS = "azurerm_kubernetes_cluster.main"
APPGW = "azurerm_application_gateway.main"

# Real-world seconds (shared/notes/real-mechanisms.md; multicloud-infra-design.md stages 2-3).
CREATE_SECONDS = {MYSQL: 540.0, DATABASE: 20.0, FIREWALL: 60.0, PARAMETER: 20.0, AKS: 720.0, APPGW: 1050.0}
DESTROY_SECONDS = {MYSQL: 300.0, DATABASE: 20.0, FIREWALL: 60.0, PARAMETER: 20.0, AKS: 600.0, APPGW: 900.0}
DEPENDS_ON = {DATABASE: [MYSQL], FIREWALL: [MYSQL], PARAMETER: [MYSQL]}
# The stack's input variables without a default: Terraform refuses to plan, apply or destroy without them.
REQUIRED_VARIABLES = ("mysql_admin_password",)


def with_dependencies(targets: list[str]) -> list[str]:
    """Targets and what they depend on (apply -target), in configuration order."""
    chosen = set(targets)
    for t in targets:
        chosen.update(DEPENDS_ON.get(t, []))
    return [a for a in CREATE_SECONDS if a in chosen]


def with_dependents(targets: list[str]) -> list[str]:
    """Targets and what depends on them (destroy -target), in configuration order."""
    chosen = set(targets)
    chosen.update(a for a, deps in DEPENDS_ON.items() if chosen & set(deps))
    return [a for a in CREATE_SECONDS if a in chosen]


@dataclass
class Resource:
    address: str
    state: str = "absent"  # absent | creating | present | destroying | failed
    error: str | None = None


@dataclass
class Operation:
    id: str
    kind: str  # apply | destroy
    targets: list[str]
    state: str = "running"  # running | succeeded | failed
    log: list[str] = field(default_factory=list)
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    variables: dict[str, str] = field(default_factory=dict, repr=False)  # the admin password: never in a repr
    keep: int | None = None  # a partial fault: resources done before the rest fail (None: no fault)


@dataclass
class StackParts:
    """How the lab creates and removes each resource; set up by lab.topologies.cloudfront.

    `create` callables get the operation's input variables (name -> value)."""

    create: dict[str, Callable[[dict[str, str]], None]]
    destroy: dict[str, Callable[[], None]]
    outputs: Callable[[set[str]], dict[str, Any]]
    # The lab's own start-up work for a resource (starting a server process), begun when its modeled
    # creation begins and out of sight until `create` exposes it at the modeled instant: the lab's
    # process start-up must not add to the cloud's documented creation time.
    prepare: dict[str, Callable[[dict[str, str]], None]] = field(default_factory=dict)


class StackRefused(ValueError):
    """What Terraform would refuse before it changes anything (a 400 from the control endpoint)."""


class FailoverStack:
    def __init__(self, parts: StackParts, time_scale: float, events: EventLog, subscription_id: str) -> None:
        self.parts = parts
        self.time_scale = time_scale
        self.events = events
        self.subscription_id = subscription_id
        self.resources = {a: Resource(a) for a in CREATE_SECONDS}
        self.operations: dict[str, Operation] = {}
        self._lock = threading.Lock()  # Terraform's state lock: one operation at a time

    def present(self) -> set[str]:
        return {a for a, r in self.resources.items() if r.state == "present"}

    def outputs(self) -> dict[str, Any]:
        """Outputs in the state: none before the first apply nor after a destroy, as in Terraform."""
        present = self.present()
        return self.parts.outputs(present) if present else {}

    def snapshot(self) -> dict[str, Any]:
        return {"resources": {a: r.state for a, r in self.resources.items()}, "outputs": self.outputs()}

    def check(self, subscription_id: str | None, variables: dict[str, str] | None = None) -> None:
        """What the provider and Terraform check before an operation (StackRefused)."""
        if not subscription_id:  # azurerm v4: "Specifying Subscription ID is now Mandatory"
            raise StackRefused("building account: unable to configure ResourceManagerAccount: subscription ID could "
                               "not be determined and was not specified")
        if subscription_id != self.subscription_id:
            raise StackRefused(f"SubscriptionNotFound: The subscription '{subscription_id}' could not be found.")
        if variables is not None:
            for name in REQUIRED_VARIABLES:
                if not variables.get(name):
                    raise StackRefused(f"No value for required variable: the root module input variable {name!r} is not set, "
                                       "and has no default value")

    def plan(self, targets: list[str], subscription_id: str | None) -> list[str]:
        """What an apply (with these -target addresses) would create."""
        self.check(subscription_id)
        chosen = with_dependencies([t for t in targets if t in self.resources]) if targets else list(self.resources)
        return [a for a in chosen if self.resources[a].state != "present"]

    def todo(self, kind: str, targets: list[str]) -> list[str]:
        """What an apply or destroy with these -target addresses would do now, in configuration order."""
        known = [t for t in targets if t in self.resources]
        if kind == "apply":
            chosen = with_dependencies(known) if targets else list(self.resources)
            return [a for a in chosen if self.resources[a].state != "present"]
        chosen = with_dependents(known) if targets else list(self.resources)
        return [a for a in chosen if self.resources[a].state != "absent"]

    def start(self, kind: str, targets: list[str], subscription_id: str | None = None,
              variables: dict[str, str] | None = None, keep: int | None = None) -> Operation:
        """Start an apply or destroy. `keep` (a partial fault, lab.faults): only the first `keep` of
        its resources (configuration order) get done; the others fail, as an apply that exits 1 half-way."""
        self.check(subscription_id, variables or {})
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("Error acquiring the state lock: another operation is running")
        op = Operation(uuid.uuid4().hex[:12], kind, targets)
        op.variables = dict(variables or {})
        op.keep = keep
        self.operations[op.id] = op
        threading.Thread(target=self._run, args=(op,), name=f"stack-{kind}", daemon=True).start()
        return op

    def _run(self, op: Operation) -> None:
        try:
            # unknown -target addresses: ignored
            todo = self.todo(op.kind, op.targets)
            if op.kind == "apply":
                create: dict[str, Callable[[], None]] = {
                    a: functools.partial(f, op.variables) for a, f in self.parts.create.items()}
                prepare: dict[str, Callable[[], None]] = {
                    a: functools.partial(f, op.variables) for a, f in self.parts.prepare.items()}
                self._parallel(op, todo, "creating", "present", CREATE_SECONDS, create, prepare, _failing(op, todo))
            else:
                self._parallel(op, todo, "destroying", "absent", DESTROY_SECONDS, self.parts.destroy,
                               failing=_failing(op, todo))
            failed = [a for a in todo if self.resources[a].state == "failed"]
            if failed:
                raise RuntimeError("; ".join(f"{a}: {self.resources[a].error}" for a in failed))
            op.log.append(f"{'Apply' if op.kind == 'apply' else 'Destroy'} complete! Resources: {len(todo)} "
                          f"{'added' if op.kind == 'apply' else 'destroyed'}.")
            op.state = "succeeded"
        except Exception as e:  # noqa: BLE001 — any failure of the modelled apply is the operation's error, as Terraform reports it
            op.state, op.error = "failed", str(e)
        finally:
            self.events.record("stack", f"{op.kind} {op.state}", targets=op.targets, error=op.error)
            self._lock.release()

    def _parallel(
        self, op: Operation, todo: list[str], during: str, after: str,
        seconds: dict[str, float], actions: dict[str, Callable[[], None]],
        prepare: dict[str, Callable[[], None]] | None = None,
        failing: set[str] | None = None,
    ) -> None:
        failing = failing or set()
        # A resource left failed (tainted) by an earlier operation is this one's to redo: until its
        # turn it is waiting, not failed (a dependent must wait for it, not give up at once).
        tainted = {a for a in todo if self.resources[a].state == "failed"}
        for a in tainted:
            self.resources[a].state = "waiting"

        def one(addr: str) -> None:
            res = self.resources[addr]
            # Terraform orders by dependency: a dependent is created after, and destroyed before, what it needs.
            waits = (DEPENDS_ON.get(addr, []) if during == "creating"
                     else [a for a, deps in DEPENDS_ON.items() if addr in deps and a in todo])
            if not self._wait_for(waits, after):
                res.state, res.error = "failed", f"a dependency of {addr} did not become {after}"
                op.log.append(f"{addr}: failed: {res.error}")
                return
            res.state, res.error = during, None
            if during == "creating" and addr in tainted:  # Terraform replaces a tainted resource (a failed create): destroy, then create
                op.log.append(f"{addr}: Destroying... (tainted)")
                try:
                    self.parts.destroy[addr]()
                except Exception as e:  # noqa: BLE001 — a failed destroy of the tainted resource is its error, as Terraform reports it
                    res.state, res.error = "failed", f"{type(e).__name__}: {e}"
                    op.log.append(f"{addr}: failed: {res.error}")
                    return
            op.log.append(f"{addr}: {'Creating' if during == 'creating' else 'Destroying'}...")
            self.events.record("stack", f"{addr} {during}")
            t0 = time.monotonic()
            prepared: list[BaseException | None] = []
            preparing = None
            if prepare and addr in prepare:
                def run_prepare() -> None:
                    try:
                        prepare[addr]()
                        prepared.append(None)
                    except BaseException as e:  # noqa: BLE001 — reported as this resource's failure below
                        prepared.append(e)

                preparing = threading.Thread(target=run_prepare, name=f"prepare {addr}", daemon=True)
                preparing.start()
            # Destroy removes the thing first and then waits out the API; create does the reverse.
            try:
                if during == "destroying" and addr not in failing:
                    actions[addr]()
                time.sleep(max(0.0, seconds[addr] / self.time_scale - (time.monotonic() - t0)))
                if preparing is not None:
                    preparing.join()  # slower than the model: the lab cannot be faster than its own processes
                    if prepared and prepared[0] is not None:
                        raise prepared[0]
                if addr in failing:  # a partial fault: the cloud's operation failed; what it made stays (tainted)
                    res.state, res.error = "failed", fault_shapes.terraform_partial(addr, op.kind)
                    op.log.append(f"{addr}: failed: {res.error}")
                    self.events.record("stack", f"{addr} failed (lab fault)")
                    return
                if during == "creating":
                    actions[addr]()
            except Exception as e:  # noqa: BLE001 — any failure while creating a resource is that resource's error, as Terraform reports it
                res.state, res.error = "failed", f"{type(e).__name__}: {e}"
                op.log.append(f"{addr}: failed: {res.error}")
                return
            res.state = after
            real = round(seconds[addr])
            op.log.append(f"{addr}: {'Creation' if during == 'creating' else 'Destruction'} complete after {real // 60}m{real % 60}s")
            self.events.record("stack", f"{addr} {after}")

        threads = [threading.Thread(target=one, args=(a,), daemon=True) for a in todo]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _wait_for(self, addresses: list[str], state: str) -> bool:
        while True:
            states = [self.resources[a].state for a in addresses]
            if all(s == state for s in states):
                return True
            if "failed" in states:
                return False
            time.sleep(0.05)


def _failing(op: Operation, todo: list[str]) -> set[str]:
    """The resources a partial fault fails: all after the first `keep` (configuration order)."""
    if op.keep is None:
        return set()
    return set(todo[min(op.keep, len(todo)):])


def write_stack_dir(stack_dir: Path, control_url: str, token: str) -> None:
    """The root module directory the shim is pointed at with -chdir (like codes/azure/2-failover)."""
    import json

    stack_dir.mkdir(parents=True, exist_ok=True)
    cfg = stack_dir / "lab-stack.json"
    cfg.touch(mode=0o600)
    cfg.write_text(json.dumps({"control_url": control_url, "token": token, "stack": "2-failover",
                               "variables": list(REQUIRED_VARIABLES)}))
    (stack_dir / "main.tf").write_text(
        "# Stand-in for codes/azure/2-failover: the lab provisions these resources.\n"
        + "".join(f'variable "{v}" {{\n  type      = string\n  sensitive = true\n}}\n' for v in REQUIRED_VARIABLES)
        + "".join(f'# resource "{a.split(".")[0]}" "{a.split(".")[1]}"'
                  + (f"  # depends on {', '.join(DEPENDS_ON[a])}" if a in DEPENDS_ON else "") + "\n"
                  for a in CREATE_SECONDS)
    )


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
