"""Backup and restore, performed for real: SQLite files and a real PostgreSQL server (pg_dump /
pg_restore), as docs/operations.md tells an operator to do it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.store import open_store
from ingest.store.backup import BackupError, backup, main, restore
from ingest.store.base import IncomingBatch
from parkmon.common import wire
from tests.pg_server import Postgres

T0 = 1_795_363_200_000


def _batch(seq: int, gw: str, start: int, n: int = 500) -> IncomingBatch:
    samples = [(f"m{k % 5}.p{k % 7}", start + k * 1000, float(seq * 1000 + k), 0) for k in range(n)]
    return IncomingBatch("demo", f"e-{gw}", gw, wire.Batch(1, gw, seq, T0, samples), T0)


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(source URL, empty restore target URL) on one back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'live.db'}", f"sqlite:///{tmp_path / 'restored.db'}"
    pg: Postgres = request.getfixturevalue("postgres")
    return pg.create_database(), pg.create_database()


def test_restore_brings_back_exactly_the_backup_and_ingest_carries_on(pair: tuple[str, str], tmp_path: Path) -> None:
    src_url, dst_url = pair
    src = open_store(src_url)
    src.create_schema()
    old = [_batch(s, f"gw{s % 3}", T0 + s * 1_000_000) for s in range(1, 9)]
    src.write_batches(old)
    src.dead_letter("parkmon/v1/demo/e/gw/data", b"{broken", "not JSON", T0)
    src.refresh_rollups()
    points = {p.key: p.id for p in src.points("demo")}
    series = src.readings(list(points.values()), 0, 2**62)
    archive = tmp_path / "parkmon.backup"
    lines: list[str] = []
    held = backup(src_url, archive, progress=lines.append)
    assert held["readings"] == 4000 and held["dead_letters"] == 1 and any("wrote" in ln for ln in lines)
    src.write_batches([_batch(99, "gw1", T0 + 99 * 1_000_000)])  # after the backup: not in it
    src.close()

    restored = restore(archive, dst_url, progress=lines.append)
    assert restored == held
    dst = open_store(dst_url)
    dst.create_schema()  # already at the newest revision: nothing to do
    try:
        assert {p.key: p.id for p in dst.points("demo")} == points
        assert dst.readings(list(points.values()), 0, 2**62) == series
        assert [d.reason for d in dst.dead_letters()] == ["not JSON"]
        assert dst.rollups(list(points.values()), 0, 2**62, "1d") != {}
        # ingest carries on: a redelivered old batch changes nothing, a new one lands
        again = dst.write_batches([old[0]])
        assert (again.inserted, again.replayed_batches) == (0, 1)
        assert dst.write_batches([_batch(100, "gw1", T0 + 100 * 1_000_000)]).inserted == 500
    finally:
        dst.close()

    with pytest.raises(BackupError, match=r"already holds parkmon data.*--force"):
        restore(archive, dst_url, progress=lines.append)
    assert restore(archive, dst_url, force=True, progress=lines.append) == held


def test_cli_backup_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    st = open_store(url)
    st.create_schema()
    st.write_batches([_batch(1, "gw", T0)])
    st.close()
    assert main(["backup", "--db", url, "--out", str(tmp_path / "b.db")]) == 0
    assert main(["restore", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--from", str(tmp_path / "b.db")]) == 0
    assert "readings 500" in capsys.readouterr().out
    assert main(["restore", "--db", url, "--from", str(tmp_path / "b.db")]) == 1
    assert "--force" in capsys.readouterr().err
