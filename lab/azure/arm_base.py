"""What every resource family of the lab's ARM model shares: errors, ids, resource groups, and the
long-running operations (status URLs, modeled delays, settling) that ARM PUTs and DELETEs become.

Each resource family is a mixin of `ArmBase` in its own module (networks.py, storage_accounts.py,
app_gateways.py, ...); `lab.azure.arm_state.ArmState` composes them. A family that has operations
of its own completes them in `_complete` (and calls `super()._complete(op)` for the others).
"""
from __future__ import annotations

import copy
import threading
import time
import uuid
from dataclasses import dataclass, fields, replace
from typing import Any

from lab.events import EventLog

NETWORK = "Microsoft.Network"
# Where each resource provider publishes its operations' status (Azure-AsyncOperation) and result
# (Location) under /subscriptions/{s}/providers/{namespace}/locations/{location}/.
OPERATION_SEGMENTS = {NETWORK: ("operations", "operationResults"),
                      "Microsoft.DBforMySQL": ("azureAsyncOperation", "operationResults")}
DEFAULT_LOCATION = "koreacentral"  # seeds: Azure Korea Central
DEFAULT_SUBSCRIPTION_ID = "5f1c8a7e-2d3b-4c6a-9e8f-0a1b2c3d4e5f"  # the lab's; fixed so ids in logs are stable
NOT_FOUND_HINT = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


class ArmError(Exception):
    """An ARM error response: HTTP status and `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": []}}


@dataclass(frozen=True)
class ArmTimings:
    """Real-world seconds of ARM operations, divided by the lab's time scale when played.

    Application Gateway v2 configuration updates take about a minute, creation several minutes
    (runbook: the whole 2-failover stack 15-20 min); show-backend-health takes a few seconds.
    """

    gateway_create_seconds: float = 300.0
    gateway_update_seconds: float = 60.0
    gateway_delete_seconds: float = 120.0
    backend_health_seconds: float = 5.0
    # A flexible server's firewall rule: the ARM operation, then the time until the server honours
    # it ("as much as a five-minute delay" is documented as the upper bound, not the rule).
    mysql_firewall_rule_seconds: float = 30.0
    mysql_firewall_propagation_seconds: float = 30.0

    def scaled(self, time_scale: float) -> ArmTimings:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        return replace(self, **{f.name: getattr(self, f.name) / time_scale for f in fields(self)})


@dataclass
class Operation:
    id: str
    kind: str  # "put" | "delete" | "backendhealth"
    rg: str
    name: str
    started: float
    due: float
    status: str = "InProgress"  # -> (Collecting ->) Succeeded | Failed

    @property
    def done(self) -> bool:
        return self.status in ("Succeeded", "Failed", "Canceled")
    result: Any = None
    error: ArmError | None = None
    fail_with: ArmError | None = None
    namespace: str = NETWORK  # the resource provider whose URLs report on it
    target: str | None = None  # a child resource the operation is about (e.g. a firewall rule)


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _key(rg: str, name: str) -> tuple[str, str]:
    return rg.lower(), name.lower()


class ArmBase:
    """One subscription's resource groups and operations. Thread-safe; timings are real-world seconds / time_scale."""

    def __init__(
        self,
        subscription_id: str,
        location: str = DEFAULT_LOCATION,
        time_scale: float = 1.0,
        events: EventLog | None = None,
        timings: ArmTimings | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self.location = location
        self.time_scale = time_scale
        self.timings = (timings or ArmTimings()).scaled(time_scale)
        self.events = events
        self._lock = threading.RLock()
        self._rgs: dict[str, dict[str, Any]] = {}
        self._ops: dict[str, Operation] = {}  # recent operations, for their status URLs
        self._pending: dict[str, Operation] = {}  # InProgress only: settled on every access, so kept small
        self._timers: list[threading.Timer] = []
        self._closed = False

    # -- ids -------------------------------------------------------------------------------------
    def rg_id(self, rg: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}"

    def _record(self, event: str, **detail: Any) -> None:
        if self.events is not None:
            self.events.record("azure-arm", event, **detail)

    # -- resource groups -------------------------------------------------------------------------
    def create_resource_group(self, name: str, location: str | None = None, tags: dict[str, str] | None = None) -> dict[str, Any]:
        with self._lock:
            existing = self._rgs.get(name.lower())
            rg = {
                "id": self.rg_id(existing["name"] if existing else name),
                "name": existing["name"] if existing else name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location or self.location,
                "tags": dict(tags or {}),
                "properties": {"provisioningState": "Succeeded"},
            }
            self._rgs[name.lower()] = rg
            return copy.deepcopy(rg)

    def get_resource_group(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            rg = self._rgs.get(name.lower())
            return copy.deepcopy(rg) if rg else None

    def list_resource_groups(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._rgs.values()]

    def _require_rg(self, rg: str) -> str:
        """The resource group's stored name, or 404 ResourceGroupNotFound."""
        found = self._rgs.get(rg.lower())
        if found is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return str(found["name"])

    def _not_found(self, rtype: str, name: str, rg: str) -> ArmError:
        return ArmError(
            404, "ResourceNotFound",
            f"The Resource '{rtype}/{name}' under resource group '{rg}' was not found. {NOT_FOUND_HINT}",
        )

    # -- long-running operations ---------------------------------------------------------------------
    def _settle(self) -> None:
        """Complete every operation whose modeled delay has passed (called on each access and by timers)."""
        now = time.monotonic()
        collect: list[Operation] = []
        with self._lock:
            for op in list(self._pending.values()):
                if op.status != "InProgress":
                    del self._pending[op.id]
                elif op.due <= now:
                    del self._pending[op.id]
                    if self._collects(op):
                        op.status = "Collecting"  # claimed: read its result below, outside our lock
                        collect.append(op)
                    else:
                        self._complete(op)
        for op in collect:
            self._collect(op)

    def _collects(self, op: Operation) -> bool:
        """Whether `op`'s result is read from outside the model (a data plane) once it is due."""
        return False

    def _collect(self, op: Operation) -> None:
        """Read `op`'s result outside the lock (only for operations `_collects` claims)."""
        raise NotImplementedError(op.kind)

    def _complete(self, op: Operation) -> None:
        """Apply a due operation's effect (each family handles its own kinds, then defers here)."""
        op.status = "Succeeded"

    def _schedule(self, op: Operation) -> None:
        now = time.monotonic()
        # Finished operations stay readable for 10 minutes (clients poll them right away), then go.
        self._ops = {k: o for k, o in self._ops.items() if not (o.done and o.due < now - 600)}
        self._ops[op.id] = op
        self._pending[op.id] = op
        if self._closed:
            return
        # A timer settles the operation at its due time so the event log and the data plane switch
        # when Azure would, even if nobody polls.
        t = threading.Timer(max(0.0, op.due - time.monotonic()) + 0.001, self._settle)
        t.daemon = True
        self._timers = [x for x in self._timers if x.is_alive()] + [t]
        t.start()

    def _new_op(self, kind: str, rg: str, name: str, seconds: float) -> Operation:
        now = time.monotonic()
        return Operation(str(uuid.uuid4()), kind, rg, name, now, now + seconds)

    def get_operation(self, op_id: str) -> Operation | None:
        self._settle()
        with self._lock:
            return self._ops.get(op_id.lower()) or self._ops.get(op_id)

    # -- operation URLs (paths; the server prefixes its base URL) ------------------------------------
    def async_operation_path(self, op: Operation) -> str:
        status, _ = OPERATION_SEGMENTS[op.namespace]
        return f"/subscriptions/{self.subscription_id}/providers/{op.namespace}/locations/{self.location}/{status}/{op.id}"

    def operation_result_path(self, op: Operation) -> str:
        _, result = OPERATION_SEGMENTS[op.namespace]
        return f"/subscriptions/{self.subscription_id}/providers/{op.namespace}/locations/{self.location}/{result}/{op.id}"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for t in self._timers:
                t.cancel()
            self._timers = []
