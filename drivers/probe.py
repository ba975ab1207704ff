"""The user-experience probe: Locust GETs the public site at a steady rate, one JSON line per request
(see drivers/probe_locustfile.py and drill.timeline).

`Probe` is one standalone Locust process: one vantage on this host (today's probe, the default).
`ProbeFleet` is Locust's distributed mode: a master and one worker per vantage — local workers
started here, remote ones joining from their own hosts (`drill probe-worker --master HOST:PORT
--vantage NAME`). Samples come back over Locust's master–worker channel; the master puts each on its
own clock (drill.clocks) and writes them all to one timeline, each with its vantage.

Locust runs in its own processes, never imported here: `import locust` gevent-patches the whole
interpreter and breaks ssl in a process that already imported it. Each process gets its own
session/process group so stop() reaches everything it started.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from drill.classify import ClassRule, parse_rules
from drill.timeline import DEFAULT_VANTAGE, Sample, load_timeline, summarize

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO_ROOT / "drivers" / "probe_locustfile.py"
RUN_TIME_CEILING = "24h"  # Locust's own stop, in case nobody calls stop() and the watchdog fails


def split_url(url: str) -> tuple[str, str]:
    """('scheme://host[:port]', '/path?query') of an http(s) URL; the fragment is dropped."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"probe URL must be http(s)://host[:port][/path], got {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return f"{parts.scheme}://{parts.netloc}", path


def default_max_gap(rate_per_second: float, timeout_seconds: float) -> float:
    """The longest silence that still counts as observed: a slot missed while every user waits on
    a request that times out, plus two intervals of scheduling slack."""
    return timeout_seconds + 2.0 / rate_per_second


class _Running:
    """What a standalone probe and a fleet share: the request settings, the timeline they write, and the
    start/stop of a `with` block."""

    def __init__(self, url: str, out: Path, rate_per_second: float, users: int, timeout_seconds: float,
                 rules: Sequence[ClassRule | Mapping[str, Any]] | None) -> None:
        if rate_per_second <= 0 or users < 1 or timeout_seconds <= 0:
            raise ValueError("rate_per_second, users and timeout_seconds must be positive")
        self.url = url
        self.host, self.path = split_url(url)
        self.out = Path(out).resolve()
        self.rate_per_second = float(rate_per_second)
        self.users = int(users)
        self.timeout_seconds = float(timeout_seconds)
        self.rules = parse_rules(rules)
        self.config_path = self.out.with_name(self.out.name + ".probe-config.json")
        self._stopped = False

    @property
    def interval(self) -> float:
        """Nominal seconds between two requests."""
        return 1.0 / self.rate_per_second

    @property
    def max_gap(self) -> float:
        return default_max_gap(self.rate_per_second, self.timeout_seconds)

    def running(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def samples(self) -> list[Sample]:
        """Samples written so far (a half-written last line is skipped)."""
        try:
            return load_timeline(self.out)
        except FileNotFoundError:
            return []

    def summary(self, end: float | None = None) -> dict[str, Any]:
        return summarize(self.samples(), self.max_gap, end=end)

    def __enter__(self) -> Self:
        if not self.running():
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Probe(_Running):
    """A running probe. `with Probe(url, out) as p: ...` or start()/stop()."""

    def __init__(
        self,
        url: str,
        out: Path,
        rate_per_second: float = 10,
        users: int = 4,
        timeout_seconds: float = 2.0,
        rules: Sequence[ClassRule | Mapping[str, Any]] | None = None,
        log_path: Path | None = None,
        vantage: str = DEFAULT_VANTAGE,
        connect_to: str | None = None,
        resolver: Mapping[str, Any] | None = None,
        session_user: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(url, out, rate_per_second, users, timeout_seconds, rules)
        check_connect_to(connect_to)
        check_reach(connect_to, resolver)
        self.vantage = vantage
        self.connect_to = connect_to
        self.log_path = Path(log_path).resolve() if log_path else self.out.with_name(self.out.name + ".locust.log")
        # Resolve the site's name through this name server with a caching resolver (drivers.dns_resolver):
        # {"nameserver": "host:port", "time_scale": float, "honour_ttl": bool}. None: the system's resolver.
        self.resolver = dict(resolver) if resolver else None
        # A signed-in user beside the anonymous ones ({"username", "interval_seconds"}): its samples,
        # with whether its session held, go to `sessions_out`.
        self.session_user = dict(session_user) if session_user else None
        self.sessions_out = self.out.with_name(self.out.stem + "-sessions.jsonl")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _argv(self) -> list[str]:
        n = str(self.users + (1 if self.session_user else 0))
        return [
            sys.executable, "-m", "locust",
            "-f", str(LOCUSTFILE),
            "--headless",  # no web UI
            "-u", n, "-r", n,
            "-t", RUN_TIME_CEILING,
            "-H", self.host,
            "--only-summary",
            "--loglevel", "WARNING",
            "--exit-code-on-error", "0",  # failed requests are data, not a probe failure
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        # LOCUST_* variables would silently reconfigure the run: drop them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["DRILL_PROBE_CONFIG"] = str(self.config_path)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, wait_first_sample: float = 15.0) -> None:
        """Start Locust and return once the first sample is on disk. `out` is started afresh."""
        if self.running():
            raise RuntimeError("probe already running")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_bytes(b"")
        config = {
            "out": str(self.out),
            "host": self.host,
            "path": self.path,
            "rate_per_second": self.rate_per_second,
            "users": self.users,
            "timeout_seconds": self.timeout_seconds,
            "rules": [r.model_dump() for r in self.rules],
            "fresh_connections": True,
            "parent_pid": os.getpid(),
            "vantage": self.vantage,
            "vantages": {self.vantage: {"name": self.vantage, "connect_to": self.connect_to, "resolver": self.resolver}},
            "session_user": self.session_user,
            "sessions_out": str(self.sessions_out),
        }
        self.config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
        with open(self.log_path, "ab") as log:
            # cwd = the output folder: Locust reads locust.conf/pyproject.toml from its cwd.
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.out.parent,
                start_new_session=True,
            )
        self._stopped = False
        deadline = time.monotonic() + wait_first_sample
        while True:
            if self._has_full_line():
                return
            if self._proc.poll() is not None:
                rc = self._proc.returncode
                self.stop()
                raise RuntimeError(f"probe (locust) exited with {rc} before the first sample:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"probe: no sample within {wait_first_sample:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _has_full_line(self) -> bool:
        try:
            with open(self.out, "rb") as f:
                return b"\n" in f.read(65536)
        except FileNotFoundError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group (Locust stops gracefully), SIGKILL after `timeout`. Idempotent."""
        proc = self._proc
        if proc is None or self._stopped:
            return
        self._stopped = True  # never signal a (possibly reused) group id twice
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Anything left in the group (children that outlived the leader) goes too.
        _signal_group(proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def check_connect_to(address: str | None) -> None:
    """host:port (IPv6 in brackets), or None."""
    if address is None:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"connect_to must be HOST:PORT, got {address!r}")


def check_reach(connect_to: str | None, resolver: Mapping[str, Any] | None) -> None:
    """A vantage reaches the site through a fixed address or through its resolver, not both."""
    if connect_to is not None and resolver:
        raise ValueError(f"connect_to ({connect_to}) and a resolver ({resolver.get('nameserver')}) both choose "
                         "the address a vantage's requests go to: give one")


def run_standalone(
    url: str,
    duration: float,
    out: Path,
    rate_per_second: float = 10,
    users: int = 4,
    timeout_seconds: float = 2.0,
    rules: Sequence[ClassRule | Mapping[str, Any]] | None = None,
    vantage: str = DEFAULT_VANTAGE,
    connect_to: str | None = None,
) -> dict[str, Any]:
    """Probe `url` for `duration` seconds (counted from the first sample) and summarise it."""
    probe = Probe(url, Path(out), rate_per_second, users, timeout_seconds, rules, vantage=vantage, connect_to=connect_to)
    with probe:
        time.sleep(duration)
    summary = summarize(probe.samples(), probe.max_gap)
    summary.update(
        url=url,
        out=str(probe.out),
        rate_per_second=probe.rate_per_second,
        users=probe.users,
        duration=duration,
        vantage=vantage,
        connect_to=connect_to,
        edges=sorted({s.edge for s in probe.samples() if s.edge}),
    )
    return summary


# -- Locust's distributed mode: a master and one worker per vantage ------------------------------------
@dataclass(frozen=True)
class Vantage:
    """What the fleet needs of a vantage (drill.config.VantageConfig has the same fields)."""

    name: str
    worker: str = "local"  # "local": started here; "remote": joins with `drill probe-worker`
    where: str = ""
    connect_to: str | None = None
    # Its users' caching resolver (drivers.dns_resolver: nameserver, time_scale, honour_ttl); None: the host's.
    resolver: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "worker": self.worker, "where": self.where, "connect_to": self.connect_to,
                "resolver": dict(self.resolver) if self.resolver else None}


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host if host not in ("*", "0.0.0.0") else "127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_argv(master_host: str, master_port: int) -> list[str]:
    """A Locust worker of the probe (its vantage comes from $DRILL_PROBE_VANTAGE, the rest from the master)."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port), "--loglevel", "WARNING"]


def worker_env(vantage: str, parent_pid: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["DRILL_PROBE_VANTAGE"] = vantage
    env.pop("DRILL_PROBE_CONFIG", None)
    if parent_pid:
        env["DRILL_PROBE_PARENT_PID"] = str(parent_pid)
    else:
        env.pop("DRILL_PROBE_PARENT_PID", None)
    return env


def run_worker(master: str, vantage: str) -> None:
    """`drill probe-worker`: become a probe worker for `vantage` of the master at HOST:PORT (this process
    is replaced by Locust's, so a signal to it reaches the worker itself). Returns only on error."""
    host, sep, port = master.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--master must be HOST:PORT, got {master!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", vantage):
        raise ValueError(f"--vantage must be a vantage name of the drill's target (a-z, 0-9, -), got {vantage!r}")
    argv = worker_argv(host.strip("[]"), int(port))
    os.execve(argv[0], argv, worker_env(vantage))


class ProbeFleet(_Running):
    """A Locust master and one worker per local vantage; remote vantages' workers join it.

    The same surface as `Probe` (start, stop, samples, max_gap, ...), plus `status()`: the master's
    view of its workers (vantage, host, pid, clock offset and its uncertainty, samples) and the
    workers it refused.
    """

    def __init__(
        self,
        url: str,
        out: Path,
        vantages: Sequence[Vantage],
        rate_per_second: float = 10,
        users: int = 4,
        timeout_seconds: float = 2.0,
        rules: Sequence[ClassRule | Mapping[str, Any]] | None = None,
        log_dir: Path | None = None,
        bind: str = "127.0.0.1",
        port: int | None = None,
        join_timeout: float = 120.0,
    ) -> None:
        super().__init__(url, out, rate_per_second, users, timeout_seconds, rules)
        names = [v.name for v in vantages]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"vantages must be one or more distinct names, got {names}")
        for v in vantages:
            check_connect_to(v.connect_to)
            check_reach(v.connect_to, v.resolver)
        if any(v.worker == "remote" for v in vantages) and port is None:
            raise ValueError("a remote vantage needs a fixed master port")
        self.vantages = list(vantages)
        self.log_dir = Path(log_dir).resolve() if log_dir else self.out.parent
        self.bind = bind
        self.port = port
        self.join_timeout = float(join_timeout)
        self.status_path = self.out.with_name(self.out.name + ".status.json")
        self._master: subprocess.Popen[bytes] | None = None
        self._workers: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def local(self) -> list[Vantage]:
        return [v for v in self.vantages if v.worker == "local"]

    @property
    def master_address(self) -> str:
        """HOST:PORT a worker's --master names (the bind address, or this host's name for a wildcard bind)."""
        host = self.bind if self.bind not in ("*", "0.0.0.0") else socket.gethostname()
        return f"{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._master.pid if self._master else None

    def worker_pid(self, vantage: str) -> int | None:
        proc = self._workers.get(vantage)
        return proc.pid if proc else None

    def running(self) -> bool:
        return self._master is not None and self._master.poll() is None

    def log_path(self, who: str) -> Path:
        return self.log_dir / f"probe-{who}.log"

    def _start(self, who: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.log_path(who), "ab") as log:
            # cwd = the output folder: Locust reads locust.conf/pyproject.toml from its cwd.
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    cwd=self.out.parent, start_new_session=True)

    def start(self, wait_first_sample: float = 30.0) -> None:
        """Start the master and the local workers; return once every vantage has a sample on the timeline
        (local ones within `wait_first_sample`, remote ones within the join timeout)."""
        if self.running():
            raise RuntimeError("probe already running")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.out.write_bytes(b"")
        self.status_path.unlink(missing_ok=True)
        if self.port is None:
            self.port = _free_port(self.bind)
        expect = max(1, len(self.local))
        config = {
            "out": str(self.out), "status": str(self.status_path), "host": self.host, "path": self.path,
            "rate_per_second": self.rate_per_second, "users": self.users, "timeout_seconds": self.timeout_seconds,
            "rules": [r.model_dump() for r in self.rules], "fresh_connections": True, "parent_pid": os.getpid(),
            "vantages": [v.as_dict() for v in self.vantages],
        }
        self.config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.update(DRILL_PROBE_CONFIG=str(self.config_path), PYTHONUNBUFFERED="1")
        env.pop("DRILL_PROBE_VANTAGE", None)
        n = str(self.users * expect)
        self._stopped = False
        self._master = self._start("master", [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master",
            "--master-bind-host", self.bind, "--master-bind-port", str(self.port),
            "--headless", "-u", n, "-r", n, "-t", RUN_TIME_CEILING, "-H", self.host,
            "--expect-workers", str(expect), "--expect-workers-max-wait", str(int(max(wait_first_sample, self.join_timeout))),
            "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
        ], env)  # fmt: skip
        connect = self.bind if self.bind not in ("*", "0.0.0.0") else "127.0.0.1"
        for v in self.local:
            self._workers[v.name] = self._start(v.name, worker_argv(connect, self.port), worker_env(v.name, os.getpid()))
        try:
            self._wait_for([v.name for v in self.local], wait_first_sample, "local")
            remote = [v.name for v in self.vantages if v.worker == "remote"]
            self._wait_for(remote, self.join_timeout, "remote")
        except BaseException:
            self.stop()
            raise

    def _wait_for(self, names: list[str], timeout: float, kind: str) -> None:
        deadline = time.monotonic() + timeout
        while names:
            seen = {s.vantage for s in self.samples()}
            names = [n for n in names if n not in seen]
            if not names:
                return
            if self._master is not None and self._master.poll() is not None:
                raise RuntimeError(f"probe master exited with {self._master.returncode}:\n{self.log_tail('master')}")
            for n in names:
                proc = self._workers.get(n)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"probe worker {n!r} exited with {proc.returncode}:\n{self.log_tail(n)}")
            if time.monotonic() > deadline:
                refused = [r for r in self.status().get("refused", []) if r.get("vantage") in names]
                why = "".join(f"\n  refused {r.get('vantage')} from {r.get('host')}: {r.get('reason')}" for r in refused)
                if kind == "remote":
                    raise TimeoutError(
                        f"probe: no sample from remote vantage(s) {', '.join(names)} within {timeout:.0f}s; on each "
                        f"vantage's host run: drill probe-worker --master {self.master_address} --vantage NAME{why}")
                raise TimeoutError(f"probe: no sample from vantage(s) {', '.join(names)} within {timeout:.0f}s{why}\n"
                                   + "\n".join(self.log_tail(n) for n in names))
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """Local workers first (each sends what it still holds), then the master (which tells remote
        workers to quit). SIGTERM, SIGKILL after `timeout`. Idempotent."""
        if self._stopped or self._master is None:
            return
        self._stopped = True
        procs = list(self._workers.values())
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        master = self._master
        if master.poll() is None:
            _signal_group(master.pid, signal.SIGTERM)
            try:
                master.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(master.pid, signal.SIGKILL)
                master.wait(timeout=5)
        for proc in [*procs, master]:  # anything left in the groups (children that outlived the leader)
            _signal_group(proc.pid, signal.SIGKILL)

    def gone(self, vantage: str) -> bool:
        """No live worker holds `vantage`: its local process exited, or the master lost it (missing
        heartbeats), or the master itself is gone."""
        if not self.running():
            return True
        proc = self._workers.get(vantage)
        if proc is not None and proc.poll() is not None:
            return True
        holders = [w for w in self.status().get("workers", []) if w.get("vantage") == vantage and w.get("holds_vantage")]
        return not holders or all(w.get("state") in ("missing", "gone") or w.get("left") for w in holders)

    def status(self) -> dict[str, Any]:
        """The master's last status (every second): workers, their clocks and samples; refusals."""
        try:
            return json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def log_tail(self, who: str = "master", lines: int = 30) -> str:
        return _tail(self.log_path(who), lines)
