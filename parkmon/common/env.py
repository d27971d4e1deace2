"""Defaults that come from the environment (deploy/parkmon.env.example documents them)."""

from __future__ import annotations

import os


def default_db() -> str:
    """``PARKMON_DB_URL`` (a URL without its password: libpq reads ``PGPASSWORD``), else the local SQLite file."""
    return os.environ.get("PARKMON_DB_URL") or "sqlite:///parkmon.db"
