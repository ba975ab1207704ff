"""SNS HTTP(S) subscriptions in the lab, delivered as Amazon SNS delivers them.

moto confirms an HTTP subscription at once and posts notifications without SNS's headers. Amazon
SNS Developer Guide, *Fanout to HTTP/S endpoints* ("Subscribe", "Confirm the subscription") and
*Parsing message formats*:
- Subscribe to an HTTP(S) endpoint returns `pending confirmation`; SNS POSTs a
  `SubscriptionConfirmation` (Token, SubscribeURL, Message …) to the endpoint, and nothing else is
  delivered until the endpoint confirms (visiting SubscribeURL, or ConfirmSubscription with the
  Token); the subscription's `PendingConfirmation` attribute says which it is.
- Every POST carries `x-amz-sns-message-type`, `x-amz-sns-message-id`, `x-amz-sns-topic-arn` (and,
  for notifications, `x-amz-sns-subscription-arn`), with the JSON document as a text/plain body.
- A delivery that fails is retried (the default HTTP delivery policy: 3 retries, 20 s apart —
  scaled here); deliveries run apart from the publisher, who is not kept waiting.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import requests
from moto.core.responses import ActionResult
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.sns import models as sns_models
from moto.sns import responses as sns_responses
from moto.sns.exceptions import SNSInvalidParameter

HTTP = ("http", "https")
RETRIES = 3
RETRY_SECONDS = 20.0

_settings: dict[str, Any] = {}


def install(endpoint: str, time_scale: float) -> None:
    """Patch moto's SNS (in this process). `endpoint`: moto's own URL, for SubscribeURL."""
    first = not _settings
    _settings.update(endpoint=endpoint.rstrip("/"), time_scale=time_scale)
    if not first:
        return

    orig_subscribe = sns_models.SNSBackend.subscribe

    def subscribe(self: Any, topic_arn: str, endpoint: str, protocol: str) -> Any:
        existing = self._find_subscription(topic_arn, endpoint, protocol)
        sub = orig_subscribe(self, topic_arn, endpoint, protocol)
        if protocol in HTTP and existing is None:
            sub.confirmed = False
            sub.token = secrets.token_hex(64)  # type: ignore[attr-defined]  # the lab keeps the token on moto's subscription
            sub.attributes["PendingConfirmation"] = "true"
            sub.attributes["ConfirmationWasAuthenticated"] = "false"
            _deliver(sub, "SubscriptionConfirmation", confirmation(sub), None)
        return sub

    sns_models.SNSBackend.subscribe = subscribe  # type: ignore[method-assign]

    orig_sub_response = sns_responses.SNSResponse.subscribe

    def subscribe_response(self: Any) -> Any:
        result = orig_sub_response(self)
        protocol = self._get_param("Protocol")
        if protocol in HTTP and str(self._get_param("ReturnSubscriptionArn")).lower() != "true":
            sub = self.backend._find_subscription(self._get_param("TopicArn"), self._get_param("Endpoint"), protocol)
            if sub is not None and not getattr(sub, "confirmed", True):
                return ActionResult({"SubscriptionArn": "pending confirmation"})
        return result

    sns_responses.SNSResponse.subscribe = subscribe_response  # type: ignore[method-assign]

    def confirm_subscription(self: Any) -> ActionResult:
        topic_arn, token = self._get_param("TopicArn"), self._get_param("Token")
        if topic_arn not in self.backend.topics:
            raise sns_models.SNSNotFoundError("Topic does not exist")
        for sub in self.backend.subscriptions.values():
            if sub.topic.arn == topic_arn and getattr(sub, "token", None) == token:
                sub.confirmed = True
                sub.attributes["PendingConfirmation"] = "false"
                return ActionResult({"SubscriptionArn": sub.arn})
        raise SNSInvalidParameter("Invalid token")

    sns_responses.SNSResponse.confirm_subscription = confirm_subscription  # type: ignore[method-assign]

    orig_publish = sns_models.Subscription.publish

    def publish(self: Any, message: str, message_id: str, subject: str | None = None, **kwargs: Any) -> None:
        if self.protocol not in HTTP:
            return orig_publish(self, message, message_id, subject, **kwargs)
        if not getattr(self, "confirmed", True):
            return None  # pending confirmation: SNS delivers nothing yet
        _deliver(self, "Notification", self.get_post_data(message, message_id, subject), self.arn)
        return None

    sns_models.Subscription.publish = publish  # type: ignore[method-assign,assignment]  # moto patched in place


def confirmation(sub: Any) -> dict[str, Any]:
    topic = sub.topic.arn
    url = (f"{_settings['endpoint']}/?Action=ConfirmSubscription&TopicArn={requests.utils.quote(topic, safe='')}"
           f"&Token={sub.token}")
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": secrets.token_hex(16),
        "Token": sub.token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.\n"
                   "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": url,
        "Timestamp": iso_8601_datetime_with_milliseconds(),
        "SignatureVersion": "2",
        "Signature": "",
        "SigningCertURL": f"https://sns.{topic.split(':')[3]}.amazonaws.com/SimpleNotificationService.pem",
    }


def _deliver(sub: Any, kind: str, body: dict[str, Any], subscription_arn: str | None) -> None:
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": kind,
               "x-amz-sns-message-id": str(body.get("MessageId", "")), "x-amz-sns-topic-arn": sub.topic.arn,
               "User-Agent": "Amazon Simple Notification Service Agent"}
    if subscription_arn:
        headers["x-amz-sns-subscription-arn"] = subscription_arn
    data = json.dumps(body)
    delay = RETRY_SECONDS / float(_settings.get("time_scale", 1.0))

    def run() -> None:
        for attempt in range(RETRIES + 1):
            try:
                r = requests.post(sub.endpoint, data=data.encode(), headers=headers, timeout=15)
                if 200 <= r.status_code < 300:
                    return
            except requests.RequestException:
                pass
            if attempt < RETRIES:
                time.sleep(delay)

    threading.Thread(target=run, name=f"sns-{kind}", daemon=True).start()
