"""MQTT: the message as JSON on a topic (QoS 1), for SCADA and park systems that listen on the broker.
The idempotency key is the message's ``id``."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from analytics.alerts.channels import DeliveryError
from analytics.alerts.channels.http import require


class Mqtt:
    name = "mqtt"

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int, str], mqtt.Client] = {}
        self._lock = threading.Lock()

    def check(self, config: dict[str, Any]) -> None:
        require(config, "host", "topic")

    def _client(self, config: dict[str, Any]) -> mqtt.Client:
        key = (config["host"], int(config.get("port", 1883)), str(config.get("username", "")))
        with self._lock:
            c = self._clients.get(key)
            if c is None or not c.is_connected():
                if c is not None:
                    c.loop_stop()
                c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
                if config.get("username"):
                    c.username_pw_set(config["username"], config.get("password"))
                try:
                    c.connect(key[0], key[1], keepalive=30)
                except OSError as exc:
                    raise DeliveryError(f"mqtt {key[0]}:{key[1]}: {exc}") from None
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
