"""Benchmark: a year's indicators of a 200-enterprise park from the rollups, beside a scan of the raw rows.

The park: ``--enterprises`` enterprises x 10 points (grid import and export, PV, water, gas, steam
counters; power factor, SO2, NOx, O2 gauges) - 2 000 points for 200 - with a year (``--days``) of
1-minute data. Storing a full year of raw minutes for all of them (1.05 billion rows, ~70 GB) does not
fit this machine, so:

- the 1 h rollups of every point are generated for the whole year in SQL from the same closed-form
  counters the raw rows follow, and the 1 day rollups are made from them by parkmon's own rollup SQL;
- the raw 1-minute rows of the year are stored for the counters of the first ``--raw-enterprises``
  enterprises (60 points for 10); the scan of them is timed and scaled to all points (rows/s x rows);
- one enterprise's year is computed from raw rows and from the rollups, and the two are printed side by
  side (they must agree).

Timed: the whole year's park report (``analytics.report.gather.park_report``: share, energy and carbon,
every enterprise's energy and key users, PUE, digitalisation, pollutant compliance, daily series) from the
rollups; one day's share, energy and per-enterprise energy from the rollups; pollutant compliance of one
day from the raw samples of every CEMS point; and the raw scan. Goal: the year's report under 10 s.

    python bench/indicators.py                                   # full (200 enterprises, a year; ~10 min)
    python bench/indicators.py --enterprises 20 --days 31 --raw-enterprises 2   # short (CI)

Both PostgreSQL layouts, one after the other (``--layouts``; bench/_layouts.py). On TimescaleDB the
rollups are continuous aggregates: the generated rollup rows go into their materializations (what a
refresh would have written there; the views read only those, ``materialized_only``), and every timed
query is run twice - over the raw chunks as written, then after parkmon's maintenance compressed them
(``compress_raw_before``: segment by point, order by time) - the year's report included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from _layouts import add_option, set_layout, usable

from analytics.indicators.comprehensive_energy import compute_energy, energy_by_enterprise
from analytics.indicators.new_energy_share import compute_park_share
from analytics.report.gather import park_report
from ingest.store import open_store
from ingest.store.rollups import LEVELS, Dialect, _recompute_sql
from parkmon.common import wire
from parkmon.common.clock import CHINA

# key -> (metric, unit, kind, per-minute rate, active China hours [from, to))
COUNTERS = {"imp": ("elec.import.energy", "kWh", 12.0, (0, 24)), "exp": ("elec.export.energy", "kWh", 1.5, (11, 14)),
            "pv": ("pv.generation.energy", "kWh", 6.0, (8, 17)), "water": ("water.volume", "m3", 0.2, (0, 24)),
            "gas": ("gas.volume", "m3", 1.0, (0, 24)), "steam": ("steam.mass", "t", 0.01, (6, 22))}
GAUGES = {"pf": ("elec.power_factor", "", 0.95), "so2": ("cems.so2", "mg/m3", 20.0),
          "nox": ("cems.nox", "mg/m3", 60.0), "o2": ("cems.o2", "%", 9.0)}
H_MS, DAY_MS = 3_600_000, 86_400_000


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def register(url: str, enterprises: int) -> None:
    store = open_store(url)
    store.create_schema()
    store.upsert_park("bench", "压测园区", "Bench park", "low_carbon", "bench")
    for e in range(enterprises):
        pts = {k: wire.PointMeta(m, u, "counter", "") for k, (m, u, _r, _a) in COUNTERS.items()}
        pts.update({k: wire.PointMeta(m, u, "gauge", "") for k, (m, u, _v) in GAUGES.items()})
        store.upsert_meta("bench", f"e{e:03d}", "gw", wire.Meta(1, "gw", 0, pts, {}))
    store.close()


def _hours_sql(start_ms: int, days: int, point_filter: str) -> str:
    """Per point and hour of the period: the counter at the hour's end (cum) and its minute rate while
    active (rate) - the closed form both the raw rows and the rollups follow."""
    cases = " ".join(f"WHEN '{m}' THEN {r}" for m, _u, r, _a in COUNTERS.values())
    act = " ".join(f"WHEN '{m}' THEN (ch >= {a} AND ch < {b})" for m, _u, _r, (a, b) in COUNTERS.values())
    return f"""
        SELECT p.id AS pid, h, rate * active AS inc_rate,
               sum(rate * active * 60) OVER (PARTITION BY p.id ORDER BY h) AS cum
        FROM (SELECT p.id, (CASE p.metric {cases} END) * (1 + (e.id % 7) * 0.25) AS rate, p.metric FROM points p
              JOIN devices d ON d.id = p.device_id JOIN enterprises e ON e.id = d.enterprise_id
              WHERE p.metric IN ({",".join(f"'{m}'" for m, *_ in COUNTERS.values())}) {point_filter}) p,
             LATERAL (SELECT h, ((h / {H_MS} + 8) % 24) AS ch FROM generate_series({start_ms}::bigint,
                      {start_ms + days * DAY_MS - H_MS}::bigint, {H_MS}) h) hh,
             LATERAL (SELECT CASE WHEN CASE p.metric {act} END THEN 1 ELSE 0 END AS active) a"""


def rollup_table(conn: psycopg.Connection[Any], name: str) -> str:
    """Where a rollup's rows are: its table, or on TimescaleDB its continuous aggregate's materialization."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None:
        return name
    got = conn.execute("SELECT format('%%I.%%I', materialization_hypertable_schema, materialization_hypertable_name) "
                       "FROM timescaledb_information.continuous_aggregates WHERE view_name = %s", (name,)).fetchone()
    return str(got[0]) if got else name


def generate(dsn: str, url: str, start_ms: int, days: int, raw_enterprises: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    ts = "(timestamptz 'epoch' + ({}) * interval '1 millisecond')"
    with psycopg.connect(dsn, autocommit=True) as conn:
        t1h, t1d = rollup_table(conn, "readings_1h"), rollup_table(conn, "readings_1d")
        conn.execute("SET work_mem = '256MB'")
        conn.execute(f"CREATE UNLOGGED TABLE hours AS {_hours_sql(start_ms, days, '')}")
        conn.execute("CREATE INDEX ON hours (pid, h)")
        # 1 h rollups of the counters: the first reading at minute 0, the last at minute 59
        conn.execute(f"""INSERT INTO {t1h} (point_id, bucket, n_all, n, sum, min, max, first_ts, first,
                         last_ts, last)
            SELECT pid, {ts.format('h')}, 60, 60, (cum - inc_rate * 30) * 60, cum - inc_rate * 59, cum,
                   {ts.format('h')}, cum - inc_rate * 59, {ts.format(f'h + {H_MS - 60_000}')}, cum FROM hours""")
        gauge_vals = " ".join(f"WHEN '{m}' THEN {v}" for m, _u, v in GAUGES.values())
        conn.execute(f"""INSERT INTO {t1h} (point_id, bucket, n_all, n, sum, min, max, first_ts, first,
                         last_ts, last)
            SELECT p.id, {ts.format('h')}, 60, 60, v * 60, v * 0.9, v * 1.1, {ts.format('h')}, v,
                   {ts.format(f'h + {H_MS - 60_000}')}, v
            FROM (SELECT id, CASE metric {gauge_vals} END AS v FROM points
                  WHERE metric IN ({",".join(f"'{m}'" for m, *_ in GAUGES.values())})) p,
                 generate_series({start_ms}::bigint, {start_ms + days * DAY_MS - H_MS}::bigint, {H_MS}) h""")
        t_1h = time.perf_counter() - t0
        # 1 day rollups from the 1 h ones with parkmon's own rollup SQL, enterprise by enterprise
        d = Dialect("postgresql")
        _delete, insert = _recompute_sql(d, "readings_1h", LEVELS["1d"], LEVELS["1h"])
        sql = insert.replace("INSERT INTO readings_1d ", f"INSERT INTO {t1d} ")
        sql = sql.replace(":ent", "%(ent)s").replace(":lo", "%(lo)s").replace(":hi", "%(hi)s")
        for (eid,) in conn.execute("SELECT id FROM enterprises").fetchall():
            conn.execute(sql, {"ent": eid, "lo": start_ms, "hi": start_ms + days * DAY_MS})
        t_1d = time.perf_counter() - t0 - t_1h
        # raw 1-minute rows of the year for the counters of the first enterprises
        store = open_store(url)
        months = {(start_ms + k * DAY_MS) for k in range(0, days, 27)} | {start_ms + days * DAY_MS - 1}
        store._ensure_partitions([(0, m, None, 0) for m in months])  # type: ignore[attr-defined]
        store.close()
        conn.execute(f"""INSERT INTO readings (point_id, ts, value, quality)
            SELECT pid, {ts.format('h + m * 60000')}, cum - inc_rate * (59 - m), 0
            FROM hours JOIN points p ON p.id = hours.pid JOIN devices dv ON dv.id = p.device_id,
                 generate_series(0, 59) m
            WHERE dv.enterprise_id IN (SELECT id FROM enterprises ORDER BY id LIMIT {raw_enterprises})""")
        raw_rows = conn.execute("SELECT count(*) FROM readings").fetchone()
        conn.execute("DROP TABLE hours")
        conn.execute("ANALYZE")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("readings_1h", "readings_1d")}
    return {"phase": "setup", "rollup_1h_rows": counts["readings_1h"], "rollup_1d_rows": counts["readings_1d"],
            "raw_rows": raw_rows[0] if raw_rows else 0, "generate_1h_s": round(t_1h, 1),
            "generate_1d_s": round(t_1d, 1), "generate_s": round(time.perf_counter() - t0, 1)}


def cems_day(dsn: str, day_ms: int) -> int:
    """One day of 1-minute samples of every CEMS point (for compliance, which judges raw samples)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(f"""INSERT INTO readings (point_id, ts, value, quality)
            SELECT p.id, timestamptz 'epoch' + ({day_ms} + m * 60000) * interval '1 millisecond',
                   CASE p.metric WHEN 'cems.so2' THEN 20 + (m % 7) WHEN 'cems.nox' THEN 60 + (m % 11) ELSE 9 END, 0
            FROM points p, generate_series(0, 1439) m WHERE p.metric IN ('cems.so2', 'cems.nox', 'cems.o2')
            ON CONFLICT DO NOTHING""")
        conn.execute("ANALYZE readings")
        return cur.rowcount


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def timed_queries(store: Any, dsn: str, args: argparse.Namespace, s_ms: int, e_ms: int, day0: int,
                  out: Any, tag: str) -> dict[str, Any]:
    """The timed part: the year's report, one day's indicators, the raw paths; emits each phase."""
    period = "2025" if args.days == 365 else "2025-01"
    report, t_year = timed(lambda: park_report(store, "bench", period))
    _s, t_share_day = timed(lambda: compute_park_share(store, "bench", day0, day0 + DAY_MS, source="rollup"))
    _e, t_energy_day = timed(lambda: compute_energy(store, "bench", day0, day0 + DAY_MS, source="rollup"))
    _p, t_ents_day = timed(lambda: energy_by_enterprise(store, "bench", day0, day0 + DAY_MS, source="rollup"))
    from analytics.indicators.pollutant_compliance import compute_compliance
    comp, t_comp_day = timed(lambda: compute_compliance(store, "bench", day0, day0 + DAY_MS))
    # the same enterprise's year from raw rows and from the rollups, side by side
    ent = "e000"
    raw_tce, t_raw_ent = timed(lambda: compute_energy(store, "bench", s_ms, e_ms, ent, source="raw")[0].value)
    roll_tce, t_roll_ent = timed(lambda: compute_energy(store, "bench", s_ms, e_ms, ent, source="rollup")[0].value)
    with psycopg.connect(dsn) as conn:
        (n_raw, _sum), t_scan = timed(lambda: conn.execute(
            "SELECT count(*), sum(value) FROM readings WHERE point_id IN (SELECT p.id FROM points p "
            "WHERE p.metric NOT LIKE 'cems.%%')").fetchone())
    year_rows_all = args.enterprises * 10 * args.days * 1440
    n_raw = n_raw * args.days // (args.days + 1)  # the stored day before the period is not the year's
    scan_all_s = t_scan / n_raw * year_rows_all if n_raw else None
    share = report["new_energy_share"]
    out({"phase": "report_year", "raw": tag, "period": period, "seconds": round(t_year, 3),
         "sections_s": report["timings_s"], "share": share["value"], "share_source": share["inputs"]["source"],
         "tce": report["comprehensive_energy"]["value"], "enterprises": len(report["enterprises"])})
    out({"phase": "one_day", "raw": tag, "share_s": round(t_share_day, 4), "energy_s": round(t_energy_day, 4),
         "enterprises_energy_s": round(t_ents_day, 4), "compliance_raw_s": round(t_comp_day, 3),
         "outlets": len(comp["outlets"])})
    out({"phase": "agreement", "raw": tag, "enterprise": ent, "tce_raw": raw_tce, "tce_rollup": roll_tce,
         "relative_difference": None if not raw_tce or roll_tce is None else abs(roll_tce - raw_tce) / raw_tce,
         "raw_path_s": round(t_raw_ent, 3), "rollup_path_s": round(t_roll_ent, 4)})
    out({"phase": "raw_scan", "raw": tag, "rows_scanned": n_raw, "seconds": round(t_scan, 3),
         "rows_per_s": round(n_raw / t_scan) if t_scan else None, "year_rows_all_points": year_rows_all,
         "scan_all_points_s_scaled": None if scan_all_s is None else round(scan_all_s, 1)})
    return {"year_report_s": round(t_year, 3), "goal_s": 10, "goal_met": t_year < 10,
            "tce": report["comprehensive_energy"]["value"], "compliance_day_from_raw_s": round(t_comp_day, 3),
            "enterprise_year_from_raw_s": round(t_raw_ent, 3),
            "raw_scan_once_s_scaled": None if scan_all_s is None else round(scan_all_s, 1),
            "ratio_report_to_raw_scan": None if not scan_all_s else round(t_year / scan_all_s, 4),
            "compliance_year_from_raw_s_scaled": round(t_comp_day * args.days, 1)}


def run_layout(layout: str, args: argparse.Namespace) -> dict[str, Any]:
    from tests.pg_server import start_postgres

    def out(obj: dict[str, Any]) -> None:
        emit({"layout": layout, **obj})

    pg = start_postgres({"shared_buffers": "1GB", "max_wal_size": "8GB", "fsync": "off",
                         "synchronous_commit": "off", "work_mem": "64MB"})
    try:
        url = pg.create_database()
        dsn = url.replace("postgresql+psycopg", "postgresql")
        set_layout(dsn, layout)
        start = datetime(2025, 1, 1, tzinfo=CHINA)
        s_ms = int(start.timestamp() * 1000)
        e_ms = s_ms + args.days * DAY_MS
        register(url, args.enterprises)
        out({"phase": "park", "enterprises": args.enterprises, "points": args.enterprises * 10, "days": args.days})
        # from a day before the period: a counter's period starts at its last reading before the start
        out(generate(dsn, url, s_ms - DAY_MS, args.days + 1, args.raw_enterprises))
        if args.days not in (31, 365):
            raise SystemExit("--days: 365 (a year report) or 31 (a month report)")
        day0 = int((start + timedelta(days=min(165, args.days - 1))).timestamp() * 1000)
        out({"phase": "cems_day", "rows": cems_day(dsn, day0)})
        store = open_store(url)
        try:
            summary = {"phase": "summary", "raw_uncompressed": timed_queries(store, dsn, args, s_ms, e_ms, day0, out,
                                                                               "uncompressed")}
            t = time.perf_counter()
            chunks = store.compress_raw_before(e_ms + 30 * DAY_MS)  # every raw chunk of the year
            if chunks is not None:
                compress_s = time.perf_counter() - t
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE readings")
                out({"phase": "compressed", "chunks": chunks, "seconds": round(compress_s, 1)})
                summary["raw_compressed"] = timed_queries(store, dsn, args, s_ms, e_ms, day0, out, "compressed")
        finally:
            store.close()
        out(summary)
        return summary
    finally:
        pg.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--enterprises", type=int, default=200)
    ap.add_argument("--days", type=int, default=365, help="length of the year (from 2025-01-01, China time)")
    ap.add_argument("--raw-enterprises", type=int, default=10, help="enterprises whose raw year is stored")
    add_option(ap)
    args = ap.parse_args()
    layouts, skipped = usable(args.layouts)
    for layout, why in skipped.items():
        print(f"skipping the {layout} half: {why}", file=sys.stderr)
        emit({"phase": "skipped", "layout": layout, "why": why})
    got = {layout: run_layout(layout, args) for layout in layouts}
    emit({"phase": "layouts", **{k: {"year_report_s": v["raw_uncompressed"]["year_report_s"],
                                     "year_report_s_raw_compressed": v.get("raw_compressed", {}).get("year_report_s"),
                                     "compliance_day_from_raw_s": v["raw_uncompressed"]["compliance_day_from_raw_s"],
                                     "compliance_day_from_raw_s_compressed":
                                         v.get("raw_compressed", {}).get("compliance_day_from_raw_s")}
                                 for k, v in got.items()}, "skipped": skipped})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
