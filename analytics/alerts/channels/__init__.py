"""Alert delivery channels: one module each, registered in :data:`CHANNELS` (adding one is a module and
a line). A channel sends one message (the outbox payload) to one subscription's configuration and
raises :class:`DeliveryError` when it did not land; the dispatcher retries with back-off."""

from __future__ import annotations

from typing import Any, Protocol

from parkmon.common.seams import resolve


class DeliveryError(Exception):
    """The message did not reach the receiver; retried later. The text says what the receiver said."""


class Channel(Protocol):
    name: str

    def check(self, config: dict[str, Any]) -> None:
        """Raise ValueError naming the field when a subscription's configuration cannot work."""

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None: ...


CHANNELS: dict[str, str] = {
    "webhook": "analytics.alerts.channels.webhook:Webhook",
    "mqtt": "analytics.alerts.channels.mqtt:Mqtt",
    "email": "analytics.alerts.channels.mail:Email",
    "wecom": "analytics.alerts.channels.robots:WeCom",
    "dingtalk": "analytics.alerts.channels.robots:DingTalk",
    "feishu": "analytics.alerts.channels.robots:Feishu",
}


def load(name: str) -> Channel:
    if name not in CHANNELS:
        raise ValueError(f"no alert channel {name!r}; known: {', '.join(sorted(CHANNELS))}")
    ch: Channel = resolve(CHANNELS[name])()
    return ch
