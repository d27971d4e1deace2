"""重点用能单位: annualising partial data, by hand and through the API over stored counters."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from analytics.indicators.key_energy_users import rank
from ingest.store import Store
from parkmon.api.app import create_app
from tests.test_comprehensive_energy import _seed


def test_annualised_by_days_and_ranked() -> None:
    got = rank({"a": 500.0, "b": 100.0, "c": None}, days=30)
    assert [k.enterprise for k in got] == ["a", "b"]  # c had no data: left out, not zero
    assert got[0].annualised_tce == pytest.approx(500 * 365 / 30)  # 6 083.3 tce/yr
    assert got[0].key_user and got[0].margin_tce == pytest.approx(500 * 365 / 30 - 5000)
    assert not got[1].key_user and got[1].annualised_tce == pytest.approx(100 * 365 / 30)  # 1 216.7
    with pytest.raises(ValueError, match="positive length"):
        rank({"a": 1.0}, days=0)


def test_key_energy_users_of_a_park_from_its_meters(store: Store) -> None:
    _seed(store)
    client = TestClient(create_app(store))
    day = {"start": "2026-11-23T00:00:00+08:00", "end": "2026-11-24T00:00:00+08:00"}
    r = client.get("/api/v1/parks/demo/indicators/key-energy-users", params=day)
    assert r.status_code == 200, r.text
    body = r.json()
    e01 = (27_600 * 0.1229 + 705 * 1.2143 + 12 * 128.6 + 48 * 34.12) / 1000  # 7.429 tce in the day
    (first,) = body["enterprises"]
    assert first["enterprise"] == "e01" and first["annualised_tce"] == pytest.approx(e01 * 365)  # 2 711.6
    assert body["value"] == 0 and not first["key_user"] and body["name_zh"] == "重点用能单位"
    assert body["without_data"] == ["e02"]  # its only meter stopped at noon
    lower = client.get("/api/v1/parks/demo/indicators/key-energy-users", params={**day, "threshold_tce": 2000}).json()
    assert lower["value"] == 1 and lower["enterprises"][0]["key_user"]
