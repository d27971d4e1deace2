"""The births a Sparkplug bridge has seen, kept in the store (``sparkplug_births``): an edge node's live NBIRTH
(device "") and its devices' DBIRTHs, as received. A restarted bridge reads them back (ingest/sparkplug/bridge.py)."""

from __future__ import annotations

from sqlalchemy import and_, select

from ingest.store import record_tables as t
from ingest.store.base import Store

Birth = tuple[str, str, str, bytes, int]  # group, node, device ("" for the node), payload, received ms


def keep(store: Store, group: str, node: str, device: str, payload: bytes, received_ms: int) -> None:
    """An NBIRTH (``device`` "") replaces every birth of the node; a DBIRTH replaces its device's."""
    b = t.sparkplug_births
    node_rows = and_(b.c.group_id == group, b.c.node == node)
    with store.engine.begin() as conn:
        conn.execute(b.delete().where(node_rows if device == "" else and_(node_rows, b.c.device == device)))
        conn.execute(b.insert().values(group_id=group, node=node, device=device, payload=payload,
                                       received_ms=received_ms))


def forget(store: Store, group: str, node: str, device: str | None = None) -> None:
    """A death: the node's births (``device`` None: NDEATH) or one device's (DDEATH)."""
    b = t.sparkplug_births
    where = and_(b.c.group_id == group, b.c.node == node)
    with store.engine.begin() as conn:
        conn.execute(b.delete().where(where if device is None else and_(where, b.c.device == device)))


def all_births(store: Store) -> list[Birth]:
    """Every kept birth, each node's NBIRTH before its DBIRTHs."""
    b = t.sparkplug_births
    with store.engine.connect() as conn:
        rows = conn.execute(select(b.c.group_id, b.c.node, b.c.device, b.c.payload, b.c.received_ms)
                            .order_by(b.c.group_id, b.c.node, b.c.device)).all()
    return [(str(g), str(n), str(d), bytes(p), int(r)) for g, n, d, p, r in rows]
