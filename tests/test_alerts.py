"""Alerts end to end on real components: readings over a real mosquitto into ingest and PostgreSQL,
the alert engine on ingest's commits, the outbox, and every channel delivering to a real receiver on
loopback (HTTP webhook, mosquitto, an SMTP server; the WeCom / DingTalk / Feishu endpoints are local
stand-ins that check the documented request format and signatures - those services are not reachable
from here)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, select

from analytics.alerts.dispatch import Dispatcher
from analytics.alerts.engine import AlertEngine, as_listener
from analytics.alerts.rules import load_rules
from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store, migrate, open_store
from ingest.store import alert_outbox as outbox
from ingest.store import record_tables as t
from ingest.store.base import IncomingBatch
from parkmon.api.app import create_app
from parkmon.common import wire
from tests.alert_receivers import HttpReceiver, MailBox
from tests.mqtt_util import publish_all, publisher, wait_for

T0 = int(time.time()) * 1000 - 60_000  # a minute ago: alerts are about now
S = 1000


@pytest.fixture(autouse=True)
def _receivers_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers here run on this machine: the deployment setting that lets alerts reach it (by default
    alert destinations are public addresses only; tests/test_attacks_alert_channels.py)."""
    monkeypatch.setenv("PARKMON_ALERT_ALLOW_HOSTS", "127.0.0.1")


@dataclass
class Platform:
    store: Store
    engine: AlertEngine
    ingest: Ingestor
    client: TestClient
    mosquitto: Mosquitto
    dispatcher: Dispatcher | None = None
    stop: threading.Event | None = None

    def start_dispatcher(self, **kw: Any) -> Dispatcher:
        self.dispatcher = Dispatcher(self.store, **kw)
        self.engine.notify = self.dispatcher.wake
        self.stop = threading.Event()
        threading.Thread(target=self.dispatcher.run, args=(self.stop, 0.1), daemon=True).start()
        return self.dispatcher

    def stop_dispatcher(self) -> None:
        if self.stop is not None:
            self.stop.set()


def _register(store: Store) -> None:
    store.upsert_park("demo", "示范园区", "Demo park", "zero_carbon", "内蒙古")
    for ent in ("e01", "e02"):
        store.upsert_meta("demo", ent, "gw1", wire.Meta(1, "gw1", 0, {
            "gd1.lel": wire.PointMeta("safety.gas_lel", "%LEL", "instant", "可燃气体")}, {}))


@pytest.fixture
def platform(mosquitto: Mosquitto, pg_url: str) -> Iterator[Platform]:
    store = open_store(pg_url)
    store.create_schema()
    _register(store)
    engine = AlertEngine(store, [r for r in load_rules() if r.id in ("gas_lel_high", "gateway_offline")])
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=pg_url, max_wait_ms=20), store)
    ing.commit_listeners.append(as_listener(engine))
    engine.start()
    ing.start()
    assert ing.connected.wait(10)
    p = Platform(store, engine, ing, TestClient(create_app(store, alert_engine=engine)), mosquitto)
    try:
        yield p
    finally:
        p.stop_dispatcher()
        ing.stop()
        engine.stop()
        store.close()


def _gas(pub: mqtt.Client, seq: int, ent: str, values: list[tuple[int, float]]) -> None:
    """One batch of the gas detector's %LEL at (seconds after T0, value)."""
    samples = [("gd1.lel", T0 + s * S, v, 0) for s, v in values]
    publish_all(pub, [(wire.topic("demo", ent, "gw1", "data"), wire.encode(wire.Batch(1, "gw1", seq, T0, samples)))])


def _subscribe(p: Platform, **kw: Any) -> int:
    r = p.client.post("/api/v1/alert-subscriptions", json=kw, headers={"X-Parkmon-Actor": "test"})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def _mqtt_listener(port: int, topic: str) -> tuple[mqtt.Client, list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="alert-listener")
    c.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
    c.connect("127.0.0.1", port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    return c, got


def test_an_exceedance_reaches_every_channel_once_and_its_resolution_once(platform: Platform) -> None:
    p = platform
    http = HttpReceiver(secrets={"/hook": "s3cret", "/dingtalk": "SECdd", "/feishu": "fs-key"}).start()
    mail = MailBox().start()
    listener, on_topic = _mqtt_listener(p.mosquitto.port, "parkmon/alerts/#")
    try:
        common = {"role": "operator", "park": "demo"}
        _subscribe(p, name="值班室 webhook", channel="webhook", config={"url": http.url("/hook"), "secret": "s3cret"},
                   **common)
        _subscribe(p, name="SCADA", channel="mqtt", config={"host": "127.0.0.1", "port": p.mosquitto.port,
                                                            "topic": "parkmon/alerts/demo"}, **common)
        _subscribe(p, name="安全员邮箱", channel="email", config={"host": "127.0.0.1", "port": mail.port,
                                                              "from": "parkmon@park.cn", "to": ["safety@park.cn"]},
                   **common)
        _subscribe(p, name="企业微信群", channel="wecom", config={"url": http.url("/wecom/send?key=abc")}, **common)
        _subscribe(p, name="钉钉群", channel="dingtalk",
                   config={"url": http.url("/dingtalk/robot/send?access_token=t0"), "secret": "SECdd"}, **common)
        _subscribe(p, name="飞书群", channel="feishu", config={"url": http.url("/feishu/hook/x"), "secret": "fs-key"},
                   **common)
        # the regulator of the region hears it too; e02 (another enterprise) hears nothing of e01's detector
        _subscribe(p, name="生态环境局", role="regulator", region="内蒙古", min_severity="warning",
                   channel="webhook", config={"url": http.url("/hook/regulator"), "secret": "s3cret"})
        _subscribe(p, name="e02 自己", role="enterprise", park="demo", enterprise="e02", channel="webhook",
                   config={"url": http.url("/hook/e02"), "secret": "s3cret"})
        p.start_dispatcher()
        pub = publisher(p.mosquitto.port)
        # 10 %LEL, then 30 %LEL for 8 s (over 25 for more than the rule's 5 s), then 15 (under 25 - 5)
        _gas(pub, 1, "e01", [(0, 10.0), (1, 30.0), (3, 31.0), (5, 33.5)])
        _gas(pub, 2, "e01", [(7, 32.0), (9, 30.0)])
        _gas(pub, 3, "e01", [(10, 22.0), (12, 15.0), (14, 12.0)])
        _gas(pub, 1, "e02", [(0, 5.0), (5, 6.0)])  # e02's detector stays low
        # webhook (operator), webhook (regulator), WeCom, DingTalk, Feishu over HTTP; e-mail; MQTT
        wait_for(lambda: len(http.got) == 2 * 5 and len(mail.mails) == 2 and len(on_topic) == 2, timeout=30,
                 what="firing and resolved on every channel")
        # nothing more arrives: exactly one firing and one resolve per channel
        threading.Event().wait(1.0)
        assert http.refused == []
        hooks = [r for r in http.got if r.path == "/hook"]
        assert [r.body["event"] for r in hooks] == ["firing", "resolved"]
        assert [r.headers["X-Parkmon-Event"] for r in hooks] == ["firing", "resolved"]
        fired = hooks[0].body
        assert fired["alert"]["rule_id"] == "gas_lel_high" and fired["alert"]["enterprise"] == "e01"
        assert fired["alert"]["since_ms"] == T0 + 1 * S and fired["alert"]["fired_ms"] == T0 + 7 * S
        assert "可燃气体浓度一级报警" in fired["title_zh"] and "超过上限 25 %LEL" in fired["text_zh"]
        assert "峰值 33.5 %LEL" in hooks[1].body["text_zh"]
        assert len({r.headers["X-Parkmon-Idempotency-Key"] for r in hooks}) == 2
        assert [r.body["event"] for r in http.on("/hook/regulator")] == ["firing", "resolved"]
        assert http.on("/hook/e02") == []
        for robot in ("/wecom", "/dingtalk", "/feishu"):
            assert len(http.on(robot)) == 2, robot
        assert "【预警·告警】" in http.on("/wecom")[0].body["markdown"]["content"]
        assert [m["event"] for m in mail.mails] == ["firing", "resolved"]
        assert mail.mails[0]["subject"].startswith("【预警·告警】可燃气体浓度一级报警")
        assert "Combustible gas" in mail.mails[0]["body"]
        assert [m["event"] for m in on_topic] == ["firing", "resolved"]
        # the API shows one alert, resolved, with its history and every delivery made
        (a,) = p.client.get("/api/v1/alerts", params={"park": "demo"}).json()
        assert a["state"] == "resolved" and a["peak"] == 33.5 and a["resolved_ms"] == T0 + 12 * S
        one = p.client.get(f"/api/v1/alerts/{a['id']}").json()
        assert [e["event"] for e in one["events"]] == ["firing", "resolved"]
        assert len(one["deliveries"]) == 14 and all(d["delivered_ms"] for d in one["deliveries"])
        # secrets never come back out of the API
        shown = p.client.get("/api/v1/alert-subscriptions").json()
        assert all(s["config"].get("secret") in (None, "***") for s in shown)
    finally:
        listener.loop_stop()
        http.stop()
        mail.stop()


def test_killed_between_commit_and_delivery_still_delivers_after_restart(platform: Platform) -> None:
    p = platform
    http = HttpReceiver(secrets={"/hook": "k"}).start()
    try:
        _subscribe(p, name="hook", role="operator", park="demo", channel="webhook",
                   config={"url": http.url("/hook"), "secret": "k"})
        pub = publisher(p.mosquitto.port)
        _gas(pub, 1, "e01", [(0, 40.0), (6, 41.0)])  # fires: committed with its outbox row, no dispatcher runs
        wait_for(lambda: p.client.get("/api/v1/alerts").json() != [], what="the alert committed")
        assert http.got == []

        class DiesAfterSending(Dispatcher):
            def _send(self, channel: str, message: dict[str, Any], config: dict[str, Any] | None) -> str | None:
                super()._send(channel, message, config)
                raise KeyboardInterrupt  # the process dies after the receiver has it, before marking it

        clock = [1000.0]
        with pytest.raises(KeyboardInterrupt):
            DiesAfterSending(p.store, clock=lambda: clock[0], lease_s=30).run_once()
        assert len(http.got) == 1
        # a new process (nothing in memory): within the lease it leaves the row alone, after it sends again
        again = Dispatcher(p.store, clock=lambda: clock[0], lease_s=30)
        assert again.run_once() == 0
        clock[0] += 31
        assert again.run_once() == 1
        keys = [r.headers["X-Parkmon-Idempotency-Key"] for r in http.got]
        assert len(keys) == 2 and len(set(keys)) == 1  # at least once; the key lets the receiver keep one
        assert again.run_once() == 0  # delivered: never again
    finally:
        http.stop()


def test_a_channel_down_for_a_while_gets_everything_when_it_returns(platform: Platform) -> None:
    p = platform
    http = HttpReceiver(secrets={"/hook": "k"}, fail=5).start()  # answers 503 five times first
    try:
        _subscribe(p, name="hook", role="operator", park="demo", channel="webhook",
                   config={"url": http.url("/hook"), "secret": "k"})
        d = p.start_dispatcher(max_backoff_s=0.3)
        pub = publisher(p.mosquitto.port)
        _gas(pub, 1, "e01", [(0, 40.0), (6, 41.0)])
        _gas(pub, 2, "e01", [(8, 5.0)])
        wait_for(lambda: len(http.got) == 2, timeout=30, what="both events after the receiver came back")
        assert [r.body["event"] for r in http.got] == ["firing", "resolved"]  # in order, once each
        assert d.failed_attempts >= 5
    finally:
        http.stop()


def test_escalation_acknowledgement_and_silent_gateways(platform: Platform) -> None:
    p = platform
    http = HttpReceiver(secrets={"/hook": "k"}).start()

    def events(rule: str, ent: str | None = None) -> list[str]:
        return [r.body["event"] for r in http.got if r.body["alert"]["rule_id"] == rule
                and ent in (None, r.body["alert"]["enterprise"])]

    try:
        _subscribe(p, name="hook", role="regulator", channel="webhook",
                   config={"url": http.url("/hook"), "secret": "k"})
        p.start_dispatcher()
        pub = publisher(p.mosquitto.port)
        _gas(pub, 1, "e01", [(0, 40.0), (6, 41.0)])
        wait_for(lambda: events("gas_lel_high") == ["firing"], what="firing")
        (a,) = p.client.get("/api/v1/alerts").json()
        # e02's gateway has never been heard: offline at the first check; e01's was heard a moment ago
        p.engine.tick(now_ms=a["created_ms"] + 299 * S)
        wait_for(lambda: events("gateway_offline") == ["firing"], what="e02's gateway offline")
        assert http.got[-1].body["alert"]["enterprise"] == "e02"
        assert events("gas_lel_high") == ["firing"]  # 299 s unacknowledged: not yet escalated
        # gas_lel_high escalates after 300 s without acknowledgement: warning -> critical, said once
        # (by then e01's gateway, quiet in this test, is overdue too)
        p.engine.tick(now_ms=a["created_ms"] + 301 * S)
        wait_for(lambda: events("gas_lel_high") == ["firing", "escalated"], what="escalation")
        esc = next(r for r in http.got if r.body["event"] == "escalated").body
        assert esc["alert"]["severity"] == "critical" and "升级" in esc["title_zh"]
        ack = p.client.post(f"/api/v1/alerts/{a['id']}/acknowledge", json={"note": "值班员已到场"},
                            headers={"X-Parkmon-Actor": "zhang.san"})
        assert ack.status_code == 200 and ack.json()["acked_by"] == "zhang.san"
        assert p.client.post(f"/api/v1/alerts/{a['id']}/acknowledge", json={}).status_code == 422
        # closed by hand: the subscribers hear it, the audit log has both actions
        closed = p.client.post(f"/api/v1/alerts/{a['id']}/resolve", json={"note": "泄漏点已处置"},
                               headers={"X-Parkmon-Actor": "zhang.san"})
        assert closed.status_code == 200 and closed.json()["state"] == "resolved"
        wait_for(lambda: events("gas_lel_high") == ["firing", "escalated", "manual_resolve"], what="manual resolve")
        with p.store.engine.connect() as conn:
            from sqlalchemy import text
            actions = conn.execute(text("SELECT action FROM audit_log WHERE entity = 'alerts' ORDER BY id"))
            assert list(actions.scalars()) == ["acknowledge", "resolve"]
        # e02's gateway speaks: its alert resolves, once; silence again later would be a new alert
        _gas(pub, 1, "e02", [(10, 3.0)])
        wait_for(lambda: p.engine._gw_seen.get(("demo", "e02", "gw1")) is not None, what="e02 heard")
        p.engine.tick(now_ms=int(time.time() * 1000))
        wait_for(lambda: events("gateway_offline", "e02") == ["firing", "resolved"], what="e02 back")
        p.engine.tick(now_ms=int(time.time() * 1000) + 1000)
        threading.Event().wait(0.5)
        assert events("gateway_offline", "e02") == ["firing", "resolved"]  # no repeats
    finally:
        http.stop()


def test_rules_and_subscriptions_through_the_api_refuse_bad_input(platform: Platform) -> None:
    c = platform.client
    bad = c.put("/api/v1/parks/demo/alert-rules", json=[{
        "id": "v1", "kind": "threshold", "metric": "safety.pressure", "name_zh": "超压", "name_en": "over"}])
    assert bad.status_code == 422 and "needs a threshold" in bad.text
    ok = c.put("/api/v1/parks/demo/alert-rules", json=[{
        "id": "gas_lel_high", "kind": "threshold", "metric": "safety.gas_lel", "threshold": 10, "duration_s": 0,
        "name_zh": "本园区可燃气体低限", "name_en": "Gas, this park's lower limit"}])
    assert ok.status_code == 200
    rules = {r["id"]: r for r in c.get("/api/v1/parks/demo/alert-rules").json()}
    assert rules["gas_lel_high"]["threshold"] == 10 and rules["gas_lel_high"]["origin"] == "park"
    assert c.put("/api/v1/parks/nowhere/alert-rules", json=[]).status_code == 404
    no_park = c.post("/api/v1/alert-subscriptions", json={"name": "x", "role": "operator", "channel": "webhook",
                                                          "config": {"url": "http://x", "secret": "y"}})
    assert no_park.status_code == 422 and "names its park" in no_park.text
    no_secret = c.post("/api/v1/alert-subscriptions", json={"name": "x", "role": "regulator", "channel": "webhook",
                                                            "config": {"url": "http://x"}})
    assert no_secret.status_code == 422 and "needs secret" in no_secret.text
    unknown = c.post("/api/v1/alert-subscriptions", json={"name": "x", "role": "regulator", "channel": "pager",
                                                          "config": {}})
    assert unknown.status_code == 422 and "wecom" in unknown.text


@dataclass
class KeyLog(HttpReceiver):
    """The webhook receiver, also noting the key of every attempt, the refused ones (503 while "down") too."""

    attempts: list[str] = field(default_factory=list)

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        self.attempts.append(headers["X-Parkmon-Idempotency-Key"])
        return super()._handle(path, headers, raw)


def _fire_in_a_fresh_database(url: str, receiver: KeyLog) -> Store:
    """A new parkmon: fresh schema, one webhook subscription, the gas detector over its limit for 6 s."""
    store = open_store(url)
    store.create_schema()
    _register(store)
    outbox.create_subscription(store, name="hook", role="operator", region=None, park="demo", enterprise=None,
                               kinds=[], systems=[], min_severity="info", channel="webhook",
                               config={"url": receiver.url("/hook"), "secret": "k"}, actor="test")
    engine = AlertEngine(store, [r for r in load_rules() if r.id == "gas_lel_high"])
    batch = [IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", 1, T0, [
        ("gd1.lel", T0, 40.0, 0), ("gd1.lel", T0 + 6 * S, 41.0, 0)]), T0)]
    store.write_batches(batch)
    engine.process(batch, T0 + 6 * S)
    return store


def test_fresh_databases_give_their_own_keys_and_retries_keep_theirs(pg_url: str, tmp_path: Any) -> None:
    """Keys used to be sha256("<event id>:<subscription id>"): every fresh (or restored) database gave its
    first firing d6b5915c…, and a receiver keeping keys dropped the second parkmon's real alert."""
    first = hashlib.sha256(b"1:1").hexdigest()[:32]
    down_twice, up = KeyLog(secrets={"/hook": "k"}, fail=2), KeyLog(secrets={"/hook": "k"})
    down_twice.start()
    up.start()
    a = _fire_in_a_fresh_database(pg_url, down_twice)
    b = _fire_in_a_fresh_database(f"sqlite:///{tmp_path / 'second.db'}", up)
    try:
        clock = [1000.0]
        d = Dispatcher(a, clock=lambda: clock[0])
        for wait_s in (1, 2):  # 503 twice, retried after 1 s and 2 s
            assert d.run_once() == 0
            clock[0] += wait_s
        assert d.run_once() == 1 and d.failed_attempts == 2
        assert Dispatcher(b).run_once() == 1
        (got_a,), (got_b,) = down_twice.got, up.got
        key_a, key_b = got_a.headers["X-Parkmon-Idempotency-Key"], got_b.headers["X-Parkmon-Idempotency-Key"]
        assert down_twice.attempts == [key_a] * 3  # one delivery, three attempts, one key
        assert key_a != key_b and first not in (key_a, key_b)
        assert got_a.body["id"] == key_a and got_b.body["id"] == key_b
        # the same alert, event and subscription ids in both: only the key tells them apart
        assert got_a.body["alert"]["id"] == got_b.body["alert"]["id"] == 1
        assert all(len(k) == 32 and set(k) <= set("0123456789abcdef") for k in (key_a, key_b))
    finally:
        a.close()
        b.close()
        down_twice.stop()
        up.stop()


def test_migration_0008_gives_deliveries_never_tried_a_random_key(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0007")

    def old_key(eid: int, sid: int) -> str:
        return hashlib.sha256(f"{eid}:{sid}".encode()).hexdigest()[:32]

    with engine.begin() as conn:  # one event, as parkmon before 0008 queued it for three subscriptions
        aid = conn.execute(t.alerts.insert().values(
            rule_id="gas_lel_high", subject="demo/e01/gd1/safety.gas_lel", park="demo", kind="threshold",
            system="safety", severity="warning", state="firing", since_ms=0, fired_ms=0, created_ms=0)
        ).inserted_primary_key[0]  # type: ignore[index]
        eid = conn.execute(t.alert_events.insert().values(
            alert_id=aid, at_ms=0, event="firing", title_zh="", text_zh="", text_en="")).inserted_primary_key[0]  # type: ignore[index]
        # never tried; tried once and failed (the receiver may have it); delivered
        for sid, next_try, delivered in ((1, 0, None), (2, 5_000, None), (3, 0, 2_000)):
            conn.execute(t.alert_outbox.insert().values(
                event_id=eid, subscription_id=sid, idem_key=old_key(eid, sid), channel="webhook",
                payload=json.dumps({"event": "firing", "id": old_key(eid, sid)}), created_ms=0,
                next_try_ms=next_try, attempts=int(next_try > 0), delivered_ms=delivered))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = {r.subscription_id: r for r in conn.execute(select(t.alert_outbox))}
    engine.dispose()
    fresh = rows[1]
    assert fresh.idem_key != old_key(eid, 1) and len(fresh.idem_key) == 32
    assert json.loads(fresh.payload)["id"] == fresh.idem_key
    assert [rows[s].idem_key for s in (2, 3)] == [old_key(eid, 2), old_key(eid, 3)]  # a retry keeps its key
