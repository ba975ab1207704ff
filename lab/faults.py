"""Faults the lab's cloud APIs answer with, on demand, so the drill meets the clouds' bad days.

A rule says: for the next `count` calls on one surface whose key matches `match`, answer with a
fault of one kind. Surfaces and their call keys (`match` is an fnmatch pattern, case-insensitive):

  aws        "<service>:<Operation>"           e.g. "eks:UpdateNodegroupConfig", "cloudfront:Get*"
  arm        "<METHOD> <path>"                 e.g. "PUT */applicationGateways/*" (ARM routes, not Entra's)
  kube       "<METHOD> <path>[?watch]"         e.g. "POST /apis/apps/v1/namespaces/*/deployments"
  blob       "<METHOD> <path>[?comp=..&restype=..]"  e.g. "PUT /bloberry01/dr-drill/*?comp=lease"
  terraform  "<command>"                       apply | destroy | plan | output

Kinds (what each surface answers is in lab/fault_shapes.py, as the real service sends it):

  throttle  the service's own throttling error (AWS ThrottlingException/Throttling 400, ARM 429 with
            Retry-After, Kubernetes 429 with Retry-After and a Status, Blob 503 ServerBusy; Terraform
            exits 1 with the provider's 429), the call not carried out
  5xx       a server error (status 500 or 503), the call not carried out
  hang      no answer: the request is held past the client's timeout, then the connection dropped
            (`seconds`, default 120, or until the client hangs up), the call not carried out
  stale     an eventually consistent read: a read whose answer changed since it was last read gets
            the previous answer instead (2xx answers only), `count` times; nothing to do with writes
  partial   Terraform only: apply/destroy exits 1 after `keep` of its resources (default: all but
            the last, in configuration order) are done; the state holds what was done

Rules come and go through the lab's control endpoint (lab/control.py: POST/GET/DELETE /faults);
every answer a rule gave is in its `hits` and in the lab's event log.
"""
from __future__ import annotations

import fnmatch
import re
import select
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from lab.events import EventLog

SURFACES = ("aws", "arm", "kube", "blob", "terraform")
KINDS = ("throttle", "5xx", "hang", "stale", "partial")
SUPPORTED = {
    "aws": ("throttle", "5xx", "hang", "stale"),
    "arm": ("throttle", "5xx", "hang", "stale"),
    "kube": ("throttle", "5xx", "hang", "stale"),
    "blob": ("throttle", "5xx", "hang", "stale"),
    "terraform": ("throttle", "5xx", "partial"),
}
DEFAULT_HANG_SECONDS = 120.0
# A throttled call's Retry-After, real-world seconds (played / time scale): ARM and the Kubernetes
# API server both ask for seconds, not minutes ("Retry-After ... the number of seconds your
# application should wait", ARM "Request limits and throttling"; APF sends 1).
DEFAULT_RETRY_AFTER = 30.0
_STALE_KEYS = 512  # reads remembered per surface (LRU)
_STALE_BODY_MAX = 4 << 20  # answers larger than this are not remembered (a backup download)


class FaultSpecError(ValueError):
    """A rule the lab cannot honour; the message names the field."""


@dataclass
class Rule:
    surface: str
    kind: str
    match: str = "*"
    count: int = 1
    status: int | None = None  # 5xx: 500 or 503
    retry_after: float | None = None  # throttle: real-world seconds
    seconds: float | None = None  # hang: wall seconds before the connection is dropped
    keep: int | None = None  # partial: resources done before the failure
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    hits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return max(0, self.count - len(self.hits))

    def matches(self, surface: str, key: str) -> bool:
        return surface == self.surface and fnmatch.fnmatchcase(key.lower(), self.match.lower())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "remaining": self.remaining}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Rule:
        known = {"surface", "kind", "match", "count", "status", "retry_after", "seconds", "keep"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise FaultSpecError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
        surface, kind = spec.get("surface"), spec.get("kind")
        if surface not in SURFACES:
            raise FaultSpecError(f"surface: {surface!r} is not one of {', '.join(SURFACES)}")
        if kind not in KINDS:
            raise FaultSpecError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
        if kind not in SUPPORTED[surface]:
            raise FaultSpecError(f"kind: {surface} cannot answer {kind!r} (it can: {', '.join(SUPPORTED[surface])})")
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FaultSpecError(f"count: {count!r} is not a positive integer")
        status = spec.get("status")
        if status is not None and (kind != "5xx" or status not in (500, 502, 503, 504)):
            raise FaultSpecError(f"status: {status!r} is for a 5xx fault, one of 500, 502, 503, 504")
        for name in ("retry_after", "seconds"):
            value = spec.get(name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
                raise FaultSpecError(f"{name}: {value!r} is not a number of seconds")
        keep = spec.get("keep")
        if keep is not None and (kind != "partial" or not isinstance(keep, int) or keep < 0):
            raise FaultSpecError(f"keep: {keep!r} is for a partial fault, a count of resources (0 or more)")
        match = spec.get("match", "*")
        if not isinstance(match, str) or not match:
            raise FaultSpecError(f"match: {match!r} is not a pattern")
        return cls(surface, kind, match, count, status, spec.get("retry_after"), spec.get("seconds"), keep)


@dataclass
class Answer:
    """A recorded 2xx answer to a read: what a stale read gives back."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    norm: bytes


# Parts of an answer that differ between two reads of the same state (request ids).
_VOLATILE = re.compile(rb"<RequestId>[^<]*</RequestId>|<RequestID>[^<]*</RequestID>")


def normalize(body: bytes) -> bytes:
    return _VOLATILE.sub(b"", body)


class Faults:
    """The rules of one lab, and each surface's memory of its reads (for stale answers). Thread-safe."""

    def __init__(self, time_scale: float = 1.0, events: EventLog | None = None) -> None:
        self.time_scale = time_scale
        self.events = events
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._reads: dict[str, OrderedDict[str, Answer]] = {s: OrderedDict() for s in SURFACES}

    def __repr__(self) -> str:
        return f"Faults({len(self._rules)} rule(s))"

    # -- rules -------------------------------------------------------------------------------------
    def add(self, spec: dict[str, Any]) -> Rule:
        rule = Rule.from_spec(spec)
        with self._lock:
            self._rules.append(rule)
        self._record("armed", **{k: v for k, v in rule.as_dict().items() if k != "hits" and v is not None})
        return rule

    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def clear(self) -> list[Rule]:
        """Remove every rule (returned, with their hits); forget remembered reads."""
        with self._lock:
            gone, self._rules = self._rules, []
            for reads in self._reads.values():
                reads.clear()
        if gone:
            self._record("cleared", rules=len(gone), hits=sum(len(r.hits) for r in gone))
        return gone

    def take(self, surface: str, key: str, kinds: tuple[str, ...] = ("throttle", "5xx", "hang", "partial")) -> Rule | None:
        """The first rule of `kinds` (never stale: see `read`) with calls left that matches; the call is counted."""
        with self._lock:
            for rule in self._rules:
                if rule.kind in kinds and rule.kind != "stale" and rule.remaining and rule.matches(surface, key):
                    rule.hits.append({"t": time.time(), "key": key})
                    break
            else:
                return None
        self._record("fault", surface=surface, kind=rule.kind, key=key, rule=rule.id, left=rule.remaining)
        return rule

    def retry_after(self, rule: Rule) -> int:
        """Retry-After in whole seconds as this lab plays it (real-world seconds / time scale, at least 1)."""
        real = DEFAULT_RETRY_AFTER if rule.retry_after is None else rule.retry_after
        return max(1, round(real / self.time_scale))

    def hang_seconds(self, rule: Rule) -> float:
        return DEFAULT_HANG_SECONDS if rule.seconds is None else float(rule.seconds)

    # -- stale reads -------------------------------------------------------------------------------
    def read(self, surface: str, key: str, status: int, headers: list[tuple[str, str]], body: bytes,
             memo: str | None = None) -> Answer | None:
        """After a read was answered: the previous answer to give instead (a stale read), or None.

        `key` is the call's key (what rules match); `memo` says which read it is (the call with its
        parameters: two reads of different resources are not one read changing), default `key`.

        Only a 2xx answer that differs from the one this read got last time is replaced, while a
        stale rule matching it has reads left; the remembered answer stays the previous one until a
        read is answered fresh, so `count` reads in a row see the previous state.
        """
        if not 200 <= status < 300 or len(body) > _STALE_BODY_MAX:
            return None
        fresh = Answer(status, list(headers), body, normalize(body))
        with self._lock:
            reads = self._reads[surface]
            memo = memo or key
            last = reads.get(memo)
            rule: Rule | None = None
            if last is not None and last.norm != fresh.norm:
                rule = next((r for r in self._rules if r.kind == "stale" and r.remaining and r.matches(surface, key)), None)
                if rule is not None:
                    rule.hits.append({"t": time.time(), "key": key})
                    reads.move_to_end(memo)
                    stale = last
                else:
                    stale = None
            else:
                stale = None
            if stale is None:
                reads[memo] = fresh
                reads.move_to_end(memo)
                while len(reads) > _STALE_KEYS:
                    reads.popitem(last=False)
        if stale is not None and rule is not None:
            self._record("fault", surface=surface, kind="stale", key=key, rule=rule.id, left=rule.remaining)
        return stale

    def _record(self, event: str, **detail: Any) -> None:
        if self.events is not None:
            self.events.record("faults", event, **detail)


def hold(sock: socket.socket, seconds: float) -> None:
    """A hung server: keep the request unanswered for `seconds`, or until the client gives up
    (closes the connection), whichever comes first. The caller then drops the connection."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            readable, _, _ = select.select([sock], [], [], min(0.2, left))
        except (OSError, ValueError):
            return
        if readable:
            try:
                if not sock.recv(1):
                    return  # the client closed its end: it timed out
            except (OSError, ValueError):
                return


def drop(sock: socket.socket) -> None:
    """Close a connection without an answer (what a client sees after a hang)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
