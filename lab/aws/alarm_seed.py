"""The design's CloudWatch alarms (multicloud-infra-design.md §7.2), seeded as the team's Terraform would.

Only the alarms whose metrics the lab publishes (lab.monitoring) are seeded: the ALB's, the node
count and the primary's CPU. The design gives a name, a metric and a threshold for each; the rest —
statistic, period, evaluation periods, missing-data treatment — is what an `aws_cloudwatch_metric_alarm`
for that metric would say, chosen and argued here:
- unhealthy-hosts: UnHealthyHostCount > 0, Maximum over 1 minute, 1 of 1 (any unhealthy target in a
  minute); missing data is `missing` (the metric is reported every minute while the ALB exists).
- alb-5xx-errors-high: HTTPCode_ELB_5XX_Count >= 10 in 5 minutes ("10회/5분"): Sum over 300 s, 1 of
  1; missing = notBreaching (ELB reports no count for a minute without errors).
- node-count-low: cluster_node_count < min_nodes, Average over 1 minute, 1 of 1; min_nodes is the
  cluster's node groups' minimum sizes added (web 2 + was 2); missing = breaching (no node count
  means no cluster reporting).
- rds-cpu-high: CPUUtilization > 80 %, Average over 5 minutes, 1 of 1 (a guard: a drill stops when
  the primary is overloaded, `stop.alarms`).
Each alarm notifies the alarm topic on ALARM and on OK, as the chat integration posts both.
"""
from __future__ import annotations

from typing import Any

from lab import topology as T
from lab.monitoring import arn_suffix


def alarm_definitions(lb_arn: str, tg_arn: str, topic_arn: str) -> list[dict[str, Any]]:
    actions = {"AlarmActions": [topic_arn], "OKActions": [topic_arn], "ActionsEnabled": True}
    lb = {"Name": "LoadBalancer", "Value": arn_suffix(lb_arn)}
    tg = {"Name": "TargetGroup", "Value": arn_suffix(tg_arn)}
    min_nodes = 2 * T.NODEGROUP_SCALING["minSize"]  # two node groups (web, was) at their minimum
    return [
        {"AlarmName": "unhealthy-hosts", "AlarmDescription": "비정상 대상 감지 (ALB target unhealthy)",
         "Namespace": "AWS/ApplicationELB", "MetricName": "UnHealthyHostCount", "Dimensions": [tg, lb],
         "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
         "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing", **actions},
        {"AlarmName": "alb-5xx-errors-high", "AlarmDescription": "ALB 5xx 에러 과다 (10 in 5 min)",
         "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_ELB_5XX_Count", "Dimensions": [lb],
         "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
         "Threshold": 10.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
         **actions},
        {"AlarmName": "node-count-low", "AlarmDescription": "노드 수 부족 (cluster_node_count < min_nodes)",
         "Namespace": "ContainerInsights", "MetricName": "cluster_node_count",
         "Dimensions": [{"Name": "ClusterName", "Value": T.CLUSTER}],
         "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
         "Threshold": float(min_nodes), "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
         **actions},
        {"AlarmName": "rds-cpu-high", "AlarmDescription": "DB CPU 과부하",
         "Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
         "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": T.RDS_INSTANCE}],
         "Statistic": "Average", "Period": 300, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
         "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing", **actions},
    ]


def seed_alarms(client: Any, lb_arn: str, tg_arn: str, chat_url: str) -> dict[str, str]:
    """Topic, its subscribers (the chat stand-in over HTTP, the receipts queue) and the alarms.
    `client(service)` makes a boto3 client for the lab's moto."""
    sns, sqs, cw = client("sns"), client("sqs"), client("cloudwatch")
    topic_arn = sns.create_topic(Name=T.ALARM_TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=T.ALARM_RECEIPTS_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=chat_url)
    for alarm in alarm_definitions(lb_arn, tg_arn, topic_arn):
        cw.put_metric_alarm(**alarm)
    return {"alarm_topic_arn": topic_arn, "alarm_receipts_queue_url": queue_url}
