"""Ingest settings."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.store.base import UnknownPointPolicy


@dataclass(frozen=True)
class IngestConfig:
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca: str | None = None  # set: TLS to the broker, trusting this CA
    mqtt_tls_cert: str | None = None  # a client certificate, for a broker that asks for one
    mqtt_tls_key: str | None = None
    # one per worker, kept across restarts (its persistent session holds its messages). The broker of `parkmon
    # ingest mqtt-auth` lets ingest choose it on the services' listeners only, where no device logs in; keep it
    # starting with "parkmon-": no device login may (ingest/mqtt/acl.py), as a device's login is its client id
    client_id: str = "parkmon-ingest-1"
    # None: a plain subscription, for a single worker. Several workers share the load with a
    # shared subscription ("$share/<group>/..."); mosquitto 2.0.11 (Debian 12) does not restore
    # a shared subscription's queue across a broker restart (measured, see docs/decisions/0003),
    # so the default stays plain until scale-out (issue 4) brings its own guarantees. The group is a
    # secret (mqtt-auth's ingest.env): any login naming it takes a share, dropped if it may not read it.
    shared_group: str | None = None
    db_url: str = "sqlite:///parkmon.db"
    unknown_points: UnknownPointPolicy = "register"
    max_batch_messages: int = 100  # messages written in one transaction
    max_wait_ms: int = 50  # how long to gather messages before writing
    writers: int | None = None  # writer threads; None: 2 on PostgreSQL, 1 on SQLite (one writer at a time)
    keepalive_s: int = 30
