"""The edge agent against a real pymodbus server and a real mosquitto, through ingest to a store."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.buffer import DiskBuffer
from edge_agent.config import AgentConfig, parse_config
from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import open_store
from tests.modbus_server import register_server
from tests.mqtt_util import wait_for


def _config(modbus_port: int, mqtt_port: int, tmp: Path, **extra: object) -> AgentConfig:
    raw: dict[str, object] = {
        "gateway": {"park": "demo", "enterprise": "e01", "id": "gw-e01"},
        "mqtt": {"port": mqtt_port},
        "buffer": {"path": str(tmp / "buffer.db")},
        "publish": {"interval_s": 0.2, "health_interval_s": 0.5},
        "poll_interval_s": 0.2,
        "devices": [{"id": "grid", "name": "关口表", "port": modbus_port, "profile": "sim_grid_meter"}],
    }
    raw.update(extra)
    return parse_config(raw)


@contextmanager
def running(agent: Agent) -> Iterator[Agent]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(agent.run()), daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        loop.call_soon_threadsafe(agent.stop)
        thread.join(15)
        loop.close()


def test_agent_publishes_meta_status_and_every_poll(mosquitto: Mosquitto, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
    ing.start()
    with register_server({1: {"holding": {0: 0, 1: 1234, 5: 0x4120}}}) as port:
        agent = Agent(_config(port, mosquitto.port, tmp_path))
        with running(agent):
            wait_for(lambda: agent.health.get("grid") is not None and agent.health["grid"].polls >= 10,
                     what="10 polls")
        polls = agent.health["grid"].polls
    wait_for(lambda: store.count_readings() == polls * 3, what="every polled sample stored")
    ing.stop()
    pts = {p.point: p for p in store.points("demo")}
    assert pts["import"].metric == "elec.import.energy" and pts["import"].label.startswith("正向有功")
    latest = {r.point: r.value for r in store.latest("demo", "e01", "grid")}
    assert latest == {"import": 12.34, "export": 0.0, "power": 10.0}  # 0x41200000 stored low word first (CDAB) = 10.0
    # the death message arrived when the agent stopped; its last health report is kept
    (gw,) = store.gateways("demo")
    assert gw.gateway == "gw-e01" and gw.online is False
    assert gw.health_json is not None
    health = json.loads(gw.health_json)
    assert health["devices"]["grid"]["up"] is True and health["devices"]["grid"]["polls"] >= 2
    assert health["dropped_samples"] == 0
    store.close()


def test_broker_outage_buffers_to_disk_and_replays_everything_in_order(mosquitto: Mosquitto, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
    ing.start()
    with register_server({1: {"holding": {1: 7}}}) as port:
        agent = Agent(_config(port, mosquitto.port, tmp_path))
        with running(agent):
            wait_for(lambda: store.count_readings() > 0, what="first rows")
            mosquitto.stop()
            time.sleep(3)  # polls keep going into the disk buffer
            assert agent.buffer.depth()[0] > 0, "nothing buffered while the broker was down"
            mosquitto.start()
            wait_for(lambda: agent.buffer.depth()[0] == 0, timeout=30, what="backlog drained")
            polls_at_stop = agent.health["grid"].polls
        polls = agent.health["grid"].polls
    wait_for(lambda: store.count_readings() == polls * 3, timeout=30, what="all samples stored")
    assert polls >= polls_at_stop
    (c,) = store.completeness("demo", 0, 2**62)
    assert c.received == c.expected, "a batch sequence number is missing"
    (imp,) = store.points("demo", metrics=["elec.import.energy"])
    series = store.readings([imp.id], 0, 2**62)[imp.id]
    stamps = [ts for ts, _, _ in series]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1000, f"a hole of {max(gaps)} ms in the replayed series"
    ing.stop()
    store.close()


def test_buffer_limit_drops_oldest_and_counts(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path / "b.db", "gw", max_bytes=20_000)
    samples = [(f"d.p{i}", 1_763_800_000_000 + i, float(i), 0) for i in range(100)]
    seqs = []
    for _ in range(30):
        seqs.append(buf.next_seq())
        buf.write([(seqs[-1], samples)], 0, 0)
    n, _, _ = buf.depth()
    assert buf.size_bytes <= 20_000
    assert n < 30
    assert buf.dropped() == (30 - n) * 100
    assert buf.losses()["buffer_full"] == (30 - n) * 100 and buf.dropped_batches() == 30 - n
    # the newest survive, oldest went first
    assert [seq for seq, _c, _p in buf.pending(0, 100)] == seqs[30 - n :]
    buf.close()
    # sequence numbers keep growing after a restart, and the counts stay
    buf2 = DiskBuffer(tmp_path / "b.db", "gw", max_bytes=20_000)
    assert buf2.next_seq() == seqs[-1] + 1
    assert buf2.dropped() == (30 - n) * 100
    buf2.close()


def test_sigkill_mid_replay_loses_no_batch(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Broker down -> backlog on disk -> broker back -> agent SIGKILLed while replaying -> restarted:
    every batch the agent ever made arrives (no sequence hole), none twice in the store."""
    import signal
    import subprocess
    import sys

    import yaml

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
    ing.start()
    with register_server({1: {"holding": {1: 7}}}) as port:
        cfg = _config(port, mosquitto.port, tmp_path).model_dump()
        cfg["publish"] = {"interval_s": 0.1, "max_samples": 3}  # many small batches: a long replay
        cfg["poll_interval_s"] = 0.05
        path = tmp_path / "gw.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-m", "parkmon.cli", "edge", "run", "-c", str(path)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        agent = start()
        wait_for(lambda: store.count_readings() > 0, what="first rows")
        mosquitto.stop()
        time.sleep(4)  # ~80 polls -> ~80 batches waiting on disk
        mosquitto.start()
        time.sleep(0.3)  # replay under way
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        agent = start()
        time.sleep(2)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0
    buf = DiskBuffer(tmp_path / "buffer.db", "gw-e01", 10**9)
    assert buf.depth()[0] == 0, "the clean stop sent everything"
    last_seq = buf.last_seq()
    buf.close()

    def received() -> int:
        found = store.completeness("demo", 0, 2**62)
        return found[0].received if found else 0

    wait_for(lambda: received() == last_seq, timeout=30, what=f"all {last_seq} batches")
    (c,) = store.completeness("demo", 0, 2**62)
    assert (c.received, c.expected) == (last_seq, last_seq)
    assert last_seq > 50
    (imp,) = store.points("demo", metrics=["elec.import.energy"])
    stamps = [ts for ts, _, _ in store.readings([imp.id], 0, 2**62)[imp.id]]
    assert len(stamps) == len(set(stamps))
    ing.stop()
    store.close()


def test_agent_over_tls_with_a_client_certificate(tmp_path: Path) -> None:
    """A mosquitto TLS listener that requires a client certificate signed by the park's CA."""
    from ingest.mqtt.broker import start_mosquitto
    from parkmon.common.netutil import free_port
    from tests.tls_certs import make_pki

    pki = make_pki(tmp_path / "pki")
    tls_port = free_port()
    broker = start_mosquitto(tmp_path / "mq", extra_conf=(
        f"listener {tls_port} 127.0.0.1\ncafile {pki['ca']}\ncertfile {pki['server_crt']}\n"
        f"keyfile {pki['server_key']}\nrequire_certificate true\nuse_identity_as_username true\n"))
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=broker.port, db_url=store.url), store)  # inside: plain listener
    ing.start()
    try:
        with register_server({1: {"holding": {1: 7}}}) as port:
            tls = {"ca_file": pki["ca"], "cert_file": pki["client_crt"], "key_file": pki["client_key"]}
            agent = Agent(_config(port, tls_port, tmp_path, mqtt={"port": tls_port, "tls": tls}))
            with running(agent):
                wait_for(lambda: store.count_readings() >= 6, what="readings over TLS")
            # without a client certificate the broker refuses the gateway
            no_cert = {"port": tls_port, "tls": {"ca_file": pki["ca"]}}
            bare = Agent(_config(port, tls_port, tmp_path / "b", mqtt=no_cert))
            with running(bare):
                time.sleep(2)
                assert not bare.publisher.connected
                assert bare.buffer.depth()[1] > 0, "what it polled waits on disk, not lost"
    finally:
        ing.stop()
        broker.stop()
        store.close()


def test_agent_with_username_and_password(tmp_path: Path) -> None:
    """A listener that refuses anonymous clients: the gateway logs in with its own credentials."""
    import subprocess

    from ingest.mqtt.broker import start_mosquitto
    from parkmon.common.netutil import free_port

    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "gw-e01", "s3cret-e01"], check=True)
    auth_port = free_port()
    broker = start_mosquitto(tmp_path / "mq", pre_conf="per_listener_settings true\n", extra_conf=(
        f"listener {auth_port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"))
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=broker.port, db_url=store.url), store)  # the open inside listener
    ing.start()
    try:
        with register_server({1: {"holding": {1: 7}}}) as port:
            good = Agent(_config(port, auth_port, tmp_path, mqtt={
                "port": auth_port, "username": "gw-e01", "password": "s3cret-e01"}))
            with running(good):
                wait_for(lambda: store.count_readings() >= 6, what="readings with a password")
            wrong = Agent(_config(port, auth_port, tmp_path / "w", mqtt={
                "port": auth_port, "username": "gw-e01", "password": "guess"}))
            with running(wrong):
                time.sleep(2)
                assert not wrong.publisher.connected
                assert wrong.buffer.depth()[1] > 0, "refused, it keeps what it polled on disk"
    finally:
        ing.stop()
        broker.stop()
        store.close()
