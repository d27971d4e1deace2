"""Ingest settings."""

from __future__ import annotations

from dataclasses import dataclass

from .store.base import UnknownPointPolicy


@dataclass(frozen=True)
class IngestConfig:
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    client_id: str = "parkmon-ingest-1"
    shared_group: str | None = "ingest"  # None: plain subscription (a single worker)
    db_url: str = "sqlite:///parkmon.db"
    unknown_points: UnknownPointPolicy = "register"
    max_batch_messages: int = 100  # messages written in one transaction
    max_wait_ms: int = 50  # how long to gather messages before writing
    keepalive_s: int = 30
