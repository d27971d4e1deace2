"""The alert engine on stored data: an hour's validated pollutant average over its limit, pressure
vessels at their own design pressure (from the registry file), a park's own rule replacing a default
for that park only, and firing alerts surviving a restart without repeating."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from analytics.alerts.engine import AlertEngine
from analytics.alerts.from_registry import pressure_rules
from analytics.alerts.rules import Rule, load_rules, parse_rules
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.common import wire

H, S5 = 3_600_000, 5_000
HOUR0 = 1_795_363_200_000  # 2026-11-23 00:00 China time
JAN1 = HOUR0 - 326 * 86_400_000  # 2026-01-01 00:00 China time


def _alerts(store: Store) -> list[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT rule_id, subject, state FROM alerts ORDER BY id"))]


def test_hourly_pollutant_average_over_the_limit(store: Store) -> None:
    store.upsert_park("demo", "示范园区", "Demo", "none", "内蒙古")
    store.upsert_meta("demo", "e01", "gw", wire.Meta(1, "gw", 0, {
        "cems1.so2": wire.PointMeta("cems.so2", "mg/m3", "instant", ""),
        "cems1.o2": wire.PointMeta("cems.o2", "%", "instant", "")}, {}))
    # SO2 30 mg/m³ at 9 % O2 for an hour, 5-second samples: at the 6 % reference 30 x 15 / 12 = 37.5 > 35
    samples = [s for k in range(720) for s in (("cems1.so2", HOUR0 + k * S5, 30.0, 0),
                                                ("cems1.o2", HOUR0 + k * S5, 9.0, 0))]
    store.write_batches([IncomingBatch("demo", "e01", "gw", wire.Batch(1, "gw", 1, HOUR0, samples), HOUR0)])
    engine = AlertEngine(store, [r for r in load_rules() if r.id == "cems_so2"])
    engine.tick(now_ms=HOUR0 + H + 1000)
    assert _alerts(store) == [("cems_so2", "demo/e01/cems1/cems.so2", "firing")]
    with store.engine.connect() as conn:
        (value, threshold, text_zh) = conn.execute(text(
            "SELECT a.value, a.threshold, e.text_zh FROM alerts a JOIN alert_events e ON e.alert_id = a.id")).one()
    assert (round(value, 3), threshold) == (37.5, 35.0) and "二氧化硫小时均值超标" in text_zh
    # the next hour has no valid data: nothing is judged, the alert stays as it is
    engine.tick(now_ms=HOUR0 + 2 * H + 1000)
    assert _alerts(store)[0][2] == "firing"


def test_design_pressure_rules_park_overrides_and_restart(store: Store) -> None:
    definition = {"park": {"key": "demo"}, "enterprises": [{"key": "e02", "devices": [
        {"id": "r101", "name": "反应釜", "kind": "pressure_vessel", "design_pressure_mpa": 1.6},
        {"id": "pipe1", "kind": "pipeline", "design_pressure_mpa": 2.5},
        {"id": "gd1", "kind": "gas_detector"}]}]}
    rules = pressure_rules(definition)
    assert [(r.device, r.threshold, r.severity) for r in rules] == [
        ("r101", 1.6, "critical"), ("pipe1", 2.5, "critical")]
    store.upsert_park("demo", "示范园区", "Demo", "none")
    store.upsert_park("other", "二号园区", "Other", "none")
    for park in ("demo", "other"):
        store.upsert_meta(park, "e02", "gw", wire.Meta(1, "gw", 0, {
            "r101.pressure": wire.PointMeta("safety.pressure", "MPa", "instant", ""),
            "gd1.lel": wire.PointMeta("safety.gas_lel", "%LEL", "instant", "")}, {}))
    # park "demo" sets its own first gas alarm at 10 %LEL; "other" keeps the default 25
    with store.engine.begin() as conn:
        own = parse_rules({"rules": [{"id": "gas_lel_high", "kind": "threshold", "metric": "safety.gas_lel",
                                      "threshold": 10, "park": "demo", "name_zh": "低限", "name_en": "low"}]})[0]
        conn.execute(text("INSERT INTO alert_rules (id, park, body, updated_ms) VALUES (:i, :p, :b, 0)"),
                     {"i": own.id, "p": "demo", "b": own.model_dump_json()})
    engine = AlertEngine(store, rules + [r for r in load_rules() if r.id == "gas_lel_high"])
    t0 = HOUR0

    def batch(park: str, seq: int, samples: list[tuple[str, int, float, int]]) -> IncomingBatch:
        return IncomingBatch(park, "e02", "gw", wire.Batch(1, "gw", seq, t0, samples), t0)

    b1 = [batch(p, 1, [("r101.pressure", t0 + k * 1000, 1.7, 0) for k in range(12)]
                + [("gd1.lel", t0, 15.0, 0)]) for p in ("demo", "other")]
    store.write_batches(b1)
    engine.process(b1, t0)
    assert _alerts(store) == [("overpressure.e02.r101", "demo/e02/r101.pressure", "firing"),
                              ("gas_lel_high", "demo/e02/gd1.lel", "firing")]  # 15 %LEL: over demo's 10 only
    # a restart: the firing alerts are restored, not raised again; the vessel comes back under 1.6 - 0.048
    again = AlertEngine(store, rules + [r for r in load_rules() if r.id == "gas_lel_high"])
    b2 = [batch("demo", 2, [("r101.pressure", t0 + 20_000, 1.72, 0), ("r101.pressure", t0 + 30_000, 1.5, 0)])]
    store.write_batches(b2)
    again.process(b2, t0)
    assert _alerts(store)[0][2] == "resolved" and len(_alerts(store)) == 2


def test_hazardous_waste_near_its_storage_limit(store: Store) -> None:
    from ingest.store.records import hazwaste

    store.upsert_park("demo", "示范园区", "Demo", "none")
    store.upsert_meta("demo", "e01", "gw", wire.Meta(1, "gw", 0, {
        "m.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", "")}, {}))
    day = 86_400_000
    now = HOUR0
    # 2 t generated 340 days ago, 1 t utilised since (first in, first out: 1 t of the old lot remains);
    # 3 t generated 10 days ago
    for ts, action, q in ((now - 340 * day, "generated", 2.0), (now - 200 * day, "utilised", 1.0),
                          (now - 10 * day, "generated", 3.0)):
        hazwaste.add_record(store, "demo", hazwaste.WasteRecord(
            enterprise="e01", ts=ts, waste_code="900-041-49", action=action, quantity_t=q), "test")
    engine = AlertEngine(store, [r for r in load_rules() if r.id == "hazwaste_storage"])
    engine.tick(now_ms=now + 1000)
    assert _alerts(store) == [("hazwaste_storage", "demo/e01/hazwaste/900-041-49", "firing")]
    with store.engine.connect() as conn:
        (value, text_zh) = conn.execute(text(
            "SELECT a.value, e.text_zh FROM alerts a JOIN alert_events e ON e.alert_id = a.id")).one()
    assert round(value) == 340 and "（限值 330 天）" in text_zh
    # the old tonne leaves: the oldest stored is now 10 days old, the alert resolves at the next hour
    hazwaste.add_record(store, "demo", hazwaste.WasteRecord(
        enterprise="e01", ts=now + 60_000, waste_code="900-041-49", action="utilised", quantity_t=1.0), "test")
    engine.tick(now_ms=now + H + 1000)
    assert _alerts(store)[0][2] == "resolved"


def _indicator_rule(**kw: object) -> Rule:
    return parse_rules({"rules": [{"kind": "indicator", "system": "energy", "name_zh": "指标", "name_en": "indicator",
                                   **kw}]})[0]


def test_an_indicator_rule_other_than_the_share_fires_and_resolves_through_the_registry(store: Store) -> None:
    """PUE (lower is better, target 1.3) judged on the year so far, as any indicator of the registry."""
    store.upsert_park("demo", "示范园区", "Demo", "none")
    store.upsert_meta("demo", "dc1", "gw", wire.Meta(1, "gw", 0, {
        "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", ""),
        "it.e": wire.PointMeta("elec.it.energy", "kWh", "counter", "")}, {}))

    def read(seq: int, ts: int, grid_kwh: float, it_kwh: float) -> None:
        store.write_batches([IncomingBatch("demo", "dc1", "gw", wire.Batch(1, "gw", seq, ts, [
            ("grid.imp", ts, grid_kwh, 0), ("it.e", ts, it_kwh, 0)]), ts)])

    read(1, JAN1, 0.0, 0.0)
    read(2, HOUR0, 1_400.0, 1_000.0)
    engine = AlertEngine(store, [_indicator_rule(id="pue_over", indicator="pue")])
    engine.tick(now_ms=HOUR0 + 1000)
    # 1 Jan to 23 Nov: 1 400 kWh for the site / 1 000 kWh to IT = 1.4, over the target 1.3
    assert _alerts(store) == [("pue_over", "demo/pue", "firing")]
    with store.engine.connect() as conn:
        (value, threshold, text_zh) = conn.execute(text(
            "SELECT a.value, a.threshold, e.text_zh FROM alerts a JOIN alert_events e ON e.alert_id = a.id")).one()
    assert (value, threshold) == (1.4, 1.3) and "数据中心电能使用效率(PUE) 1.4" in text_zh
    # the next hour: +1 200 kWh for the site, +1 000 to IT: 2 600 / 2 000 = 1.3, at the target is met
    read(3, HOUR0 + H, 2_600.0, 2_000.0)
    engine.tick(now_ms=HOUR0 + H + 1000)
    assert _alerts(store) == [("pue_over", "demo/pue", "resolved")]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM alert_events WHERE event = 'resolved'")).scalar_one() == 1.3


def test_the_share_and_key_energy_user_rules_keep_their_subjects(store: Store) -> None:
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    store.upsert_meta("demo", "e01", "gw", wire.Meta(1, "gw", 0, {
        "m.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", ""),
        "pv.gen": wire.PointMeta("pv.generation.energy", "kWh", "counter", "")}, {}))
    store.write_batches([IncomingBatch("demo", "e01", "gw", wire.Batch(1, "gw", seq, ts, [
        ("m.imp", ts, imp, 0), ("pv.gen", ts, pv, 0)]), ts)
        for seq, ts, imp, pv in ((1, JAN1, 0.0, 0.0), (2, HOUR0, 700_000.0, 300_000.0))])
    engine = AlertEngine(store, [_indicator_rule(id="share", indicator="new_energy_share"),
                                 _indicator_rule(id="key", indicator="key_energy_user", threshold=130)])
    engine.tick(now_ms=HOUR0 + 1000)
    assert sorted(_alerts(store)) == [("key", "demo/e01/key_energy_user", "firing"),
                                      ("share", "demo/new_energy_share", "firing")]
    with store.engine.connect() as conn:
        got = {r[0]: (r[1], r[2]) for r in conn.execute(text("SELECT rule_id, value, threshold FROM alerts"))}
    # share: 300 000 kWh of PV used / 1 000 000 kWh used = 0.3 against the zero-carbon park's 0.8 of 2026
    assert got["share"] == (pytest.approx(0.3), 0.8)
    # electricity used = 700 000 from the grid + 300 000 of PV = 1 000 000 kWh x 0.1229 kgce/kWh = 122.9 tce
    # in 326 days: 122.9 x 365 / 326 = 137.6 tce a year, over the rule's line of 130
    assert got["key"] == (pytest.approx(122.9 * 365 / 326), 130.0)


def test_a_point_whose_catalogue_comes_after_its_first_data_is_watched_within_a_minute(store: Store) -> None:
    # two ingest workers share the gateway's messages: the one with the alert engine may store the gas detector's
    # first reading before the other stored its catalogue (metric safety.gas_lel, the rule's); 30 %LEL > 25
    store.upsert_park("demo", "示范园区", "Demo", "none")
    now = [1_000.0]
    engine = AlertEngine(store, [r for r in load_rules() if r.id == "gas_lel_high"], clock=lambda: now[0])

    def data(seq: int, t: int) -> None:  # 30 %LEL for 6 s: over 25 for longer than the rule's 5 s
        b = [IncomingBatch("demo", "e02", "gw", wire.Batch(1, "gw", seq, t, [
            ("gd1.lel", t + k * 3000, 30.0, 0) for k in range(3)]), t)]
        store.write_batches(b)
        engine.process(b, t)

    data(1, HOUR0)  # no catalogue yet: a point without a metric, no rule applies
    assert _alerts(store) == []
    store.upsert_meta("demo", "e02", "gw", wire.Meta(1, "gw", 0, {
        "gd1.lel": wire.PointMeta("safety.gas_lel", "%LEL", "instant", "")}, {}))
    now[0] += 61  # the engine reads the enterprise's points again (RELOAD_S = 60)
    data(2, HOUR0 + 60_000)
    assert _alerts(store) == [("gas_lel_high", "demo/e02/gd1.lel", "firing")]
