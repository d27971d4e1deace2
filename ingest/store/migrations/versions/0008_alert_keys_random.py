"""Alert deliveries' idempotency keys made random (issue 21).

Keys were sha256("<event id>:<subscription id>")[:32]: the same in every fresh database (the first
firing of every deployment had d6b5915c46057bcb005f46f6433df656) and again after a restore from backup,
so a receiver keeping the keys it saw dropped real alerts. New rows get a random key
(ingest.store.alert_outbox.new_key). Here the rows not yet delivered and never leased (``next_try_ms``
still 0: never handed to a channel) get one too. A row already tried keeps its key: the receiver may
have it, and a retry must carry the same one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
import uuid

from alembic import op
from sqlalchemy import BigInteger, Integer, String, Text, column, select, table, update

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# the columns this step reads and writes, frozen here (the live table may change in later steps)
outbox = table("alert_outbox", column("id", Integer), column("idem_key", String(64)), column("payload", Text),
               column("delivered_ms", BigInteger), column("next_try_ms", BigInteger))


def upgrade() -> None:
    conn = op.get_bind()
    waiting = conn.execute(select(outbox.c.id, outbox.c.payload)
                           .where(outbox.c.delivered_ms.is_(None), outbox.c.next_try_ms == 0)).all()
    for row_id, payload in waiting:
        key = uuid.uuid4().hex
        message = json.loads(payload)
        message["id"] = key
        conn.execute(update(outbox).where(outbox.c.id == row_id).values(
            idem_key=key, payload=json.dumps(message, ensure_ascii=False)))


def downgrade() -> None:
    pass  # a random key serves the older code as well as the derived one did: nothing to undo
