"""The lab's CloudWatch data plane: the metrics the services publish, and every alarm evaluated.

Every (scaled) minute, at the minute's end:
1. the services publish that minute's datapoint, as each documents it (time-scaled):
   - the ALB (AWS/ApplicationELB, Elastic Load Balancing User Guide, *CloudWatch metrics for your
     Application Load Balancer*): HealthyHostCount / UnHealthyHostCount per target group and load
     balancer, sampled through the minute (statistic set: count, sum, min, max);
     HTTPCode_ELB_5XX_Count — responses the load balancer itself generated (502, 503, 504) — summed
     over the minute and, like every ELB count metric, not reported for a minute without any;
   - Container Insights (ContainerInsights, *Amazon EKS and Kubernetes Container Insights
     metrics*): cluster_node_count per ClusterName, collected every 60 s (the agent's default
     metrics_collection_interval) — nodes that have joined the cluster, draining ones included;
   - RDS (AWS/RDS, *Amazon CloudWatch metrics for Amazon RDS*): CPUUtilization of the instance,
     measured from the lab's MariaDB process (its CPU time over the minute, over the host's CPUs);
2. every metric alarm is evaluated (lab.aws.alarm_rules: "an alarm is evaluated every minute") over
   its evaluation range of datapoints, each the alarm's statistic over one Period ending at this
   minute boundary (periods and the minute are divided by the time scale); a changed state goes
   through lab.aws.cloudwatch (history, then the alarm's SNS actions).

Departures: datapoints are stamped with the lab's wall clock (a "minute" is 60 / time_scale
seconds); a datapoint is available to alarms at the end of its minute (real metrics arrive with an
ingestion delay CloudWatch does not state, so a real alarm can only be later); percentile statistics
(ExtendedStatistic) and metric-math alarms are not evaluated (the design's alarms use neither).
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from lab.aws.alarm_rules import Rule, evaluate
from lab.aws.cloudwatch import Alarms, iso_ms
from lab.events import EventLog

SAMPLES_PER_MINUTE = 10
ALB_5XX = (502, 503, 504)


def wall(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Source(Protocol):
    """A service publishing metrics: sampled through the minute, flushed at its end."""

    def sample(self, now: float) -> None: ...

    def flush(self, start: float, end: float) -> list[tuple[str, dict[str, Any]]]: ...


@dataclass
class StatSet:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, v: float) -> None:
        self.count, self.total = self.count + 1, self.total + v
        self.low, self.high = min(self.low, v), max(self.high, v)

    def datum(self, name: str, dims: list[dict[str, str]], start: float, unit: str = "Count") -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dims, "Timestamp": wall(start), "Unit": unit,
                "StatisticValues": {"SampleCount": float(self.count), "Sum": self.total,
                                    "Minimum": self.low, "Maximum": self.high}}


class AlbSource:
    """AWS/ApplicationELB for one load balancer and target group (lab.alb's health and responses)."""

    def __init__(self, alb: Any, tg_arn: str, lb_arn: str) -> None:
        self.alb = alb
        self.tg_arn = tg_arn
        self.dims_tg = [{"Name": "TargetGroup", "Value": arn_suffix(tg_arn)},
                        {"Name": "LoadBalancer", "Value": arn_suffix(lb_arn)}]
        self.dims_lb = [{"Name": "LoadBalancer", "Value": arn_suffix(lb_arn)}]
        self._lock = threading.Lock()
        self._healthy, self._unhealthy = StatSet(), StatSet()
        self._elb_5xx = 0
        alb.on_response = self.response  # the web tier's metrics hook

    def response(self, status: int, by_elb: bool) -> None:
        if by_elb and status in ALB_5XX:
            with self._lock:
                self._elb_5xx += 1

    def sample(self, now: float) -> None:
        states = [s.state for s in self.alb.registry.states(self.tg_arn)]
        with self._lock:
            self._healthy.add(float(states.count("healthy")))
            self._unhealthy.add(float(states.count("unhealthy")))

    def flush(self, start: float, end: float) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            healthy, unhealthy, errors = self._healthy, self._unhealthy, self._elb_5xx
            self._healthy, self._unhealthy, self._elb_5xx = StatSet(), StatSet(), 0
        out = []
        if healthy.count:
            out.append(("AWS/ApplicationELB", healthy.datum("HealthyHostCount", self.dims_tg, start)))
            out.append(("AWS/ApplicationELB", unhealthy.datum("UnHealthyHostCount", self.dims_tg, start)))
        if errors:  # ELB count metrics are not reported for a minute without any
            out.append(("AWS/ApplicationELB", {"MetricName": "HTTPCode_ELB_5XX_Count", "Dimensions": self.dims_lb,
                                               "Timestamp": wall(start), "Unit": "Count", "Value": float(errors)}))
        return out


class NodeCountSource:
    """ContainerInsights cluster_node_count: the cluster's nodes when the agent collects (each minute)."""

    def __init__(self, cluster: str, count: Callable[[], int]) -> None:
        self.dims = [{"Name": "ClusterName", "Value": cluster}]
        self.count = count

    def sample(self, now: float) -> None:
        pass

    def flush(self, start: float, end: float) -> list[tuple[str, dict[str, Any]]]:
        s = StatSet()
        s.add(float(self.count()))
        return [("ContainerInsights", s.datum("cluster_node_count", self.dims, start))]


class RdsCpuSource:
    """AWS/RDS CPUUtilization of one instance, from its server process's CPU time over the minute."""

    def __init__(self, instance: str, pid: Callable[[], int | None]) -> None:
        self.dims = [{"Name": "DBInstanceIdentifier", "Value": instance}]
        self.pid = pid
        first = process_cpu_seconds(pid())
        self._last: tuple[float, float] | None = None if first is None else (time.monotonic(), first)

    def sample(self, now: float) -> None:
        pass

    def flush(self, start: float, end: float) -> list[tuple[str, dict[str, Any]]]:
        cpu = process_cpu_seconds(self.pid())
        now = time.monotonic()
        last, self._last = self._last, (None if cpu is None else (now, cpu))
        if cpu is None or last is None or now <= last[0]:
            return []  # the first minute has nothing to compare with; a stopped server reports nothing
        percent = 100.0 * (cpu - last[1]) / ((now - last[0]) * (os.cpu_count() or 1))
        s = StatSet()
        s.add(round(max(0.0, min(100.0, percent)), 3))
        return [("AWS/RDS", s.datum("CPUUtilization", self.dims, start, unit="Percent"))]


def process_cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process (proc(5): fields 14 and 15, in clock ticks), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def arn_suffix(arn: str) -> str:
    """The dimension value CloudWatch uses for an ELB ARN: app/name/id, targetgroup/name/id."""
    resource = arn.split(":", 5)[5]
    return resource.split("/", 1)[1] if resource.startswith("loadbalancer/") else resource


@dataclass
class Monitoring:
    """Publishes each source's minute, then evaluates every alarm, at each scaled minute boundary."""

    alarms: Alarms
    time_scale: float
    events: EventLog
    sources: list[Source] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.minute = 60.0 / self.time_scale
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cloudwatch", daemon=True)

    def start(self) -> Monitoring:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        tick = self.minute / SAMPLES_PER_MINUTE
        boundary = (time.time() // self.minute + 1) * self.minute
        while not self._stop.is_set():
            now = time.time()
            if now >= boundary:
                try:
                    self.publish(boundary - self.minute, boundary)
                    self.evaluate_all(boundary)
                except Exception as e:  # noqa: BLE001 — keep the lab alive; the event log says what went wrong
                    self.events.record("cloudwatch", "evaluation error", error=repr(e))
                boundary += self.minute * max(1, int((now - boundary) // self.minute) + 1)
                continue
            for s in self.sources:
                try:
                    s.sample(now)
                except Exception as e:  # noqa: BLE001 — one bad source or alarm must not stop the others
                    self.events.record("cloudwatch", "sample error", sampler=type(s).__name__, error=repr(e))
            self._stop.wait(min(tick, max(0.0, boundary - time.time())))

    def publish(self, start: float, end: float) -> None:
        backend = self.alarms.backend()
        for s in self.sources:
            for namespace, datum in s.flush(start, end):
                backend.put_metric_data(namespace, [datum])
        self._prune(backend, end)

    def _prune(self, backend: Any, now: float) -> None:
        # An alarm looks back at most a day (Period x EvaluationPeriods); older lab data is dropped.
        cutoff = wall(now - 86400.0 / self.time_scale - 10 * self.minute)
        if backend.metric_data and _aware(backend.metric_data[0].timestamp) < cutoff:
            backend.metric_data = [d for d in backend.metric_data if _aware(d.timestamp) >= cutoff]

    def evaluate_all(self, at: float) -> None:
        backend = self.alarms.backend()
        for alarm in list(backend.alarms.values()):
            if alarm.rule is not None or alarm.metric_data_queries or alarm.extended_statistic or not alarm.metric_name:
                continue  # composite, metric-math and percentile alarms: not evaluated by the lab
            try:
                self.evaluate(alarm, at, backend.metric_data)
            except Exception as e:  # noqa: BLE001 — one bad source or alarm must not stop the others
                self.events.record("cloudwatch", "alarm evaluation error", alarm=alarm.name, error=repr(e))

    def evaluate(self, alarm: Any, at: float, data: list[Any]) -> None:
        rule = Rule(alarm.comparison_operator, float(alarm.threshold), int(alarm.evaluation_periods),
                    int(alarm.datapoints_to_alarm) if alarm.datapoints_to_alarm else None, alarm.treat_missing_data)
        period = float(alarm.period) / self.time_scale
        windows = [(at - (rule.evaluation_range - i) * period, at - (rule.evaluation_range - i - 1) * period)
                   for i in range(rule.evaluation_range)]
        points = datapoints(data, alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.statistic, windows)
        decision = evaluate(rule, points, alarm.state_value)
        if decision.state is None or decision.state == alarm.state_value:
            return
        evaluated = [{"timestamp": iso_ms(wall(w[0])), "value": v}
                     for w, v in zip(windows, points, strict=True) if v is not None][-rule.evaluation_periods:]
        reason_data = {"version": "1.0", "queryDate": iso_ms(wall(at)), "startDate": iso_ms(wall(windows[0][0])),
                       "statistic": alarm.statistic, "period": int(alarm.period),
                       "recentDatapoints": [p for p in points if p is not None][-rule.evaluation_periods:],
                       "threshold": float(alarm.threshold), "evaluatedDatapoints": evaluated}
        if self.alarms.set_state(alarm, decision.state, decision.reason, json.dumps(reason_data)):
            self.events.record("cloudwatch", f"alarm {decision.state}", alarm=alarm.name, reason=decision.reason)


def datapoints(data: list[Any], namespace: str, name: str, dims: list[Any], statistic: str,
               windows: list[tuple[float, float]]) -> list[float | None]:
    """The statistic of the metric over each window (wall seconds), None where there is no data."""
    want = {(d.name, d.value) for d in dims}
    lo, hi = wall(windows[0][0]), wall(windows[-1][1])
    mine = [d for d in data if d.namespace == namespace and d.name == name
            and {(x.name, x.value) for x in d.dimensions} == want and lo <= _aware(d.timestamp) < hi]
    out: list[float | None] = []
    for start, end in windows:
        a, b = wall(start), wall(end)
        s = StatSet()
        for d in mine:
            if a <= _aware(d.timestamp) < b:
                if hasattr(d, "sample_count"):
                    s.count += int(d.sample_count)
                    s.total += float(d.sum)
                    s.low, s.high = min(s.low, float(d.min)), max(s.high, float(d.max))
                else:
                    s.add(float(d.value))
        out.append(None if s.count == 0 else statistic_of(s, statistic))
    return out


def statistic_of(s: StatSet, statistic: str) -> float:
    return {"Sum": s.total, "Average": s.total / s.count, "Minimum": s.low, "Maximum": s.high,
            "SampleCount": float(s.count)}[statistic]


def _aware(dt: Any) -> datetime:
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
