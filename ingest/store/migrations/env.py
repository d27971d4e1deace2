"""Alembic environment: parkmon runs migrations on a connection it opened (see ingest/store/migrate.py)."""

from __future__ import annotations

from alembic import context

from ingest.store import record_tables as _tables  # noqa: F401  (its tables join the metadata)
from ingest.store.records import record_types
from ingest.store.schema import metadata

record_types()  # each record type's module defines its tables on the metadata (for --autogenerate)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place: batch mode rebuilds the table
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
