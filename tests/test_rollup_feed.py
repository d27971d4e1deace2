"""Indicators from the rollups agree with the raw readings (analytics/rollup_feed.py), on every back end.

Three China days of 1-minute counters, with a meter replaced, two misreads (one the last reading of
its hour) and an hour without readings; the numbers expected are worked out here by hand.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from analytics.indicators.comprehensive_energy import compute_energy
from analytics.indicators.new_energy_share import compute_park_share
from analytics.meters import counter_totals
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.common import wire
from parkmon.common.clock import CHINA

MIN, H, DAY = 60_000, 3_600_000, 86_400_000
JAN1 = int(datetime(2026, 1, 1, tzinfo=CHINA).timestamp() * 1000)
START, END = JAN1, JAN1 + 3 * DAY
RESET_AT = JAN1 + DAY + 12 * H  # e02's import meter replaced; the new one counts from zero
GAP = (JAN1 + DAY + 3 * H, JAN1 + DAY + 4 * H)  # e01's import meter silent for this hour
GLITCHES = (JAN1 + DAY + 10 * H + 30 * MIN, JAN1 + 2 * DAY + 10 * H - MIN)  # pv reads 0 once each


def _local_hour(t: int) -> int:
    return (t - JAN1) % DAY // H


def _seed(store: Store) -> None:
    """e01 imports 10 kWh/min, has PV making 8 kWh/min from 08:00 to 16:00 and exports 2 kWh/min from
    11:00 to 13:00; e02 imports 5 kWh/min and burns 1 m³ of gas a minute. From 23:00 the day before to
    00:30 the day after, so both paths see the period's edges."""
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    meta = {"e01": {"imp": "elec.import.energy", "pv": "pv.generation.energy", "exp": "elec.export.energy"},
            "e02": {"imp": "elec.import.energy", "gas": "gas.volume"}}
    units = {"elec.import.energy": "kWh", "pv.generation.energy": "kWh", "elec.export.energy": "kWh",
             "gas.volume": "m3"}
    for ent, pts in meta.items():
        store.upsert_meta("demo", ent, "gw", wire.Meta(1, "gw", 0, {
            k: wire.PointMeta(m, units[m], "counter", "") for k, m in pts.items()}, {}))
    counters = {"e01.imp": 0.0, "e01.pv": 0.0, "e01.exp": 0.0, "e02.imp": 0.0, "e02.gas": 0.0}
    out: dict[str, list[tuple[str, int, float | None, int]]] = {"e01": [], "e02": []}
    t = START - H
    while t <= END + 30 * MIN:
        hour = _local_hour(t)
        counters["e01.imp"] += 10
        counters["e01.pv"] += 8 if 8 <= hour < 16 else 0
        counters["e01.exp"] += 2 if 11 <= hour < 13 else 0
        counters["e02.imp"] = 5.0 if t == RESET_AT else counters["e02.imp"] + 5
        counters["e02.gas"] += 1
        for key, v in counters.items():
            ent, _, pt = key.partition(".")
            if key == "e01.imp" and GAP[0] <= t < GAP[1]:
                continue
            out[ent].append((pt, t, 0.0 if key == "e01.pv" and t in GLITCHES else v, 0))
        t += MIN
    store.write_batches([IncomingBatch("demo", ent, "gw", wire.Batch(1, "gw", 1, START, s), START)
                         for ent, s in out.items()])


def test_totals_from_rollups_equal_the_raw_readings(store: Store) -> None:
    _seed(store)
    carriers = {"imp": ("elec.import.energy",), "pv": ("pv.generation.energy",), "gas": ("gas.volume",)}
    # not yet rolled up: auto stays on the raw readings (nothing is read from stale rollups)
    _t, rep = counter_totals(store, "demo", carriers, START, END)
    assert rep["source"] == "raw"
    store.refresh_rollups()
    raw, raw_rep = counter_totals(store, "demo", carriers, START, END, source="raw")
    rolled, rep = counter_totals(store, "demo", carriers, START, END)
    assert rep["source"] == "1d" and rep["uncovered"] == [] and rep["resets"] == raw_rep["resets"] == 1
    # by hand: 3 days x 1 440 min x (10 + 5) kWh; PV 8 kWh x 8 h x 60 min a day; gas 1 m³/min
    # (the meter swap loses nothing: the new meter's first reading is its first minute)
    assert rolled["imp"] == pytest.approx(3 * 1440 * 15) == raw["imp"]
    assert rolled["pv"] == pytest.approx(3 * 8 * 8 * 60) == raw["pv"]
    assert rolled["gas"] == pytest.approx(3 * 1440) == raw["gas"]


def test_share_from_rollups_hour_by_hour(store: Store) -> None:
    _seed(store)
    store.refresh_rollups()
    raw = compute_park_share(store, "demo", START, END, source="raw")
    rolled = compute_park_share(store, "demo", START, END)
    assert rolled.inputs["source"] == "1h" and raw.inputs["source"] == "raw"
    assert rolled.inputs["interval_ms"] == H  # the default interval: an hour
    # by hand, a day: RE used = 3 840 PV - 240 exported = 3 600 kWh; consumption = 21 600 imported +
    # 3 600 = 25 200 kWh. The raw path bridges e01's silent hour by interpolation: 1/7 exactly.
    assert raw.value == pytest.approx(3 * 3600 / (3 * 25200))
    # the rollups leave that hour (a step that spans it belongs to no hour) and the next one out of the
    # pool: two night hours without PV, each 15 x 60 kWh imported, so the share rises a little; and the
    # hour before the silent one counts to its last reading (02:59: no reading on its 03:00 edge), so the
    # minute 02:59-03:00 of e01's import (10 kWh) goes with the gap
    assert rolled.inputs["intervals_missing"] == 2
    assert rolled.value == pytest.approx(3 * 3600 / (3 * 25200 - 2 * 900 - 10))
    assert rolled.completeness == pytest.approx(70 / 72)
    assert rolled.inputs["counter_resets"] == 1


def test_energy_indicator_from_rollups(store: Store) -> None:
    _seed(store)
    store.refresh_rollups()
    tce_raw, _c = compute_energy(store, "demo", START, END, source="raw")
    tce, carbon = compute_energy(store, "demo", START, END)
    assert tce.inputs["source"] == "1d" and tce.value == pytest.approx(tce_raw.value)
    # 当量值 0.1229 kgce/kWh on import + PV - export, 1.2143 kgce/m³ of gas
    kwh = 3 * (1440 * 15 + 3840 - 240)
    assert tce.value == pytest.approx((kwh * 0.1229 + 3 * 1440 * 1.2143) / 1000, rel=1e-6)
    assert carbon.value is not None and carbon.value > 0


def test_forcing_rollups_on_an_unaligned_period_says_how_to_fix_it(store: Store) -> None:
    _seed(store)
    with pytest.raises(ValueError, match="align start and end"):
        compute_park_share(store, "demo", START + 7_000, END, source="rollup")


def test_late_data_open_periods_and_the_raw_tail(store: Store) -> None:
    """Readings that arrive late (the silent hour, delivered from a gateway's buffer) are in the figures at
    once: until the rollups are refreshed the part of the period from that hour on is read raw."""
    _seed(store)
    store.refresh_rollups()
    assert compute_park_share(store, "demo", START, END).inputs["intervals_missing"] == 2
    late = [("imp", t, 10.0 * ((t - (START - H)) // MIN + 1), 0) for t in range(GAP[0], GAP[1], MIN)]
    store.write_batches([IncomingBatch("demo", "e01", "gw", wire.Batch(1, "gw", 2, GAP[0], late), GAP[0])])
    mixed = compute_park_share(store, "demo", START, END)
    # rollups up to the hour the late data starts in, the readings after it
    assert mixed.inputs["source"] == "1h+raw" and mixed.inputs["intervals_missing"] == 0
    # at the seam the minute between the last rolled-up reading and the hour edge is not counted
    # (15 kWh of 75 600): the share moves in the fifth decimal
    assert mixed.value == pytest.approx(1 / 7, abs=1e-4)
    store.refresh_rollups()
    again = compute_park_share(store, "demo", START, END)
    assert again.inputs["source"] == "1h" and again.value == pytest.approx(1 / 7)
    # a period still running ("so far", not on an hour): a year of rollups and the raw tail
    now = END + 30 * MIN - 7_000
    so_far, _c = compute_energy(store, "demo", START, now)
    assert so_far.inputs["source"] == "1d+raw" or so_far.inputs["source"] == "1h+raw"
    kwh = 3 * (1440 * 15 + 3840 - 240) + 29 * 15 + 14  # 3 days, then 29 min 53 s of both imports
    assert so_far.inputs["use"]["grid_import_kwh"] + so_far.inputs["use"]["renewable_generation_kwh"] - \
        so_far.inputs["use"]["grid_export_kwh"] == pytest.approx(kwh, abs=1.0)


def test_points_split_over_two_connections_add_up_the_same(store: Store) -> None:
    """On PostgreSQL a long rollup query runs as two halves of the points on two connections (two
    cores); the halves must pool to exactly what one query gives."""
    _seed(store)
    store.refresh_rollups()
    one = compute_park_share(store, "demo", START, END)
    store.parallel_min_points = 1  # type: ignore[attr-defined]
    two = compute_park_share(store, "demo", START, END)
    assert two.value == one.value and two.inputs["intervals_missing"] == one.inputs["intervals_missing"]
    assert two.inputs["consumption"] == one.inputs["consumption"]
