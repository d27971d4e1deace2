"""Webhook: the message as JSON, signed so the receiver can trust it came from parkmon.

Headers: ``X-Parkmon-Event`` (firing / resolved / escalated / manual_resolve), ``X-Parkmon-Idempotency-Key``
(the same for every retry of one delivery: a receiver that keeps the keys it saw gets each alert once),
``X-Parkmon-Timestamp`` (epoch seconds) and ``X-Parkmon-Signature: sha256=<hex>``, the HMAC-SHA256 with the
subscription's secret of ``<timestamp>.<body>`` (the GitHub / Stripe scheme: a replayed or altered body
fails). docs/alerts.md shows how to check it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from analytics.alerts.channels.destinations import check_url
from analytics.alerts.channels.http import post_json, require


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Webhook:
    name = "webhook"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "url", "secret")
        check_url(config["url"], self.name)

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        body = json.dumps(message, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        post_json(config["url"], body, {
            "X-Parkmon-Event": message["event"], "X-Parkmon-Idempotency-Key": message["id"],
            "X-Parkmon-Timestamp": ts, "X-Parkmon-Signature": signature(config["secret"], ts, body)})
