"""lab.faults without a lab: rule validation, counting, stale-read memory, the shapes botocore parses."""
from __future__ import annotations

import pytest

from lab import fault_shapes
from lab.faults import Faults, FaultSpecError


@pytest.mark.parametrize(("spec", "message"), [
    ({"surface": "gcp", "kind": "throttle"}, "surface: 'gcp' is not one of"),
    ({"surface": "aws", "kind": "partial"}, "kind: aws cannot answer 'partial'"),
    ({"surface": "aws", "kind": "throttle", "count": True}, "count: True is not a positive integer"),
    ({"surface": "aws", "kind": "throttle", "status": 503}, "status: 503 is for a 5xx fault"),
    ({"surface": "arm", "kind": "hang", "seconds": -1}, "seconds: -1 is not a number of seconds"),
    ({"surface": "aws", "kind": "throttle", "when": "now"}, "when: unknown field"),
])
def test_a_rule_the_lab_cannot_honour_is_refused_naming_the_field(spec: dict, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        Faults().add(spec)


def test_a_rule_answers_its_count_of_matching_calls_then_stops() -> None:
    f = Faults(time_scale=30.0)
    rule = f.add({"surface": "aws", "kind": "throttle", "match": "eks:Update*", "count": 2})
    assert f.take("aws", "eks:DescribeNodegroup") is None
    assert f.take("arm", "eks:UpdateNodegroupConfig") is None
    assert f.take("aws", "EKS:updatenodegroupconfig") is rule  # case-insensitive, as the keys' spelling varies
    assert f.take("aws", "eks:UpdateNodegroupConfig") is rule
    assert f.take("aws", "eks:UpdateNodegroupConfig") is None
    assert rule.remaining == 0 and len(rule.hits) == 2
    assert f.retry_after(f.add({"surface": "arm", "kind": "throttle", "retry_after": 60})) == 2  # 60 s real at 30×


def test_a_stale_read_gives_the_previous_answer_count_times_and_only_when_it_changed() -> None:
    f = Faults()
    assert f.read("kube", "GET /x", 200, [], b"v1") is None  # remembered
    f.add({"surface": "kube", "kind": "stale", "match": "GET /x", "count": 2})
    assert f.read("kube", "GET /x", 200, [], b"v1") is None  # unchanged: nothing to be stale about
    assert f.read("kube", "GET /x", 200, [], b"v2").body == b"v1"
    assert f.read("kube", "GET /x", 200, [], b"v2").body == b"v1"
    assert f.read("kube", "GET /x", 200, [], b"v2") is None  # the rule is spent: fresh
    assert f.read("kube", "GET /x", 404, [], b"gone") is None  # only 2xx answers are remembered
    # Reads of other resources with the same call key are other reads (memo).
    f.add({"surface": "aws", "kind": "stale", "match": "autoscaling:*", "count": 5})
    assert f.read("aws", "autoscaling:Describe", 200, [], b"a", memo="group-a") is None
    assert f.read("aws", "autoscaling:Describe", 200, [], b"b", memo="group-b") is None


@pytest.mark.parametrize(("service", "operation", "code"), [
    ("eks", "DescribeNodegroup", "ThrottlingException"), ("autoscaling", "DescribeAutoScalingGroups", "Throttling"),
    ("elbv2", "DescribeTargetHealth", "Throttling"), ("cloudfront", "GetDistribution", "Throttling"),
    ("secretsmanager", "GetSecretValue", "ThrottlingException"),
])
def test_aws_throttling_shapes_parse_as_the_services_errors(service: str, operation: str, code: str) -> None:
    """botocore's own parser for the service's protocol reads the code botocore's retry handler retries."""
    from botocore.parsers import create_parser
    from urllib3 import HTTPHeaderDict  # case-insensitive, as the headers botocore parses

    model = fault_shapes.aws_service(service)
    status, headers, body = fault_shapes.aws(service, "throttle")
    parsed = create_parser(model.protocol).parse(
        {"status_code": status, "headers": HTTPHeaderDict(headers), "body": body}, model.operation_model(operation).output_shape)
    assert (status, parsed["Error"]["Code"]) == (400, code)
