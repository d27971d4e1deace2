"""End-to-end acknowledgement (issue 21, docs/decisions/0010): a gateway keeps a batch on its disk until ingest
says it is committed, and sends again what stays unconfirmed, so a broker that acknowledged from memory and
then crashed costs re-sends, not data.

Real components (tests/ack_park.py): mosquitto with production's persistence settings, PostgreSQL with fsync
on, ``parkmon ingest run`` processes, three ``parkmon edge run`` gateways polling counting Modbus meters. Each
test breaks something while the gateways poll, then counts, per gateway, every read its meter answered
against the rows stored: 0 lost, 0 doubled, every seq stored or still on the gateway's disk. Nothing is
asserted about timing: the waits are bounds for a failure message, not measurements.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt.broker import bridge_conf, start_mosquitto
from parkmon.common import wire
from tests.ack_park import (
    DURABLE_PG,
    GATEWAYS,
    PARK,
    Gateway,
    HealthTap,
    check_every_read_stored_once,
    flowing,
    report,
    start_broker,
    start_ingest,
    start_park,
    stored_reads,
)
from tests.mqtt_util import wait_for
from tests.pg_server import Postgres, start_postgres
from tests.test_scale_out import PARK as BRIDGED_PARK
from tests.test_scale_out import Relay, bridge_state

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def durable_pg() -> Iterator[Postgres]:
    """Durable as in production: a commit ingest has acknowledged survives a crash of the server."""
    pg = start_postgres(DURABLE_PG)
    try:
        yield pg
    finally:
        pg.destroy()


def test_broker_killed_while_ingest_is_away(durable_pg: Postgres, tmp_path: Path) -> None:
    """The drill that lost 2 050 samples: ingest stopped, the broker keeps its queue in memory (production
    autosaves as deploy/server/mosquitto.conf says), the broker is SIGKILLed, both come back. The gateways
    still hold every batch ingest had not confirmed, and send them again on reconnecting."""
    db = durable_pg.create_database()
    with ExitStack() as stack:
        broker = start_broker(stack, tmp_path / "mq")
        ingest = start_ingest(stack, db, broker.port, tmp_path)
        tap, gateways = start_park(stack, db, tmp_path, broker)
        ingest.stop()
        time.sleep(4)  # polls published, PUBACKed from the broker's memory, queued for ingest's session
        broker.sigkill()
        time.sleep(1)
        broker.start()
        ingest.start()
        time.sleep(2)  # and the gateways poll on after it
        figures = report("broker killed while ingest away", check_every_read_stored_once(db, gateways), tap)
    assert all(f["resent"] > 0 for f in figures.values()), figures  # the crash did cost re-sends


def test_broker_killed_under_load(durable_pg: Postgres, tmp_path: Path) -> None:
    db = durable_pg.create_database()
    with ExitStack() as stack:
        broker = start_broker(stack, tmp_path / "mq")
        start_ingest(stack, db, broker.port, tmp_path)
        tap, gateways = start_park(stack, db, tmp_path, broker)
        rng = random.Random(21)
        for _ in range(2):
            time.sleep(rng.uniform(1.0, 2.5))
            broker.sigkill()
            time.sleep(0.5)
            broker.start()
        time.sleep(2)
        report("broker killed under load", check_every_read_stored_once(db, gateways), tap)


def test_ingest_killed_under_load(durable_pg: Postgres, tmp_path: Path) -> None:
    """SIGKILL at a random moment: before a commit, between the commit and the acks, between the acks."""
    db = durable_pg.create_database()
    with ExitStack() as stack:
        broker = start_broker(stack, tmp_path / "mq")
        ingest = start_ingest(stack, db, broker.port, tmp_path)
        tap, gateways = start_park(stack, db, tmp_path, broker)
        rng = random.Random(3)
        for _ in range(3):
            time.sleep(rng.uniform(1.0, 2.5))
            ingest.kill()
            ingest.start(wait=False)
        time.sleep(2)
        report("ingest killed under load", check_every_read_stored_once(db, gateways), tap)


def test_two_workers_on_a_shared_subscription(durable_pg: Postgres, tmp_path: Path) -> None:
    """Each worker acks what it committed. mosquitto 2.0.11 keeps no shared subscription across a restart
    (decision 0003): what comes in before the workers subscribe again goes to no one. The gateways send it
    again once later batches are confirmed and it is not (ack_timeout_s)."""
    db = durable_pg.create_database()
    with ExitStack() as stack:
        broker = start_broker(stack, tmp_path / "mq")
        workers = [start_ingest(stack, db, broker.port, tmp_path, client_id=f"worker-{i}", group="parkmon")
                   for i in range(2)]
        tap, gateways = start_park(stack, db, tmp_path, broker)
        time.sleep(1.5)
        workers[0].kill()
        time.sleep(1.5)
        broker.sigkill()
        time.sleep(0.5)
        broker.start()
        workers[0].start(wait=False)
        time.sleep(3)
        report("two workers, one killed, broker killed", check_every_read_stored_once(db, gateways), tap)
        for w in workers:
            w.stop()
        shares = [w.messages() for w in workers]
    print("messages per worker since its last start", shares)
    assert all(n > 0 for n in shares), shares  # both committed, and acked, batches


def test_bridge_to_the_region_cut_and_restored(durable_pg: Postgres, tmp_path: Path) -> None:
    """Gateways on a park broker bridged (bridge_conf) to a regional broker where ingest runs: the acks come
    back down the bridge. The link is cut and restored (the park broker queues both ways), then the regional
    broker is SIGKILLed: what it had acknowledged to the bridge from memory is gone, and only the gateways,
    still connected to their park broker, can send it again."""
    db = durable_pg.create_database()
    with ExitStack() as stack:
        region = start_broker(stack, tmp_path / "region")
        relay = Relay(region.port)
        stack.callback(relay.close)
        park = start_broker(stack, tmp_path / "park",
                       extra_conf=bridge_conf(PARK, "127.0.0.1", relay.port, keepalive_s=5, restart=(1, 2)))
        start_ingest(stack, db, region.port, tmp_path)
        tap = HealthTap(park.port)
        stack.callback(tap.close)
        gateways = [Gateway(stack, tmp_path, i, park.port) for i in range(1, GATEWAYS + 1)]
        flowing(db, gateways)
        relay.cut()
        time.sleep(3)
        relay.restore()
        flowing(db, gateways, more_than=max(len(r) for r in stored_reads(db).values()) + 5)
        region.sigkill()
        time.sleep(0.5)
        region.start()
        time.sleep(3)
        figures = report("bridge cut, region killed", check_every_read_stored_once(db, gateways), tap)
    for gw, f in figures.items():  # the acks crossed the bridge: the gateways' disks emptied as they came
        assert f["confirmed"] > 0 and f["left_on_disk"] < f["batches"] // 2, (gw, f)


def test_acks_come_down_the_bridge_and_nothing_goes_round(tmp_path: Path) -> None:
    """An ack published at the region reaches the park once; data published at the park reaches the region
    once and does not come back down; an ack does not go back up."""
    regional = start_mosquitto(tmp_path / "region")
    park = start_mosquitto(tmp_path / "park", extra_conf=bridge_conf(BRIDGED_PARK, "127.0.0.1", regional.port,
                                                                      keepalive_s=5, restart=(1, 2)))
    seen: dict[str, list[tuple[str, bytes]]] = {"park": [], "region": []}
    clients = []
    try:
        for where, broker in (("park", park), ("region", regional)):
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"test-{where}")
            c.on_message = lambda _c, _u, m, where=where: seen[where].append((m.topic, bytes(m.payload)))
            c.connect("127.0.0.1", broker.port)
            c.subscribe("parkmon/#", 1)
            c.loop_start()
            clients.append(c)
        wait_for(lambda: bridge_state(park) == "1", 15, "the bridge up")
        ack, data = wire.topic(BRIDGED_PARK, "e01", "gw01", "ack"), wire.topic(BRIDGED_PARK, "e01", "gw01", "data")
        clients[1].publish(ack, b"ack-1", qos=1).wait_for_publish(5)
        clients[0].publish(data, b"data-1", qos=1).wait_for_publish(5)
        wait_for(lambda: (ack, b"ack-1") in seen["park"] and (data, b"data-1") in seen["region"], 10, "both ways")
        time.sleep(1.0)  # anything going round would be back by now
        for where in ("park", "region"):  # each once, in whichever order the two hops made
            assert sorted(seen[where]) == [(ack, b"ack-1"), (data, b"data-1")], (where, seen[where])
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        park.stop()
        regional.stop()

