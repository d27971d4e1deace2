"""Stores by URL scheme. Adding a back end is one module and one line here."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.store.base import ReadingsMirror, Store, StoreError, UnknownPointPolicy
from parkmon.common.seams import resolve
from parkmon.common.secrecy import mask_url

__all__ = ["STORES", "Store", "StoreError", "open_store"]

STORES: dict[str, str] = {
    "sqlite": "ingest.store.sqlite:SqliteStore",
    "postgresql": "ingest.store.postgres:PostgresStore",
}


def open_store(url: str, unknown_points: UnknownPointPolicy = "register",
               mirrors: Sequence[ReadingsMirror] = ()) -> Store:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in STORES:
        raise ValueError(f"database URL {mask_url(url)!r}: scheme {scheme!r} is not one of {', '.join(STORES)} "
                         "(e.g. sqlite:///parkmon.db or postgresql+psycopg://user:pw@host/db)")
    store: Store = resolve(STORES[scheme])(url, unknown_points=unknown_points, mirrors=mirrors)
    return store
