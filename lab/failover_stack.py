"""The Azure "2-failover" Terraform stack, provisioned by the lab.

Resources come up (and go) after their documented times scaled by the lab's time scale, in
parallel as Terraform creates independent resources: MySQL Flexible Server 8-10 min, AKS and the
App Gateway within the runbook's 15-20 min for the whole stack. A targeted apply (Terraform's
`-target`) creates only what it names, which is how the drill restores data while the rest comes up.
The lab's `terraform` shim (lab/terraform_shim.py) drives this through lab/control.py, so the
drill's production Terraform driver runs unchanged against the lab.
"""
from __future__ import annotations

import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab.events import EventLog

MYSQL = "azurerm_mysql_flexible_server.main"
AKS = "azurerm_kubernetes_cluster.main"
APPGW = "azurerm_application_gateway.main"

# Real-world seconds (shared/notes/real-mechanisms.md; multicloud-infra-design.md stages 2-3).
CREATE_SECONDS = {MYSQL: 540.0, AKS: 720.0, APPGW: 1050.0}
DESTROY_SECONDS = {MYSQL: 300.0, AKS: 600.0, APPGW: 900.0}


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


@dataclass
class StackParts:
    """How the lab creates and removes each resource; set up by lab.runtime."""

    create: dict[str, Callable[[], None]]
    destroy: dict[str, Callable[[], None]]
    outputs: Callable[[set[str]], dict[str, Any]]


class FailoverStack:
    def __init__(self, parts: StackParts, time_scale: float, events: EventLog) -> None:
        self.parts = parts
        self.time_scale = time_scale
        self.events = events
        self.resources = {a: Resource(a) for a in CREATE_SECONDS}
        self.operations: dict[str, Operation] = {}
        self._lock = threading.Lock()  # Terraform's state lock: one operation at a time

    def present(self) -> set[str]:
        return {a for a, r in self.resources.items() if r.state == "present"}

    def outputs(self) -> dict[str, Any]:
        return self.parts.outputs(self.present())

    def snapshot(self) -> dict[str, Any]:
        return {"resources": {a: r.state for a, r in self.resources.items()}, "outputs": self.outputs()}

    def start(self, kind: str, targets: list[str]) -> Operation:
        unknown = [t for t in targets if t not in self.resources]
        if unknown:
            raise ValueError(f"no resource {unknown[0]!r} in this configuration")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("Error acquiring the state lock: another operation is running")
        op = Operation(uuid.uuid4().hex[:12], kind, targets)
        self.operations[op.id] = op
        threading.Thread(target=self._run, args=(op,), name=f"stack-{kind}", daemon=True).start()
        return op

    def _run(self, op: Operation) -> None:
        try:
            chosen = op.targets or list(self.resources)
            if op.kind == "apply":
                todo = [a for a in chosen if self.resources[a].state != "present"]
                self._parallel(op, todo, "creating", "present", CREATE_SECONDS, self.parts.create)
            else:
                todo = [a for a in chosen if self.resources[a].state != "absent"]
                self._parallel(op, todo, "destroying", "absent", DESTROY_SECONDS, self.parts.destroy)
            failed = [a for a in todo if self.resources[a].state == "failed"]
            if failed:
                raise RuntimeError("; ".join(f"{a}: {self.resources[a].error}" for a in failed))
            op.log.append(f"{'Apply' if op.kind == 'apply' else 'Destroy'} complete! Resources: {len(todo)} "
                          f"{'added' if op.kind == 'apply' else 'destroyed'}.")
            op.state = "succeeded"
        except Exception as e:
            op.state, op.error = "failed", str(e)
        finally:
            self.events.record("stack", f"{op.kind} {op.state}", targets=op.targets, error=op.error)
            self._lock.release()

    def _parallel(
        self, op: Operation, todo: list[str], during: str, after: str,
        seconds: dict[str, float], actions: dict[str, Callable[[], None]],
    ) -> None:
        def one(addr: str) -> None:
            res = self.resources[addr]
            res.state, res.error = during, None
            op.log.append(f"{addr}: {'Creating' if during == 'creating' else 'Destroying'}...")
            self.events.record("stack", f"{addr} {during}")
            t0 = time.monotonic()
            # Destroy removes the thing first and then waits out the API; create does the reverse.
            try:
                if during == "destroying":
                    actions[addr]()
                time.sleep(max(0.0, seconds[addr] / self.time_scale - (time.monotonic() - t0)))
                if during == "creating":
                    actions[addr]()
            except Exception as e:
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


def write_stack_dir(stack_dir: Path, control_url: str, token: str) -> None:
    """The root module directory the shim is pointed at with -chdir (like codes/azure/2-failover)."""
    import json

    stack_dir.mkdir(parents=True, exist_ok=True)
    cfg = stack_dir / "lab-stack.json"
    cfg.touch(mode=0o600)
    cfg.write_text(json.dumps({"control_url": control_url, "token": token, "stack": "2-failover"}))
    (stack_dir / "main.tf").write_text(
        "# Stand-in for codes/azure/2-failover: the lab provisions these resources.\n"
        + "".join(f'# resource "{a.split(".")[0]}" "{a.split(".")[1]}"\n' for a in CREATE_SECONDS)
    )


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
