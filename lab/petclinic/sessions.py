"""HTTP sessions for the lab PetClinic: in memory (Tomcat's default) or in Redis, laid out as Spring
Session's RedisIndexedSessionRepository keeps them, so sessions outlive any one replica.

The seeds' WAS (service-inventory.md, "Session Clustering"): `spring.session.store-type: redis`,
namespace `spring:session`, `@EnableRedisHttpSession(maxInactiveIntervalInSeconds = 1800)`, cookie
Max-Age 1800. Spring Session stores each session as the hash `spring:session:sessions:<id>`
(creationTime, lastAccessedTime, maxInactiveInterval, sessionAttr:<name>) that expires after the
inactive interval, and names its cookie `SESSION` (the id, Base64-encoded). Configured from the
environment, as Spring Boot is:
  SPRING_SESSION_STORE_TYPE=redis, SPRING_REDIS_HOST, SPRING_REDIS_PORT,
  SERVER_SERVLET_SESSION_TIMEOUT (seconds; the lab passes 1800 / time scale).
"""
from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

COOKIE = "SESSION"
NAMESPACE = "spring:session"
USER_ATTR = "user"


class SessionStore(Protocol):
    timeout: float

    def load(self, session_id: str) -> dict[str, str] | None: ...

    def save(self, session_id: str, attrs: Mapping[str, str]) -> None: ...


class MemoryStore:
    """Sessions in this process only (Tomcat's default): a restarted or other replica knows none."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, dict[str, str]]] = {}

    def load(self, session_id: str) -> dict[str, str] | None:
        with self._lock:
            found = self._data.get(session_id)
            if found is None or time.monotonic() - found[0] > self.timeout:
                self._data.pop(session_id, None)
                return None
            self._data[session_id] = (time.monotonic(), found[1])  # access refreshes it
            return dict(found[1])

    def save(self, session_id: str, attrs: Mapping[str, str]) -> None:
        with self._lock:
            self._data[session_id] = (time.monotonic(), dict(attrs))


class RedisStore:
    """Spring Session's Redis layout: one hash per session, expiring after the inactive interval."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        import redis

        self.timeout = timeout
        self._redis = redis.Redis(host=host, port=port, socket_timeout=2.0, socket_connect_timeout=2.0)

    @staticmethod
    def key(session_id: str) -> str:
        return f"{NAMESPACE}:sessions:{session_id}"

    def load(self, session_id: str) -> dict[str, str] | None:
        raw = self._redis.hgetall(self.key(session_id))
        if not raw:
            return None
        now_ms = str(int(time.time() * 1000))
        self._redis.hset(self.key(session_id), "lastAccessedTime", now_ms)
        self._redis.pexpire(self.key(session_id), int(self.timeout * 1000))
        text = {_text(k): _text(v) for k, v in raw.items()}
        return {k[len("sessionAttr:"):]: v for k, v in text.items() if k.startswith("sessionAttr:")}

    def save(self, session_id: str, attrs: Mapping[str, str]) -> None:
        now_ms = str(int(time.time() * 1000))
        fields: dict[Any, Any] = {"creationTime": now_ms, "lastAccessedTime": now_ms,
                                  "maxInactiveInterval": str(round(self.timeout))}
        fields.update({f"sessionAttr:{k}": v for k, v in attrs.items()})
        self._redis.hset(self.key(session_id), mapping=fields)
        self._redis.pexpire(self.key(session_id), int(self.timeout * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def store_from_env(env: Mapping[str, str]) -> SessionStore:
    timeout = float(env.get("SERVER_SERVLET_SESSION_TIMEOUT") or 1800)
    if (env.get("SPRING_SESSION_STORE_TYPE") or "").lower() == "redis":
        return RedisStore(env.get("SPRING_REDIS_HOST") or "127.0.0.1", int(env.get("SPRING_REDIS_PORT") or 6379), timeout)
    return MemoryStore(timeout)


def new_session_id() -> str:
    return secrets.token_hex(16)


def cookie_value(session_id: str) -> str:
    return base64.b64encode(session_id.encode()).decode()


def session_id_from_cookie(header: str | None) -> str | None:
    """The session id of a `Cookie:` header's SESSION cookie (Base64), or None."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            try:
                return base64.b64decode(value, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return None
    return None


def set_cookie(session_id: str, max_age: float) -> str:
    # As the seeds configure it: Max-Age = the session timeout, HttpOnly, SameSite=Lax (Secure on HTTPS).
    return f"{COOKIE}={cookie_value(session_id)}; Max-Age={round(max_age)}; Path=/; HttpOnly; SameSite=Lax"
