"""Ground-truth event log of the lab: what really happened, and when, to check measurements against."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    t: float
    mono: float
    source: str
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


class EventLog:
    """Append-only JSONL log, safe to write from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._events: list[Event] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 — open for the log's lifetime

    def record(self, source: str, event: str, **detail: Any) -> Event:
        ev = Event(time.time(), time.monotonic(), source, event, detail)
        line = json.dumps({"t": ev.t, "mono": ev.mono, "source": source, "event": event, **detail})
        with self._lock:
            self._events.append(ev)
            if not self._fh.closed:
                self._fh.write(line + "\n")
        return ev

    def events(self, event: str | None = None, after: float = float("-inf")) -> list[Event]:
        with self._lock:
            return [e for e in self._events if (event is None or e.event == event) and e.mono >= after]

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """Events as written, skipping a torn last line."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
