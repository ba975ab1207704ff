"""The user-experience probe: a Locust subprocess that GETs the public site at a steady rate and
appends one JSON line per request (see drivers/probe_locustfile.py and drill.timeline).

Locust runs in its own process, never imported here: `import locust` gevent-patches the whole
interpreter and breaks ssl in a process that already imported it. The process gets its own
session/process group so stop() reaches everything it started.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from drill.classify import ClassRule, parse_rules
from drill.timeline import Sample, load_timeline, summarize

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


class Probe:
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
    ) -> None:
        if rate_per_second <= 0 or users < 1 or timeout_seconds <= 0:
            raise ValueError("rate_per_second, users and timeout_seconds must be positive")
        self.url = url
        self.host, self.path = split_url(url)
        self.out = Path(out).resolve()
        self.rate_per_second = float(rate_per_second)
        self.users = int(users)
        self.timeout_seconds = float(timeout_seconds)
        self.rules = parse_rules(rules)
        self.log_path = Path(log_path).resolve() if log_path else self.out.with_name(self.out.name + ".locust.log")
        self.config_path = self.out.with_name(self.out.name + ".probe-config.json")
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False

    @property
    def interval(self) -> float:
        """Nominal seconds between two requests."""
        return 1.0 / self.rate_per_second

    @property
    def max_gap(self) -> float:
        return default_max_gap(self.rate_per_second, self.timeout_seconds)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _argv(self) -> list[str]:
        n = str(self.users)
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
            "path": self.path,
            "rate_per_second": self.rate_per_second,
            "users": self.users,
            "timeout_seconds": self.timeout_seconds,
            "rules": [r.model_dump() for r in self.rules],
            "fresh_connections": True,
            "parent_pid": os.getpid(),
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

    def samples(self) -> list[Sample]:
        """Samples written so far (a half-written last line is skipped)."""
        try:
            return load_timeline(self.out)
        except FileNotFoundError:
            return []

    def summary(self, end: float | None = None) -> dict[str, Any]:
        return summarize(self.samples(), self.max_gap, end=end)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Probe:
        if not self.running():
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_standalone(
    url: str,
    duration: float,
    out: Path,
    rate_per_second: float = 10,
    users: int = 4,
    timeout_seconds: float = 2.0,
    rules: Sequence[ClassRule | Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Probe `url` for `duration` seconds (counted from the first sample) and summarise it."""
    probe = Probe(url, Path(out), rate_per_second, users, timeout_seconds, rules)
    with probe:
        time.sleep(duration)
    summary = summarize(probe.samples(), probe.max_gap)
    summary.update(
        url=url,
        out=str(probe.out),
        rate_per_second=probe.rate_per_second,
        users=probe.users,
        duration=duration,
    )
    return summary
