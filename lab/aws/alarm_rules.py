"""How CloudWatch decides a metric alarm's state from its datapoints — the rule, with no clock or I/O.

Source: Amazon CloudWatch User Guide, *Using Amazon CloudWatch alarms*, sections "Evaluating an
alarm", "Configuring how CloudWatch alarms treat missing data" ("How alarm state is evaluated when
data is missing", its two example tables) and "Avoiding premature transitions to alarm state":

- Each datapoint is the alarm's statistic over one Period. EvaluationPeriods (N) is the number of
  most recent datapoints judged; DatapointsToAlarm (M, default N) of them must breach for ALARM.
- For a period of a minute or more the alarm is evaluated every minute, over the window ending
  then ("at the end of minute 6, the alarm is evaluated based on the data from minutes 2 to 6").
- CloudWatch retrieves more datapoints than N, the *evaluation range* (N = 3 → 5 in the guide's
  examples; the lab uses N + 2). With at least N real datapoints in the range, the N most recent
  real ones decide and missing-data treatment is not used. With fewer, the missing ones are filled
  per TreatMissingData, as few times as possible: `breaching` / `notBreaching` fill bad / good;
  `ignore` keeps the current state when the range has no data (and when it cannot tell); `missing`
  goes to INSUFFICIENT_DATA when the range has no data.
- Premature ALARM is avoided: with only breaching real datapoints, fewer than M, the alarm goes to
  ALARM only once the oldest of them, among the last N, is at least M datapoints old and every newer
  one is breaching or missing (`- - X - -` alarms for M = 3; `- - - - X` does not yet).

tests/unit/test_alarm_rules.py plays both tables of the guide through `evaluate`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
SYMBOLS = {"GreaterThanOrEqualToThreshold": "greater than or equal to", "GreaterThanThreshold": "greater than",
           "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}
TREATMENTS = ("breaching", "notBreaching", "ignore", "missing")
EXTRA_RANGE = 2  # evaluation range = N + 2 (the guide's examples: N = 3, range 5)


@dataclass(frozen=True)
class Rule:
    """The parts of an alarm's definition that decide its state."""

    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int | None = None
    treat_missing_data: str | None = None

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison {self.comparison!r} is not a static-threshold operator")
        if self.treatment not in TREATMENTS:
            raise ValueError(f"TreatMissingData {self.treat_missing_data!r} is not one of {TREATMENTS}")
        if not 1 <= self.m <= self.evaluation_periods:
            raise ValueError("DatapointsToAlarm must be between 1 and EvaluationPeriods")

    @property
    def m(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def treatment(self) -> str:
        return self.treat_missing_data or "missing"  # the documented default

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + EXTRA_RANGE

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison](value, self.threshold)


@dataclass(frozen=True)
class Decision:
    state: str | None  # None: keep the current state
    reason: str
    evaluated: list[float | None]  # the datapoints that decided, oldest first (None = missing)


def evaluate(rule: Rule, points: list[float | None], current: str) -> Decision:
    """The state for `points` (oldest first; None = missing), the alarm's evaluation range."""
    rng = points[-rule.evaluation_range:]
    n, m = rule.evaluation_periods, rule.m
    real = [p for p in rng if p is not None]
    if len(real) >= n:
        recent = real[-n:]
        bad = sum(rule.breaches(v) for v in recent)
        state = "ALARM" if bad >= m else "OK"
        return Decision(state, _crossed(rule, recent, bad, state), list(recent))
    filled = n - len(real)
    treatment = rule.treatment
    if not real:
        if treatment == "missing":
            return Decision("INSUFFICIENT_DATA", f"Insufficient Data: {len(rng)} datapoints were unknown.", [])
        if treatment == "ignore":
            return Decision(None, "no datapoints: missing data ignored, state kept", [])
        state = "ALARM" if treatment == "breaching" and n >= m else "OK"
        word = "Breaching" if treatment == "breaching" else "NonBreaching"
        return Decision(state, f"Threshold Crossed: no datapoints were received for {len(rng)} periods and "
                        f"{len(rng)} missing datapoints were treated as [{word}].", [])
    bad_real = sum(rule.breaches(v) for v in real)
    if treatment in ("breaching", "notBreaching"):
        bad = bad_real + (filled if treatment == "breaching" else 0)
        state = "ALARM" if bad >= m else "OK"
        word = "Breaching" if treatment == "breaching" else "NonBreaching"
        return Decision(state, _crossed(rule, real, bad_real, state)
                        + f" {filled} missing datapoint(s) were treated as [{word}].", list(real))
    if bad_real >= m:
        return Decision("ALARM", _crossed(rule, real, bad_real, "ALARM"), list(real))
    if bad_real == len(real):
        # Only breaching data, fewer than M: premature ALARM is avoided until the oldest breaching
        # datapoint among the last N is at least M datapoints old (newer ones breaching or missing).
        window = rng[-n:]
        ages = [len(window) - i for i, p in enumerate(window) if p is not None]
        if treatment == "missing" and ages and max(ages) >= m:
            return Decision("ALARM", _crossed(rule, real, bad_real, "ALARM"), list(real))
        return Decision(None, "too few datapoints to decide: state kept", list(real))
    return Decision("OK", _crossed(rule, real, bad_real, "OK"), list(real))


def _crossed(rule: Rule, values: list[float], bad: int, state: str) -> str:
    """CloudWatch's reason sentence, e.g. "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0)."."""
    shown = ", ".join(f"{v:g}" for v in reversed(values))
    word = SYMBOLS[rule.comparison]
    if state == "ALARM":
        return (f"Threshold Crossed: {bad} out of the last {len(values)} datapoints [{shown}] "
                f"{'was' if bad == 1 else 'were'} {word} the threshold ({rule.threshold:g}) (minimum {rule.m} datapoint"
                f"{'s' if rule.m > 1 else ''} for OK -> ALARM transition).")
    return (f"Threshold Crossed: {len(values) - bad} out of the last {len(values)} datapoints [{shown}] "
            f"{'was' if len(values) - bad == 1 else 'were'} not {word} the threshold ({rule.threshold:g}) (minimum 1 datapoint "
            f"for ALARM -> OK transition).")
