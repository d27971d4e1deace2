"""An MQTT message as ingest's consumers (ingest.mqtt, ingest.sparkplug) hold it between paho's thread and the
thread that acks it."""

from __future__ import annotations

from dataclasses import dataclass, field

from parkmon.common.clock import now_ms


@dataclass
class Received:
    """Copied out of paho's message (its buffer is reused); ``generation`` is the connection it came on: an
    ack is sent only on the same one (after a reconnect the broker redelivers under new ids)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_ms: int = field(default_factory=lambda: now_ms())
