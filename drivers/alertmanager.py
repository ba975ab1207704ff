"""Prometheus Alertmanager, through its v2 API (read only): the alerts firing now that match labels.

`GET /api/v2/alerts?active=true&silenced=false&inhibited=false&filter=name="value"…` — the API's
own filter (label matchers, all of which must match; Alertmanager's OpenAPI spec, `getAlerts`).
An alert a human silenced or that another alert inhibits is not firing for anyone: not a stop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Alert:
    labels: dict[str, str]
    starts_at: str
    state: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "(no alertname)")


def firing(url: str, matchers: dict[str, str], timeout: float = 5.0) -> list[Alert]:
    """Active, unsilenced, uninhibited alerts whose labels match every matcher."""
    params: list[tuple[str, Any]] = [("active", "true"), ("silenced", "false"), ("inhibited", "false"),
                                     ("unprocessed", "true")]
    params += [("filter", f'{k}="{_quote(v)}"') for k, v in sorted(matchers.items())]
    r = httpx.get(url.rstrip("/") + "/api/v2/alerts", params=params, timeout=timeout)
    r.raise_for_status()
    out = []
    for a in r.json():
        labels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
        if all(labels.get(k) == v for k, v in matchers.items()):  # the filter, checked again
            out.append(Alert(labels, str(a.get("startsAt", "")), str((a.get("status") or {}).get("state", ""))))
    return out


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
