"""Microsoft.Compute/virtualMachines in the ARM emulator: the DR site's VM (state model + routes).

What azure-mgmt-compute calls, shaped as the REST API documents it (Virtual Machines - Get, Instance
View, Start, Deallocate): GET of the VM (`$expand=instanceView` adds `properties.instanceView`), GET
`.../instanceView`, POST `.../start` and `.../deallocate` as long-running operations (202 with
Azure-AsyncOperation and Location; the operation completes when the VM has reached the state).
The power state is the instance view's `PowerState/*` status: deallocated → starting → running on
start, running → deallocating → deallocated on deallocate.

Timing: Azure documents no start or deallocate duration. The seeds' own figure for the VM DR site is
"RTO 2 min, manual start": the lab plays 60 s from the start request to `PowerState/running` and
the guest's services (nginx, Tomcat) answering `boot_seconds` later (lab.vm_host), deallocation in
30 s — its choice, divided by the time scale, stated here and in the README.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.events import EventLog

START_SECONDS = 60.0
DEALLOCATE_SECONDS = 30.0
DISPLAY = {"running": "VM running", "starting": "VM starting", "deallocating": "VM deallocating",
           "deallocated": "VM deallocated", "stopped": "VM stopped"}
Handler = Callable[[str, list[str], dict[str, Any]], "tuple[int, Any, list[tuple[str, str]]]"]


@dataclass
class Vm:
    rg: str
    name: str
    size: str
    location: str
    public_ip: str
    power: str = "deallocated"
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    changed_at: float = field(default_factory=time.time)


@dataclass
class VmOperation:
    id: str
    started: str
    done: bool = False


class VirtualMachines:
    """The VMs of a subscription; `on_power(vm, state)` tells the lab's host (lab.vm_host) what to run."""

    def __init__(self, subscription_id: str, time_scale: float, events: EventLog | None,
                 on_power: Callable[[Vm, str], None], *, start_seconds: float = START_SECONDS,
                 deallocate_seconds: float = DEALLOCATE_SECONDS) -> None:
        self.subscription_id = subscription_id
        self.time_scale = time_scale
        self.events = events
        self.on_power = on_power
        self.start_seconds = start_seconds
        self.deallocate_seconds = deallocate_seconds
        self._vms: dict[tuple[str, str], Vm] = {}
        self._ops: dict[str, VmOperation] = {}
        self._lock = threading.RLock()
        self._timers: list[threading.Timer] = []

    def __repr__(self) -> str:
        return f"VirtualMachines({len(self._vms)} VMs)"

    def add(self, vm: Vm) -> Vm:
        with self._lock:
            self._vms[(vm.rg.lower(), vm.name.lower())] = vm
        return vm

    def get(self, rg: str, name: str) -> Vm | None:
        with self._lock:
            return self._vms.get((rg.lower(), name.lower()))

    def stop(self) -> None:
        for t in self._timers:
            t.cancel()

    # -- the model ---------------------------------------------------------------------------------
    def _set(self, vm: Vm, power: str) -> None:
        with self._lock:
            vm.power, vm.changed_at = power, time.time()
        if self.events is not None:
            self.events.record("azure-vm", f"power state {power}", vm=vm.name)
        self.on_power(vm, power)

    def _later(self, seconds: float, fn: Callable[[], None]) -> None:
        t = threading.Timer(seconds / self.time_scale, fn)
        t.daemon = True
        self._timers.append(t)
        t.start()

    def start(self, vm: Vm) -> VmOperation:
        op = VmOperation(str(uuid.uuid4()), _iso(time.time()))
        self._ops[op.id] = op
        with self._lock:
            if vm.power in ("running", "starting"):
                op.done = True
                return op
            self._set(vm, "starting")

        def running() -> None:
            if vm.power == "starting":
                self._set(vm, "running")
            op.done = True

        self._later(self.start_seconds, running)
        return op

    def deallocate(self, vm: Vm) -> VmOperation:
        op = VmOperation(str(uuid.uuid4()), _iso(time.time()))
        self._ops[op.id] = op
        with self._lock:
            if vm.power in ("deallocated", "deallocating"):
                op.done = vm.power == "deallocated"
                if not op.done:
                    self._later(self.deallocate_seconds, lambda: setattr(op, "done", True))
                return op
            self._set(vm, "deallocating")

        def deallocated() -> None:
            if vm.power == "deallocating":
                self._set(vm, "deallocated")
            op.done = True

        self._later(self.deallocate_seconds, deallocated)
        return op

    # -- the REST surface --------------------------------------------------------------------------
    def resource(self, vm: Vm, instance_view: bool = False) -> dict[str, Any]:
        rid = f"/subscriptions/{self.subscription_id}/resourceGroups/{vm.rg}/providers/Microsoft.Compute/virtualMachines/{vm.name}"
        body: dict[str, Any] = {
            "id": rid, "name": vm.name, "type": "Microsoft.Compute/virtualMachines", "location": vm.location,
            "properties": {
                "vmId": vm.vm_id, "provisioningState": "Succeeded",
                "hardwareProfile": {"vmSize": vm.size},
                "storageProfile": {"osDisk": {"osType": "Linux", "name": f"{vm.name}-osdisk", "createOption": "FromImage",
                                              "diskSizeGB": 30, "managedDisk": {"storageAccountType": "Premium_LRS"}},
                                   "imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                                      "sku": "22_04-lts-gen2", "version": "latest"}},
                "networkProfile": {"networkInterfaces": [{"id": f"/subscriptions/{self.subscription_id}/resourceGroups/{vm.rg}"
                                                                f"/providers/Microsoft.Network/networkInterfaces/{vm.name}-nic"}]},
            },
        }
        if instance_view:
            body["properties"]["instanceView"] = self.instance_view(vm)
        return body

    def instance_view(self, vm: Vm) -> dict[str, Any]:
        with self._lock:
            power, at = vm.power, vm.changed_at
        return {
            "computerName": vm.name, "osName": "ubuntu", "osVersion": "22.04",
            "statuses": [
                {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
                 "time": _iso(at)},
                {"code": f"PowerState/{power}", "level": "Info", "displayStatus": DISPLAY[power]},
            ],
        }

    def handle(self, method: str, rg: str, after: list[str], query: dict[str, str],
               op_url: Callable[[str], str]) -> tuple[int, Any, list[tuple[str, str]]]:
        """.../resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}[/action]"""
        low = [a.lower() for a in after]
        if not low or low[0] != "virtualmachines":
            return _error(404, "InvalidResourceType", f"The resource type '{'/'.join(after)}' could not be found.")
        if len(after) == 1:
            if method != "GET":
                return _error(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
            with self._lock:
                vms = [v for v in self._vms.values() if v.rg.lower() == rg.lower()]
            return 200, {"value": [self.resource(v) for v in vms]}, []
        vm = self.get(rg, after[1])
        if vm is None:
            return _error(404, "ResourceNotFound",
                          f"The Resource 'Microsoft.Compute/virtualMachines/{after[1]}' under resource group '{rg}' was not found.")
        action = low[2] if len(low) > 2 else None
        if action is None and method == "GET":
            return 200, self.resource(vm, instance_view=query.get("$expand", "").lower() == "instanceview"), []
        if action == "instanceview" and method == "GET":
            return 200, self.instance_view(vm), []
        if action in ("start", "deallocate") and method == "POST":
            op = self.start(vm) if action == "start" else self.deallocate(vm)
            return 202, None, [("Azure-AsyncOperation", op_url(op.id)), ("Location", op_url(op.id) + "&result=1"),
                               ("Retry-After", "1")]
        return _error(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")

    def operation(self, op_id: str, result: bool) -> tuple[int, Any, list[tuple[str, str]]]:
        op = self._ops.get(op_id)
        if op is None:
            return _error(404, "OperationNotFound", f"Operation {op_id} was not found.")
        if result:
            return (200, None, []) if op.done else (202, None, [("Retry-After", "1")])
        body = {"name": op.id, "startTime": op.started, "status": "Succeeded" if op.done else "InProgress"}
        return 200, body, [] if op.done else [("Retry-After", "1")]


def _error(status: int, code: str, message: str) -> tuple[int, Any, list[tuple[str, str]]]:
    return status, {"error": {"code": code, "message": message}}, []


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}+00:00"


def attach(arm: Any, vms: VirtualMachines) -> None:
    """Serve `vms` as Microsoft.Compute on the ARM emulator (lab.azure.arm_server.ArmEmulator)."""
    from urllib.parse import parse_qsl, urlsplit

    from lab.azure.arm_server import _json

    def op_url(api: str) -> Callable[[str], str]:
        return lambda op_id: (f"{arm.url}/subscriptions/{arm.subscription_id}/providers/Microsoft.Compute/locations/"
                              f"{arm.state.location}/operations/{op_id}?api-version={api}")

    def in_group(req: Any, rg: str, after: list[str], lafter: list[str], api: str) -> Any:
        if arm.state.get_resource_group(rg) is None:
            return _json(404, {"error": {"code": "ResourceGroupNotFound", "message": f"Resource group '{rg}' could not be found."}})
        query = dict(parse_qsl(urlsplit(req.path).query))
        return _json(*vms.handle(req.method, rg, after, query, op_url(api)))

    def in_subscription(req: Any, tail: list[str], ltail: list[str], api: str) -> Any:
        if len(ltail) == 4 and ltail[0] == "locations" and ltail[2] == "operations" and req.method == "GET":
            result = "result=1" in urlsplit(req.path).query
            return _json(*vms.operation(tail[3], result))
        return _json(404, {"error": {"code": "InvalidResourceType", "message": "The resource type could not be found."}})

    arm.add_provider("microsoft.compute", in_group, in_subscription)
