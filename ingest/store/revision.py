"""A database's schema revision, given its URL, and bringing it to the newest (``parkmon ingest migrate``):
without opening a store, whose start would load the registry first."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine

from ingest.store import migrate


@dataclass(frozen=True)
class Revisions:
    before: str | None  # None: a database parkmon has not made yet
    after: str | None
    newest: str


def migrate_url(url: str, upgrade: bool = True) -> Revisions:
    """The revision before and after bringing ``url`` up to date (``upgrade=False``: only look)."""
    engine = create_engine(url)
    try:
        before = migrate.current(engine)
        if upgrade:
            migrate.upgrade(engine)
        return Revisions(before, migrate.current(engine) if upgrade else before, migrate.head())
    finally:
        engine.dispose()
