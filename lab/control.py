"""The lab's control endpoint (bearer token required): what the lab's `terraform` shim talks to, the
backup job's switch, and the faults the lab's cloud APIs answer with (lab.faults):

  POST   /faults   {"surface", "kind", "match", "count", ...}  -> 201, the rule (400 naming a bad field)
  GET    /faults   -> {"rules": [... with "hits" and "remaining"]}
  DELETE /faults   -> {"cleared": [...]}: every rule removed, returned with its hits

The shim names its command (X-Terraform-Command): terraform faults apply to its requests only.
"""
from __future__ import annotations

import hmac
import json
import re
from typing import Any

from lab import fault_shapes
from lab.failover_stack import FailoverStack, StackRefused
from lab.faults import Faults, FaultSpecError
from lab.httpfwd import Request, Response, Server
from lab.ports import free_port


class ControlServer:
    def __init__(self, stack: FailoverStack, token: str, backups: Any = None, faults: Faults | None = None) -> None:
        self.stack = stack
        self.faults = faults or Faults()
        self.backups = backups  # lab.backups.BackupJob: paused/resumed to model a broken backup EC2
        self._token = token
        self.server = Server(free_port(), self.handle)
        self.url = f"http://127.0.0.1:{self.server.port}"

    def __repr__(self) -> str:
        return f"ControlServer({self.url})"

    def start(self) -> ControlServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def handle(self, req: Request) -> Response:
        auth = req.headers.get("Authorization", "")
        if not hmac.compare_digest(auth, f"Bearer {self._token}"):
            return _json(401, {"error": "unauthorized"})
        path = req.path.split("?", 1)[0].rstrip("/")
        body: dict[str, Any] = json.loads(req.body or b"{}") if req.body else {}
        if path == "/faults":
            return self._faults(req.method, body)
        command = req.headers.get("X-Terraform-Command") or next(
            (v for k, v in req.headers.items() if k.lower() == "x-terraform-command"), None)
        kinds = ("throttle", "5xx", "partial") if command in ("apply", "destroy") else ("throttle", "5xx")
        rule = self.faults.take("terraform", command, kinds) if command else None
        if rule is not None and rule.kind != "partial":
            # The provider gave up on ARM: Terraform prints its error and exits 1, nothing changed.
            return _json(500, {"error": fault_shapes.terraform(rule.kind, command or "", self.stack.subscription_id, rule.status)})
        keep = None
        if rule is not None:
            keep = rule.keep
            if keep is None:  # all but the last of what the operation will do
                keep = max(0, len(self.stack.todo(command or "", list(body.get("targets") or []))) - 1)
        if req.method == "GET" and path == "/stacks/2-failover":
            return _json(200, self.stack.snapshot())
        if req.method == "POST" and path == "/stacks/2-failover/plan":
            try:
                return _json(200, {"create": self.stack.plan(list(body.get("targets") or []), body.get("subscription_id"))})
            except StackRefused as e:
                return _json(400, {"error": str(e)})
        m = re.fullmatch(r"/stacks/2-failover/(apply|destroy)", path)
        if req.method == "POST" and m:
            try:
                op = self.stack.start(m.group(1), list(body.get("targets") or []), body.get("subscription_id"),
                                      dict(body.get("variables") or {}), keep=keep)
            except (StackRefused, RuntimeError) as e:
                return _json(409 if isinstance(e, RuntimeError) else 400, {"error": str(e)})
            return _json(202, {"operation": op.id})
        if req.method == "POST" and path in ("/backups/pause", "/backups/resume") and self.backups is not None:
            (self.backups.stop if path.endswith("pause") else self.backups.start)()
            return _json(200, {"backups": path.rsplit("/", 1)[1] + "d"})
        m = re.fullmatch(r"/operations/([0-9a-f]+)", path)
        if req.method == "GET" and m and m.group(1) in self.stack.operations:
            op = self.stack.operations[m.group(1)]
            return _json(200, {"state": op.state, "log": op.log, "error": op.error})
        return _json(404, {"error": f"no route {req.method} {path}"})


    def _faults(self, method: str, body: dict[str, Any]) -> Response:
        if method == "POST":
            try:
                return _json(201, self.faults.add(body).as_dict())
            except FaultSpecError as e:
                return _json(400, {"error": str(e)})
        if method == "GET":
            return _json(200, {"rules": [r.as_dict() for r in self.faults.rules()]})
        if method == "DELETE":
            return _json(200, {"cleared": [r.as_dict() for r in self.faults.clear()]})
        return _json(405, {"error": f"{method} /faults: use POST, GET or DELETE"})


def _json(status: int, obj: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(obj).encode())
