"""Locust user that probes the public site: one sample per request, as the user saw it.

Run ONLY as a subprocess (`python -m locust -f drivers/probe_locustfile.py ...`, see drivers/probe.py):
importing locust monkey-patches the process with gevent. This is the only module of the project that
imports locust. Locust loads the same file in every process; what it does depends on the runner:

* **standalone** (`--headless`, drivers.probe.Probe): one vantage on this host. Settings from the
  JSON file named by $DRILL_PROBE_CONFIG; samples appended to its `out` (JSONL).
* **worker** (`--worker`, one per vantage: started by drivers.probe.ProbeFleet, or by an operator on
  another host with `drill probe-worker --master HOST:PORT --vantage NAME`). It knows only its vantage
  ($DRILL_PROBE_VANTAGE); the master tells it the rest (`drill_config`: the site, rate, timeouts,
  rules, how the vantage reaches the site). It sends its samples to the master in batches over
  Locust's own master–worker channel (`drill_samples`, custom messages) and answers the master's
  clock pings (`drill_clock_ping` → `drill_clock_pong`, drill.clocks).
* **master** (`--master`, drivers.probe.ProbeFleet): runs no user. Settings from $DRILL_PROBE_CONFIG
  (every vantage). It accepts one worker per declared vantage (`drill_hello`; others are refused),
  estimates each worker's clock offset, writes every sample on its own clock to `out`, keeps
  `users` users on each worker, and writes its view of the workers to `status` (JSON) every second.

A sample line is drill.timeline.dump_sample(): t, mono (request start), status (0 = no response),
latency_ms, class (drill.classify), error, vantage, edge (X-Amz-Cf-Pop when the CDN names its edge
location), address (the server address, when the vantage resolves the site's name through its own
caching resolver: drivers.dns_resolver, TTL honoured) and, for a worker's samples, the clock correction
applied and its uncertainty. The standalone probe can also run one signed-in user (`session_user`),
whose samples, each saying whether its session held, go to `sessions_out`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.event
import gevent.socket
from locust import FastHttpUser, events, task
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import STATE_MISSING, STATE_RUNNING, STATE_SPAWNING, STATE_STOPPED, MasterRunner, WorkerRunner

# The driver sets PYTHONPATH too; this makes the file usable by hand (and from another checkout) as well.
_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from drill.classify import BODY_LIMIT, classify, parse_rules  # noqa: E402
from drill.clocks import ClockFilter, Exchange  # noqa: E402
from drill.timeline import DEFAULT_VANTAGE, Sample, dump_sample  # noqa: E402
from drivers.dns_resolver import CachingResolver  # noqa: E402

PROTOCOL = 1  # of the drill_* messages: a worker from another checkout must speak the master's
FLUSH_SECONDS = 0.2  # a worker sends its samples at least this often
PING_SECONDS, PING_FAST_SECONDS, FAST_PINGS = 2.0, 0.25, 8  # clock pings: 8 quick ones, then every 2 s


class Settings:
    """What the users of this process do; set once (standalone: at init; worker: from the master)."""

    path = "/"
    rate = 10.0
    users = 4
    timeout = 2.0
    rules = parse_rules(None)
    fresh = True  # a new connection per request, like a newly arriving user (see ProbeUser.probe)
    vantage = DEFAULT_VANTAGE
    # The site's name resolved as a user's resolver does (TTL honoured), when the vantage says so: each
    # sample then records the address that served it (drivers.dns_resolver; None: the host's resolver).
    resolver: CachingResolver | None = None
    sink: Callable[[Sample], None] = staticmethod(lambda s: None)
    configured = gevent.event.Event()


def configure(cfg: dict[str, Any], vantage: str, sink: Callable[[Sample], None]) -> None:
    Settings.path = cfg.get("path") or "/"
    Settings.rate = float(cfg["rate_per_second"])
    Settings.users = max(1, int(cfg.get("users", 1)))
    Settings.timeout = float(cfg.get("timeout_seconds", 2.0))
    Settings.rules = parse_rules(cfg.get("rules"))
    Settings.fresh = bool(cfg.get("fresh_connections", True))
    Settings.vantage = vantage
    Settings.sink = sink
    PACER.interval = 1.0 / Settings.rate
    ProbeUser.network_timeout = ProbeUser.connection_timeout = Settings.timeout
    reach = (cfg.get("vantages") or {}).get(vantage) or {}
    if reach.get("connect_to") and cfg.get("host"):
        connect_to(str(cfg["host"]), str(reach["connect_to"]))
    r = reach.get("resolver")
    if r:
        Settings.resolver = CachingResolver(str(r["nameserver"]), float(r.get("time_scale") or 1.0),
                                            bool(r.get("honour_ttl", True)), timeout=Settings.timeout)
    Settings.configured.set()


def connect_to(site: str, address: str) -> None:
    """Send requests for the site's host:port to `address` instead of what DNS says, keeping the site's
    name for Host and TLS (SNI), as `curl --connect-to` does: name resolution is where a user's edge
    location (or resolver) is chosen. geventhttpclient resolves through gevent.socket.getaddrinfo."""
    parts = urlsplit(site)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    to_host, _, to_port = address.rpartition(":")
    to_host = to_host.strip("[]")
    original = getattr(gevent.socket, "_drill_original_getaddrinfo", gevent.socket.getaddrinfo)
    gevent.socket._drill_original_getaddrinfo = original

    def getaddrinfo(h: Any, p: Any, *args: Any, **kwargs: Any) -> Any:
        if str(h) == host and int(p or 0) == port:
            return original(to_host, int(to_port), *args, **kwargs)
        return original(h, p, *args, **kwargs)

    gevent.socket.getaddrinfo = getaddrinfo


class _SharedPacer:
    """Hands out request slots `interval` apart to whichever user of this process is free.

    Equivalent in rate to constant_pacing(users / rate) per user, but the samples are evenly spaced
    in time (per-user pacing lets users drift into phase), and a user stuck in a slow request simply
    misses slots that the other users take. Missed slots are not caught up in a burst: the schedule
    restarts from "now".
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


PACER = _SharedPacer(0.1)


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


def _target(host: str, path: str) -> tuple[str, dict[str, str], str | None]:
    """(URL to request, extra headers, address) for `path` on the site, through the vantage's resolver if any."""
    if Settings.resolver is None:
        return path, {}, None
    scheme, _, netloc = host.partition("://")
    name, _, port = netloc.partition(":")
    answer = Settings.resolver.resolve(name)  # ResolveError: no answer, the request fails
    return f"{scheme}://{answer.address}{':' + port if port else ''}{path}", {"Host": netloc}, answer.address


class ProbeUser(FastHttpUser):
    network_timeout = 2.0
    connection_timeout = 2.0
    max_retries = 0  # a retry would hide exactly the failures we measure

    def wait_time(self) -> float:
        return PACER.delay()

    def on_start(self) -> None:
        # A worker may be told to spawn before the master's settings arrive: wait for them, then make
        # the client with this vantage's timeouts (FastHttpUser made one with the class defaults).
        Settings.configured.wait()
        self.client = FastHttpSession(
            base_url=self.host, request_event=self.environment.events.request, user=self, insecure=self.insecure,
            network_timeout=Settings.timeout, connection_timeout=Settings.timeout, max_redirects=self.max_redirects,
            max_retries=0, concurrency=self.concurrency,
        )
        gevent.sleep(PACER.delay())  # the first request takes a slot too

    @task
    def probe(self) -> None:
        t = time.time()
        mono = time.monotonic()
        status, cls, error, edge = 0, "error", None, None
        latency_ms = 0.0
        address = None
        try:
            # A new connection per request, like a newly arriving user: a kept-alive connection would
            # stay on an old backend/IP after a DNS failover and hide the switch.
            url, extra, address = _target(self.host or "", Settings.path)
            headers = {**({"Connection": "close"} if Settings.fresh else {}), **extra} or None
            with self.client.get(url, name="probe", catch_response=True, headers=headers) as resp:
                # The body has been read inside get(): the user has the page now.
                latency_ms = (time.monotonic() - mono) * 1000.0
                resp.success()  # Locust's own pass/fail is irrelevant: the samples are the record
                status = int(resp.status_code or 0)
                if status == 0:
                    error = _short(getattr(resp, "error", None)) or "no response"
                hdrs = _headers(resp) if status else {}
                body = _decode(resp.content, hdrs.get("content-type")) if status else ""
                cls = classify(status, hdrs, body, Settings.rules)
                edge = hdrs.get("x-amz-cf-pop")  # CloudFront names the edge location that answered
        except Exception as e:  # noqa: BLE001 - nothing may escape the task; GreenletExit (stop) still does
            if not latency_ms:
                latency_ms = (time.monotonic() - mono) * 1000.0
            cls, error = "error", _short(e)
        try:
            Settings.sink(Sample(t=t, mono=mono, status=status, latency_ms=latency_ms, cls=cls, error=error,
                                 vantage=Settings.vantage, edge=edge, address=address))
        except Exception as e:  # noqa: BLE001 - a full disk must not kill the user loop
            print(f"probe: cannot record sample: {e}", file=sys.stderr)


def _watch_parent(parent_pid: int) -> None:
    # start_new_session=True detaches us from the driver's process group: if the driver dies
    # without stop(), we are re-parented and shut ourselves down instead of probing for 24 h.
    while True:
        gevent.sleep(1.0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)  # Locust's own graceful shutdown
            return


def _file_sink(path: str) -> Callable[[Sample], None]:
    # O_APPEND + one os.write per line: unbuffered (flushed at once) and never interleaved (gevent
    # runs every greenlet on one OS thread). A kill mid-run leaves at worst one partial last line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(sample: Sample) -> None:
        os.write(fd, (dump_sample(sample) + "\n").encode("utf-8"))

    return write


def _read_config() -> dict[str, Any]:
    path = os.environ.get("DRILL_PROBE_CONFIG")
    if not path:
        raise RuntimeError("DRILL_PROBE_CONFIG is not set: the probe's standalone or master process is started by drivers/probe.py")
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- worker -----------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, environment: Any, vantage: str) -> None:
        self.env = environment
        self.runner: WorkerRunner = environment.runner
        self.vantage = vantage
        self.batch: list[dict[str, Any]] = []
        for name, handler in (("drill_config", self.on_config), ("drill_clock_ping", self.on_ping),
                              ("drill_refused", self.on_refused)):
            self.runner.register_message(name, handler)
        events.test_stop.add_listener(lambda **_: self.flush())
        events.quitting.add_listener(lambda **_: self.flush())
        self.runner.send_message("drill_hello", {"protocol": PROTOCOL, "vantage": vantage, "pid": os.getpid(),
                                                 "host": socket.gethostname()})
        gevent.spawn(self.flusher)

    def on_config(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if not Settings.configured.is_set():
            configure(msg.data, self.vantage, self.batch_sample)

    def on_refused(self, environment: Any, msg: Any, **_kw: Any) -> None:
        reason = (msg.data or {}).get("reason", "refused")
        print(f"dr-drill probe worker ({self.vantage}): the master refused this worker: {reason}", file=sys.stderr, flush=True)
        environment.process_exit_code = 2
        gevent.spawn_later(0.1, self.runner.quit)

    def on_ping(self, environment: Any, msg: Any, **_kw: Any) -> None:
        m2, w2 = time.monotonic(), time.time()
        data = dict(msg.data or {}, m2=m2, w2=w2)
        data.update(m3=time.monotonic(), w3=time.time())
        self.runner.send_message("drill_clock_pong", data)

    def batch_sample(self, sample: Sample) -> None:
        d = json.loads(dump_sample(sample))
        d.pop("vantage", None)
        self.batch.append(d)

    def flush(self) -> None:
        if self.batch:
            batch, self.batch = self.batch, []
            try:
                self.runner.send_message("drill_samples", {"vantage": self.vantage, "samples": batch})
            except Exception as e:  # noqa: BLE001 - the master is gone: these samples are lost, the gap shows it
                print(f"probe worker: cannot send {len(batch)} samples: {e}", file=sys.stderr)

    def flusher(self) -> None:
        while True:
            gevent.sleep(FLUSH_SECONDS)
            self.flush()


# -- master -----------------------------------------------------------------------------------------
class _WorkerState:
    def __init__(self, client_id: str, hello: dict[str, Any]) -> None:
        self.client_id = client_id
        self.vantage = str(hello.get("vantage"))
        self.pid = hello.get("pid")
        self.host = hello.get("host")
        self.joined_t = time.time()
        self.mono = ClockFilter()
        self.wall = ClockFilter()
        self.pings: dict[int, tuple[float, float]] = {}
        self.last_ping = 0.0
        self.pending: list[dict[str, Any]] = []  # samples waiting for a first clock estimate
        self.samples = 0
        self.last_sample_mono: float | None = None
        self.left: str | None = None  # why it no longer holds its vantage


class _Master:
    def __init__(self, environment: Any, cfg: dict[str, Any]) -> None:
        self.env = environment
        self.runner: MasterRunner = environment.runner
        self.cfg = cfg
        self.vantages: dict[str, dict[str, Any]] = {v["name"]: v for v in cfg["vantages"]}
        self.users = max(1, int(cfg.get("users", 1)))
        self.write = _file_sink(cfg["out"])
        self.status_path = Path(cfg["status"])
        self.workers: dict[str, _WorkerState] = {}
        self.owner: dict[str, str] = {}  # vantage -> client id of the worker that holds it
        self.refused: list[dict[str, Any]] = []
        self.dropped = 0
        self.seq = 0
        for name, handler in (("drill_hello", self.on_hello), ("drill_samples", self.on_samples),
                              ("drill_clock_pong", self.on_pong)):
            self.runner.register_message(name, handler)
        for loop in (self.pinger, self.keeper, self.status_writer):
            gevent.spawn(loop)

    def live(self, client_id: str) -> bool:
        node = self.runner.clients.get(client_id)
        return node is not None and node.state != STATE_MISSING

    def on_hello(self, environment: Any, msg: Any, **_kw: Any) -> None:
        hello, cid = msg.data or {}, msg.node_id
        vantage = str(hello.get("vantage"))
        holder = self.owner.get(vantage)
        reason = None
        if hello.get("protocol") != PROTOCOL:
            reason = f"protocol {hello.get('protocol')} (this master speaks {PROTOCOL}): run the drill's version of dr-drill"
        elif vantage not in self.vantages:
            reason = f"vantage {vantage!r} is not declared in the drill's target (probe.vantages: {', '.join(self.vantages)})"
        elif holder is not None and holder != cid and self.live(holder):
            reason = f"vantage {vantage!r} already has a worker ({self.workers[holder].host} pid {self.workers[holder].pid})"
        if reason is not None:
            self.refused.append({"vantage": vantage, "host": hello.get("host"), "pid": hello.get("pid"), "reason": reason,
                                 "t": time.time()})
            self.runner.send_message("drill_refused", {"reason": reason}, client_id=cid)
            return
        if holder is not None and holder != cid:
            self.workers[holder].left = f"replaced by a new worker on {hello.get('host')}"
        self.workers[cid] = _WorkerState(cid, hello)
        self.owner[vantage] = cid
        config = {k: self.cfg[k] for k in ("host", "path", "rate_per_second", "users", "timeout_seconds", "rules",
                                           "fresh_connections")}
        config["vantages"] = self.vantages
        self.runner.send_message("drill_config", config, client_id=cid)
        self.ping(self.workers[cid])

    def ping(self, w: _WorkerState) -> None:
        self.seq += 1
        w.pings[self.seq] = (time.monotonic(), time.time())
        w.last_ping = time.monotonic()
        if len(w.pings) > 32:  # unanswered ones (a worker gone quiet) are not kept forever
            w.pings.pop(min(w.pings))
        self.runner.send_message("drill_clock_ping", {"seq": self.seq}, client_id=w.client_id)

    def on_pong(self, environment: Any, msg: Any, **_kw: Any) -> None:
        m4, w4 = time.monotonic(), time.time()
        w = self.workers.get(msg.node_id)
        d = msg.data or {}
        sent = w.pings.pop(int(d.get("seq", -1)), None) if w else None
        if w is None or sent is None:
            return
        w.mono.add(Exchange(sent[0], float(d["m2"]), float(d["m3"]), m4))
        w.wall.add(Exchange(sent[1], float(d["w2"]), float(d["w3"]), w4))
        if w.pending:
            pending, w.pending = w.pending, []
            self.record(w, pending)

    def on_samples(self, environment: Any, msg: Any, **_kw: Any) -> None:
        w = self.workers.get(msg.node_id)
        samples = (msg.data or {}).get("samples") or []
        if w is None or self.owner.get(w.vantage) != w.client_id:
            self.dropped += len(samples)  # a refused or replaced worker's: not this vantage's record
            return
        if w.mono.estimate() is None:
            w.pending.extend(samples)
            return
        self.record(w, samples)

    def record(self, w: _WorkerState, samples: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        mono, wall = w.mono.estimate(now), w.wall.estimate(time.time())
        assert mono is not None and wall is not None
        for d in samples:
            try:
                s = Sample(t=wall.to_master(float(d["t"])), mono=mono.to_master(float(d["mono"])), status=int(d["status"]),
                           latency_ms=float(d["latency_ms"]), cls=str(d["class"]), error=d.get("error"), vantage=w.vantage,
                           edge=d.get("edge"), clock_offset=-mono.offset, clock_uncertainty=mono.uncertainty,
                           address=d.get("address"))
            except (KeyError, TypeError, ValueError):
                self.dropped += 1
                continue
            self.write(s)
            w.samples += 1
            w.last_sample_mono = s.mono

    def pinger(self) -> None:
        while True:
            gevent.sleep(PING_FAST_SECONDS)
            now = time.monotonic()
            for w in list(self.workers.values()):
                if w.left is None and self.live(w.client_id):
                    due = PING_FAST_SECONDS if w.mono.count < FAST_PINGS else PING_SECONDS
                    if now - w.last_ping >= due:
                        self.ping(w)

    def keeper(self) -> None:
        """`users` users on every worker, as workers come and go (Locust keeps a total, not a per-worker count)."""
        while True:
            gevent.sleep(1.0)
            n = self.runner.worker_count
            want = self.users * n
            state = self.runner.state
            dispatching = getattr(self.runner, "_users_dispatcher", None)
            busy = dispatching is not None and dispatching.dispatch_in_progress
            if n and not busy and state in (STATE_RUNNING, STATE_SPAWNING, STATE_STOPPED) and \
                    (state == STATE_STOPPED or getattr(self.runner, "target_user_count", want) != want):
                self.runner.start(want, spawn_rate=want)

    def status(self) -> dict[str, Any]:
        now, wall_now = time.monotonic(), time.time()
        workers = []
        for w in self.workers.values():
            node = self.runner.clients.get(w.client_id)
            mono, wall = w.mono.estimate(now), w.wall.estimate(wall_now)
            workers.append({
                "client_id": w.client_id, "vantage": w.vantage, "host": w.host, "pid": w.pid, "joined_t": w.joined_t,
                "state": node.state if node is not None else "gone", "holds_vantage": self.owner.get(w.vantage) == w.client_id,
                "left": w.left, "samples": w.samples, "last_sample_mono": w.last_sample_mono,
                "clock": None if mono is None else mono.as_dict(), "wall_clock": None if wall is None else wall.as_dict(),
            })
        return {"protocol": PROTOCOL, "pid": os.getpid(), "t": wall_now, "mono": now, "workers": workers,
                "refused": self.refused, "dropped_samples": self.dropped, "worker_count": self.runner.worker_count}

    def status_writer(self) -> None:
        tmp = self.status_path.with_name(self.status_path.name + ".tmp")
        while True:
            try:
                tmp.write_text(json.dumps(self.status(), default=str), encoding="utf-8")
                os.replace(tmp, self.status_path)
            except OSError as e:
                print(f"probe master: cannot write status: {e}", file=sys.stderr)
            gevent.sleep(1.0)


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, **_kw: Any) -> None:
    runner = runner or environment.runner
    if isinstance(runner, WorkerRunner):
        vantage = os.environ.get("DRILL_PROBE_VANTAGE")
        if not vantage:
            raise RuntimeError("DRILL_PROBE_VANTAGE is not set: start a probe worker with `drill probe-worker --vantage NAME`")
        _Worker(environment, vantage)
        parent = os.environ.get("DRILL_PROBE_PARENT_PID")
    elif isinstance(runner, MasterRunner):
        cfg = _read_config()
        _Master(environment, cfg)
        parent = cfg.get("parent_pid")
    else:
        cfg = _read_config()
        configure(cfg, str(cfg.get("vantage") or DEFAULT_VANTAGE), _file_sink(cfg["out"]))
        parent = cfg.get("parent_pid")
    if parent:
        gevent.spawn(_watch_parent, int(parent))


# -- a signed-in user (standalone only) -------------------------------------------------------------
def _session_user_config() -> dict[str, Any] | None:
    """The standalone probe's `session_user`, read while Locust loads this file (it picks the user
    classes before init). A worker has no config file, and the fleet never sends one (drill.config
    refuses probe.session_user with distributed vantages)."""
    path = os.environ.get("DRILL_PROBE_CONFIG")
    if not path:
        return None
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # _read_config() says why at init
    user = cfg.get("session_user")
    if not user or not cfg.get("sessions_out"):
        return None
    return {**user, "sessions_out": cfg["sessions_out"]}


_USER = _session_user_config()
if _USER is not None:
    _SESSIONS_FD = os.open(str(_USER["sessions_out"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _SIGNED_IN = "Signed in as "

    class SessionUser(FastHttpUser):
        """One signed-in user (the seeds' Spring Session in Redis): signs in, then keeps its SESSION
        cookie and reads the site; each sample says whether the session held (`kept`), was gone on a
        PetClinic page (`lost`: the user signs in again, as a person would), or no PetClinic answered."""

        fixed_count = 1
        network_timeout = 2.0
        connection_timeout = 2.0
        max_retries = 0

        def wait_time(self) -> float:
            return float((_USER or {}).get("interval_seconds") or 0.5)

        def on_start(self) -> None:
            Settings.configured.wait()
            self.client = FastHttpSession(
                base_url=self.host, request_event=self.environment.events.request, user=self, insecure=self.insecure,
                network_timeout=Settings.timeout, connection_timeout=Settings.timeout, max_redirects=self.max_redirects,
                max_retries=0, concurrency=self.concurrency,
            )
            self.cookie: str | None = None
            self._sign_in()

        def _sign_in(self) -> bool:
            try:
                url, extra, _ = _target(self.host or "", "/login")
                with self.client.post(url, data={"username": (_USER or {}).get("username") or "drill-user"},
                                      headers={"Connection": "close", **extra}, catch_response=True,
                                      allow_redirects=False) as resp:
                    resp.success()
                    cookie = (resp.headers or {}).get("set-cookie") if resp.status_code == 302 else None
                    if cookie:
                        self.cookie = cookie.split(";", 1)[0]
                        return True
            except Exception:  # noqa: BLE001 - a failed sign-in is recorded by the next read (session "lost"/"none")
                pass
            return False

        @task
        def read(self) -> None:
            t, mono = time.time(), time.monotonic()
            status, cls, session, address, error = 0, "error", "none", None, None
            try:
                url, extra, address = _target(self.host or "", Settings.path)
                headers = {"Connection": "close", **extra, **({"Cookie": self.cookie} if self.cookie else {})}
                with self.client.get(url, name="session", catch_response=True, headers=headers) as resp:
                    resp.success()
                    status = int(resp.status_code or 0)
                    hdrs = _headers(resp) if status else {}
                    body = _decode(resp.content, hdrs.get("content-type")) if status else ""
                    cls = classify(status, hdrs, body, Settings.rules)
                    if cls not in ("error", "maintenance"):
                        session = "kept" if _SIGNED_IN in body else "lost"
            except Exception as e:  # noqa: BLE001 - nothing may escape the task
                error = _short(e)
            record = {"t": t, "mono": mono, "status": status, "class": cls, "session": session,
                      "address": address, "error": error}
            if session == "lost":
                record["signed_in_again"] = self._sign_in()
            os.write(_SESSIONS_FD, (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8"))
