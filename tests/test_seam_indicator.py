"""The indicator seam: a throw-away indicator written as one module in a temporary package and registered
with one line is answered by the API, offered by `parkmon indicators` and written into the monthly report,
with no other file touched. Its figures are checked against numbers worked out by hand."""

from __future__ import annotations

import json
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from analytics import cli
from analytics.indicators import base
from analytics.report.excel import write_excel
from analytics.report.gather import park_report
from ingest.store import Store
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from parkmon.common.clock import CHINA

H = 3_600_000
JAN1 = int(datetime(2026, 1, 1, tzinfo=CHINA).timestamp() * 1000)
FEB1 = int(datetime(2026, 2, 1, tzinfo=CHINA).timestamp() * 1000)
PACKAGE = "throwaway_indicators"

# the whole indicator: its pure computation, its feed and its class, in one module
MODULE = '''
"""电网购电量 — grid electricity imported over a period, against a budget (lower is better)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span
from analytics.meters import counter_totals


def over_budget(imported_kwh: float, budget_kwh: float) -> float:
    return imported_kwh - budget_kwh


class Params(Span):
    budget_kwh: Annotated[float, Field(gt=0, description="electricity the park may import in the period")] = 80_000.0


class GridImport(Indicator[Params]):
    key = "grid_import"
    name_zh = "电网购电量"
    name_en = "Grid electricity imported"
    unit = "kWh"
    better = "lower"
    params = Params

    def feed(self, store: Any, park: str, p: Params, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        totals, rep = counter_totals(store, park, {"imp": ("elec.import.energy",)}, p.start_ms, p.end_ms)
        return self.make_result(totals["imp"], p.start, p.end, target=p.budget_kwh,
                                inputs={"meters": rep["meters"], "over_budget_kwh": over_budget(totals["imp"],
                                                                                                p.budget_kwh)})
'''


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "grid_import.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in (PACKAGE, f"{PACKAGE}.grid_import"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    # the one line that registers it
    monkeypatch.setitem(base.INDICATORS, "grid_import", f"{PACKAGE}.grid_import:GridImport")


def _seed(store: Store) -> None:
    """One import meter counting 100 kWh an hour from an hour before January 2026 to an hour after it."""
    store.upsert_park("demo", "示范园区", "Demo park", "low_carbon", "呼和浩特")
    store.upsert_meta("demo", "e01", "gw", wire.Meta(1, "gw", 0, {
        "grid.imp": wire.PointMeta("elec.import.energy", "kWh", "counter", "关口表")}, {}))
    samples = [("grid.imp", t, 100.0 * k, 0) for k, t in enumerate(range(JAN1 - H, FEB1 + 2 * H, H))]
    store.write_batches([IncomingBatch("demo", "e01", "gw", wire.Batch(1, "gw", 1, JAN1, samples), JAN1)])


def test_the_api_answers_a_registered_indicator(store: Store, registered: None) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    day = {"start": "2026-01-01T00:00:00+08:00", "end": "2026-01-02T00:00:00+08:00"}
    r = client.get("/api/v1/parks/demo/indicators/grid-import", params=day)
    assert r.status_code == 200, r.text
    body = r.json()
    # 24 hours × 100 kWh = 2 400 kWh, within the default budget of 80 000 kWh: met (lower is better)
    assert body["value"] == pytest.approx(2400.0)
    assert (body["target"], body["status"], body["unit"], body["name_zh"]) == (80_000.0, "met", "kWh", "电网购电量")
    assert body["inputs"]["over_budget_kwh"] == pytest.approx(2400.0 - 80_000.0)
    # its own parameter from the query: 2 400 kWh over a 2 000 kWh budget is below target
    tight = client.get("/api/v1/parks/demo/indicators/grid_import", params={**day, "budget_kwh": 2000}).json()
    assert tight["status"] == "below_target" and tight["inputs"]["over_budget_kwh"] == pytest.approx(400.0)
    assert client.get("/api/v1/parks/demo/indicators/grid-import",
                      params={**day, "budget_kwh": -1}).status_code == 422
    assert client.get("/api/v1/parks/nope/indicators/grid-import", params=day).status_code == 404
    listed = {i["key"]: i for i in client.get("/api/v1/parks/demo/indicators").json()}
    assert listed["grid_import"]["path"] == "/api/v1/parks/demo/indicators/grid-import"
    assert listed["grid_import"]["params"]["budget_kwh"]["default"] == 80_000.0


def test_parkmon_indicators_offers_it(store: Store, store_url: str, registered: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0 and "grid-import" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["grid-import", "--help"])
    assert "--budget-kwh" in capsys.readouterr().out
    _seed(store)
    assert cli.main(["grid-import", "--db", store_url, "--park", "demo", "--start", "2026-01-01T00:00+08:00",
                     "--end", "2026-01-01T12:00+08:00", "--budget-kwh", "1000"]) == 0
    body = json.loads(capsys.readouterr().out)
    # 12 hours × 100 kWh = 1 200 kWh over a 1 000 kWh budget
    assert body["value"] == pytest.approx(1200.0) and body["status"] == "below_target"


def test_the_monthly_report_has_its_section(store: Store, registered: None, tmp_path: Path) -> None:
    _seed(store)
    report = park_report(store, "demo", "2026-01")
    section = report["grid_import"]
    # 31 days × 24 hours × 100 kWh = 74 400 kWh, within 80 000: met
    assert section["value"] == pytest.approx(74_400.0) and section["status"] == "met"
    assert section["period_start"] == "2026-01-01T00:00:00+08:00"
    wb = load_workbook(write_excel(report, tmp_path / "demo-2026-01.xlsx"))
    summary = {row[0]: row for row in wb["概要 Summary"].iter_rows(values_only=True) if row and row[0]}
    line = summary["电网购电量 Grid electricity imported (kWh)"]
    assert line[1:4] == ("74,400.00", "80,000.00", "达标 met")
