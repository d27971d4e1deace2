"""Alembic migrations of parkmon's SQL schema (run by ``store.create_schema()``)."""
