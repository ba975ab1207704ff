"""What each cloud API answers when it throttles or fails, byte for byte as the production SDKs parse it.

The SDKs decide whether to retry from these answers alone (status, error code, Retry-After), so the
shapes follow the services, not a convenience:

- AWS ("Common Errors" of every AWS API reference; the error formats of each protocol): throttling
  is HTTP 400 with code `Throttling` ("Rate exceeded") from the query and rest-xml services (Auto
  Scaling, Elastic Load Balancing, STS, CloudFront) and `ThrottlingException` from the JSON ones
  (EKS, Secrets Manager); a server error is the service's own modeled 5xx error when it has one
  (EKS `ServerException`/`ServiceUnavailableException`, Secrets Manager `InternalServiceError`),
  else the common `InternalFailure` (500) / `ServiceUnavailable` (503).
- Azure Resource Manager ("Request limits and throttling"): 429 with `Retry-After` (seconds) and
  `{"error": {"code": "SubscriptionRequestsThrottled", ...}}`; `x-ms-ratelimit-remaining-subscription-
  reads|writes` at 0. Server errors: 500 `InternalServerError`, 503 `ServiceUnavailable`.
- Kubernetes API server (API Priority and Fairness; apimachinery's NewTooManyRequests): 429 with
  `Retry-After` and a Status `reason: TooManyRequests`, `details.retryAfterSeconds`; 500 `InternalError`,
  503 `ServiceUnavailable`.
- Azure Blob Storage ("Scalability and performance targets": "the service returns a 503 (Server
  Busy) ... error"; Blob error codes): 503 with `x-ms-error-code: ServerBusy` and an XML `<Error>`
  body; 500 `InternalError`.
- Terraform with azurerm: the provider's error after its own retries, on stderr, exit status 1.
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

Shape = tuple[int, list[tuple[str, str]], bytes]


def _now_http() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


# -- AWS -------------------------------------------------------------------------------------------
@cache
def aws_service(service: str) -> Any:
    """botocore's model of `service` (protocol, XML namespace, modeled errors)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


# Modeled server errors of the services the drill calls (their API references' error lists); the
# others answer with the common InternalFailure / ServiceUnavailable.
AWS_SERVER_ERRORS = {
    ("eks", 500): "ServerException", ("eks", 503): "ServiceUnavailableException",
    ("secretsmanager", 500): "InternalServiceError",
}


def _aws_error_code(service: str, kind: str, status: int) -> str:
    if kind == "throttle":
        return "ThrottlingException" if aws_service(service).protocol in ("json", "rest-json") else "Throttling"
    return AWS_SERVER_ERRORS.get((service, status)) or ("InternalFailure" if status == 500 else "ServiceUnavailable")


AWS_MESSAGES = {
    "throttle": "Rate exceeded",
    500: "We encountered an internal error. Please try again.",
    503: "Service is unable to handle request.",
}


def aws(service: str, kind: str, status: int | None = None) -> Shape:
    """The AWS error for a throttled (400) or failed (500/503) call to `service`, in its protocol."""
    status = 400 if kind == "throttle" else (status or 500)
    code = _aws_error_code(service, kind, status)
    message = AWS_MESSAGES["throttle" if kind == "throttle" else (500 if status == 500 else 503)]
    request_id = str(uuid.uuid4())
    model = aws_service(service)
    sender = "Sender" if status < 500 else "Receiver"
    if model.protocol in ("query", "rest-xml", "ec2"):
        ns = model.metadata.get("xmlNamespace") or (
            f"http://cloudfront.amazonaws.com/doc/{model.api_version}/" if service == "cloudfront" else "")
        xmlns = f' xmlns="{ns}"' if ns else ""
        body = (f'<?xml version="1.0"?>\n<ErrorResponse{xmlns}><Error><Type>{sender}</Type><Code>{code}</Code>'
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id), ("Date", _now_http())], body
    headers = [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", f"{code}:"), ("Date", _now_http())]
    if model.protocol == "json":
        headers.append(("Content-Type", f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}"))
        return status, headers, json.dumps({"__type": code, "message": message}).encode()
    headers.append(("Content-Type", "application/json"))
    return status, headers, json.dumps({"message": message}).encode()


# -- Azure Resource Manager --------------------------------------------------------------------------
def arm(kind: str, method: str, subscription: str, retry_after: int, status: int | None = None) -> Shape:
    request_id = str(uuid.uuid4())
    headers = [("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-cache"),
               ("x-ms-request-id", request_id), ("x-ms-correlation-request-id", str(uuid.uuid4()))]
    if kind == "throttle":
        what = "read" if method.upper() == "GET" else "write"
        headers += [("Retry-After", str(retry_after)), (f"x-ms-ratelimit-remaining-subscription-{what}s", "0")]
        return 429, headers, json.dumps({"error": {
            "code": "SubscriptionRequestsThrottled",
            "message": f"Number of '{what}' requests for subscription '{subscription}' exceeded the limit for time "
                       f"interval. Please try again after '{retry_after}' seconds after additional tokens are "
                       "available. Refer to https://aka.ms/arm-throttling"}}).encode()
    status = status or 500
    if status == 500:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        error = {"code": "InternalServerError", "message": (
            f"Encountered internal server error. Diagnostic information: timestamp '{stamp}', subscription id "
            f"'{subscription}', tracking id '{request_id}', request correlation id '{uuid.uuid4()}'.")}
    else:
        error = {"code": "ServiceUnavailable", "message": "The service is currently unavailable. Please try again later."}
    return status, headers, json.dumps({"error": error}).encode()


# -- Kubernetes API server ----------------------------------------------------------------------------
def kube(kind: str, retry_after: int, status: int | None = None) -> Shape:
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-cache, private")]
    if kind == "throttle":
        headers.append(("Retry-After", str(retry_after)))
        body: dict[str, Any] = {"message": "Too many requests, please try again later.", "reason": "TooManyRequests",
                                "details": {"retryAfterSeconds": retry_after}, "code": 429}
    elif (status or 500) == 500:
        body = {"message": "Internal error occurred: the server has received an unexpected error", "reason": "InternalError",
                "details": {"causes": [{"message": "the server has received an unexpected error"}]}, "code": 500}
    else:
        body = {"message": "the server is currently unable to handle the request", "reason": "ServiceUnavailable",
                "code": status}
    return int(body["code"]), headers, json.dumps(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", **body}, separators=(",", ":")).encode()


# -- Azure Blob Storage --------------------------------------------------------------------------------
BLOB_ERRORS = {
    "throttle": (503, "ServerBusy", "Operations per second is over the account limit."),
    500: (500, "InternalError", "The server encountered an internal error. Please retry the request."),
    503: (503, "ServerBusy", "The server is currently unable to receive requests. Please retry your request."),
}


def blob(kind: str, method: str, status: int | None = None) -> Shape:
    code_status, code, message = BLOB_ERRORS["throttle" if kind == "throttle" else (500 if (status or 500) == 500 else 503)]
    request_id = str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    headers = [("x-ms-error-code", code), ("x-ms-request-id", request_id), ("x-ms-version", "2025-01-05"),
               ("Date", _now_http()), ("Content-Type", "application/xml")]
    body = b"" if method.upper() == "HEAD" else (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
        f"RequestId:{request_id}\nTime:{stamp}</Message></Error>").encode()
    return code_status, headers, body


# -- Terraform (azurerm) -------------------------------------------------------------------------------
def terraform(kind: str, command: str, subscription: str, status: int | None = None) -> str:
    """The error `terraform <command>` prints (after "Error: ") when the provider gives up on ARM."""
    verb = {"apply": "creating", "destroy": "deleting"}.get(command, "retrieving")
    if kind == "throttle":
        detail = ("unexpected status 429 (429 Too Many Requests) with error: SubscriptionRequestsThrottled: Number of "
                  f"'write' requests for subscription '{subscription}' exceeded the limit for time interval. Please try "
                  "again after '30' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling")
    elif (status or 500) == 500:
        detail = ("unexpected status 500 (500 Internal Server Error) with error: InternalServerError: Encountered "
                  "internal server error.")
    else:
        detail = f"unexpected status {status} ({status} Service Unavailable) with error: ServiceUnavailable: The service " \
                 "is currently unavailable."
    return f"{verb} Resource Group \"rg-blue\" resources (Subscription: \"{subscription}\"): {detail}"


def terraform_partial(address: str, command: str) -> str:
    """What azurerm reports for the one resource whose long-running operation failed."""
    verb = "creating" if command == "apply" else "deleting"
    return (f"{verb} {address}: polling after {'CreateOrUpdate' if command == 'apply' else 'Delete'}: polling failed: "
            "the Azure API returned the following error:\n\nStatus: \"InternalServerError\"\nCode: \"\"\n"
            "Message: \"An internal error has occurred. Please retry the operation.\"")
