"""MQTT security against a real mosquitto configured by the files `parkmon ingest mqtt-auth` writes: the
per-gateway logins and ACL, the TLS listener, ingest's own check of the payload's gateway; secrets kept
out of the logs, and production refusing default ones (parkmon/common/secrecy.py)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import Agent
from edge_agent.config import parse_config
from ingest.mqtt import auth as mqtt_auth
from ingest.mqtt import passwords
from ingest.mqtt.broker import Mosquitto, start_mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store, open_store
from parkmon.common import secrecy, wire
from parkmon.common.netutil import free_port
from tests.modbus_server import register_server
from tests.mqtt_util import wait_for
from tests.pg_server import Postgres
from tests.test_edge_agent_mqtt import running
from tests.tls_certs import make_pki

GW_A = ("demo", "e01", "gw-e01")
GW_B = ("demo", "e02", "gw-e02")
A, B = "demo.e01.gw-e01", "demo.e02.gw-e02"
T0 = 1_763_800_000_000


@dataclass
class Secured:
    broker: Mosquitto
    out: Path
    tls_port: int
    local_port: int
    pki: dict[str, str]
    passwords: dict[str, str]
    service_port: int = 0  # the services' TLS listener (ingest in another container: 8884), when there is one


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """One broker for the module, configured by exactly the generated parkmon.conf, passwd and acl (the
    embedded broker's own anonymous listener, on another port, stays unused)."""
    root = tmp_path_factory.mktemp("mqtt-security")
    pki = make_pki(root / "pki")
    out = root / "auth"
    tls_port, local_port, service_port = free_port(), free_port(), free_port()
    accounts = mqtt_auth.plan([GW_A, GW_B], readers=[("scada", "parkmon/alerts/#")], bridges=["demo"])
    lst = mqtt_auth.Listeners(conf_dir=str(out), tls_port=tls_port, tls_bind="127.0.0.1", cafile=pki["ca"],
                              certfile=pki["server_crt"], keyfile=pki["server_key"], local_port=local_port,
                              service_tls_port=service_port, service_tls_bind="127.0.0.1")
    res = mqtt_auth.generate(out, accounts, lst, broker_host="127.0.0.1", gateway_ca=pki["ca"])
    assert res.hashed_by == "mosquitto_passwd"
    broker = start_mosquitto(root / "mq", pre_conf=(out / "parkmon.conf").read_text(encoding="utf-8"))
    try:
        wait_for(lambda: all(_port_open(p) for p in (tls_port, local_port, service_port)), timeout=5,
                 what="the secured listeners")
        yield Secured(broker, out, tls_port, local_port, pki, res.passwords, service_port)
    finally:
        broker.stop()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Probe:
    """A raw MQTT 5 client: reason codes of CONNACK, PUBACK and what it receives."""

    def __init__(self, s: Secured, user: str | None, password: str | None = None, *, tls: bool = True,
                 ca: str | None = None, port: int | None = None) -> None:
        self.connack: Any = None
        self.pubacks: dict[int, int] = {}
        self.received: list[tuple[str, bytes]] = []
        self._event = threading.Event()  # CONNACK or the connection closed
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{user}-{time.monotonic_ns()}",
                             protocol=mqtt.MQTTv5)
        if user is not None:
            self.c.username_pw_set(user, password if password is not None else s.passwords[user])
        if tls:
            self.c.tls_set(ca_certs=ca or s.pki["ca"], cert_reqs=ssl.CERT_REQUIRED)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *_a: self._event.set()
        self.c.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc.value)
        self.c.on_message = lambda _c, _u, m: self.received.append((m.topic, bytes(m.payload)))
        self.port = port or (s.tls_port if tls else s.local_port)

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.connack = rc
        self._event.set()

    def connect(self, timeout: float = 5.0) -> Any:
        """The CONNACK reason, or None when the broker closed the connection without one."""
        self.c.connect("127.0.0.1", self.port, keepalive=10)
        self._thread.start()
        self._event.wait(timeout)
        return self.connack

    def _loop(self) -> None:  # paho's own loop thread sleeps up to 1 s in select: this one 50 ms, no reconnects
        while not self._stopped.is_set():
            if self.c.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                self._event.set()
                return

    def publish(self, topic: str, payload: bytes) -> int:
        """PUBACK reason code: 0 accepted, 135 not authorised."""
        return self.publish_many([(topic, payload)])[0]

    def publish_many(self, messages: list[tuple[str, bytes]]) -> list[int]:
        infos = [self.c.publish(t, p, qos=1) for t, p in messages]
        wait_for(lambda: all(i.mid in self.pubacks for i in infos), timeout=5, what="PUBACKs")
        return [self.pubacks[i.mid] for i in infos]

    @property
    def connected(self) -> bool:
        return self._thread.is_alive() and self.c.is_connected()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *_a: done.set()
        self.c.subscribe(topic, qos=1)
        assert done.wait(5)

    def close(self) -> None:
        if self._thread.is_alive():
            self.c.disconnect()
            time.sleep(0.06)  # the loop sends the DISCONNECT
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(2)


def _try(s: Secured, user: str, topic: str, payload: bytes, tls: bool = True) -> tuple[int, bool]:
    """Publish once (QoS 1, MQTT 5) on a connection of its own: the PUBACK reason code, and whether the
    broker kept the connection. mosquitto 2.0.11 answers a refused publish (135) and then disconnects."""
    p = Probe(s, user, tls=tls)
    try:
        assert p.connect().value == 0
        code = p.publish(topic, payload)
        if code != 0:
            wait_for(lambda: not p.connected, timeout=5, what="the broker closing the connection")
        time.sleep(0.05)
        return code, p.connected
    finally:
        p.close()


def _batch(gw: str, seq: int, point: str = "meter.import", value: float = 1.0) -> bytes:
    return wire.encode(wire.Batch(1, gw, seq, T0 + seq, [(point, T0 + seq * 1000, value, 0)]))


def _ingest(s: Secured, store: Store, name: str, **kw: Any) -> Ingestor:
    env = dict(line.split("=", 1) for line in (s.out / "ingest.env").read_text().splitlines() if "=" in line)
    cfg = IngestConfig(mqtt_port=s.local_port, mqtt_username=env["PARKMON_MQTT_USERNAME"],
                       mqtt_password=env["PARKMON_MQTT_PASSWORD"], client_id=f"ingest-{name}", db_url=store.url,
                       max_wait_ms=20, **kw)
    ing = Ingestor(cfg, store)
    ing.start()
    assert ing.connected.wait(10), "ingest could not log in with the generated ingest account"
    return ing


# ---- the generated files ------------------------------------------------------------------------------

def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_generated_files_keep_passwords_rotate_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ingest.cli import main as ingest_main

    out = tmp_path / "auth"
    args = ["mqtt-auth", "--out", str(out), "--gateway", "demo/e01/gw-e01", "--gateway", "demo/e02/gw-e02"]
    assert ingest_main(args) == 0
    creds = yaml.safe_load((out / "credentials.yaml").read_text())["accounts"]
    assert set(creds) == {A, B, "demo.gates", "parkmon-ingest", "parkmon-alerts"}
    passwords = {k: v["password"] for k, v in creds.items()}
    assert all(len(p) == 32 for p in passwords.values()) and len(set(passwords.values())) == 5
    for name in ("credentials.yaml", "passwd", "passwd-services", "ingest.env", f"gateways/{A}.yaml"):
        assert _mode(out / name) == 0o600, name
    assert _mode(out / "gateways") == 0o700
    assert not list(out.glob(".*")), "no plain-text or temporary file left behind"
    # devices' logins in passwd (the device listener), ingest's and alerts' in passwd-services only
    hashed = dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())
    services = dict(line.split(":", 1) for line in (out / "passwd-services").read_text().splitlines())
    assert set(hashed) == {A, B, "demo.gates"} and set(services) == {"parkmon-ingest", "parkmon-alerts"}
    assert all(h.startswith("$7$101$") for h in (*hashed.values(), *services.values()))
    group = creds["parkmon-ingest"]["share_group"]  # ingest's secret shared-subscription group
    assert group.startswith("parkmon-") and len(group) == 40 and f"PARKMON_INGEST_GROUP={group}\n" in \
        (out / "ingest.env").read_text()
    acl = (out / "acl").read_text()
    assert acl.index("user ") < acl.index("topic "), "nothing granted before the first user: anonymous gets nothing"
    block_a = acl.split(f"user {A}\n")[1].split("\n\n")[0].splitlines()
    assert block_a == [f"topic write parkmon/v1/demo/e01/gw-e01/{leaf}" for leaf in ("data", "meta", "status",
                                                                                       "health")] + [
        "topic read parkmon/v1/demo/e01/gw-e01/ack"]  # its own acks only (docs/decisions/0010)
    assert "user demo.gates\ntopic write parkmon/v1/demo/+/+/gate\n" in acl
    assert "user parkmon-ingest\ntopic write parkmon/v1/+/+/+/ack\ntopic read parkmon/v1/#\n" in acl
    assert "user parkmon-alerts\ntopic write parkmon/alerts/#\n" in acl
    conf = (out / "parkmon.conf").read_text()
    assert conf.index("\nper_listener_settings true\n") < conf.index("\nlistener ") and "\nlistener 8883\n" in conf
    assert conf.count("allow_anonymous false") == 2 and conf.count("acl_file /etc/mosquitto/parkmon/acl") == 2
    assert "listener 1883 127.0.0.1\n" in conf and "cafile /etc/mosquitto/certs/ca.crt" in conf
    device, local = conf.split("\nlistener 8883\n")[1].split("\nlistener 1883 127.0.0.1\n")
    assert "\nuse_username_as_clientid true\n" in device and "password_file /etc/mosquitto/parkmon/passwd\n" in device
    assert "use_username_as_clientid" not in local and "password_file /etc/mosquitto/parkmon/passwd-services\n" in local
    # limits: 8 MiB packets (a full batch is 3.56 MB); 1000 device sockets (2 x 3 logins is less), 100 services'
    assert "\nmax_packet_size 8388608\n" in conf and "max_connections 1000\n" in device and \
        "max_connections 100\n" in local
    handoff = yaml.safe_load((out / f"gateways/{A}.yaml").read_text())["mqtt"]
    assert handoff == {"host": "mqtt.park.example", "port": 8883, "username": A, "password": passwords[A],
                       "tls": {"ca_file": "/etc/parkmon/ca.crt"}}
    parse_config({**yaml.safe_load((out / f"gateways/{A}.yaml").read_text()), "gateway": {
        "park": "demo", "enterprise": "e01", "id": "gw-e01"}, "devices": [{"id": "m", "profile": "sim_grid_meter"}]})

    # a re-run keeps every password; one account rotated; then all; a gateway gone loses its account
    assert ingest_main(args) == 0
    again = yaml.safe_load((out / "credentials.yaml").read_text())["accounts"]
    assert {k: v["password"] for k, v in again.items()} == passwords
    assert again["parkmon-ingest"]["share_group"] == group, "a re-run changed ingest's group"
    assert ingest_main([*args, "--rotate-user", A]) == 0
    rotated = {k: v["password"] for k, v in yaml.safe_load((out / "credentials.yaml").read_text())["accounts"].items()}
    assert rotated[A] != passwords[A] and {k: v for k, v in rotated.items() if k != A} == \
        {k: v for k, v in passwords.items() if k != A}
    assert ingest_main([*args, "--rotate"]) == 0
    all_new = yaml.safe_load((out / "credentials.yaml").read_text())["accounts"]
    assert not {v["password"] for v in all_new.values()} & (set(rotated.values()) | set(passwords.values()))
    assert all_new["parkmon-ingest"]["share_group"] != group, "the group is rotated with ingest's password"
    assert ingest_main(["mqtt-auth", "--out", str(out), "--gateway", "demo/e01/gw-e01"]) == 0
    left = yaml.safe_load((out / "credentials.yaml").read_text())["accounts"]
    assert B not in left and f"user {B}" not in (out / "acl").read_text()
    assert not (out / f"gateways/{B}.yaml").exists()
    printed = capsys.readouterr()
    assert "removed: demo.e02.gw-e02" in printed.out
    every = set(passwords.values()) | set(rotated.values()) | {v["password"] for v in all_new.values()}
    assert not any(p in printed.out + printed.err for p in every), "a password was printed"
    # bad input says what to fix
    assert ingest_main(["mqtt-auth", "--out", str(out)]) == 2
    assert ingest_main(["mqtt-auth", "--out", str(out), "--gateway", "demo/e 01/gw"]) == 2
    assert "no gateways" in capsys.readouterr().err
    # a device login named like the platform's client ids would take their sessions (its login is its id)
    assert ingest_main([*args, "--reader", "parkmon-ingest-1=parkmon/alerts/#"]) == 2
    assert "'parkmon-ingest-1' (reader) starts with 'parkmon-'" in capsys.readouterr().err
    assert ingest_main([*args, "--local-port", "0"]) == 2  # ingest would have nowhere to log in
    assert "give --service-tls-port 8884" in capsys.readouterr().err


def test_a_gateway_config_with_another_gateways_login_is_refused() -> None:
    """mosquitto would acknowledge and drop every batch of the wrong identity (then disconnect): say it at load."""
    from edge_agent.config import ConfigError

    raw = {"gateway": {"park": "demo", "enterprise": "e01", "id": "gw-e01"},
           "mqtt": {"username": B, "password": passwords.new_password()},
           "devices": [{"id": "m", "profile": "sim_grid_meter"}]}
    with pytest.raises(ConfigError, match="login of gateway demo/e02/gw-e02, but this gateway is demo/e01/gw-e01"):
        parse_config(raw)
    parse_config({**raw, "mqtt": {"username": A, "password": "x"}})
    parse_config({**raw, "mqtt": {"username": "gw-e01", "password": "x"}})  # a login named otherwise: not judged


def test_gateways_from_a_registry_file(tmp_path: Path) -> None:
    reg = tmp_path / "park.yaml"
    reg.write_text(yaml.safe_dump({"park": {"key": "p1", "name_zh": "园区"}, "enterprises": [
        {"key": "e1", "gateways": ["g1", "g2"]}, {"key": "e2", "gateways": ["g1"]}, {"key": "e3"}]}))
    assert mqtt_auth.gateways_from_registry(reg) == [("p1", "e1", "g1"), ("p1", "e1", "g2"), ("p1", "e2", "g1")]


def test_own_hash_is_mosquitto_passwd_s(tmp_path: Path) -> None:
    """The fallback without mosquitto_passwd computes exactly what the tool writes ($7$, PBKDF2-SHA512)."""
    path = tmp_path / "passwd"
    assert passwords.write_password_file(path, [("u1", "first-password-1"), ("u2", "Zweites_Passwort")]) == \
        "mosquitto_passwd"
    for line, password in zip(path.read_text().splitlines(), ("first-password-1", "Zweites_Passwort"), strict=True):
        _user, h = line.split(":", 1)
        _, alg, iterations, salt, _digest = h.split("$")
        assert alg == "7"
        assert passwords.mosquitto_hash(password, base64.b64decode(salt), int(iterations)) == h
    assert passwords.write_password_file(path, [("u1", "first-password-1")], tool=None) == "python"
    _, _, it, salt, digest = path.read_text().strip().split(":", 1)[1].split("$")
    assert base64.b64decode(digest) == hashlib.pbkdf2_hmac("sha512", b"first-password-1", base64.b64decode(salt),
                                                            int(it))


# ---- the broker, configured by those files ----------------------------------------------------------

def test_gateway_publishes_over_tls_under_its_own_prefix_and_ingest_stores_it(secured: Secured,
                                                                              tmp_path: Path) -> None:
    """The real edge agent, with the mqtt: block handed to its enterprise, over the TLS listener; ingest
    also over TLS with the ingest account, on the services' TLS listener."""
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    env = dict(line.split("=", 1) for line in (secured.out / "ingest.env").read_text().splitlines() if "=" in line)
    ing = Ingestor(IngestConfig(mqtt_port=secured.service_port, mqtt_username=env["PARKMON_MQTT_USERNAME"],
                                mqtt_password=env["PARKMON_MQTT_PASSWORD"], mqtt_tls_ca=secured.pki["ca"],
                                client_id="ingest-tls", db_url=store.url, max_wait_ms=20), store)
    ing.start()
    try:
        assert ing.connected.wait(10)
        handoff = yaml.safe_load((secured.out / f"gateways/{A}.yaml").read_text())
        assert handoff["mqtt"]["port"] == secured.tls_port and handoff["mqtt"]["tls"]["ca_file"] == secured.pki["ca"]
        with register_server({1: {"holding": {1: 7}}}) as port:
            agent = Agent(parse_config({
                **handoff, "gateway": {"park": "demo", "enterprise": "e01", "id": "gw-e01"},
                "buffer": {"path": str(tmp_path / "buffer.db")},
                "publish": {"interval_s": 0.2, "health_interval_s": 0.5}, "poll_interval_s": 0.2,
                "devices": [{"id": "grid", "port": port, "profile": "sim_grid_meter"}]}))
            with running(agent):
                wait_for(lambda: store.count_readings() >= 6, what="readings from the gateway over TLS")
                wait_for(lambda: any(g.health_json and g.online for g in store.gateways("demo")), what="its health")
                # ingest's acks reach it through the ACL: it deletes batches as the platform confirms them
                wait_for(lambda: agent.publisher.acks.confirmed >= 3, what="confirmations read by the gateway")
                assert agent.health_report().ack_state == "ok"
        wait_for(lambda: not store.gateways("demo")[0].online, what="its goodbye")  # status, meta, health passed
        (gw,) = store.gateways("demo")
        assert (gw.enterprise, gw.gateway) == ("e01", "gw-e01")
        assert {p.point for p in store.points("demo")} >= {"import", "export", "power"}
        assert not store.dead_letters()
    finally:
        ing.stop()
        store.close()


def test_a_gateway_cannot_publish_as_another_nor_read(secured: Secured, tmp_path: Path) -> None:
    """Gateway A under B's prefix, on the gate leaf, outside parkmon/v1: the broker refuses each (MQTT 5
    PUBACK 135), drops it and closes A's connection; ingest's account never sees it, nothing is stored.
    B, subscribed to everything, receives nothing."""
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = _ingest(secured, store, "acl")
    tap = Probe(secured, "parkmon-ingest", tls=False)
    b = Probe(secured, B)
    try:
        for p in (tap, b):
            assert p.connect().value == 0
        tap.subscribe("parkmon/#")
        b.subscribe("#")
        forbidden = [(wire.topic(*GW_B, "data"), _batch("gw-e02", 1, "forged.b")),
                     (wire.topic(*GW_B, "status"), b"{}"),
                     (wire.topic(*GW_A, "gate"), b'{"v":1,"events":[]}'),
                     ("parkmon/v1/demo/e01/gw-e01x/data", _batch("gw-e01x", 1, "forged.x")),
                     ("parkmon/v1/demo/e01/gw-e01/data/extra", b"x"),
                     ("parkmon/alerts/demo", b"{}")]
        for topic, payload in forbidden:
            assert _try(secured, A, topic, payload) == (135, False), f"{topic} was not refused"
        assert _try(secured, A, wire.topic(*GW_A, "data"), _batch("gw-e01", 1, "meter.sentinel")) == (0, True)
        wait_for(lambda: store.count_readings() == 1, what="the allowed batch stored")
        wait_for(lambda: any(t == wire.topic(*GW_A, "data") for t, _ in tap.received), what="tap saw it")
        time.sleep(0.3)
        assert not {t for t, _ in tap.received} & {t for t, _ in forbidden}, "a refused message reached a reader"
        assert b.received == [], "a gateway read someone's messages"
        assert [g.gateway for g in store.gateways("demo")] == ["gw-e01"]
        assert [p.point for p in store.points("demo") if p.device in ("meter", "forged")] == ["sentinel"]
        assert not store.dead_letters()
    finally:
        for p in (tap, b):
            p.close()
        ing.stop()
        store.close()


def test_acks_reach_only_their_gateway_and_only_ingest_writes_them(secured: Secured) -> None:
    """A gateway reads its own ack topic and no one else's, and writes none (a forged confirmation would make
    a gateway delete what the platform never stored); ingest writes every gateway's; the park's bridge account
    reads its park's acks (carried down to the park broker) and writes none."""
    a, b, bridge = Probe(secured, A), Probe(secured, B), Probe(secured, "demo.bridge")
    ingest = Probe(secured, "parkmon-ingest", tls=False)
    ack_a, ack_b = wire.topic(*GW_A, "ack"), wire.topic(*GW_B, "ack")
    try:
        for p in (a, b, bridge, ingest):
            assert p.connect().value == 0
        a.subscribe("#")
        b.subscribe(ack_a)  # someone else's, by name
        bridge.subscribe("parkmon/v1/demo/#")
        acks = [(ack_a, b'{"v":1,"gw":"gw-e01","seqs":[[1,3]]}'), (ack_b, b'{"v":1,"gw":"gw-e02","seqs":[[7,7]]}'),
                ("parkmon/v1/other-park/e01/gw/ack", b'{"v":1,"gw":"gw","seqs":[[1,1]]}')]
        assert ingest.publish_many(acks) == [0, 0, 0]
        wait_for(lambda: a.received == [acks[0]], what="A's ack, to A")
        wait_for(lambda: sorted(bridge.received) == sorted(acks[:2]), what="the park's acks, to its bridge")
        time.sleep(0.3)
        assert a.received == [acks[0]] and b.received == [], "an ack reached another gateway"
        assert _try(secured, A, ack_a, acks[0][1]) == (135, False)  # not even its own
        assert _try(secured, "demo.bridge", ack_b, acks[1][1]) == (135, False)
    finally:
        for p in (a, b, bridge, ingest):
            p.close()


def test_payload_gateway_must_match_its_topic(secured: Secured, tmp_path: Path) -> None:
    """The ACL pins the topic; ingest pins the payload to it: A's own topic carrying gw B is a dead letter."""
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = _ingest(secured, store, "gw-match")
    a = Probe(secured, A)
    try:
        assert a.connect().value == 0
        assert a.publish(wire.topic(*GW_A, "data"), _batch("gw-e02", 7, "meter.spoofed")) == 0  # the broker lets it by
        wait_for(lambda: len(store.dead_letters()) == 1, what="the dead letter")
        (d,) = store.dead_letters()
        assert d.topic == wire.topic(*GW_A, "data")
        assert d.reason == "payload gateway 'gw-e02' does not match topic gateway 'gw-e01'"
        assert store.count_readings() == 0 and "gw-e02" not in {g.gateway for g in store.gateways("demo")}
    finally:
        a.close()
        ing.stop()
        store.close()


def test_rotation_and_revocation_take_effect_on_reload(tmp_path: Path) -> None:
    """Re-run with --rotate-user and without gateway B, install, SIGHUP (systemctl reload): the old password
    and B's account are refused from then on; mosquitto 2.0.11 drops the session the rotated login had open,
    and keeps the others."""
    out, tls, local, pki = tmp_path / "auth", free_port(), free_port(), make_pki(tmp_path / "pki")
    lst = mqtt_auth.Listeners(conf_dir=str(out), tls_port=tls, tls_bind="127.0.0.1", cafile=pki["ca"],
                              certfile=pki["server_crt"], keyfile=pki["server_key"], local_port=local)
    first = mqtt_auth.generate(out, mqtt_auth.plan([GW_A, GW_B]), lst).passwords
    broker = start_mosquitto(tmp_path / "mq", pre_conf=(out / "parkmon.conf").read_text(encoding="utf-8"))
    try:
        wait_for(lambda: _port_open(tls) and _port_open(local), timeout=5, what="the listeners")
        s = Secured(broker, out, tls, local, pki, first)
        before, other = Probe(s, A), Probe(s, "parkmon-ingest", tls=False)
        assert before.connect().value == 0 and other.connect().value == 0
        second = mqtt_auth.generate(out, mqtt_auth.plan([GW_A]), lst, rotate_users=[A])
        assert second.rotated == [A] and second.removed == [B] and second.passwords[A] != first[A]
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        s.passwords = second.passwords

        def refused(user: str, password: str) -> bool:
            p = Probe(s, user, password)
            rc = p.connect()
            p.close()
            return rc is not None and rc.value in (134, 135)

        wait_for(lambda: refused(A, first[A]), timeout=5, what="the old password refused")
        assert refused(B, first[B]), "a revoked gateway still logs in"
        assert not refused(A, second.passwords[A])
        assert not before.connected, "a session of the rotated login survived the reload"
        assert other.connected, "the reload dropped a session whose login did not change"
        before.close()
        other.close()
    finally:
        broker.stop()


def test_wrong_password_unknown_user_and_anonymous_cannot_connect(secured: Secured) -> None:
    """On the devices' TLS listener and the services' local one; each takes only its own kind of login (a
    gateway's is refused where client ids are chosen freely, ingest's where the login is the client id)."""
    ingest = "parkmon-ingest"
    for tls, right, other in ((True, A, ingest), (False, ingest, A)):
        for user, password in ((right, "not-the-password-of-it"), ("nobody", "whatever-password"),
                               (right, secured.passwords[B]), (None, None), (other, secured.passwords[other])):
            p = Probe(secured, user, password, tls=tls)
            rc = p.connect()
            p.close()
            assert rc is not None and rc.value in (134, 135), f"{user} on {'TLS' if tls else 'local'}: {rc}"
        ok = Probe(secured, right, tls=tls)
        assert ok.connect().value == 0
        ok.close()


def test_tls_listener_refuses_plain_tcp_and_an_unknown_ca(secured: Secured, tmp_path: Path) -> None:
    plain = Probe(secured, A, tls=False, port=secured.tls_port)  # MQTT in clear on the TLS port
    rc = plain.connect(timeout=5)
    plain.close()
    assert rc is None, "the TLS listener answered a plain CONNECT"
    other = make_pki(tmp_path / "other")  # a CA the broker's certificate does not chain to
    stranger = Probe(secured, A, ca=other["ca"])
    with pytest.raises(ssl.SSLCertVerificationError):
        stranger.connect()
    good = Probe(secured, A)
    assert good.connect().value == 0
    good.close()


def test_gate_bridge_alerts_ingest_and_reader_accounts(secured: Secured) -> None:
    """Each service account publishes only where its job is; ingest reads through a shared subscription."""
    reader, ingest = Probe(secured, "scada"), Probe(secured, "parkmon-ingest", tls=False)
    try:
        for p in (reader, ingest):
            assert p.connect().value == 0
        reader.subscribe("parkmon/alerts/#")
        ingest.subscribe("$share/workers/parkmon/v1/+/+/+/gate")
        data = _batch("gw-e01", 1)
        assert _try(secured, "demo.gates", "parkmon/v1/demo/park/gates/gate", b'{"v":1,"events":[]}') == (0, True)
        assert _try(secured, "demo.gates", "parkmon/v1/other-park/park/gates/gate", b"{}") == (135, False)
        assert _try(secured, "demo.gates", wire.topic(*GW_A, "data"), data) == (135, False)
        assert _try(secured, "parkmon-alerts", "parkmon/alerts/demo", b'{"id":"a1"}', tls=False) == (0, True)
        assert _try(secured, "parkmon-alerts", wire.topic(*GW_A, "data"), data, tls=False) == (135, False)
        assert _try(secured, "parkmon-ingest", wire.topic(*GW_A, "data"), data, tls=False) == (135, False)
        # the reader's own login again replaces its connection (one per login): after its alert came
        wait_for(lambda: reader.received == [("parkmon/alerts/demo", b'{"id":"a1"}')], what="the alert")
        assert _try(secured, "scada", "parkmon/alerts/demo", b"{}") == (135, False)
        assert _try(secured, "demo.bridge", wire.topic(*GW_B, "data"), _batch("gw-e02", 1)) == (0, True)
        assert _try(secured, "demo.bridge", "parkmon/v1/other-park/e01/gw/data", data) == (135, False)
        wait_for(lambda: ingest.received == [("parkmon/v1/demo/park/gates/gate", b'{"v":1,"events":[]}')],
                 what="gate events through $share")
    finally:
        for p in (reader, ingest):
            p.close()


# ---- secrets never logged; production refuses defaults ---------------------------------------------

def test_redaction_helpers() -> None:
    url = "postgresql+psycopg://parkmon:Tr0ub4dor&3x@db.park:5432/parkmon?sslmode=require"
    assert secrecy.mask_url(url) == "postgresql+psycopg://parkmon:***@db.park:5432/parkmon?sslmode=require"
    assert secrecy.mask_url("influxdb://my-influx-token@h:8086/b?org=o") == "influxdb://***@h:8086/b?org=o"
    assert secrecy.mask_url("https://oapi.dingtalk.com/robot/send?access_token=abcdef123") == \
        "https://oapi.dingtalk.com/robot/send?access_token=***"
    assert secrecy.mask_url("sqlite:///parkmon.db") == "sqlite:///parkmon.db"
    assert secrecy.redact(f"failed: {url}") == f"failed: {secrecy.mask_url(url)}"
    assert secrecy.weak_secret("change-me") == secrecy.weak_secret("PASSWORD") == "is a well-known default"
    assert secrecy.weak_secret("") == "is empty or not set"
    assert secrecy.weak_secret("gw-e01-gw", "GW-E01-GW") == "is the user name again"
    assert secrecy.weak_secret("short1") == "is shorter than 8 characters"
    assert secrecy.weak_secret(passwords.new_password()) is None


def test_protected_logs_hide_registered_secrets_and_url_passwords(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("parkmon.test.secrets")
    try:
        secrecy.protect_logs(["mqtt-Pa55word-xyz"], ["postgresql://u:db-Pa55word@h/x"])
        with caplog.at_level(logging.INFO):
            log.info("login with %s to %s", "mqtt-Pa55word-xyz", "postgresql://u:db-Pa55word@h/x")
            log.info("a URL nobody registered: mysql://root:unregistered-pw@h/db and ?token=tok-123")
            try:
                raise RuntimeError("cannot reach postgresql://u:db-Pa55word@h/x")
            except RuntimeError:
                log.exception("failed")
        text = caplog.text
        assert "login with *** to postgresql://u:***@h/x" in text
        assert "root:***@h/db and ?token=***" in text
        assert "RuntimeError: cannot reach postgresql://u:***@h/x" in text
        assert not any(s in text for s in ("mqtt-Pa55word-xyz", "db-Pa55word", "unregistered-pw", "tok-123"))
    finally:
        secrecy._uninstall()


def test_production_refuses_default_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.cli import main as edge_main
    from ingest.cli import main as ingest_main
    from parkmon.cli import main as parkmon_main

    gw = tmp_path / "gw.yaml"
    gw.write_text(yaml.safe_dump({"gateway": {"park": "demo", "enterprise": "e01", "id": "gw-e01"},
                                  "mqtt": {"host": "mqtt.park.example", "username": "gw-e01", "password": "change-me"},
                                  "devices": [{"id": "m", "profile": "sim_grid_meter"}]}))
    try:
        monkeypatch.setenv("PARKMON_ENV", "production")
        with pytest.raises(SystemExit) as e:
            edge_main(["run", "-c", str(gw)])
        msg = str(e.value)
        assert "the password is a well-known default" in msg and "no TLS to mqtt.park.example" in msg
        assert "change-me" not in msg
        with pytest.raises(SystemExit) as e:
            ingest_main(["run", "--db", "postgresql+psycopg://parkmon:parkmon@127.0.0.1:9/x"])
        assert "no user name" in str(e.value) and "parkmon:***@" in str(e.value)
        # ingest's shared group is a secret (issue 20 item 2): a guessable one, here from ingest.env's setting
        monkeypatch.setenv("PARKMON_INGEST_GROUP", "parkmon")
        with pytest.raises(SystemExit) as e:
            ingest_main(["run", "--db", "postgresql+psycopg://parkmon:x@127.0.0.1:9/x"])
        assert "the shared-subscription group (--group, $PARKMON_INGEST_GROUP)" in str(e.value)
        monkeypatch.delenv("PARKMON_INGEST_GROUP")
        with pytest.raises(SystemExit) as e:
            parkmon_main(["api", "--db", "postgresql+psycopg://parkmon:Passw0rd@127.0.0.1:9/x"])
        assert "the password in --db postgresql+psycopg://parkmon:***@127.0.0.1:9/x is a well-known default" \
            in str(e.value)
        monkeypatch.setenv("PGPASSWORD", "postgres")  # the password libpq takes when the URL has none
        with pytest.raises(SystemExit, match=r"PGPASSWORD \(for --db postgresql\+psycopg://parkmon@h/x\) is a well"):
            parkmon_main(["api", "--db", "postgresql+psycopg://parkmon@h/x"])
        monkeypatch.delenv("PGPASSWORD")
        monkeypatch.setenv("PARKMON_ENV", "prod")  # a typo must not switch the checks off
        with pytest.raises(SystemExit, match="neither production nor development"):
            edge_main(["run", "-c", str(gw)])
        monkeypatch.delenv("PARKMON_ENV")  # development: the same weak settings are let through
        secrecy.check_production("x", [secrecy.Secret("p", "change-me")], ["a problem"])
    finally:
        secrecy._uninstall()


def test_ingest_run_logs_no_secret_and_starts_in_production(secured: Secured, postgres: Postgres) -> None:
    """`parkmon ingest run` as an operator starts it: PARKMON_ENV=production, a database URL with a
    password, the MQTT login from ingest.env. It stores a batch; neither password is ever in its output,
    the database URL is logged masked. Then the same with a database that is down (a traceback)."""
    db_password = passwords.new_password()
    url = postgres.create_database().replace("postgres@", f"postgres:{db_password}@")  # trust: ignored, but kept
    env = {**os.environ, "PARKMON_ENV": "production"}
    env.update(line.split("=", 1) for line in (secured.out / "ingest.env").read_text().splitlines() if "=" in line)
    mqtt_password = env["PARKMON_MQTT_PASSWORD"]
    cmd = [sys.executable, "-m", "parkmon.cli", "ingest", "run", "--db", url, "--mqtt-port", str(secured.local_port),
           "--client-id", "ingest-logs", "--stats-every", "0.5", "--no-alerts"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    a = Probe(secured, A)
    store = None
    try:
        assert a.connect().value == 0
        wait_for(lambda: any("ingest connected to" in x for x in lines) or proc.poll() is not None, timeout=30,
                 what="ingest subscribed")
        assert proc.poll() is None, "ingest refused to start in production with proper secrets:\n" + "".join(lines)
        store = open_store(url)
        assert a.publish(wire.topic(*GW_A, "data"), _batch("gw-e01", 1)) == 0
        wait_for(lambda: store.count_readings() == 1, timeout=20, what="the batch stored by the ingest process")
        time.sleep(0.6)  # a stats line
    finally:
        a.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        reader.join(10)
        if store is not None:
            store.close()
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert f"database {url.replace(db_password, '***')}" in output and "connected to 127.0.0.1" in output
    assert db_password not in output and mqtt_password not in output
    down = url.replace(f":{postgres.port}/", f":{free_port()}/")  # nothing listens there
    failed = subprocess.run([*cmd[:6], down, *cmd[7:]], env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "Traceback" in failed.stderr
    assert db_password not in failed.stdout + failed.stderr and mqtt_password not in failed.stdout + failed.stderr

