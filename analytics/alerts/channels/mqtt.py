"""MQTT: the message as JSON on a topic (QoS 1), for SCADA and park systems that listen on the broker.
The idempotency key is the message's ``id``. The broker's host is checked like every alert destination
(analytics/alerts/channels/destinations.py) when written and at every connection, made to the address
checked (the platform's own broker on a private network: the deployment lists it in
PARKMON_ALERT_ALLOW_HOSTS)."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from analytics.alerts.channels import DeliveryError
from analytics.alerts.channels.destinations import check_host, checked_address
from analytics.alerts.channels.http import require


class Mqtt:
    name = "mqtt"

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int, str, str], mqtt.Client] = {}
        self._lock = threading.Lock()

    def check(self, config: dict[str, Any]) -> None:
        require(config, "host", "topic")
        if not isinstance(config["host"], str):
            raise ValueError("host: the broker's host name or address")
        check_host(config["host"])
        port = config.get("port", 1883)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError("port: a TCP port, 1 to 65535")

    def _client(self, config: dict[str, Any]) -> mqtt.Client:
        # the password in the key too: a subscription naming another's broker login without its password
        # must not publish over the connection the other one opened
        key = (config["host"], int(config.get("port", 1883)), str(config.get("username", "")),
               str(config.get("password", "")))
        with self._lock:
            c = self._clients.get(key)
            if c is None or not c.is_connected():
                if c is not None:
                    c.loop_stop()
                c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
                if config.get("username"):
                    c.username_pw_set(config["username"], config.get("password"))
                try:  # to the address checked, resolved now: what is checked is what is connected to
                    c.connect(checked_address(key[0], key[1]), key[1], keepalive=30)
                except OSError as exc:
                    raise DeliveryError(f"mqtt {key[0]}:{key[1]}: {exc.strerror or type(exc).__name__}") from None
                c.loop_start()
                self._clients[key] = c
            return c

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        c = self._client(config)
        info = c.publish(config["topic"], json.dumps(message, ensure_ascii=False), qos=int(config.get("qos", 1)))
        try:
            info.wait_for_publish(timeout=10)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"mqtt {config['topic']}: {exc}") from None
        if not info.is_published():
            raise DeliveryError(f"mqtt {config['topic']}: the broker did not acknowledge within 10 s")
