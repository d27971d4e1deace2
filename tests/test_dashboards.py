"""The Grafana dashboards: built with Grafana's SDK, round-tripped through its models, and every
panel's SQL — macros and variables expanded the way Grafana expands them — run on a real PostgreSQL
holding a simulated park day, answering what the platform's own indicators and the simulator's
ground truth say.

No Grafana server runs here (no container engine, no Grafana package in Debian): the dashboards are
checked against Grafana's own SDK models, and the SQL against the real database Grafana would query.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from sqlalchemy import insert, text

from analytics.board_feed import BoardFeed
from analytics.indicators.new_energy_share import compute_park_share
from dashboards import macros
from dashboards.catalogue import DASHBOARDS, all_json, model
from dashboards.provision import files
from dashboards.sql_query import DATASOURCE_UID, SqlQuery
from ingest.store import Store, open_store
from ingest.store import record_tables as t
from ingest.store.records import registry
from simulators.ground_truth import GroundTruth
from tests.pg_server import Postgres, timescaledb_missing
from tests.sim_day import load_day

D0 = 1_795_363_200_000  # 2026-11-23 00:00 China time
H = 3_600_000
START = datetime.fromtimestamp(D0 / 1000, UTC)
END = START + timedelta(days=1)
REPO = Path(__file__).resolve().parents[1]
VARS: dict[str, str | list[str]] = {"park": "demo", "enterprise": "e01", "device": ["grid", "pv1", "cems1"],
                                    "region": ["内蒙古自治区"]}
MULTI = frozenset({"device", "region"})


# --- Grafana's macro engine, restated: pinned to the cases of Grafana's own macros_test.go ----------------
def test_macros_expand_as_grafanas_postgres_macro_tests_expect() -> None:
    start = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
    end = start + timedelta(minutes=5)

    def x(sql: str, ts: bool = False) -> str:
        return macros.expand(sql, start, end, 60, timescaledb=ts)

    assert x("select $__time(time_column)") == 'select time_column AS "time"'
    assert x("WHERE $__timeFilter(time_column)") == \
        "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"
    assert x("select $__timeFrom()") == "select '2018-04-12T18:00:00Z'"
    assert x("select $__timeTo()") == "select '2018-04-12T18:05:00Z'"
    assert x("SELECT $__timeGroup(time_column,'5m'), value") == \
        'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value'
    assert x("SELECT $__timeGroup(time_column,'5m') as time, value") == \
        "SELECT floor(extract(epoch from time_column)/300)*300 as time, value"
    assert x("$__timeGroupAlias(time_column , '5m')") == 'floor(extract(epoch from time_column)/300)*300 AS "time"'
    assert x("GROUP BY $__timeGroup(time_column , '12d')", ts=True) == \
        "GROUP BY time_bucket('1036800.000s',time_column)"
    assert x("GROUP BY $__timeGroup(time_column , '20ms')", ts=True) == "GROUP BY time_bucket('0.020s',time_column)"
    assert x("select $__unixEpochFilter(time)") == f"select time >= {int(start.timestamp())} AND time <= " \
                                                  f"{int(end.timestamp())}"
    assert x("SELECT $__unixEpochGroup(time_column+time_adjustment,'5m')") == \
        "SELECT floor((time_column+time_adjustment)/300)*300"
    half = datetime(1960, 2, 1, 7, 0, 0, 500_000, tzinfo=UTC)
    assert macros.expand("$__timeFilter(t)", half, half, 60) == \
        "t BETWEEN '1960-02-01T07:00:00.5Z' AND '1960-02-01T07:00:00.5Z'"
    with pytest.raises(macros.MacroError, match="unknown macro"):
        x("SELECT $__nonsense(a)")
    with pytest.raises(macros.MacroError, match="error parsing interval"):
        x("SELECT $__timeGroup(a, 'often')")


def test_variables_follow_the_sql_data_sources_rule() -> None:
    sql = "WHERE p.key = '$park' AND e.key IN (${enterprise}) AND d.key IN ([[device]]) AND x = $__interval_ms"
    out = macros.expand(sql, START, END, 3600, {"park": "demo", "enterprise": ["e01", "o'k"], "device": "pv1"},
                        multi=frozenset({"device"}))
    # single value: as it is; multi-value: quoted literals joined by commas (quotes doubled)
    assert out == "WHERE p.key = 'demo' AND e.key IN ('e01','o''k') AND d.key IN ('pv1') AND x = 3600000"
    assert macros.format_interval(3600) == "1h" and macros.format_interval(90) == "90s"


# --- the dashboards as models ----------------------------------------------------------------------------
def test_every_dashboard_round_trips_through_grafanas_sdk_models() -> None:
    uids = set()
    for m in DASHBOARDS:
        board = model(m)
        js = json.loads(json.dumps(board, cls=JSONEncoder, ensure_ascii=False))
        back = Dashboard.from_json(js)
        assert json.loads(json.dumps(back, cls=JSONEncoder, ensure_ascii=False)) == js, m.UID
        assert js["uid"] == m.UID and m.UID not in uids
        uids.add(m.UID)
        assert js["title"] == f"{m.TITLE_ZH} {m.TITLE_EN}" and js["timezone"] == "Asia/Shanghai"
        assert js["refresh"] and js["time"]["from"].startswith("now")
        ids = [p["id"] for p in js["panels"]]
        assert len(ids) == len(set(ids)), f"{m.UID}: panel ids repeat"
        for p in js["panels"]:
            if p["type"] == "row":
                continue
            assert any("\u4e00" <= ch <= "\u9fff" for ch in p["title"]) and any(ch.isascii() and ch.isalpha()
                                                                                for ch in p["title"]), p["title"]
            assert p["datasource"]["uid"] == DATASOURCE_UID and p["targets"], p["title"]
        targets = [tg for p in (back.panels or []) for tg in (getattr(p, "targets", None) or [])]
        assert targets and all(isinstance(tg, SqlQuery) for tg in targets), "targets decode as PostgreSQL queries"
        names = [v["name"] for v in js["templating"]["list"]]
        assert names and ("park" in names or "region" in names)


def test_provisioning_files_in_the_repository_are_what_the_code_generates() -> None:
    for rel, content in files().items():
        path = REPO / "deploy" / "grafana" / rel
        assert path.is_file(), f"{path} missing: run `parkmon dashboards provision`"
        assert path.read_text(encoding="utf-8") == content, f"{rel} is stale: run `parkmon dashboards provision`"


# --- the SQL on a real PostgreSQL with a simulated day ---------------------------------------------------
@pytest.fixture(scope="module", params=["postgresql", "timescaledb"])
def park_day(request: pytest.FixtureRequest, postgres: Postgres,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, GroundTruth]]:
    """The day on plain PostgreSQL (monthly partitions) and on TimescaleDB (hypertable, continuous aggregates),
    where Grafana's datasource option turns each ``$__timeGroup`` into ``time_bucket`` (as deployed)."""
    if request.param == "timescaledb" and (missing := timescaledb_missing()):
        pytest.skip(missing)
    layout = {"postgresql": "partitioned", "timescaledb": "timescaledb"}[request.param]
    url = postgres.create_database()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        # the layout a new database gets is a setting of its own (ingest/store/pg_layout.py), as operators set it
        conn.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET parkmon.pg_layout = \'{layout}\'')
    store = open_store(url)
    store.create_schema()
    assert getattr(store, "layout", None) == layout
    gt, _spec = load_day(store, D0, tmp_path_factory.mktemp("day"))
    BoardFeed(store).run_once(now_ms=D0 + 24 * H, since_ms=D0)
    yield store, gt
    store.close()


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(uid, p) for uid, board in all_json().items() for p in board["panels"] if p["type"] != "row"]


def _run(store: Store, panel: dict[str, Any], start: datetime = START, end: datetime = END,
         variables: dict[str, str | list[str]] | None = None) -> list[Any]:
    (tg,) = panel["targets"]
    interval = 3600 if panel.get("interval") == "1h" else 60
    sql = macros.expand(tg["rawSql"], start, end, interval, variables or VARS, MULTI,
                        timescaledb=getattr(store, "layout", None) == "timescaledb")
    with store.engine.connect() as conn:
        res = conn.exec_driver_sql(sql.replace("%", "%%"))
        keys = list(res.keys())
        return [dict(zip(keys, r, strict=True)) for r in res]


def _seconds(t: Any) -> float:
    """A time column as Grafana reads it: epoch seconds (``floor(extract(epoch ...))``) or a timestamp
    (TimescaleDB's ``time_bucket``); both are what its SQL data source accepts."""
    return t.timestamp() if isinstance(t, datetime) else float(t)


def _find(uid: str, en: str) -> dict[str, Any]:
    return next(p for u, p in _panels() if u == uid and p["title"].endswith(en))


def test_every_panel_runs_and_time_series_are_shaped_as_grafana_needs(park_day: tuple[Store, GroundTruth]) -> None:
    store, _gt = park_day
    empty = []
    for uid, p in _panels():
        rows = _run(store, p)
        if not rows:
            empty.append(f"{uid}: {p['title']}")
            continue
        if p["targets"][0]["format"] == "time_series":
            assert "time" in rows[0], f"{p['title']}: a time series needs a column named time"
            times = [_seconds(r["time"]) for r in rows]
            assert times == sorted(times), f"{p['title']}: rows must come sorted by time"
            for r in rows:
                assert all(isinstance(v, (int, float, type(None))) or k in ("time", "metric") or
                           type(v).__name__ == "Decimal" for k, v in r.items()), p["title"]
    # nothing fired in this quiet day and the agents' health was never sent: only those may be empty
    assert all("Active alerts" in e or "Buffer backlog" in e for e in empty), empty


def test_the_share_panels_say_what_the_indicator_says(park_day: tuple[Store, GroundTruth]) -> None:
    store, _gt = park_day
    # from the readings: the day's first hour has no hour before it in the rollups, which the
    # rollup path needs for its first step, so the raw path is the one that sees the whole day
    day = compute_park_share(store, "demo", D0, D0 + 24 * H, source="raw")
    (now,) = _run(store, _find("parkmon-park", "New-energy share"))
    assert now["新能源消纳比例 share"] == pytest.approx(day.value, abs=1e-9)
    assert now["目标 target"] == pytest.approx(0.8) == day.target
    trend = _run(store, _find("parkmon-park", "New-energy share by hour"), variables=VARS)
    assert len(trend) == 24
    for k, row in enumerate(trend):
        assert _seconds(row["time"]) * 1000 == D0 + k * H
    (parks,) = _run(store, _find("parkmon-region", "Parks"))
    assert parks["新能源消纳比例 Share"] == pytest.approx(day.value, abs=1e-9)
    # the board's met rule is the API's (status_for, within its tolerance)
    assert parks["状态 Status"] == {"met": "达标 met", "below_target": "未达标 below target"}[day.status]
    assert day.status == ("met" if day.value >= 0.8 - 1e-9 else "below_target")
    assert parks["数据完整率 Completeness"] == pytest.approx(1.0)


def test_power_water_and_emissions_match_the_simulators_ground_truth(park_day: tuple[Store, GroundTruth]) -> None:
    store, gt = park_day
    # PV power per minute: Σ of the park's inverters
    pv: dict[int, float] = defaultdict(float)
    for ent, dev, point in gt.points():
        if point == "power" and dev.startswith("pv"):
            for ts, value, _reg in gt.values(ent, dev, point):
                pv[ts] += value
    rows = [r for r in _run(store, _find("parkmon-park", "Power by source")) if r["metric"] == "光伏 PV"]
    assert len(rows) >= 24 * 60
    for r in rows:
        assert float(r["value"]) == pytest.approx(pv[int(_seconds(r["time"]) * 1000)], rel=1e-9, abs=1e-6)
    assert max(float(r["value"]) for r in rows) > 1000  # daylight: kW of PV, not a flat line
    # water per enterprise and hour: the meter's last reading of the hour less the hour before's
    water = _run(store, _find("parkmon-park", "Water use by enterprise"))
    # hours 01..24: the reading at 24:00 is the range's end, which $__timeFilter includes
    assert {r["metric"] for r in water} == {"e01", "e02", "e03", "e04"} and len(water) == 4 * 24
    for r in water:
        h = int(_seconds(r["time"]) * 1000)
        got = gt.value_at(r["metric"], "water", "volume", h + H - 60_000)
        before = gt.value_at(r["metric"], "water", "volume", h - 60_000)
        assert got is not None and before is not None
        assert float(r["value"]) == pytest.approx(got - before, rel=1e-9)
    # SO2 hourly mean at the reference O2, minute by minute (HJ 75), for both stacks
    so2 = _run(store, _find("parkmon-park", "SO₂ hourly mean"))
    assert {r["metric"] for r in so2} == {"e01/cems1", "e02/cems1"} and len(so2) == 48
    for r in so2:
        ent = r["metric"].split("/")[0]
        h = int(_seconds(r["time"]) * 1000)
        c = {ts: v for ts, v, _ in gt.values(ent, "cems1", "so2", h, h + H)}
        o2 = {ts: v for ts, v, _ in gt.values(ent, "cems1", "o2", h, h + H)}
        want = sum(c[m] * (21 - 6) / (21 - o2[m]) for m in c) / len(c)
        assert float(r["value"]) == pytest.approx(want, rel=1e-9)
    limit_rows = _run(store, _find("parkmon-park", "Exceedances"))
    over = {(r["企业 Enterprise"], r["污染物 Pollutant"]): r["超标小时 Hours over"] for r in limit_rows}
    hours_over = sum(float(r["value"]) > 35 for r in so2 if r["metric"] == "e01/cems1")
    assert over[("e01", "二氧化硫 SO₂")] == hours_over


def test_scorecard_and_gateways_count_what_the_platform_counts(park_day: tuple[Store, GroundTruth]) -> None:
    store, _gt = park_day
    at = D0 + 24 * H
    cov = {c["name_zh"]: c for c in registry.coverage(store, "demo", at)}
    rows = _run(store, _find("parkmon-scorecard", "Six systems: devices"))
    assert len(rows) == 6
    for r in rows:
        c = cov[r["系统 System"].split()[0]]
        assert (r["应接入设备 Expected devices"], r["在线设备 Reporting devices"]) == \
            (c["expected_devices"], c["reporting_devices"]), r
    gws = _run(store, _find("parkmon-gateways", "Gateways"))
    assert [g["网关 Gateway"] for g in gws] == ["gw-e01", "gw-e02", "gw-e03", "gw-e04"]
    assert all(g["批次 Batches"] == 145 for g in gws)  # a batch per 10 simulated minutes, 00:00 to 24:00


def test_the_alert_panels_list_firing_alerts_only(park_day: tuple[Store, GroundTruth]) -> None:
    store, _gt = park_day
    base = {"rule_id": "so2", "park": "demo", "enterprise": "e01", "device": "cems1", "metric": "cems.so2",
            "kind": "pollutant", "system": "environment", "severity": "major", "since_ms": D0 + 3 * H,
            "fired_ms": D0 + 3 * H, "created_ms": D0 + 3 * H, "value": 52.0, "threshold": 35.0, "unit": "mg/m3"}
    with store.engine.begin() as conn:
        fire_id = conn.execute(insert(t.alerts).values(subject="demo/e01/cems1/so2", state="firing", **base)
                               ).inserted_primary_key[0]
        conn.execute(insert(t.alerts).values(subject="demo/e01/cems1/nox", state="resolved",
                                             **{**base, "rule_id": "nox", "metric": "cems.nox"}))
        conn.execute(insert(t.alert_events).values(alert_id=fire_id, at_ms=D0 + 3 * H, event="firing", value=52.0,
                                                   title_zh="超标", text_zh="e01 1#锅炉 二氧化硫 52 超过限值 35",
                                                   text_en="e01 boiler SO2 52 over the limit 35"))
    try:
        (row,) = _run(store, _find("parkmon-park", "Active alerts"))
        assert row["告警 Alert"].startswith("e01 1#锅炉") and row["级别 Severity"] == "重要 major"
        assert [r["告警 Alert"] for r in _run(store, _find("parkmon-enterprise", "Active alerts"))] == \
            [row["告警 Alert"]]
        assert _run(store, _find("parkmon-enterprise", "Active alerts"), variables={**VARS, "enterprise": "e02"}) == []
        (park,) = _run(store, _find("parkmon-region", "Parks"))
        assert park["超标告警 Exceedances"] == 2 and park["当前告警 Firing"] == 1
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM alert_events"))
            conn.execute(text("DELETE FROM alerts"))


def test_the_feed_carries_the_pool_within_a_day_and_redoes_late_hours(park_day: tuple[Store, GroundTruth]) -> None:
    store, _gt = park_day
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT bucket, re_used, consumption, pool_kwh FROM indicator_hourly "
                                 "WHERE enterprise = '' ORDER BY bucket")).all()
    assert len(rows) == 24 and all(r.consumption and r.consumption > 0 for r in rows)
    # the day's Σ numerator / Σ consumption is the API's share of the day (pool carried hour to hour)
    day = compute_park_share(store, "demo", D0, D0 + 24 * H, source="raw")
    assert sum(r.re_used for r in rows) / sum(r.consumption for r in rows) == pytest.approx(day.value, abs=1e-9)
    # a second round at the same instant rewrites the last hours with the same numbers
    feed = BoardFeed(store)
    assert feed.run_once(now_ms=D0 + 24 * H) == {"demo": 3}
    with store.engine.connect() as conn:
        again = conn.execute(text("SELECT bucket, re_used, consumption, pool_kwh FROM indicator_hourly "
                                  "WHERE enterprise = '' ORDER BY bucket")).all()
    assert [r.bucket for r in again] == [r.bucket for r in rows]
    assert [r.re_used for r in again] == pytest.approx([r.re_used for r in rows], rel=1e-12)
    assert [r.pool_kwh for r in again] == pytest.approx([r.pool_kwh for r in rows], rel=1e-12)
