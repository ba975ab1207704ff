"""drill.classify: the definition of what a user saw."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drill.classify import (
    BODY_LIMIT,
    DEFAULT_RULES,
    PETCLINIC_TITLE,
    ClassRule,
    ClassRules,
    classify,
    parse_rules,
)

PETCLINIC = f"<html><head><title>{PETCLINIC_TITLE}</title></head><body>Welcome</body></html>"
MAINT_EN = "<html><body><h1>Down for maintenance</h1></body></html>"
MAINT_UNAVAILABLE = "<p>The service is Temporarily Unavailable, back soon.</p>"
MAINT_KO = "<p>시스템 점검 중입니다</p>"


@pytest.mark.parametrize(
    "body, expected",
    [
        (PETCLINIC, "aws"),
        (MAINT_EN, "maintenance"),
        (MAINT_UNAVAILABLE, "maintenance"),
        (MAINT_KO, "maintenance"),
        ("<html>MAINTENANCE</html>", "maintenance"),  # case-insensitive
        ("<html>hello</html>", "error"),  # unrecognised page
        ("", "error"),
    ],
)
def test_default_rules_on_200(body: str, expected: str) -> None:
    assert classify(200, {}, body) == expected


def test_default_rule_order_is_specific_first() -> None:
    # A PetClinic page mentioning maintenance is still PetClinic: the exact title is tested first.
    assert [r.name for r in DEFAULT_RULES] == ["aws", "maintenance"]
    assert classify(200, {}, PETCLINIC + "<td>annual maintenance visit</td>") == "aws"


def test_default_rules_want_status_200() -> None:
    assert classify(404, {}, PETCLINIC) == "error"
    assert classify(302, {}, MAINT_EN) == "error"
    assert classify(204, {}, "") == "error"


@pytest.mark.parametrize("status", [0, -1, 99, 500, 502, 503, 504, 599])
def test_no_response_and_5xx_are_error_before_rules(status: int) -> None:
    any_status = [ClassRule(name="maintenance", status=None, body_regex="maintenance")]
    assert classify(status, {}, MAINT_EN) == "error"
    assert classify(status, {}, MAINT_EN, any_status) == "error"


def test_503_with_maintenance_text_is_error() -> None:
    assert classify(503, {"Content-Type": "text/html"}, MAINT_EN) == "error"


def test_status_none_means_any_status() -> None:
    rules = [ClassRule(name="maintenance", status=None, body_regex="maintenance")]
    assert classify(404, {}, MAINT_EN, rules) == "maintenance"
    assert classify(200, {}, MAINT_EN, rules) == "maintenance"


def test_status_list() -> None:
    rules = [ClassRule(name="aws", status=[200, 203], body_regex="PetClinic")]
    assert classify(203, {}, PETCLINIC, rules) == "aws"
    assert classify(201, {}, PETCLINIC, rules) == "error"


def test_header_rule_name_case_insensitive_value_regex() -> None:
    rules = [ClassRule(name="azure", header={"X-Served-By": r"^azure-\w+$"})]
    assert classify(200, {"x-served-by": "azure-eastus"}, "", rules) == "azure"
    assert classify(200, {"X-SERVED-BY": "azure-eastus"}, "", rules) == "azure"
    assert classify(200, {"X-Served-By": "aws-eks"}, "", rules) == "error"
    assert classify(200, {}, "", rules) == "error"  # missing header fails the rule


def test_conditions_are_anded() -> None:
    rules = [ClassRule(name="azure", status=[200], body_regex="PetClinic", header={"x-cloud": "azure"})]
    assert classify(200, {"x-cloud": "azure"}, PETCLINIC, rules) == "azure"
    assert classify(200, {"x-cloud": "azure"}, "other page", rules) == "error"
    assert classify(200, {"x-cloud": "aws"}, PETCLINIC, rules) == "error"
    assert classify(201, {"x-cloud": "azure"}, PETCLINIC, rules) == "error"


def test_first_match_wins() -> None:
    azure = ClassRule(name="azure", header={"x-cloud": "azure"})
    rules = [azure, *DEFAULT_RULES]
    assert classify(200, {"x-cloud": "azure"}, PETCLINIC, rules) == "azure"
    assert classify(200, {}, PETCLINIC, rules) == "aws"
    # Same rules, other order: aws is tried first and takes the Azure-served page.
    assert classify(200, {"x-cloud": "azure"}, PETCLINIC, [*DEFAULT_RULES, azure]) == "aws"


def test_only_first_64_kib_of_body_examined() -> None:
    pad = "x" * BODY_LIMIT
    assert BODY_LIMIT == 64 * 1024
    assert classify(200, {}, pad + PETCLINIC) == "error"
    assert classify(200, {}, pad[: -len(PETCLINIC_TITLE)] + PETCLINIC_TITLE) == "aws"  # ends exactly at the limit
    assert classify(200, {}, PETCLINIC + pad) == "aws"


def test_rules_from_config_dicts() -> None:
    raw: list[dict[str, Any]] = [
        {"name": "azure", "header": {"X-Cloud": "azure"}},
        {"name": "aws", "body_regex": "PetClinic"},
        {"name": "maintenance", "status": None, "body_regex": "(?i)maintenance"},
    ]
    rules = parse_rules(raw)
    assert [r.name for r in rules] == ["azure", "aws", "maintenance"]
    assert rules[1].status == [200]  # default
    assert list(ClassRules.model_validate(raw)) == list(rules)
    assert parse_rules(None) == DEFAULT_RULES
    # Round trip through JSON (the probe config carries rules as dicts).
    assert parse_rules([r.model_dump() for r in rules]) == rules


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "error"},  # error is the fallback, not a rule
        {"name": "gcp"},
        {"name": "aws", "body_regex": "("},  # does not compile
        {"name": "aws", "header": {"x": "["}},
        {"name": "aws", "unknown": 1},
    ],
)
def test_invalid_rules_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ClassRule.model_validate(bad)


def test_core_module_imports_no_sdk() -> None:
    import ast
    import pathlib

    import drill.classify
    import drill.timeline

    banned = {"locust", "boto3", "botocore", "azure", "kubernetes", "httpx", "gevent"}
    for mod in (drill.classify, drill.timeline):
        tree = ast.parse(pathlib.Path(mod.__file__).read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & banned, (mod.__name__, names & banned)
