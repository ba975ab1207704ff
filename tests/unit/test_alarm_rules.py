"""The lab's alarm evaluation plays the CloudWatch User Guide's own examples (lab.aws.alarm_rules).

The two tables of "How alarm state is evaluated when data is missing": five datapoints in the
evaluation range (oldest first; 0 non-breaching, X breaching, - missing), the state for each
missing-data treatment. "keep" = retain the current state.
"""
from __future__ import annotations

import pytest

from lab.aws.alarm_rules import Rule, evaluate

TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
# N = 3, M = 3
THREE_OF_THREE = [
    ("0 - X - X", ("OK", "OK", "OK", "OK")),
    ("0 - - - -", ("OK", "OK", "OK", "OK")),
    ("- - - - -", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ("0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("- - X - -", ("ALARM", "keep", "ALARM", "OK")),
]
# N = 3, M = 2
TWO_OF_THREE = [
    ("0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0 - X - -", ("OK", "OK", "ALARM", "OK")),
    ("- - - - 0", ("OK", "OK", "ALARM", "OK")),
    ("- - - X -", ("ALARM", "keep", "ALARM", "OK")),
]


def points(row: str) -> list[float | None]:
    return [{"0": 0.0, "X": 5.0, "-": None}[c] for c in row.split()]


@pytest.mark.parametrize("m,table", [(3, THREE_OF_THREE), (2, TWO_OF_THREE)], ids=["3-of-3", "2-of-3"])
def test_the_guides_tables(m: int, table: list[tuple[str, tuple[str, ...]]]) -> None:
    for row, expected in table:
        for treatment, want in zip(TREATMENTS, expected, strict=True):
            rule = Rule("GreaterThanThreshold", 1.0, 3, m, treatment)
            for current in ("OK", "ALARM"):
                got = evaluate(rule, points(row), current).state or "keep"
                assert got == want, f"{row} treated as {treatment} (M={m}, now {current}): {got}, the guide says {want}"


def test_premature_alarm_is_avoided_until_the_breach_is_old_enough() -> None:
    rule = Rule("GreaterThanThreshold", 1.0, 3, 3, "missing")
    assert evaluate(rule, points("- - - - X"), "OK").state is None  # "does not go immediately into ALARM"
    assert evaluate(rule, points("- - - X -"), "OK").state is None
    assert evaluate(rule, points("- - X - -"), "OK").state == "ALARM"


@pytest.mark.parametrize("op,value,threshold,breach", [
    ("GreaterThanThreshold", 1.0, 1.0, False), ("GreaterThanOrEqualToThreshold", 1.0, 1.0, True),
    ("LessThanThreshold", 1.0, 1.0, False), ("LessThanOrEqualToThreshold", 1.0, 1.0, True),
    ("LessThanThreshold", 2.0, 4.0, True), ("GreaterThanThreshold", 0.5, 0.0, True),
])
def test_comparison_operators(op: str, value: float, threshold: float, breach: bool) -> None:
    d = evaluate(Rule(op, threshold, 1, 1, "missing"), [value], "OK")
    assert d.state == ("ALARM" if breach else "OK")
    assert d.reason.startswith("Threshold Crossed")


def test_a_definition_cloudwatch_refuses_is_refused() -> None:
    with pytest.raises(ValueError):
        Rule("GreaterThanUpperThreshold", 1.0, 1)  # anomaly-detection operators take no static threshold
    with pytest.raises(ValueError):
        Rule("GreaterThanThreshold", 1.0, 2, 3)  # M > N
    with pytest.raises(ValueError):
        Rule("GreaterThanThreshold", 1.0, 1, 1, "sometimes")
