"""The lab's control endpoint: what the lab's `terraform` shim talks to (bearer token required)."""
from __future__ import annotations

import hmac
import json
import re
from typing import Any

from lab.failover_stack import FailoverStack, StackRefused
from lab.httpfwd import Request, Response, Server
from lab.ports import free_port


class ControlServer:
    def __init__(self, stack: FailoverStack, token: str, backups: Any = None) -> None:
        self.stack = stack
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
                                      dict(body.get("variables") or {}))
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


def _json(status: int, obj: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(obj).encode())
