"""moto in server mode inside the lab process, with the lab's corrections installed and seeded."""
from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from moto.backends import get_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from lab import topology as T
from lab.aws import cloudfront as lab_cf
from lab.aws import cloudwatch as lab_cw
from lab.aws import eks as lab_eks
from lab.aws import elbv2 as lab_elb
from lab.aws import sns as lab_sns
from lab.aws.fault_gate import FaultGate
from lab.aws.seed import AwsSeed, client, seed
from lab.events import EventLog
from lab.faults import Faults
from lab.ports import free_port
from lab.timing import Timings


class MotoServer:
    """moto's WSGI application served threaded on 127.0.0.1 (as moto's ThreadedMotoServer does),
    behind the lab's fault gate."""

    def __init__(self, port: int, faults: Faults) -> None:
        self.port = port
        self.faults = faults
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        app = FaultGate(DomainDispatcherApplication(create_backend_app), self.faults)
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"moto:{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class AwsControlPlane:
    def __init__(self, timings: Timings, events: EventLog, time_scale: float = 1.0, faults: Faults | None = None) -> None:
        self.timings = timings
        self.time_scale = time_scale
        self.events = events
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # moto takes any credentials; fresh ones per lab keep the secret-masking path honest.
        self.access_key = "AKIA" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.cloudfront = lab_cf.CloudFrontModel(
            deploy_seconds=timings.cloudfront_deploy_seconds,
            invalidation_seconds=timings.cloudfront_invalidation_seconds,
            events=events,
            locations=tuple(name for name, _ in T.EDGE_LOCATIONS),
        )
        self.target_health = lab_elb.TargetHealthRegistry()
        self.alarms = lab_cw.Alarms(T.REGION, T.ACCOUNT_ID)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per API call otherwise
        self.faults = faults or Faults(events=events)
        self._server = MotoServer(self.port, self.faults)
        self.seed: AwsSeed | None = None

    def start(self, db_secret: dict[str, Any]) -> AwsSeed:
        lab_cf.install(self.cloudfront)
        lab_elb.install(self.target_health)
        lab_eks.install(self.timings.nodegroup_update_seconds, self.events)
        lab_cw.install(self.alarms)
        lab_sns.install(self.endpoint, self.time_scale)
        self.alarms.publish = self._publish
        self._server.start()
        self.seed = seed(self.endpoint, self.access_key, self.secret_key, db_secret)
        # The distribution exists before the drill: its first deployment is long finished.
        self.cloudfront.record(self.seed.distribution_id, self._raw_config(), self._etag(), immediate=True)
        self._warm()
        return self.seed

    def _publish(self, topic_arn: str, subject: str, message: str) -> None:
        """An alarm action: CloudWatch publishes to SNS (in-process, as the service itself)."""
        get_backend("sns")[T.ACCOUNT_ID][T.REGION].publish(message, arn=topic_arn, subject=subject)

    def seed_alarms(self, chat_url: str) -> dict[str, str]:
        """The design's alarms, their topic and its subscribers (lab.aws.alarm_seed)."""
        from lab.aws.alarm_seed import seed_alarms

        assert self.seed
        return seed_alarms(self._client, self.seed.alb_arn, self.seed.target_group_arn, chat_url)

    def confirm_subscription(self, topic_arn: str, token: str) -> str:
        """What a subscriber does with SNS's SubscriptionConfirmation: ConfirmSubscription with the token."""
        return str(self._client("sns").confirm_subscription(TopicArn=topic_arn, Token=token)["SubscriptionArn"])

    def in_service(self, nodegroup: str) -> int:
        """InService instances of a node group's Auto Scaling group (its nodes, for Container Insights)."""
        group = self.auto_scaling_group(self.nodegroup(T.CLUSTER, nodegroup))
        return sum(1 for s in list(group.instance_states) if s.lifecycle_state == "InService")

    def _client(self, service: str) -> Any:
        return client(service, self.endpoint, self.access_key, self.secret_key)

    def _raw_config(self) -> dict[str, Any]:
        assert self.seed
        return self._client("cloudfront").get_distribution_config(Id=self.seed.distribution_id)["DistributionConfig"]

    def _etag(self) -> str:
        assert self.seed
        return self._client("cloudfront").get_distribution(Id=self.seed.distribution_id)["ETag"]

    def _warm(self) -> None:
        # First call per service costs ~1 s in moto; pay it now, not during the drill.
        assert self.seed
        self._client("eks").describe_nodegroup(clusterName=T.CLUSTER, nodegroupName=T.WEB_NODEGROUP)
        self._client("elbv2").describe_target_health(TargetGroupArn=self.seed.target_group_arn)
        self._client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[])
        self._client("eks").list_updates(name=T.CLUSTER, nodegroupName=T.WEB_NODEGROUP)
        self._client("secretsmanager").describe_secret(SecretId=T.DB_SECRET_NAME)
        self._client("cloudwatch").describe_alarms(AlarmNames=["-"])
        self._client("sqs").list_queues()

    def nodegroup(self, cluster: str, name: str) -> Any:
        return get_backend("eks")[T.ACCOUNT_ID][T.REGION].clusters[cluster].nodegroups[name]

    def auto_scaling_group(self, nodegroup: Any) -> Any:
        group = lab_eks.auto_scaling_group(nodegroup)
        if group is None:
            raise RuntimeError(f"node group {nodegroup.nodegroup_name} has no Auto Scaling group in moto")
        return group

    def target_group(self, arn: str) -> Any:
        return get_backend("elbv2")[T.ACCOUNT_ID][T.REGION].target_groups[arn]

    def stop(self) -> None:
        self._server.stop()
