"""API access tokens (``api_tokens``, issue 10): only a token's SHA-256 is kept; the token itself is
returned once, when it is made. Who may do what with a token is parkmon.api.tenancy's."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from ingest.store import record_tables as t
from ingest.store.base import Store
from parkmon.common.clock import now_ms


@dataclass(frozen=True)
class Holder:
    """Whom a live token was made for."""

    name: str
    role: str
    regions: frozenset[str]
    park: str | None
    enterprise: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(store: Store, name: str, role: str, regions: Iterable[str] = (), park: str | None = None,
           enterprise: str | None = None, expires_ms: int | None = None) -> str:
    """A new token; returned once, stored only as its hash."""
    token = "pkm_" + secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        conn.execute(insert(t.api_tokens).values(
            token_sha256=token_hash(token), name=name, role=role, regions=",".join(sorted(regions)),
            park=park, enterprise=enterprise, created_ms=now_ms(), expires_ms=expires_ms))
    return token


def holder(store: Store, token: str, at_ms: int) -> Holder | None:
    """Whom ``token`` was made for, unless it is unknown, revoked or expired at ``at_ms``."""
    tk = t.api_tokens
    with store.engine.connect() as conn:
        row = conn.execute(select(tk).where(tk.c.token_sha256 == token_hash(token), tk.c.revoked_ms.is_(None))).first()
    if row is None or (row.expires_ms is not None and row.expires_ms <= at_ms):
        return None
    return Holder(row.name, row.role, frozenset(x for x in row.regions.split(",") if x), row.park, row.enterprise)


def revoke(store: Store, token_id: int) -> bool:
    """False when there is no live token with that id."""
    tk = t.api_tokens
    with store.engine.begin() as conn:
        return conn.execute(update(tk).where(tk.c.id == token_id, tk.c.revoked_ms.is_(None))
                            .values(revoked_ms=now_ms())).rowcount == 1


def listing(store: Store) -> list[dict[str, Any]]:
    """Every token ever made, without its hash."""
    tk = t.api_tokens
    with store.engine.connect() as conn:
        return [{k: v for k, v in r._mapping.items() if k != "token_sha256"}
                for r in conn.execute(select(tk).order_by(tk.c.id))]
