"""From a substation to the store: a c104 (lib60870) station, the gateway agent with an iec104 device, a real
mosquitto, ingest into SQLite. Counter readings sent before, during a station restart and after arrive in the
store each once, with the station's time tags and quality, as a user reading the store would check them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

c104 = pytest.importorskip("c104", reason="c104 (lib60870) is a test dependency: ./dev.sh test installs it")

from edge_agent.agent import Agent  # noqa: E402
from edge_agent.config import parse_config  # noqa: E402
from ingest.mqtt.broker import Mosquitto  # noqa: E402
from ingest.mqtt.config import IngestConfig  # noqa: E402
from ingest.mqtt.consumer import Ingestor  # noqa: E402
from ingest.store import open_store  # noqa: E402
from parkmon.common import quality, wire  # noqa: E402
from parkmon.common.netutil import free_port  # noqa: E402
from parkmon.common.quality import Reason  # noqa: E402
from tests.mqtt_util import publisher, wait_for  # noqa: E402
from tests.test_edge_agent_mqtt import running  # noqa: E402

T0 = 1_796_637_600_000  # 2026-12-07 10:00:00 UTC (tests/test_iec104_codec.py works it out)


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 12, 7, 10, 0, second, tzinfo=dt.UTC)


class Substation:
    def __init__(self, port: int, kwh: int, second: int) -> None:
        self.server = c104.Server(ip="127.0.0.1", port=port)
        st = self.server.add_station(common_address=3)
        self.energy = st.add_point(io_address=25601, type=c104.Type.M_IT_TB_1)
        self.power = st.add_point(io_address=16385, type=c104.Type.M_ME_TF_1)
        self.count(kwh, second)
        self.power.info = c104.ShortInfo(actual=1520.5, quality=c104.Quality.NonTopical, recorded_at=at(0))
        self.server.start()

    def count(self, kwh: int, second: int, send: bool = False) -> None:
        self.energy.info = c104.BinaryCounterInfo(counter=kwh, sequence=c104.UInt5(second),
                                                  quality=c104.BinaryCounterQuality(), recorded_at=at(second))
        if send:
            assert self.energy.transmit(cause=c104.Cot.SPONTANEOUS), "no client connected to send to"


def test_counter_readings_reach_the_store_once_each_across_a_station_restart(mosquitto: Mosquitto,
                                                                              tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'park.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
    ing.start()
    port = free_port()
    station = Substation(port, 1000, 1)
    cfg = parse_config({
        "gateway": {"park": "demo", "enterprise": "e01", "id": "gw-sub"},
        "mqtt": {"port": mosquitto.port}, "buffer": {"path": str(tmp_path / "buffer.db")},
        "publish": {"health_interval_s": 0.5}, "poll_interval_s": 0.2,
        "devices": [{"id": "sub110", "driver": "iec104", "host": "127.0.0.1", "port": port, "common_address": 3,
                     "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "points": [
                         {"name": "import", "metric": "elec.import.energy", "ioa": 25601, "scale": 0.1},
                         {"name": "p", "metric": "elec.active_power", "ioa": 16385}]}]})
    agent = Agent(cfg)
    seen: dict[str, Any] = {}
    sent: list[tuple[str, int, float | None, int]] = []  # what the gateway published, as a listener on the broker
    listener = publisher(mosquitto.port, "iec104-listener")
    listener.on_message = lambda _c, _u, msg: sent.extend(
        s for s in wire.decode_batch(bytes(msg.payload)).samples if s[0] == "sub110.import")
    listener.subscribe("parkmon/v1/demo/e01/gw-sub/data", qos=1)
    try:
        with running(agent):
            def stored() -> list[tuple[int, float | None, int]]:
                pts = {p.point: p.id for p in store.points("demo")}
                if "import" not in pts:
                    return []
                got = store.readings([pts["import"]], T0 - 1, T0 + 60_000)[pts["import"]]
                seen["p"] = store.readings([pts["p"]], T0 - 1, T0 + 60_000)[pts["p"]]
                return got

            wait_for(lambda: len(stored()) == 1, what="the counter interrogation's answer stored")
            station.count(1001, 2, send=True)
            wait_for(lambda: len(stored()) == 2, what="the spontaneous reading stored")
            station.server.stop()
            wait_for(lambda: agent.health["sub110"].up is False, what="the gateway seeing the station gone")
            station = Substation(port, 1001, 2)  # back, holding the reading already sent
            wait_for(lambda: agent.health["sub110"].up is True, what="the link up again")
            station.count(1002, 3, send=True)
            wait_for(lambda: len(stored()) >= 3, what="the reading after the restart stored")
            agent.stop()
        got = stored()
    finally:
        station.server.stop()
        ing.stop()
        listener.loop_stop()
        listener.disconnect()
    # 1000 / 1001 / 1002 x 0.1 kWh at 10:00:01, :02, :03. The restarted station's answer to the counter
    # interrogation repeats 1001 at :02: the same reading, not published again (the store keys (point, ts) and
    # would hide a repeat: the broker's copy shows it)
    readings = [(ts, v, q) for _, ts, v, q in sent if q != quality.bad(Reason.COMM_FAILURE)]
    assert [ts for ts, _, _ in readings] == [T0 + 1000, T0 + 2000, T0 + 3000]
    assert [v for _, v, _ in readings] == pytest.approx([100.0, 100.1, 100.2])
    assert {q for _, _, q in readings} == {quality.GOOD}
    assert any(v is None for _, _, v, _ in sent), "while the station was away the point was sent as comm failure"
    # in the store: the same three, at the station's time tags (the comm-failure rows carry the gateway's time,
    # hours after these)
    assert [ts for ts, _, _ in got] == [T0 + 1000, T0 + 2000, T0 + 3000]
    assert [v for _, v, _ in got] == pytest.approx([100.0, 100.1, 100.2])
    # the power's NT bit: not topical, stored as uncertain (last usable value), at the station's time tag
    assert seen["p"][:1] == [(T0, 1520.5, quality.uncertain(Reason.LAST_USABLE))]
    store.close()
