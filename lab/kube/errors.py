"""Status errors of the lab AKS's API server: the codes, reasons and messages clients match on."""
from __future__ import annotations

from typing import Any

from lab.kube.resources import Resource


class ApiError(Exception):
    """A failure the API server reports as a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def details(res: Resource, name: str, kind: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind or res.plural}
    if res.group:
        d["group"] = res.group
    return d


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', details(res, name))


def already_exists(res: Resource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', details(res, name))


def conflict(res: Resource, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": {why}', details(res, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(res: Resource, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 with one cause per (field, message), worded like apimachinery's field errors."""
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    msg = f'{kind} "{name}" is invalid: ' + (f"[{text}]" if len(causes) > 1 else text)
    det = details(res, name, kind=res.kind)
    det["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
    return ApiError(422, "Invalid", msg, det)


def method_not_allowed(res: Resource, verb: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"{verb} is not supported on resources of kind {res.qualified!r} in this lab",
                    {"kind": res.plural, "group": res.group} if res.group else {"kind": res.plural})
