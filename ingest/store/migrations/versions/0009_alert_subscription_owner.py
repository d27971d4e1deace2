"""Alert subscriptions belong to their holder; their secrets out of what users read (issue 20 items 4, 6).

- ``alert_subscriptions.owner``: the name of the token (or OIDC user) that made it. Existing rows get the
  actor of their ``create`` row in the audit log - the token holder's name, the same the API now stores - and
  NULL where there is none (then only an administrator sees and deletes it).
- The audit rows of ``alert_subscriptions`` showed the robots' URLs with their tokens (``access_token``,
  ``key``, a Feishu hook's path) and webhooks' ``user:password``: their ``config`` is masked again.
- ``alert_outbox.last_error`` kept the first 200 bytes of a receiver's answer (an attacker read local files
  and internal services that way): every stored error text is replaced by a fixed one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from typing import Any

from alembic import op
from sqlalchemy import Column, Integer, String, Text, column, select, table, update

from parkmon.common.secrecy import mask_config

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CLEARED = "(an error from before migration 0009: its text was removed, it could hold the receiver's answer)"

# the columns this step reads and writes, frozen here (the live tables may change in later steps)
subs = table("alert_subscriptions", column("id", Integer), column("owner", String(128)))
audit = table("audit_log", column("id", Integer), column("actor", String(128)), column("action", String(32)),
              column("entity", String(64)), column("entity_key", Text), column("before", Text),
              column("after", Text))
outbox = table("alert_outbox", column("id", Integer), column("last_error", Text))


def _masked(doc: str | None) -> str | None:
    if doc is None:
        return None
    try:
        d: Any = json.loads(doc)
    except ValueError:
        return doc
    if isinstance(d, dict) and "config" in d:
        d["config"] = mask_config(d["config"])
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


def upgrade() -> None:
    op.add_column("alert_subscriptions", Column("owner", String(128), nullable=True))
    conn = op.get_bind()
    makers: dict[str, str] = {}
    for key, actor in conn.execute(select(audit.c.entity_key, audit.c.actor).where(
            audit.c.entity == "alert_subscriptions", audit.c.action == "create").order_by(audit.c.id)):
        makers.setdefault(str(key), str(actor))  # the first create of an id (ids are not reused)
    for (sid,) in conn.execute(select(subs.c.id)).all():
        if str(sid) in makers:
            conn.execute(update(subs).where(subs.c.id == sid).values(owner=makers[str(sid)]))
    for row_id, before, after in conn.execute(select(audit.c.id, audit.c.before, audit.c.after).where(
            audit.c.entity == "alert_subscriptions")).all():
        conn.execute(update(audit).where(audit.c.id == row_id).values(before=_masked(before), after=_masked(after)))
    conn.execute(update(outbox).where(outbox.c.last_error.is_not(None)).values(last_error=CLEARED))


def downgrade() -> None:
    with op.batch_alter_table("alert_subscriptions") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("owner")
