"""How the drill's API clients ride out what the services document as transient, and what they report.

Each SDK's own retry logic does the retrying, configured here once for every driver:

- boto3/botocore: the `standard` retry mode (AWS SDKs' "Retry behavior"): throttling errors
  (Throttling, ThrottlingException, TooManyRequestsException, ...), 500/502/503/504, and connection
  errors and timeouts are retried with exponential backoff and jitter; 5 retries (6 attempts).
- azure-core (ARM clients): its RetryPolicy retries 408, 429, 500, 502, 503, 504 and connection and
  read errors, honouring `Retry-After` (3 retries of each kind by default); its own backoff
  (0.8 s, doubling) is played at the target's time scale, like every wait of the drill.
- azure-storage-blob: its ExponentialRetry (5xx, ServerBusy included, and 408; 3 retries, backoff
  15 s + 3^n s), played at the target's time scale.
- kubernetes: the Python client retries nothing, so drivers/kube.py wraps its calls in tenacity the
  way client-go does (rest/request.go, checkWait): any call answered 429, or 5xx with Retry-After, is
  retried after that delay; idempotent reads also on other 5xx and on connection errors and timeouts.

Every API call that needed a retry, or failed, is recorded (an `ApiCall`: which SDK, service and
operation, how many attempts, each attempt's error, the outcome) from the SDK's own hooks —
botocore's event system (`needs-retry`, `after-call`, `after-call-error`), a RetryPolicy subclass for
azure-core and azure-storage — into the run's `api-calls.jsonl` (evidence) and summary.json.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

AWS_MAX_ATTEMPTS = 5  # botocore: retries, not attempts (6 attempts in all)
KUBE_ATTEMPTS = 5
# Codes botocore's standard mode treats as throttling (botocore.retries.standard).
AWS_THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
})
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ApiSettings:
    """What every API client of a run is given: how long to wait for an answer (wall seconds; a hung
    call is given up after `read_timeout` and retried) and the target's time scale (SDK backoffs)."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    time_scale: float = 1.0


def api_settings(target: Any) -> ApiSettings:
    api = getattr(target, "api", None)
    if api is None:
        return ApiSettings(time_scale=float(getattr(target, "time_scale", 1.0)))
    return ApiSettings(api.connect_timeout_seconds, api.read_timeout_seconds, float(target.time_scale))


# -- the record -----------------------------------------------------------------------------------------
@dataclass
class ApiCall:
    sdk: str  # botocore | azure-core | azure-storage | kubernetes
    service: str
    operation: str
    attempts: int
    errors: list[str]  # each failed attempt's error, in order
    outcome: str  # "ok" (after retries) | "failed"
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    def sentence(self) -> str:
        last = self.errors[-1] if self.errors else "?"
        if self.outcome == "ok":
            tries = f"{self.retries} retr{'y' if self.retries == 1 else 'ies'}"
            return f"{self.service} {self.operation}: ok after {tries} ({', '.join(self.errors)})"
        return f"{self.service} {self.operation}: failed with {last} after {self.attempts} attempt(s)"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "retries": self.retries}


class CallLog:
    """The retried and failed API calls of one process or run; appended to `path` as JSON lines."""

    def __init__(self, path: Path | None = None, mask: Callable[[str], str] | None = None, keep: int = 1000) -> None:
        self.path = path
        self.mask = mask or (lambda s: s)
        self.keep = keep
        self._calls: list[ApiCall] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CallLog({self.path})"

    def record(self, call: ApiCall) -> None:
        with self._lock:
            self._calls.append(call)
            del self._calls[:-self.keep]
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(self.mask(json.dumps(call.as_dict())) + "\n")

    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)


_log = CallLog()


def use(log: CallLog) -> CallLog:
    """Record this process's API calls in `log` from now on (a drill run's); returns the previous one."""
    global _log
    previous, _log = _log, log
    return previous


def current() -> CallLog:
    return _log


def _record(call: ApiCall) -> None:
    _log.record(call)


# -- botocore --------------------------------------------------------------------------------------------
def _boto_attempt(response: Any, caught: BaseException | None) -> str | None:
    """A failed attempt as "<status> <code>" or the exception's name; None for a success."""
    if caught is not None:
        return type(caught).__name__
    if response is None:
        return None
    http, parsed = response
    if http.status_code < 300:
        return None
    code = (parsed or {}).get("Error", {}).get("Code") or ""
    return f"{http.status_code} {code}".strip()


def instrument_boto_client(client: Any) -> Any:
    """Record every retried or failed call of a boto3 client from botocore's event system."""
    svc = client.meta.service_model.service_id.hyphenize()
    name = client.meta.service_model.service_name

    def attempt(request_dict: dict[str, Any], response: Any = None, caught_exception: BaseException | None = None,
                **_: Any) -> None:
        ctx = request_dict.get("context")
        if isinstance(ctx, dict):
            ctx.setdefault("dr_drill_attempts", []).append(_boto_attempt(response, caught_exception))
            ctx.setdefault("dr_drill_started", time.time())
        return None  # observe only: the standard retry handler decides

    def done(context: dict[str, Any], model: Any, failed: str | None) -> None:
        attempts = context.get("dr_drill_attempts") or []
        errors = [a for a in attempts if a]
        if len(attempts) > 1 or failed:
            started = context.get("dr_drill_started", time.time())
            _record(ApiCall("botocore", name, model.name if model else "?", max(1, len(attempts)), errors,
                            "failed" if failed else "ok", started, round(time.time() - started, 3)))

    def after_call(http_response: Any, parsed: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        done(context, model, None if http_response.status_code < 300 else "error")

    def after_error(exception: BaseException, context: dict[str, Any], **kw: Any) -> None:
        attempts = context.setdefault("dr_drill_attempts", [])
        if not attempts or attempts[-1] is None:
            attempts.append(type(exception).__name__)
        done(context, _Op(str(kw.get("event_name", "")).rsplit(".", 1)[-1]), type(exception).__name__)

    client.meta.events.register_first(f"needs-retry.{svc}", attempt)
    client.meta.events.register(f"after-call.{svc}", after_call)
    client.meta.events.register(f"after-call-error.{svc}", after_error)
    return client


@dataclass
class _Op:
    name: str


# -- azure-core and azure-storage ----------------------------------------------------------------------------
_attempts = threading.local()


def _azure_attempt(response: Any, error: BaseException | None) -> str:
    if error is not None:
        return type(error).__name__
    http = getattr(response, "http_response", response)
    status = getattr(http, "status_code", 0)
    code = ""
    try:
        headers = http.headers
        code = headers.get("x-ms-error-code") or ""
        if not code and "json" in (headers.get("Content-Type") or ""):
            body = json.loads(http.text() or "{}")
            err = body.get("error") if isinstance(body, dict) else None
            code = (err or {}).get("code", "") if isinstance(err, dict) else str(body.get("reason") or "")
    except Exception:  # noqa: BLE001 — the code only names the attempt: an unreadable body leaves the status alone
        code = ""
    return f"{status} {code}".strip()


class _Recording:
    """Mixed into an SDK retry policy: each attempt it weighs noted (`increment`), the call recorded after `send`."""

    sdk = "azure"

    def _begin(self) -> list[tuple[str, bool]]:
        stack = getattr(_attempts, "stack", None)
        if stack is None:
            stack = _attempts.stack = []
        notes: list[tuple[str, bool]] = []
        stack.append(notes)
        return notes

    def _note(self, response: Any, error: BaseException | None, retrying: bool) -> None:
        stack = getattr(_attempts, "stack", None)
        if stack:
            stack[-1].append((_azure_attempt(response, error), retrying))

    def _end(self, request: Any, notes: list[tuple[str, bool]], started: float, response: Any,
             raised: BaseException | None) -> None:
        _attempts.stack.pop()
        http = getattr(response, "http_response", None) if response is not None else None
        status = int(getattr(http, "status_code", 0) or 0)
        failed = raised is not None or status >= 400
        errors = [e for e, _ in notes]
        attempts = 1 + sum(1 for _, retrying in notes if retrying)
        if failed and (not notes or notes[-1][1]):  # the last attempt's error was not weighed for a retry
            errors.append(type(raised).__name__ if raised is not None else _azure_attempt(response, None))
        # A 404 is an answer (a resource that is not there), not a failure of the call.
        outcome = "failed" if failed and status != 404 else "ok"
        if outcome == "ok" and attempts <= 1:
            return
        http_request = getattr(request, "http_request", request)
        url = urlsplit(str(getattr(http_request, "url", "")))
        _record(ApiCall(self.sdk, url.netloc, f"{getattr(http_request, 'method', '?')} {url.path}", attempts, errors,
                        outcome, started, round(time.time() - started, 3)))

    def _send_recorded(self, send: Callable[[Any], Any], request: Any) -> Any:
        notes, started = self._begin(), time.time()
        response, raised = None, None
        try:
            response = send(request)
            return response
        except BaseException as e:
            raised = e
            raise
        finally:
            self._end(request, notes, started, response, raised)


def azure_retry_policy(settings: ApiSettings) -> Any:
    """azure-core's RetryPolicy with its backoff at the target's time scale, recording its retries."""
    from azure.core.pipeline.policies import RetryPolicy

    class RecordingRetryPolicy(_Recording, RetryPolicy[Any, Any]):
        sdk = "azure-core"

        def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
            retrying = bool(super().increment(settings, response=response, error=error))
            self._note(response, error, retrying)
            return retrying

        def send(self, request: Any) -> Any:
            return self._send_recorded(super().send, request)

    scale = settings.time_scale
    return RecordingRetryPolicy(retry_backoff_factor=0.8 / scale, retry_backoff_max=120 / scale)


def storage_retry_policy(settings: ApiSettings) -> Any:
    """azure-storage-blob's ExponentialRetry (its defaults), backoff at the target's time scale, recording."""
    from azure.storage.blob import ExponentialRetry

    scale = settings.time_scale

    class RecordingExponentialRetry(_Recording, ExponentialRetry):
        sdk = "azure-storage"

        def increment(self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None) -> bool:
            retrying = bool(super().increment(settings, request, response=response, error=error))
            self._note(response, error, retrying)
            return retrying

        def get_backoff_time(self, settings: dict[str, Any]) -> float:
            return float(super().get_backoff_time(settings)) / scale

        def send(self, request: Any) -> Any:
            return self._send_recorded(super().send, request)

    return RecordingExponentialRetry()


def azure_client_kwargs(settings: ApiSettings) -> dict[str, Any]:
    """Keyword arguments for an azure-mgmt-* client: the recording retry policy and the timeouts."""
    return {"retry_policy": azure_retry_policy(settings), "connection_timeout": settings.connect_timeout,
            "read_timeout": settings.read_timeout}


def storage_client_kwargs(settings: ApiSettings) -> dict[str, Any]:
    return {"retry_policy": storage_retry_policy(settings), "connection_timeout": settings.connect_timeout,
            "read_timeout": settings.read_timeout}


# -- what a retry would not fix ------------------------------------------------------------------------------
_TERRAFORM_TRANSIENT = re.compile(r"unexpected status (429|5\d\d)|StatusCode=(429|5\d\d)|TooManyRequests|"
                                  r"ServerBusy|InternalServerError|ServiceUnavailable")


def is_transient(e: BaseException) -> bool:
    """An error the services document as transient: throttling, 5xx, a timeout or a dropped connection.

    Used where a whole operation may be tried again (an idempotent inverse during the unwind), once
    the SDK's own retries gave up."""
    try:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(e, ClientError):
            err = e.response.get("Error", {})
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return err.get("Code") in AWS_THROTTLING or status in TRANSIENT_STATUS
        if isinstance(e, (BotoConnectionError, HTTPClientError)):
            return True
    except ImportError:  # pragma: no cover - botocore is a dependency
        pass
    try:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        if isinstance(e, (ServiceRequestError, ServiceResponseError)):
            return True
        if isinstance(e, HttpResponseError):
            return int(e.status_code or 0) in TRANSIENT_STATUS
    except ImportError:  # pragma: no cover
        pass
    kube_status = getattr(e, "status", None)
    if type(e).__name__ == "KubeError":
        return kube_status in TRANSIENT_STATUS or bool(getattr(e, "transient", False))
    if type(e).__name__ == "ProvisionerError":
        return bool(_TERRAFORM_TRANSIENT.search(str(e)) or _TERRAFORM_TRANSIENT.search(getattr(e, "stderr_tail", "") or ""))
    return isinstance(e, ConnectionError)
