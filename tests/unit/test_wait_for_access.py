"""drivers.mysql_firewall.wait_for_access: overlapping attempts against a firewall that drops packets."""
from __future__ import annotations

import threading
import time

import pymysql
import pytest

from drivers.mysql_firewall import wait_for_access


class _Firewall:
    """Drops (holds each attempt for `hold` seconds, then 2003 timed out) until `opens_at`, then lets in."""

    def __init__(self, opens_in: float, hold: float) -> None:
        self.opens_at, self.hold = time.monotonic() + opens_in, hold
        self.attempts, self.closed = 0, 0
        self._lock = threading.Lock()

    def connect(self) -> object:
        with self._lock:
            self.attempts += 1
        started = time.monotonic()
        while time.monotonic() < started + self.hold:
            if time.monotonic() >= self.opens_at:
                return self  # a dropped SYN retransmitted after the rule took effect gets in too
            time.sleep(0.005)
        raise pymysql.err.OperationalError(2003, "Can't connect to MySQL server (timed out)")

    def close(self) -> None:
        with self._lock:
            self.closed += 1


def test_the_rule_taking_effect_is_seen_within_a_poll_not_a_connect_timeout() -> None:
    fw = _Firewall(opens_in=0.5, hold=2.0)
    waited = wait_for_access(fw.connect, timeout=10, poll=0.1)
    # One attempt at a time would see it only when the first attempt's 2 s hold ended (2 s).
    assert 0.5 <= waited < 0.9, waited
    assert fw.attempts >= 5
    time.sleep(0.2)
    assert fw.closed >= 1  # every connection that got in is closed


def test_a_refusal_that_waiting_cannot_cure_is_raised_at_once() -> None:
    def refused() -> object:
        raise pymysql.err.OperationalError(3159, "Connections using insecure transport are prohibited")

    t0 = time.monotonic()
    with pytest.raises(pymysql.err.OperationalError) as e:
        wait_for_access(refused, timeout=10, poll=0.1)
    assert e.value.args[0] == 3159 and time.monotonic() - t0 < 1.0


def test_no_way_in_within_the_timeout_is_a_2003_naming_the_last_attempt() -> None:
    fw = _Firewall(opens_in=60, hold=0.1)
    with pytest.raises(pymysql.err.OperationalError) as e:
        wait_for_access(fw.connect, timeout=0.5, poll=0.1)
    assert e.value.args[0] == 2003 and "no connection within 0.5s" in e.value.args[1]
    assert "timed out" in e.value.args[1]


def test_a_connection_that_gets_in_after_the_waiter_gave_up_is_closed() -> None:
    fw = _Firewall(opens_in=0.6, hold=1.0)
    with pytest.raises(pymysql.err.OperationalError):
        wait_for_access(fw.connect, timeout=0.3, poll=0.1)
    time.sleep(0.8)  # the attempts still held get in once the rule is in effect
    assert fw.attempts >= 3 and fw.closed == fw.attempts  # every one of them got in, and none was left open
