"""Which AWS API call a request to the lab's moto server is: "<service>:<Operation>", from the request alone.

The service comes from the SigV4 credential scope (`Credential=AKID/date/region/<signing name>/aws4_request`),
the operation as each protocol carries it: `Action=` (query), `X-Amz-Target` (json), or the HTTP
method and path against the operation's `requestUri` in botocore's model (rest-json, rest-xml).
"""
from __future__ import annotations

import re
from functools import cache
from typing import Any
from urllib.parse import parse_qs

# The services the lab serves (lab.aws.seed): the ones the drill calls.
SERVICES = ("eks", "autoscaling", "elbv2", "cloudfront", "secretsmanager", "sts")
READ_PREFIXES = ("Describe", "Get", "List")
_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@cache
def _models() -> dict[str, Any]:
    from lab.fault_shapes import aws_service

    return {s: aws_service(s) for s in SERVICES}


@cache
def _routes(service: str) -> list[tuple[str, re.Pattern[str], frozenset[str], int, str]]:
    """(method, path regex, required query keys, literal length, operation) for a rest service, most specific first."""
    model = _models()[service]
    out = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        rx = "".join(
            "(.+)" if part.endswith("+}") else "([^/]+)" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", path)
        )
        keys = frozenset(q.split("=", 1)[0] for q in query.split("&") if q)
        literal = len(re.sub(r"\{[^}]+\}", "", path)) + 10 * len(keys)
        out.append((http.get("method", "POST").upper(), re.compile(f"^{rx}/?$"), keys, literal, name))
    return sorted(out, key=lambda r: -r[3])


def service_of(headers: dict[str, str], query: str, body: bytes) -> str | None:
    """The botocore service name a signed request is for (elbv2 and elb share a signing name)."""
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    m = _CREDENTIAL.search(auth)
    if not m:
        return None
    signing = m.group(1)
    candidates = [s for s, model in _models().items()
                  if (model.metadata.get("signingName") or model.metadata.get("endpointPrefix")) == signing]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    version = _form(query, body).get("Version")
    return next((s for s in candidates if _models()[s].api_version == version), candidates[0])


def _form(query: str, body: bytes) -> dict[str, str]:
    fields = {k: v[0] for k, v in parse_qs(query).items()}
    try:
        fields.update({k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()})
    except UnicodeDecodeError:
        pass
    return fields


def operation_of(service: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> str | None:
    model = _models()[service]
    if model.protocol in ("query", "ec2"):
        return _form(query, body).get("Action")
    if model.protocol == "json":
        target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
        return target.rsplit(".", 1)[-1] or None
    keys = set(parse_qs(query, keep_blank_values=True))
    for m, rx, required, _, name in _routes(service):
        if m == method.upper() and rx.match(path) and required <= keys:
            return name
    return None


def call_of(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[str, str, bool] | None:
    """(service, operation, is_read) of a request, or None when it is no AWS API call (moto's own API)."""
    service = service_of(headers, query, body)
    if service is None:
        return None
    op = operation_of(service, method, path, query, headers, body)
    if op is None:
        return None
    return service, op, op.startswith(READ_PREFIXES)
