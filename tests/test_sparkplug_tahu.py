"""Sparkplug B in (issue 24) against an edge node parkmon did not write: Eclipse Tahu's JavaScript
``sparkplug-client`` (npm, tests/js/) encodes every payload, numbers seq and bdSeq, publishes NDEATH and answers
the bridge's rebirth request. Real mosquitto, the real bridge (``ingest/sparkplug``), real ingest and its store.

Every expected value is worked by hand from what the node was told to send (the arithmetic in comments).
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.sparkplug import mapping
from ingest.sparkplug.bridge import Bridge, BridgeConfig
from ingest.store import Store, open_store
from tests.mqtt_util import publish_all, publisher, wait_for

JS = Path(__file__).parent / "js"
T0 = 1_765_000_000_000  # 2025-12-06 05:46:40 UTC
MIN = 60_000
GOOD, COMM_FAILURE, DEVICE_FAILURE = 0, 0x81, 0x82  # quality: class in the top two bits (bad = 10), reason below

MAPPING = """
nodes:
  - group: Park1
    node: Edge1
    park: demo
    enterprise: ent1
    gateway: sp-edge1
    points:
      - {sparkplug: Cabinet/Temperature, point: cabinet.temp, metric: safety.temperature}
      - {device: Meter1, sparkplug: Energy/Import, point: meter1.import, metric: elec.import.energy,
         unit: Wh, scale: 0.001}
      - {device: Meter1, sparkplug: Power, point: meter1.power, metric: elec.active_power}
      - {device: Meter1, sparkplug: Voltage, point: meter1.voltage, metric: elec.voltage}
      - {device: Meter1, sparkplug: Breaker, point: meter1.breaker, metric: device.state}
      - {device: Meter1, sparkplug: Ambient, point: meter1.ambient, metric: safety.temperature}
      - {device: Meter1, sparkplug: Current, point: meter1.current, metric: elec.current}
"""


def _unit(u: str) -> dict[str, Any]:
    return {"engUnit": {"type": "String", "value": u}}


NBIRTH = {"timestamp": T0, "metrics": [
    {"name": "Node Control/Rebirth", "type": "Boolean", "value": False},
    {"name": "Cabinet/Temperature", "alias": 1, "type": "Float", "value": 21.5, "timestamp": T0,
     "properties": _unit("°C")}]}
DBIRTH = {"timestamp": T0, "metrics": [
    {"name": "Energy/Import", "alias": 10, "type": "UInt64", "value": 123456789, "timestamp": T0,
     "properties": _unit("Wh")},
    {"name": "Power", "alias": 11, "type": "Int32", "value": -15, "timestamp": T0, "properties": _unit("kW")},
    {"name": "Voltage", "alias": 12, "type": "Int16", "value": 231, "timestamp": T0, "properties": _unit("V")},
    {"name": "Breaker", "alias": 13, "type": "Boolean", "value": True, "timestamp": T0},
    {"name": "Ambient", "alias": 16, "type": "Int8", "value": -3, "timestamp": T0, "properties": _unit("°C")},
    # mA where the vocabulary stores A and the mapping says no `unit:`: refused, never stored 1000x off
    {"name": "Current", "alias": 14, "type": "Double", "value": 1500.0, "timestamp": T0, "properties": _unit("mA")},
    {"name": "Firmware", "alias": 15, "type": "String", "value": "v2.1", "timestamp": T0}]}  # not mapped


def _ddata(i: int) -> dict[str, Any]:
    """Minute i: energy +1000 Wh a minute, power -15 + i kW, breaker open on even minutes; in minute 3 the
    voltage comes with OPC quality 0 (bad), in minute 4 as null."""
    ts = T0 + i * MIN
    volt: dict[str, Any] = {"alias": 12, "type": "Int16", "value": 230 + i, "timestamp": ts}
    if i == 3:
        volt["properties"] = {"Quality": {"type": "Int32", "value": 0}}
    if i == 4:
        volt["value"] = None
    return {"timestamp": ts, "metrics": [
        {"alias": 10, "type": "UInt64", "value": 123456789 + i * 1000, "timestamp": ts},
        {"alias": 11, "type": "Int32", "value": -15 + i, "timestamp": ts},
        {"alias": 13, "type": "Boolean", "value": i % 2 == 1, "timestamp": ts}, volt]}


class TahuNode:
    """tests/js/sparkplug_node.js: Tahu's client, driven by JSON lines; its events read back."""

    def __init__(self, port: int, qos: int = 0) -> None:
        self.proc = subprocess.Popen(["node", str(JS / "sparkplug_node.js"), f"mqtt://127.0.0.1:{port}", "Park1",
                                      "Edge1", str(qos)], cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def expect(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        while True:
            e = self.events.get(timeout=timeout)
            self.seen.append(e)
            if e["event"] == event:
                return e

    def send(self, cmd: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self.expect("done" if cmd == "stop" else "ok")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def peers(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[Store, Ingestor, Bridge]]:
    if shutil.which("node") is None or not (JS / "node_modules" / "sparkplug-client").is_dir():
        pytest.skip("Tahu's sparkplug-client is not installed: apt-get install nodejs npm; cd tests/js && npm ci")
    store = open_store(f"sqlite:///{tmp_path / 'parkmon.db'}")
    store.create_schema()
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url, max_wait_ms=20), store)
    ing.start()
    (tmp_path / "sparkplug.yaml").write_text(MAPPING, encoding="utf-8")
    bridge = Bridge(BridgeConfig(mapping.load(tmp_path / "sparkplug.yaml"), mqtt_port=mosquitto.port,
                                 client_id="sp-test"), store)
    bridge.start()
    assert ing.connected.wait(10) and bridge.connected.wait(10)
    try:
        yield store, ing, bridge
    finally:
        bridge.stop()
        ing.stop()
        store.close()


def _series(store: Store) -> dict[str, list[tuple[int, float | None, int]]]:
    ids = {p.key.removeprefix("demo.ent1."): p.id for p in store.points("demo")}
    rows = store.readings(list(ids.values()), 0, 2**62)
    return {key: rows[pid] for key, pid in ids.items()}


def test_tahu_node_births_data_a_seq_gap_rebirth_and_death(peers: tuple[Store, Ingestor, Bridge],
                                                           mosquitto: Mosquitto) -> None:
    store, _ing, bridge = peers
    node = TahuNode(mosquitto.port)
    try:
        node.expect("birth")  # Tahu connected and asks for births
        node.send("nbirth", payload=NBIRTH)  # seq 0
        node.send("dbirth", device="Meter1", payload=DBIRTH)  # seq 1
        for i in range(1, 6):  # seq 2..6; minute 2 deflated and minute 5 gzipped by Tahu's client
            opts = {2: {"compress": True}, 5: {"compress": True, "algorithm": "GZIP"}}.get(i)
            node.send("ddata", device="Meter1", payload=_ddata(i), options=opts)
        node.send("ndata", payload={"timestamp": T0 + MIN, "metrics": [
            {"alias": 1, "type": "Float", "value": 22.0, "timestamp": T0 + MIN}]})  # seq 7
        node.send("skip", n=2)  # seq 8 and 9 never sent
        node.send("ddata", device="Meter1", payload=_ddata(6))  # seq 10: a gap
        ncmd = node.expect("ncmd")
        assert ncmd["metrics"] == [{"name": "Node Control/Rebirth", "value": True}]
        wait_for(lambda: bridge.sessions[("Park1", "Edge1")].stats["births"] == 2, what="the rebirth")
        node.send("ddata", device="Meter1", payload=_ddata(7))  # seq 2 of the new birth
        node.send("ddeath", device="Meter1", payload={"timestamp": T0 + 10 * MIN})
        wait_for(lambda: len(_series(store).get("meter1.import", [])) == 9, what="meter1.import: 9 rows")
        node.send("stop")  # NDEATH
        wait_for(lambda: not store.gateways("demo")[0].online, what="the gateway offline after NDEATH")
        wait_for(lambda: len(_series(store)["cabinet.temp"]) == 3, what="cabinet.temp offline row")
    finally:
        node.close()

    s = _series(store)
    t = [T0 + i * MIN for i in range(8)]
    # 123456789 Wh x 0.001 = 123456.789 kWh at the birth, +1 kWh a minute; minute 10: DDEATH
    assert s["meter1.import"] == [(t[0], pytest.approx(123456.789), GOOD)] + [
        (t[i], pytest.approx(123456.789 + i), GOOD) for i in range(1, 8)] + [(T0 + 10 * MIN, None, COMM_FAILURE)]
    # Int32 -15 travels as two's complement; -15 + i afterwards
    assert [(ts, v) for ts, v, _q in s["meter1.power"][:8]] == [(t[i], -15.0 + i) for i in range(8)]
    # 231 at the birth, 230 + i, minute 3 bad by the node's Quality 0, minute 4 null
    assert s["meter1.voltage"][:8] == [(t[0], 231.0, GOOD), (t[1], 231.0, GOOD), (t[2], 232.0, GOOD),
                                       (t[3], 233.0, DEVICE_FAILURE), (t[4], None, DEVICE_FAILURE),
                                       (t[5], 235.0, GOOD), (t[6], 236.0, GOOD), (t[7], 237.0, GOOD)]
    assert [v for _ts, v, _q in s["meter1.breaker"][:8]] == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert s["meter1.ambient"] == [(t[0], -3.0, GOOD), (T0 + 10 * MIN, None, COMM_FAILURE)]  # Int8 -3
    assert "meter1.current" not in s  # mA refused: the mapping expects the vocabulary's A
    ct = s["cabinet.temp"]
    assert ct[:2] == [(t[0], 21.5, GOOD), (t[1], 22.0, GOOD)]
    assert ct[2][1:] == (None, COMM_FAILURE)  # NDEATH: offline from its arrival
    units = {p.key.removeprefix("demo.ent1."): (p.metric, p.unit) for p in store.points("demo")}
    assert units["meter1.import"] == ("elec.import.energy", "kWh")
    assert units["cabinet.temp"] == ("safety.temperature", "°C")
    st = bridge.sessions[("Park1", "Edge1")].stats
    assert (st["births"], st["gaps"]) == (2, 1)
    assert store.dead_letters() == []


def test_nothing_lost_or_doubled_across_a_broker_restart(peers: tuple[Store, Ingestor, Bridge],
                                                         mosquitto: Mosquitto) -> None:
    """The node set to QoS 1 (Tahu's default is 0, the specification's for data) keeps sending while the broker
    is stopped and started again under everyone: the node re-sends what was not acknowledged and rebirths on
    reconnecting, the bridge and ingest get their persistent sessions back. Every minute the node sent is
    stored once with the value it sent."""
    store, _ing, _bridge = peers
    node = TahuNode(mosquitto.port, qos=1)
    n = 60
    try:
        node.expect("birth")
        node.send("nbirth", payload=NBIRTH)
        node.send("dbirth", device="Meter1", payload=DBIRTH)
        for i in range(1, n + 1):
            if i == 21:
                mosquitto.stop()  # minutes 21-40 are sent while no broker runs: the node queues them
            if i == 41:
                mosquitto.start()
            node.send("ddata", device="Meter1", payload=_ddata(i))
        wait_for(lambda: sum(q == GOOD for _t, _v, q in _series(store).get("meter1.import", [])) >= n + 1,
                 timeout=60, what=f"{n + 1} meter1.import rows")
    finally:
        node.close()
    rows = _series(store)["meter1.import"]
    # the birth's 123456789 Wh = 123456.789 kWh at T0, then +1000 Wh = +1 kWh each minute: one row per minute
    assert [(ts, round(v, 3) if v is not None else v, q) for ts, v, q in rows[:n + 1]] == \
        [(T0 + i * MIN, round(123456.789 + i, 3), GOOD) for i in range(n + 1)]
    # after them, at most the node's death when the broker went (its will, at its arrival time): nothing else
    assert all((v, q) == (None, COMM_FAILURE) and ts > T0 + n * MIN for ts, v, q in rows[n + 1:])
    assert [v for _ts, v, q in _series(store)["meter1.power"] if q == GOOD] == [-15.0 + i for i in range(n + 1)]
    assert store.dead_letters() == []


def test_a_malformed_payload_is_a_dead_letter_and_the_node_goes_on(peers: tuple[Store, Ingestor, Bridge],
                                                                   mosquitto: Mosquitto) -> None:
    store, _ing, bridge = peers
    node = TahuNode(mosquitto.port)
    try:
        node.expect("birth")
        node.send("nbirth", payload=NBIRTH)
        node.send("dbirth", device="Meter1", payload=DBIRTH)
        wait_for(lambda: "meter1.import" in _series(store), what="the birth stored")
        pub = publisher(mosquitto.port, "garbage")
        # field 2 (metrics) announced as 16 bytes long, 2 there: protobuf's "truncated message"
        publish_all(pub, [("spBv1.0/Park1/DDATA/Edge1/Meter1", b"\x12\x10\x0a\x01")])
        pub.loop_stop()
        node.send("ddata", device="Meter1", payload=_ddata(1))  # seq 2: the stream goes on
        wait_for(lambda: len(_series(store)["meter1.import"]) == 2, what="minute 1 stored")
    finally:
        node.close()
    (dl,) = store.dead_letters()
    assert dl.topic == "spBv1.0/Park1/DDATA/Edge1/Meter1" and dl.payload == b"\x12\x10\x0a\x01"
    assert dl.reason.startswith("DDATA from Park1/Edge1/Meter1: not a Sparkplug B protobuf payload")
    assert bridge.sessions[("Park1", "Edge1")].stats["gaps"] == 0  # the garbage took no seq


def test_a_restarted_bridge_reads_what_the_broker_kept_for_it_with_the_births_it_kept(
        peers: tuple[Store, Ingestor, Bridge], mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The node at QoS 1 sends minutes 21-40 while the bridge process is down; the broker keeps them for the
    bridge's persistent session. The new bridge process reads them with the births the old one kept: every minute
    is stored once, and the node is not asked for a rebirth (before, it was, and minutes 21-40 were dropped)."""
    store, _ing, old = peers
    node = TahuNode(mosquitto.port, qos=1)
    n = 60
    new: Bridge | None = None
    try:
        node.expect("birth")
        node.send("nbirth", payload=NBIRTH)
        node.send("dbirth", device="Meter1", payload=DBIRTH)
        for i in range(1, 21):
            node.send("ddata", device="Meter1", payload=_ddata(i))
        wait_for(lambda: len(_series(store).get("meter1.import", [])) == 21, what="minutes 0-20 stored")
        old.stop()
        for i in range(21, 41):
            node.send("ddata", device="Meter1", payload=_ddata(i))
        new = Bridge(BridgeConfig(mapping.load(tmp_path / "sparkplug.yaml"), mqtt_port=mosquitto.port,
                                  client_id="sp-test"), store)
        new.start()
        for i in range(41, n + 1):
            node.send("ddata", device="Meter1", payload=_ddata(i))
        wait_for(lambda: len(_series(store).get("meter1.import", [])) >= n + 1, timeout=30,
                 what=f"{n + 1} meter1.import rows")
        asked = []
        while not node.events.empty():
            asked += [e for e in [node.events.get()] if e["event"] == "ncmd"]
    finally:
        node.close()
        if new is not None:
            new.stop()
    rows = _series(store)["meter1.import"]
    # 123456.789 kWh at the birth (T0), +1 kWh a minute: each minute once, with the value the node sent
    assert [(ts, round(v, 3), q) for ts, v, q in rows if v is not None] == \
        [(T0 + i * MIN, round(123456.789 + i, 3), GOOD) for i in range(n + 1)]
    assert [e for e in node.seen if e["event"] == "ncmd"] + asked == []
    assert new is not None and new.sessions[("Park1", "Edge1")].stats["restored"] == 2  # NBIRTH and DBIRTH
    assert store.dead_letters() == []
