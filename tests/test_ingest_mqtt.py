"""Ingest against a real mosquitto and a real PostgreSQL: every row once, bad payloads aside; each commit
acknowledged to its gateways (docs/decisions/0010); a lost broker found again at once and logged twice."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import RECONNECT_S, Ingestor
from ingest.store import Store, open_store
from ingest.store.base import IncomingBatch
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


def test_each_commit_is_acked_to_its_gateways_repeats_and_dead_letters_too(
    mosquitto: Mosquitto, store: Store, ingest: Ingestor
) -> None:
    events: list[tuple[str, str, frozenset[int]]] = []  # in the order they happened
    lock = threading.Lock()

    def committed(batches: list[IncomingBatch], _ms: int) -> None:
        with lock:
            for b in batches:
                events.append(("commit", b.gateway, frozenset({b.batch.seq})))

    def acked(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = wire.decode_ack(bytes(msg.payload), msg.topic.split("/")[4])
        with lock:
            events.append(("ack", ack.gw, frozenset(s for a, b in ack.seqs for s in range(a, b + 1))))

    def acked_seqs(gw: str) -> list[int]:
        with lock:
            return sorted(s for kind, g, seqs in events if kind == "ack" and g == gw for s in seqs)

    ingest.commit_listeners.append(committed)
    tap = publisher(mosquitto.port, "ack-tap")
    tap.on_message = acked
    tap.subscribe("parkmon/v1/+/+/+/ack", 1)
    time.sleep(0.3)
    pub = publisher(mosquitto.port)
    other = wire.topic("demo", "e02", "gw2", "data")
    publish_all(pub, [(TOPIC, _payload(seq)) for seq in range(1, 6)]
                + [(other, _payload(s, gw="gw2")) for s in (1, 2, 3)])
    wait_for(lambda: acked_seqs("gw1") == [1, 2, 3, 4, 5] and acked_seqs("gw2") == [1, 2, 3], what="the acks")
    publish_all(pub, [(TOPIC, _payload(2)),  # a repeat: acked again
                      (TOPIC, b'{"v":1,"gw":"gw1","seq":7,"sent":0,"samples":[["dev.p",1763800000,1.0,0]]}'),
                      (TOPIC, b"{not json")])  # a dead letter without a seq: nothing to ack
    wait_for(lambda: acked_seqs("gw1") == [1, 2, 2, 3, 4, 5, 7], what="the repeat and the dead letter acked")
    time.sleep(0.3)
    pub.loop_stop()
    tap.loop_stop()
    assert acked_seqs("gw1") == [1, 2, 2, 3, 4, 5, 7] and acked_seqs("gw2") == [1, 2, 3]
    assert len(store.dead_letters()) == 2
    with lock:  # every ack follows the commit of what it acks
        for i, (kind, gw, seqs) in enumerate(events):
            if kind == "ack":
                done = {s for k, g, ss in events[:i] if k == "commit" and g == gw for s in ss}
                assert seqs - {7} <= done, (gw, seqs, done)
    assert ingest.stats.acks_sent >= 3  # one per gateway per commit


def test_a_restarted_broker_is_found_again_at_once_and_the_outage_logged_twice(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert RECONNECT_S[1] <= 1.0  # attempts at most a second apart: back within 2 s of the broker
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url, max_wait_ms=20), store)
    with caplog.at_level(logging.INFO, logger="ingest"):
        ing.start()
        try:
            assert ing.connected.wait(10)
            mosquitto.stop()
            wait_for(lambda: not ing.connected.is_set(), what="ingest to see the broker gone")
            time.sleep(4)  # several attempts fail meanwhile
            mosquitto.start()
            back = time.monotonic()
            assert ing.connected.wait(20)
            print(f"ingest subscribed again {time.monotonic() - back:.2f} s after the broker listened")
            pub = publisher(mosquitto.port)
            publish_all(pub, [(TOPIC, _payload(1))])
            wait_for(lambda: store.count_readings() == 100, what="a batch after the outage")
            pub.loop_stop()
        finally:
            ing.stop()
            store.close()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("ingest.mqtt")]
    lost = [ln for ln in lines if "lost the broker" in ln]
    again = [ln for ln in lines if "connected" in ln and "again after" in ln]
    assert len(lost) == 1 and len(again) == 1, lines
    attempts = int(again[0].split(" s and ")[1].split(" attempts")[0])
    assert attempts >= 3, again  # tried all along, said once
    assert len(lines) == 3, lines  # connected, lost, connected again: nothing per attempt
