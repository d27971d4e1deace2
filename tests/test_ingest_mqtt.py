"""Ingest against a real mosquitto and a real PostgreSQL: every row once, bad payloads aside."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store, open_store
from parkmon.common import wire
from tests.mqtt_util import publish_all, publisher, wait_for
from tests.pg_server import start_postgres

T0 = 1_763_800_000_000
TOPIC = wire.topic("demo", "e01", "gw1", "data")


def _payload(seq: int, n: int = 100, gw: str = "gw1") -> bytes:
    samples = [(f"dev{i % 5}.p{i}", T0 + seq * 1000, float(seq * n + i), 0) for i in range(n)]
    return wire.encode(wire.Batch(1, gw, seq, T0 + seq * 1000, samples))


@pytest.fixture
def ingest(mosquitto: Mosquitto, store: Store) -> Iterator[Ingestor]:
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url, max_wait_ms=20), store)
    ing.start()
    assert ing.connected.wait(10)
    try:
        yield ing
    finally:
        ing.stop()


def test_batches_arrive_once_even_when_replayed(mosquitto: Mosquitto, store: Store, ingest: Ingestor) -> None:
    pub = publisher(mosquitto.port)
    msgs = [(TOPIC, _payload(seq)) for seq in range(1, 21)]
    publish_all(pub, msgs)
    publish_all(pub, msgs[5:10])  # a gateway resending after a lost PUBACK
    wait_for(lambda: ingest.stats.messages >= 25, what="25 messages")
    pub.loop_stop()
    assert store.count_readings() == 20 * 100
    assert ingest.stats.duplicates == 5 * 100
    (c,) = store.completeness("demo", 0, 2**62)
    assert (c.received, c.expected) == (20, 20)


def test_malformed_payloads_go_to_dead_letters_and_ingest_keeps_going(
    mosquitto: Mosquitto, store: Store, ingest: Ingestor
) -> None:
    pub = publisher(mosquitto.port)
    bad = [
        (TOPIC, b"{not json"),
        (TOPIC, b'{"v":1,"gw":"gw1","seq":"x","sent":0,"samples":[]}'),
        (TOPIC, b'{"v":1,"gw":"gw1","seq":3,"sent":0,"samples":[["dev.p",1763800000,1.0,0]]}'),
        (TOPIC, _payload(4, gw="other-gw")),
        ("parkmon/v1/demo/e 01/gw1/data", _payload(5)),
        (TOPIC, b'{"v":1,"gw":"gw1","seq":18446744073709551616,"sent":0,"samples":[]}'),
    ]
    publish_all(pub, [*bad, (TOPIC, _payload(6))])
    wait_for(lambda: ingest.stats.messages >= 7, what="messages")
    pub.loop_stop()
    reasons = sorted(d.reason for d in store.dead_letters())
    assert len(reasons) == 6
    assert any("not valid JSON" in r for r in reasons)
    assert any("Expected `int`, got `str` - at `$.seq`" in r for r in reasons)
    assert any("not epoch milliseconds" in r for r in reasons)
    assert any("does not match topic gateway 'gw1'" in r for r in reasons)
    assert any("enterprise id 'e 01' must be" in r for r in reasons)
    assert any("seq 18446744073709551616 is not between 0 and 2^63-1" in r for r in reasons)
    assert store.count_readings() == 100, "the good batch after the bad ones was stored"


def test_database_down_then_back_loses_and_doubles_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    pg = start_postgres()  # our own server: this test stops it
    try:
        url = pg.create_database()
        store = open_store(url)
        ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=url, max_wait_ms=20), store)
        ing.start()
        assert ing.connected.wait(10)
        pub = publisher(mosquitto.port)
        publish_all(pub, [(TOPIC, _payload(seq)) for seq in range(1, 11)])
        wait_for(lambda: store.count_readings() == 1000, what="first 10 batches")
        pg.stop()
        publish_all(pub, [(TOPIC, _payload(seq)) for seq in range(11, 41)])
        wait_for(lambda: ing.stats.db_errors > 0, what="ingest to notice the database is down")
        pg.start()
        wait_for(lambda: _count(store) == 4000, timeout=40, what="all 40 batches after the restart")
        pub.loop_stop()
        ing.stop()
        assert _count(store) == 4000
        store.close()
    finally:
        pg.stop("immediate")


def _count(store: Store) -> int:
    try:
        return store.count_readings()
    except Exception:
        return -1
