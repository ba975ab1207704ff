"""A probe worker's clock against the master's, estimated over their own channel as NTP does. Core: stdlib only.

Workers on other hosts read other clocks: a sample's instant means nothing to the drill until it is
put on the master's clock (the drill's: they share a host). The master pings each worker over the
Locust channel, and each exchange gives four readings (RFC 5905, *Network Time Protocol Version 4*,
section 8, "On-Wire Protocol"):

    T1 the master sends, T2 the worker receives, T3 the worker answers, T4 the master receives

    offset θ = ((T2 − T1) + (T3 − T4)) / 2      how far the worker's clock is ahead of the master's
    delay  δ = (T4 − T1) − (T3 − T2)            the round trip, less the worker's own time

Whatever the asymmetry of the two directions, the true offset lies within θ ± δ/2. Of the recent
exchanges the one with the smallest delay bounds it best (NTP's clock filter, section 10, keeps the
last eight and picks the minimum delay), and its bound widens as it ages, at PHI = 15 ppm, the
frequency tolerance NTP assumes for a clock (section 7.2). A worker's reading `w` is the master's
`w − θ`, within that bound.

The same exchange is made on both clocks a sample carries: the monotonic one (what RTOs are
computed on) and the wall clock (what humans and other hosts' logs read).
"""
from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any

PHI = 15e-6  # s/s: RFC 5905's frequency tolerance
WINDOW = 8  # exchanges kept (RFC 5905's clock filter stages)


@dataclass(frozen=True)
class Exchange:
    """One ping: t1/t4 on the master's clock, t2/t3 on the worker's."""

    t1: float
    t2: float
    t3: float
    t4: float

    @property
    def offset(self) -> float:
        return ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2.0

    @property
    def delay(self) -> float:
        return max(0.0, (self.t4 - self.t1) - (self.t3 - self.t2))


@dataclass(frozen=True)
class Estimate:
    offset: float  # worker minus master, seconds
    uncertainty: float  # the true offset is within offset ± uncertainty
    delay: float  # the round trip of the exchange it comes from
    exchanges: int  # exchanges seen in all
    round_trip_median: float

    def to_master(self, worker_time: float) -> float:
        return worker_time - self.offset

    def as_dict(self) -> dict[str, Any]:
        return {"offset_seconds": round(self.offset, 6), "uncertainty_seconds": round(self.uncertainty, 6),
                "round_trip_seconds": round(self.delay, 6), "round_trip_median_seconds": round(self.round_trip_median, 6),
                "exchanges": self.exchanges}


class ClockFilter:
    """The recent exchanges with one worker, on one clock; `estimate(now)` is the best of them."""

    def __init__(self, window: int = WINDOW) -> None:
        self._recent: deque[Exchange] = deque(maxlen=window)
        self._delays: deque[float] = deque(maxlen=64)
        self.count = 0

    def add(self, exchange: Exchange) -> None:
        if exchange.t4 < exchange.t1 or exchange.t3 < exchange.t2:
            return  # a reading went backwards: not an exchange of these clocks
        self._recent.append(exchange)
        self._delays.append(exchange.delay)
        self.count += 1

    def estimate(self, now: float | None = None) -> Estimate | None:
        """The minimum-delay exchange of the window; its bound aged to `now` (master clock)."""
        if not self._recent:
            return None
        best = min(self._recent, key=lambda e: e.delay)
        age = 0.0 if now is None else max(0.0, now - best.t4)
        return Estimate(best.offset, best.delay / 2.0 + PHI * age, best.delay, self.count,
                        statistics.median(self._delays))
