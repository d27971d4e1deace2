"""Defaults that come from the environment (deploy/parkmon.env.example documents them)."""

from __future__ import annotations

import os


def default_db() -> str:
    """``PARKMON_DB_URL`` (a URL without its password: libpq reads ``PGPASSWORD``), else the local SQLite file."""
    return os.environ.get("PARKMON_DB_URL") or "sqlite:///parkmon.db"


ALERT_ALLOW_HOSTS = "PARKMON_ALERT_ALLOW_HOSTS"


def alert_allow_hosts() -> list[str]:
    """``PARKMON_ALERT_ALLOW_HOSTS``: what alert deliveries may reach beyond the public internet and the robots'
    official hosts, comma- or space-separated: IP addresses or CIDR networks (a park's own webhook receiver at
    ``10.20.0.0/16``, ``127.0.0.1`` for receivers on this machine) and host names (a robot proxy). Read at every
    check, so the API and ingest (separate processes) apply the same setting (analytics/alerts/channels/
    destinations.py; docs/security.md)."""
    return [x for x in os.environ.get(ALERT_ALLOW_HOSTS, "").replace(",", " ").split() if x]
