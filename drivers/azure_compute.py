"""The DR site's Azure VM through azure-mgmt-compute: power state, start, deallocate.

`start` is a ledgered change whose inverse deallocates the VM (a standby VM is deallocated: no compute
billed, as the seeds keep it); `deallocate` carries that inverse out. Both are long-running operations
(Virtual Machines - Start / Deallocate): the SDK's poller returns when Azure reports them Succeeded,
i.e. when the power state is `running` or `deallocated`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from azure.mgmt.compute import ComputeManagementClient

from drill.ledger import Action, Entry, Ledger


def make_client(cfg: Any) -> ComputeManagementClient:
    """ComputeManagementClient for `cfg.subscription_id`, against `cfg.resource_manager_url` if set; built
    as every ARM client of the drill is (CA bundle, timeouts, the recording retry policy: drivers.retries)."""
    from drivers.azure_network import client_kwargs, make_credential

    kw: dict[str, Any] = client_kwargs(cfg)
    return ComputeManagementClient(make_credential(cfg), cfg.subscription_id,
                                   base_url=getattr(cfg, "resource_manager_url", None) or None, **kw)


def power_state(client: ComputeManagementClient, rg: str, name: str) -> str:
    """The instance view's `PowerState/<state>` (running, starting, deallocating, deallocated, stopped, ...)."""
    view = client.virtual_machines.instance_view(rg, name)
    for s in view.statuses or []:
        if (s.code or "").startswith("PowerState/"):
            return str(s.code).split("/", 1)[1]
    return "unknown"


class VirtualMachine:
    def __init__(self, client: ComputeManagementClient, rg: str, name: str, ledger: Ledger | None = None) -> None:
        self.client, self.rg, self.name, self.ledger = client, rg, name, ledger

    def __repr__(self) -> str:
        return f"VirtualMachine({self.rg}/{self.name})"

    def power_state(self) -> str:
        return power_state(self.client, self.rg, self.name)

    def start(self, timeout: float = 900.0, wait: bool = True) -> Entry:
        """Start the VM (ledgered first: the inverse deallocates it); returns once it is running, or with
        `wait=False` once Azure has accepted the start (the operation goes on: see `wait_power`)."""
        assert self.ledger is not None, "a change needs the rollback ledger"
        where = {"resource_group": self.rg, "vm": self.name}
        entry = self.ledger.record(
            Action("azure.vm.start", where, f"start Azure VM {self.name} (the DR site)"),
            Action("azure.vm.deallocate", where, f"deallocate Azure VM {self.name} (back to standby)"),
        )
        if entry.planned:
            return entry
        poller = self.client.virtual_machines.begin_start(self.rg, self.name, polling_interval=1)
        self.ledger.applied(entry)
        if wait:
            poller.result(timeout=timeout)
        return entry

    def deallocate(self, timeout: float = 900.0) -> None:
        self.client.virtual_machines.begin_deallocate(self.rg, self.name, polling_interval=1).result(timeout=timeout)

    def wait_power(self, state: str, timeout: float, poll: float = 0.5) -> tuple[bool, list[tuple[float, str]]]:
        """Wait for the power state `state`; (reached, [(monotonic, state) at each change seen])."""
        seen: list[tuple[float, str]] = []
        deadline = time.monotonic() + timeout
        while True:
            now = self.power_state()
            if not seen or seen[-1][1] != now:
                seen.append((time.monotonic(), now))
            if now == state or time.monotonic() >= deadline:
                return now == state, seen
            time.sleep(poll)


def execute_vm_action(action: Action, client: Callable[[], ComputeManagementClient]) -> None:
    """The unwind executor's part for `azure.vm.*` inverses."""
    p = action.params
    if action.op == "azure.vm.deallocate":
        VirtualMachine(client(), p["resource_group"], p["vm"]).deallocate()
        return
    raise ValueError(f"no executor for operation {action.op!r}")
