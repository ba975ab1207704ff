"""The lab's faults in front of moto: a WSGI middleware that answers a chosen AWS call with a fault.

It sees each request before moto does (the call not carried out for throttle, 5xx and hang) and
each read's answer after: every read is remembered, so that a stale rule armed later can give the
previous answer (lab.faults).
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from typing import Any

from lab import fault_shapes
from lab.aws.calls import call_of
from lab.faults import Faults, drop, hold

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FaultGate:
    def __init__(self, app: WSGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        call = call_of(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING", ""), headers, body)
        if call is None:
            return self.app(environ, start_response)
        service, op, is_read = call
        key = f"{service}:{op}"
        rule = self.faults.take("aws", key)
        if rule is not None:
            if rule.kind == "hang":
                sock = environ.get("werkzeug.socket")
                if sock is not None:
                    hold(sock, self.faults.hang_seconds(rule))
                    drop(sock)
                # werkzeug takes a ConnectionError as a client gone: no answer is written.
                raise ConnectionAbortedError(f"lab fault: {key} hung")
            status, hs, payload = fault_shapes.aws(service, rule.kind, rule.status)
            start_response(f"{status} {_REASONS.get(status, 'Error')}", hs + [("Content-Length", str(len(payload)))])
            return [payload]
        if not is_read:
            return self.app(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            captured["status"], captured["headers"] = status, response_headers
            return lambda data: None

        chunks = self.app(environ, capture)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        code = int(str(captured["status"]).split(" ", 1)[0])
        # Which read it is: the operation with its parameters (query string and form or JSON body).
        memo = f"{key} {environ.get('PATH_INFO', '/')}?{environ.get('QUERY_STRING', '')} {hashlib.sha256(body).hexdigest()}"
        stale = self.faults.read("aws", key, code, captured["headers"], payload, memo=memo)
        if stale is not None:
            start_response(f"{stale.status} OK", stale.headers)
            return [stale.body]
        start_response(captured["status"], captured["headers"])
        return [payload]


_REASONS = {400: "Bad Request", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}
