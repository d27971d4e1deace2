"""TimescaleDB: the rollups as a chain of continuous aggregates - the hour computed from the minute rollup and
the day from the hour, as on plain PostgreSQL (issue 22). A continuous aggregate is refreshed by time range:
built from raw readings, the day re-read every raw row of the day so far at each refresh (every 30 s), the
hour every row of the hour so far. TimescaleDB asks one bucket origin of a level and the level above it,
so the minute rollup is made again too (with the day's origin, China's midnight).

The new aggregates are made empty here (a refresh refuses to run in a transaction) and filled by the next rollup
refresh of parkmon's maintenance, from one ``rollup_dirty`` record spanning the raw readings (enterprise 0: the
TimescaleDB refresh works by time alone). Not at start-up: every worker starting together would refresh at once.
A level is made again only when the level below covers everything it holds: where retention
(``--keep-raw-days``, ``--keep-1m-days``) already dropped rows below whose rollups are still kept, making it
again would lose those, so it and the levels above it stay as they were - computed from raw readings,
slower to refresh, the same figures - and a warning says so. Plain PostgreSQL and SQLite: nothing to do.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from ingest.store import pg_layout

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

log = logging.getLogger("ingest")
_ORIGIN = "2000-01-01 00:00:00+08"  # days in UTC+8, as migration 0002 made them


def _timescale() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "postgresql" and pg_layout.layout(bind) == "timescaledb"


def _earliest(rel: str) -> object:
    """The earliest time ``rel`` holds (raw ``ts`` or a rollup's ``bucket``); None when empty."""
    if rel == "readings":  # no index gives min(ts) of a hypertable: look in its first chunk only
        return op.get_bind().execute(sa.text(
            "SELECT min(ts) FROM readings WHERE ts < (SELECT min(range_end) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'readings')")).scalar()
    return op.get_bind().execute(sa.text(f"SELECT min(bucket) FROM {rel}")).scalar()


def upgrade() -> None:
    if not _timescale():
        return
    bind = op.get_bind()
    earliest = {"readings": _earliest("readings")}  # what each level will hold from, once made again
    rebuild: list[tuple[str, str, str]] = []
    for name, width, source in pg_layout.HIERARCHY:
        first = _earliest(name)
        if pg_layout.in_chain(bind, name, source):
            earliest[name] = first
            continue
        below = earliest.get(source)  # absent: the level below stays as it was, so this one must too
        covered = source in earliest and (first is None or (below is not None and bool(bind.execute(sa.text(
            f"SELECT time_bucket(interval '{width}', CAST(:t AS timestamptz), origin => timestamptz '{_ORIGIN}') "
            "<= :first"), {"t": below, "first": first}).scalar())))
        if covered:
            rebuild.append((name, width, source))
            earliest[name] = below
        else:
            log.warning("migration 0016: %s stays computed from raw readings: %s", name,
                        f"{source} stays so" if source not in earliest else
                        f"{source} no longer holds its oldest rows (retention); made from it, {name} would lose them")
    for name, _width, _source in reversed(rebuild):  # the level above first: it may be built on the one below
        op.execute(f"DROP MATERIALIZED VIEW {name}")
    for name, width, source in rebuild:
        pg_layout.create_rollup_aggregate(bind, name, width, source, _ORIGIN)
    if rebuild and earliest["readings"] is not None:
        # the rebuilt levels always include the minutes, made from raw: refreshing the raw readings' span fills
        # them all (the levels kept from raw are refreshed over it too: where raw is, the same figures)
        bind.execute(sa.text(
            "INSERT INTO rollup_dirty (enterprise_id, from_ms, to_ms) SELECT 0, "
            "(extract(epoch FROM CAST(:first AS timestamptz)) * 1000)::bigint / 60000 * 60000, "
            "(extract(epoch FROM max(ts)) * 1000)::bigint / 60000 * 60000 + 60000 FROM readings WHERE ts >= "
            "(SELECT max(range_start) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings')"),
            {"first": earliest["readings"]})


def downgrade() -> None:
    if not _timescale():
        return
    bind = op.get_bind()
    built = [(n, w) for n, w, src in pg_layout.HIERARCHY if pg_layout.in_chain(bind, n, src)]
    for name, _width in reversed(built):
        op.execute(f"DROP MATERIALIZED VIEW {name}")
    for name, width in built:
        pg_layout.create_continuous_aggregate(bind, name, width, _ORIGIN)
    # made empty: every reading's minutes go through the next refresh again (as migration 0002 did)
    op.execute("INSERT INTO rollup_dirty (enterprise_id, from_ms, to_ms) "
               "SELECT dv.enterprise_id, (min(extract(epoch FROM r.ts) * 1000)::bigint) / 60000 * 60000, "
               "(max(extract(epoch FROM r.ts) * 1000)::bigint) / 60000 * 60000 + 60000 "
               "FROM readings r JOIN points p ON p.id = r.point_id JOIN devices dv ON dv.id = p.device_id "
               "GROUP BY dv.enterprise_id")
