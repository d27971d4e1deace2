"""The SQL store's transactions: ``engine.begin()`` whose connection failures become :class:`StoreError`
(worth retrying; bad data is not) and which forgets registry ids cached inside a rolled-back transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ingest.store.base import StoreError

if TYPE_CHECKING:
    from ingest.store.sql import SqlStore


def transient(exc: BaseException) -> bool:
    """Connection trouble is worth retrying; bad data (DataError, IntegrityError) is not."""
    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


class Transaction:
    """``engine.begin()`` that turns connection failures into :class:`StoreError` and forgets ids it
    cached inside a rolled-back transaction."""

    def __init__(self, store: SqlStore, registry: bool = True) -> None:
        self.store = store
        self._cm: Any = None
        # registry=False: a data-only transaction; no lock, and nothing cached inside it to forget
        self._registry = registry

    def __enter__(self) -> Connection:
        if self._registry:
            self.store._lock.acquire()
        try:
            self._cm = self.store.engine.begin()
            conn: Connection = self._cm.__enter__()
        except DBAPIError as exc:
            if self._registry:
                self.store._lock.release()
            if transient(exc):
                raise StoreError(f"database unavailable: {exc.orig or exc}") from exc
            raise
        return conn

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        try:
            self._cm.__exit__(et, ev, tb)
        except DBAPIError as exc:
            if self._registry:
                self.store._forget_ids()
            if transient(exc):
                raise StoreError(f"database write failed: {exc.orig or exc}") from exc
            raise
        finally:
            if self._registry:
                if et is not None:
                    self.store._forget_ids()
                self.store._lock.release()
        if isinstance(ev, DBAPIError) and transient(ev):
            raise StoreError(f"database write failed: {ev.orig or ev}") from ev
