"""The lab's stand-in for the team's chat integration (design §7: CloudWatch → SNS → AWS Chatbot → Slack).

An HTTP endpoint subscribed to the alarm topic, as a chat integration's webhook receiver is: it
confirms the subscription when SNS sends its SubscriptionConfirmation (ConfirmSubscription with the
token, through the SNS API), then records every message SNS delivers — type, headers, the parsed
body and when it arrived. `GET /messages` lists them (JSON), for tests and explorers.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from lab.httpfwd import Request, Response, Server
from lab.ports import free_port

# Confirms a subscription: (topic ARN, token) -> the subscription ARN.
Confirmer = Callable[[str, str], str]


class ChatStandIn:
    def __init__(self, confirm: Confirmer | None = None) -> None:
        self.confirm = confirm
        self.server = Server(free_port(), self.handle)
        self.url = f"http://127.0.0.1:{self.server.port}/sns"
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"ChatStandIn({self.url})"

    def start(self) -> ChatStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def handle(self, req: Request) -> Response:
        path = req.path.split("?", 1)[0]
        if req.method == "GET" and path == "/messages":
            with self._lock:
                body = json.dumps(self.messages).encode()
            return Response(200, [("Content-Type", "application/json")], body)
        if req.method != "POST" or path != "/sns":
            return Response(404, [("Content-Type", "text/plain")], b"not found\n")
        try:
            doc = json.loads(req.body)
        except ValueError:
            return Response(400, [("Content-Type", "text/plain")], b"not JSON\n")
        headers = {k.lower(): v for k, v in req.headers.items()}
        record = {"received_at": time.time(), "type": headers.get("x-amz-sns-message-type"),
                  "headers": {k: v for k, v in headers.items() if k.startswith("x-amz-sns-") or k == "content-type"},
                  "body": doc}
        if doc.get("Type") == "Notification":
            try:
                record["alarm"] = json.loads(doc.get("Message") or "{}")
            except ValueError:
                record["alarm"] = None
        with self._lock:
            self.messages.append(record)
        if doc.get("Type") == "SubscriptionConfirmation" and self.confirm is not None:
            # Confirmed apart from this request: SNS's POST is answered first, as a receiver should.
            threading.Thread(target=self._confirm, args=(doc["TopicArn"], doc["Token"]), daemon=True).start()
        return Response(200, [("Content-Type", "text/plain")], b"ok\n")

    def _confirm(self, topic_arn: str, token: str) -> None:
        assert self.confirm is not None
        arn = self.confirm(topic_arn, token)
        with self._lock:
            self.messages.append({"received_at": time.time(), "type": "confirmed", "subscription_arn": arn})
