"""Locust user that probes the public site and appends one JSON line per request.

Run ONLY as a subprocess (`python -m locust -f drivers/probe_locustfile.py --headless ...`, see
drivers/probe.py): importing locust monkey-patches the process with gevent. This is the only
module of the project that imports locust.

Config comes from the JSON file named by $DRILL_PROBE_CONFIG:
  {"out": path, "path": "/", "rate_per_second": float, "users": int, "timeout_seconds": float,
   "rules": [ClassRule dicts] | null, "fresh_connections": bool, "parent_pid": int | null}

Each line is drill.timeline.dump_sample(): t, mono (at request start), status (0 = no response),
latency_ms, class (drill.classify), error (exception text when there was no response).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task

# The driver sets PYTHONPATH too; this makes the file usable by hand as well.
_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from drill.classify import BODY_LIMIT, classify, parse_rules  # noqa: E402
from drill.timeline import Sample, dump_sample  # noqa: E402

_CONFIG_PATH = os.environ.get("DRILL_PROBE_CONFIG")
if not _CONFIG_PATH:
    raise RuntimeError("DRILL_PROBE_CONFIG is not set: the probe locustfile is started by drivers/probe.py")
CONFIG: dict[str, Any] = json.loads(Path(_CONFIG_PATH).read_text(encoding="utf-8"))

PATH: str = CONFIG.get("path") or "/"
RATE: float = float(CONFIG["rate_per_second"])
USERS: int = max(1, int(CONFIG.get("users", 1)))
TIMEOUT: float = float(CONFIG.get("timeout_seconds", 2.0))
RULES = parse_rules(CONFIG.get("rules"))
# A new connection per request, like a newly arriving user: a kept-alive connection would stay on
# an old backend/IP after a DNS failover and hide the switch.
FRESH_CONNECTIONS: bool = bool(CONFIG.get("fresh_connections", True))

# The site's name resolved as a user's resolver does (TTL honoured), when the target says so: each
# sample then records the address that served it (drivers.dns_resolver; None: the system's resolver).
RESOLVER = None
if CONFIG.get("resolver"):
    from drivers.dns_resolver import CachingResolver

    _r = CONFIG["resolver"]
    RESOLVER = CachingResolver(str(_r["nameserver"]), float(_r.get("time_scale") or 1.0), bool(_r.get("honour_ttl", True)),
                               timeout=TIMEOUT)
SESSION_USER: dict[str, Any] | None = CONFIG.get("session_user")

# O_APPEND + one os.write per line: unbuffered (flushed at once) and never interleaved (gevent
# runs all users on one OS thread). A kill mid-run leaves at worst one partial last line.
_OUT_FD = os.open(CONFIG["out"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


class _SharedPacer:
    """Hands out request slots `1/RATE` apart to whichever user is free.

    Equivalent in rate to constant_pacing(USERS / RATE) per user, but the samples are evenly
    spaced in time (per-user pacing lets users drift into phase), and a user stuck in a slow
    request simply misses slots that the other users take. Missed slots are not caught up in a
    burst: the schedule restarts from "now".
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next_slot: float | None = None

    def delay(self) -> float:
        now = time.monotonic()
        if self.next_slot is None or self.next_slot < now:
            self.next_slot = now
        slot = self.next_slot
        self.next_slot = slot + self.interval
        return slot - now


PACER = _SharedPacer(1.0 / RATE)


def _short(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    text = f"{type(exc).__name__}: {exc}"
    return text[:300]


def _decode(content: bytes | None, content_type: str | None) -> str:
    # Decode ourselves: FastResponse.text runs charset detection over the whole body when the
    # header has no charset, which is slow for big pages. Only BODY_LIMIT bytes matter anyway.
    if not content:
        return ""
    charset = "utf-8"
    if content_type:
        for part in content_type.split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "charset" and v:
                charset = v.strip().strip('"')
    try:
        return content[:BODY_LIMIT].decode(charset, errors="replace")
    except LookupError:  # unknown charset name
        return content[:BODY_LIMIT].decode("utf-8", errors="replace")


def _headers(resp: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (resp.headers.items() if resp.headers is not None else ()):
        k = str(k).lower()
        out[k] = f"{out[k]}, {v}" if k in out else str(v)
    return out


def _write(sample: Sample) -> None:
    os.write(_OUT_FD, (dump_sample(sample) + "\n").encode("utf-8"))


def _target(host: str, path: str) -> tuple[str, dict[str, str], str | None]:
    """(URL to request, extra headers, address) for `path` on the site, through RESOLVER if any."""
    if RESOLVER is None:
        return path, {}, None
    scheme, _, netloc = host.partition("://")
    name, _, port = netloc.partition(":")
    answer = RESOLVER.resolve(name)  # ResolveError: no answer, the request fails
    return f"{scheme}://{answer.address}{':' + port if port else ''}{path}", {"Host": netloc}, answer.address


class ProbeUser(FastHttpUser):
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    max_retries = 0  # a retry would hide exactly the failures we measure

    def wait_time(self) -> float:
        return PACER.delay()

    def on_start(self) -> None:
        gevent.sleep(PACER.delay())  # the first request takes a slot too

    @task
    def probe(self) -> None:
        t = time.time()
        mono = time.monotonic()
        status, cls, error = 0, "error", None
        latency_ms = 0.0
        address = None
        try:
            url, extra, address = _target(self.host or "", PATH)
            headers = {**({"Connection": "close"} if FRESH_CONNECTIONS else {}), **extra} or None
            with self.client.get(url, name="probe", catch_response=True, headers=headers) as resp:
                # The body has been read inside get(): the user has the page now.
                latency_ms = (time.monotonic() - mono) * 1000.0
                resp.success()  # Locust's own pass/fail is irrelevant: the JSONL is the record
                status = int(resp.status_code or 0)
                if status == 0:
                    error = _short(getattr(resp, "error", None)) or "no response"
                hdrs = _headers(resp) if status else {}
                body = _decode(resp.content, hdrs.get("content-type")) if status else ""
                cls = classify(status, hdrs, body, RULES)
        except Exception as e:  # noqa: BLE001 - nothing may escape the task; GreenletExit (stop) still does
            if not latency_ms:
                latency_ms = (time.monotonic() - mono) * 1000.0
            cls, error = "error", _short(e)
        try:
            _write(Sample(t=t, mono=mono, status=status, latency_ms=latency_ms, cls=cls, error=error, address=address))
        except Exception as e:  # noqa: BLE001 - a full disk must not kill the user loop
            print(f"probe: cannot write sample: {e}", file=sys.stderr)


def _watch_parent(parent_pid: int) -> None:
    # start_new_session=True detaches us from the driver's process group: if the driver dies
    # without stop(), we are re-parented and shut ourselves down instead of probing for 24 h.
    while True:
        gevent.sleep(1.0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)  # Locust's own graceful shutdown
            return


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    parent_pid = CONFIG.get("parent_pid")
    if parent_pid:
        gevent.spawn(_watch_parent, int(parent_pid))


if SESSION_USER:
    _USER: dict[str, Any] = SESSION_USER
    _SESSIONS_FD = os.open(CONFIG["sessions_out"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _SIGNED_IN = "Signed in as "

    class SessionUser(FastHttpUser):
        """One signed-in user (the seeds' Spring Session in Redis): signs in, then keeps its SESSION
        cookie and reads the site; each sample says whether the session held (`kept`), was gone on a
        PetClinic page (`lost`: the user signs in again, as a person would), or no PetClinic answered."""

        fixed_count = 1
        network_timeout = TIMEOUT
        connection_timeout = TIMEOUT
        max_retries = 0

        def wait_time(self) -> float:
            return float(_USER.get("interval_seconds") or 0.5)

        def on_start(self) -> None:
            self.cookie: str | None = None
            self._sign_in()

        def _sign_in(self) -> bool:
            try:
                url, extra, _ = _target(self.host or "", "/login")
                with self.client.post(url, data={"username": _USER.get("username") or "drill-user"},
                                      headers={"Connection": "close", **extra}, catch_response=True,
                                      allow_redirects=False) as resp:
                    resp.success()
                    cookie = (resp.headers or {}).get("set-cookie") if resp.status_code == 302 else None
                    if cookie:
                        self.cookie = cookie.split(";", 1)[0]
                        return True
            except Exception:  # noqa: BLE001
                pass
            return False

        @task
        def read(self) -> None:
            t, mono = time.time(), time.monotonic()
            status, cls, session, address, error = 0, "error", "none", None, None
            try:
                url, extra, address = _target(self.host or "", PATH)
                headers = {"Connection": "close", **extra, **({"Cookie": self.cookie} if self.cookie else {})}
                with self.client.get(url, name="session", catch_response=True, headers=headers) as resp:
                    resp.success()
                    status = int(resp.status_code or 0)
                    hdrs = _headers(resp) if status else {}
                    body = _decode(resp.content, hdrs.get("content-type")) if status else ""
                    cls = classify(status, hdrs, body, RULES)
                    if cls not in ("error", "maintenance"):
                        session = "kept" if _SIGNED_IN in body else "lost"
            except Exception as e:  # noqa: BLE001
                error = _short(e)
            record = {"t": t, "mono": mono, "status": status, "class": cls, "session": session,
                      "address": address, "error": error}
            if session == "lost":
                record["signed_in_again"] = self._sign_in()
            os.write(_SESSIONS_FD, (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8"))
