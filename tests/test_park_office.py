"""The systems no meter feeds, end to end on real components: the simulated park office publishes a
simulated day of gate traffic through a real mosquitto to the real ingest into PostgreSQL, and writes
its records through the real HTTP API (uvicorn); what the API then reads back equals what the
simulator sent (its own count is the ground truth)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store, open_store
from parkmon.api.app import create_app
from parkmon.common.clock import now_ms
from parkmon.common.netutil import free_port
from parkmon.demo import _start_api
from simulators.definition import load_definition, parse_definition
from simulators.park_office import GATES, ParkOffice
from simulators.runner import default_sim_start
from tests.mqtt_util import wait_for


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    st = open_store(pg_url)
    st.create_schema()
    try:
        yield st
    finally:
        st.close()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_a_simulated_day_of_the_park_office_arrives_whole(pg_store: Store, mosquitto: Mosquitto) -> None:
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=pg_store.url, max_wait_ms=20), pg_store)
    ing.start()
    port = free_port()
    stop_api = _start_api(create_app(pg_store), port)
    base = f"http://127.0.0.1:{port}/api/v1"
    spec = parse_definition(load_definition())
    office = ParkOffice(spec, seed=7, api_base=base, mqtt_host="127.0.0.1", mqtt_port=mosquitto.port)
    try:
        assert ing.connected.wait(10)
        office.setup(now_ms())
        sent_in = sent_out = messages = 0
        sim = default_sim_start()
        for _minute in range(24 * 60):  # a simulated day, a tick per simulated minute
            sim += 60_000
            before = office.traffic.n
            n = office.tick(sim, 60.0)
            if n:
                messages += 1
                new_in = office.traffic.n - before
                sent_in, sent_out = sent_in + new_in, sent_out + n - new_in
        wait_for(lambda: ing.stats.messages >= messages, timeout=30, what=f"{messages} gate messages")
        # a day's burst is stamped a millisecond apart from the wall clock: counts "up to now" see it all after
        wait_for(lambda: now_ms() > office.last_event_ms, timeout=30, what="the newest gate event's stamp")
        assert office.errors == []
        st = _get(f"{base}/parks/demo/logistics")
        # every entry and exit the simulator sent is counted once; who is still inside is the difference
        assert (st["entries_24h"], st["exits_24h"]) == (sent_in, sent_out)
        assert st["vehicles_in_park"] == sent_in - sent_out
        assert sent_in > 150, "a day of traffic: ~18 an hour in the day, fewer at night"
        logi = {c["system"]: c for c in _get(f"{base}/parks/demo/systems")}["logistics"]
        assert (logi["expected_devices"], logi["reporting_devices"], logi["missing"]) == (len(GATES), len(GATES), [])
        figures = _get(f"{base}/parks/demo/economy")
        assert len(figures) == 3 * len(spec.enterprises)
        assert all(0 < f["value_added"] < f["output_value"] for f in figures)
        stored = {e["enterprise"]: e for e in _get(f"{base}/parks/demo/hazwaste/storage")}
        with_outlets = {e.key for e in spec.enterprises if any(d.kind in ("cems", "wastewater") for d in e.devices)}
        assert {k for k, e in stored.items() if e["stored_t"] > 0} | {
            m["enterprise"] for m in _get(f"{base}/parks/demo/hazwaste/manifests")} == with_outlets
        assert len(_get(f"{base}/parks/demo/hazard-sources")) == 2
        trail = _get(f"{base}/parks/demo/audit?limit=1000")
        assert {a["actor"] for a in trail} == {"park-office-sim"} and len(trail) > 20
    finally:
        office.stop()
        stop_api()
        ing.stop()
