"""A transaction (or a read) on the store's database, for code whose functions still take a connection:
the six systems' records (``ingest.records``), until they become repositories here. Their callers get
the connection from this module instead of reaching into ``store.engine``; each use is one to turn
into a named operation when its records move."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from ingest.store.base import Store, StoreError


@contextmanager
def transaction(store: Store, failure: str | None = None) -> Iterator[Connection]:
    """Committed when the block ends, rolled back when it raises. With ``failure``, a database error
    becomes :class:`StoreError` ("{failure}: why"): transient, so ingest holds its messages and retries;
    a refusal (``RecordError``) passes unchanged."""
    try:
        with store.engine.begin() as conn:
            yield conn
    except DBAPIError as exc:
        if failure is None:
            raise
        raise StoreError(f"{failure}: {exc.orig or exc}") from exc


@contextmanager
def connection(store: Store) -> Iterator[Connection]:
    """For reads."""
    with store.engine.connect() as conn:
        yield conn
