"""`parkmon import readings`: a park loads its history from CSV and gets its indicators at once; bad
lines are set aside with their reasons, a re-run changes nothing. Real SQLite and PostgreSQL stores."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.indicators.comprehensive_energy import compute_energy
from ingest.store import open_store

D0 = 1_795_363_200_000  # 2026-11-23 00:00 UTC+8
H = 3_600_000


def _csv(path: Path) -> int:
    """A day of hourly counters for e01 (import 1 000 kWh/h, gas 30 m³/h; naive local times), plus
    three bad lines. Returns the number of good lines."""
    rows = [["时间", "测点", "数值", "质量", "指标"]]
    for h in range(25):
        local = f"2026-11-{23 + h // 24}T{h % 24:02d}:00:00"
        rows.append([local, "e01.grid.imp", str(5000 + 1000 * h), "0", "elec.import.energy" if h == 0 else ""])
        rows.append([str(D0 + h * H), "e01.gas.vol", str(100 + 30 * h), "", "gas.volume"])
    rows += [["2026-11-23 25:00", "e01.grid.imp", "1", "0", ""],  # no such hour
             ["2026-11-23T01:00:00+08:00", "grid.imp", "1", "0", ""],  # no enterprise
             ["2026-11-23T01:00:00+08:00", "e01.grid.pf", "0.9", "0", "elec.powerfactor"]]  # no such metric
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return 50


def _run(path: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parkmon.cli", "import", "readings", str(path), "--park", "demo",
                           "--db", url, "--chunk", "7"], capture_output=True, text=True, timeout=120)


def test_history_from_csv_gives_indicators_at_once(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    good = _csv(path)
    st = open_store(store_url)
    st.create_schema()
    st.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    st.close()
    first = _run(path, store_url)
    assert first.returncode == 1, first.stderr  # some lines were rejected
    assert f"imported {good} readings" in first.stderr and "3 rejected" in first.stderr
    rejected = list(csv.reader((tmp_path / "history.csv.rejected.csv").open(encoding="utf-8")))
    reasons = {int(r[0]): r[1] for r in rejected[1:]}
    assert set(reasons) == {52, 53, 54}
    assert "neither ISO 8601" in reasons[52] and "enterprise.device.point" in reasons[53]
    assert "unknown metric 'elec.powerfactor'" in reasons[54] and "elec.power_factor" in reasons[54]
    again = _run(path, store_url)
    assert f"imported 0 readings, {good} already stored" in again.stderr
    st = open_store(store_url)
    try:
        tce, _ = compute_energy(st, "demo", D0, D0 + 24 * H, "e01")
        # 24 000 kWh × 0.1229 + 720 m³ × 1.2143 kgce
        assert tce.value == pytest.approx((24_000 * 0.1229 + 720 * 1.2143) / 1000)
        assert {p.metric for p in st.points("demo")} == {"elec.import.energy", "gas.volume"}
    finally:
        st.close()
