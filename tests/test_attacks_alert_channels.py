"""Issue 20 items 1, 4 and 6 through alert subscriptions, replayed against the real API (real tokens, the
fixture parks of tests/test_tenancy.py), the real dispatcher and real HTTP receivers on loopback: no local
file read or internal request through a channel URL, no receiver's answer or secret shown back, no
subscription or delivery of another holder seen. Each test's docstring quotes the attack it pins."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, select

from analytics.alerts.dispatch import Dispatcher
from ingest.store import Store, alert_outbox, migrate
from ingest.store import record_tables as t
from parkmon.api.auth import create_token, principal_of
from tests import test_tenancy as tt
from tests.test_tenancy import _client, _ids, _tokens

two_parks = tt.two_parks  # parks p1 (东区; enterprises a, b) and p2 (西区; c), one firing alert each
ALLOW = "PARKMON_ALERT_ALLOW_HOSTS"
LEAK = "ANSWER-SECRET-7f3a"  # in every answer the receivers give: must never come back out
PASSWD = "root:x:0:0:root:/root:/bin/bash"


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Receiver:
    """An HTTP server on loopback answering each path as told: (status, headers, body). What it answers
    echoes the request's URL and carries :data:`LEAK` and a line of /etc/passwd, as an internal service or a
    hostile receiver would."""

    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    got: list[str] = field(default_factory=list)

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.got.append(self.path)
                path = self.path.split("?")[0]
                status, headers, body = next((v for k, v in outer.routes.items()
                                              if path == k or path.startswith(k + "/")), (404, {}, b""))
                body = body.replace(b"{url}", self.path.encode())
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """A receiver an operator may name, and an internal service (the attack's target) nobody may reach."""
    secret = f"{LEAK} {PASSWD} {{url}}".encode()
    internal = Receiver({"/admin": (200, {}, secret)}).start()
    public = Receiver({
        "/boom": (500, {}, secret),
        "/moved": (302, {"Location": internal.url("/admin")}, secret),
        "/robot": (200, {"Content-Type": "application/json"},
                   json.dumps({"code": 19021, "msg": f"{LEAK} {PASSWD}"}).encode()),
        "/notjson": (200, {}, secret),
    }).start()
    try:
        yield public, internal
    finally:
        public.stop()
        internal.stop()


def _subscribe(c: TestClient, token: str, channel: str, config: dict[str, Any], **scope: str) -> Any:
    body = {"name": f"{channel} sub", "role": scope.pop("role", "operator"), "park": "p1", "channel": channel,
            "config": config, **scope}
    return c.post("/api/v1/alert-subscriptions", json=body, headers=_h(token))


def _resolve_alert_of_a(c: TestClient, tk: dict[str, str], store: Store) -> int:
    """The operator closes enterprise a's alert: every subscription hearing p1 gets a delivery."""
    aid = int(_ids(store)["alert"]["a"])
    assert c.post(f"/api/v1/alerts/{aid}/resolve", json={"note": "处置完毕"}, headers=_h(tk["operator"])
                  ).status_code == 200
    return aid


def test_item1_channel_urls_other_than_http_are_refused_when_written(two_parks: Store) -> None:
    """"An operator creates a WeCom/DingTalk/Feishu subscription with config.url = "file:///…" (or … ftp://);
    the sender opens it and stores the first 200 bytes of the answer in deliveries[].last_error.\""""
    tk, c = _tokens(two_parks), _client(two_parks)
    for channel in ("wecom", "dingtalk", "feishu", "webhook"):
        for url in ("file:///etc/passwd", "FILE:///root/.ssh/id_rsa", "ftp://files.park.cn/parkmon.env",
                    "data:text/plain,hello", "gopher://127.0.0.1:6379/_INFO", "jar:http://x/y!/z", "/etc/passwd"):
            r = _subscribe(c, tk["operator"], channel, {"url": url, "secret": "0123456789abcdef"})
            assert r.status_code == 422, (channel, url, r.text)
            assert "https://" in r.text, r.text  # says what is accepted
    assert c.get("/api/v1/alert-subscriptions", headers=_h(tk["admin"])).json() == []


def test_item1_internal_addresses_and_foreign_robot_hosts_refused_unless_allowed(
        two_parks: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """"… (or a webhook to an internal HTTP service) … the robots' official hosts by default; loopback,
    link-local and private addresses refused unless the deployment's configuration allows them.\""""
    monkeypatch.delenv(ALLOW, raising=False)
    tk, c = _tokens(two_parks), _client(two_parks)
    op = tk["operator"]
    internal = ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://LOCALHOST./hook", "http://[::1]/h",
                "http://[::ffff:127.0.0.1]/h", "http://[::ffff:7f00:1]/h", "http://169.254.169.254/latest/meta-data",
                "http://10.1.2.3/h", "http://192.168.1.10/h", "http://172.16.0.1/h", "http://100.64.0.1/h",
                "http://0.0.0.0/h", "http://2130706433/h", "http://0x7f.1/h", "http://127.1/h", "http://224.0.0.1/h",
                "http://[fe80::1]/h", "http://[fc00::1]/h", "http://[64:ff9b::7f00:1]/h", "http://[2002:7f00:1::1]/h",
                "https://user:pw@10.0.0.8/h"]
    for url in internal:
        r = _subscribe(c, op, "webhook", {"url": url, "secret": "0123456789abcdef"})
        # says how a deployment allows it, or (2130706433, 0x7f.1, 127.1) how to write an address
        assert r.status_code == 422 and (ALLOW in r.text or "a.b.c.d" in r.text), (url, r.text)
    assert _subscribe(c, op, "mqtt", {"host": "127.0.0.1", "topic": "parkmon/alerts/p1"}).status_code == 422
    assert _subscribe(c, op, "email", {"host": "169.254.169.254", "from": "a@p.cn", "to": ["b@p.cn"]}
                      ).status_code == 422
    # robots: their official hosts (https only: the URL carries the robot's token), nothing else
    foreign = _subscribe(c, op, "wecom", {"url": "https://hooks.evil.example/cgi-bin/webhook/send?key=k"})
    assert foreign.status_code == 422 and "qyapi.weixin.qq.com" in foreign.text, foreign.text
    clear = _subscribe(c, op, "dingtalk", {"url": "http://oapi.dingtalk.com/robot/send?access_token=t"})
    assert clear.status_code == 422 and "https://oapi.dingtalk.com" in clear.text, clear.text
    for channel, url in (("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"),
                         ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=t"),
                         ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/x"),
                         ("feishu", "https://open.larksuite.com/open-apis/bot/v2/hook/x"),
                         ("webhook", "https://hooks.park.example/alerts"),
                         ("webhook", "http://[64:ff9b::808:808]/h")):  # NAT64 to a public IPv4 address
        r = _subscribe(c, op, channel, {"url": url, "secret": "0123456789abcdef"})
        assert r.status_code == 200, (channel, url, r.text)
    # the deployment allows its own networks: loopback receivers, the park's LAN; nothing more
    monkeypatch.setenv(ALLOW, "127.0.0.1, 10.20.0.0/16")
    for channel, url in (("webhook", "http://127.0.0.1:9/hook"), ("webhook", "http://10.20.3.4/hook"),
                         ("wecom", "http://127.0.0.1:9/cgi-bin/webhook/send?key=k")):
        r = _subscribe(c, op, channel, {"url": url, "secret": "0123456789abcdef"})
        assert r.status_code == 200, (channel, url, r.text)
    for url in ("http://10.21.0.1/hook", "http://127.0.0.2/hook", "http://localhost/hook"):
        assert _subscribe(c, op, "webhook", {"url": url, "secret": "0123456789abcdef"}).status_code == 422, url
    monkeypatch.setenv(ALLOW, "10.20.0.0/16 not/a host")
    bad = _subscribe(c, op, "webhook", {"url": "https://hooks.park.example/a", "secret": "0123456789abcdef"})
    assert bad.status_code == 422 and ALLOW in bad.text, bad.text


def test_item1_deliveries_checked_at_send_redirects_not_followed_answers_never_echoed(
        two_parks: Store, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """"… stores the first 200 bytes of the answer in deliveries[].last_error, which GET /api/v1/alerts/{id}
    returns: /etc/passwd … came back this way. … redirects not followed to refused addresses, and an
    answer's body never echoed into anything a user can read.\""""
    public, internal = receivers
    tk, c = _tokens(two_parks), _client(two_parks)
    monkeypatch.setenv(ALLOW, "127.0.0.1")  # the test's receivers run here: the deployment allows loopback
    made = {path: _subscribe(c, tk["operator"], ch, {"url": public.url(path), "secret": "0123456789abcdef"})
            for ch, path in (("webhook", "/boom"), ("webhook", "/moved"), ("feishu", "/robot"), ("wecom", "/notjson"))}
    assert all(r.status_code == 200 for r in made.values()), {p: r.text for p, r in made.items()}
    sid = {path.strip("/"): r.json()["id"] for path, r in made.items()}
    # rows written around the API (stored before this fix): the sender refuses them itself
    for path, (channel, url) in {"file": ("wecom", "file:///etc/passwd"),
                                 "name": ("webhook", public.url("/boom").replace("127.0.0.1", "localhost"))}.items():
        sid[path] = alert_outbox.create_subscription(
            two_parks, name=path, role="operator", region=None, park="p1", enterprise=None, kinds=[], systems=[],
            min_severity="info", channel=channel, config={"url": url, "secret": "0123456789abcdef"},
            actor="一号园区管委会")["id"]
    aid = _resolve_alert_of_a(c, tk, two_parks)
    caplog.set_level(logging.WARNING, logger="parkmon.alerts")
    assert Dispatcher(two_parks).run_once() == 0  # nothing lands

    def errors() -> dict[str, str]:
        one = c.get(f"/api/v1/alerts/{aid}", headers=_h(tk["operator"]))
        assert one.status_code == 200 and LEAK not in one.text and "root:x" not in one.text, one.text
        by_sub = {d["subscription_id"]: d["last_error"] for d in one.json()["deliveries"]}
        return {path: by_sub[s] for path, s in sid.items()}

    err = errors()
    assert err["boom"] == f"http://127.0.0.1:{public.server.server_address[1]}: HTTP 500 Internal Server Error"
    assert "HTTP 302" in err["moved"] and "redirects are not followed" in err["moved"]
    assert internal.got == []  # the redirect's target was never asked
    assert "code 19021" in err["robot"]  # the robot's numeric code; its message (the answer) not
    assert "not a robot's JSON" in err["notjson"]
    assert "scheme file: refused" in err["file"]
    assert "localhost is this machine" in err["name"]  # allowed addresses, not every name that reaches them
    assert sorted(public.got) == ["/boom", "/moved", "/notjson", "/robot"]
    assert LEAK not in caplog.text and "root:x" not in caplog.text
    # the deployment narrows its setting: checked again at the next send, nothing reaches the receiver
    monkeypatch.delenv(ALLOW)
    assert Dispatcher(two_parks, clock=lambda: time.time() + 120).run_once() == 0
    assert len(public.got) == 4
    assert "127.0.0.1 is a loopback address" in errors()["boom"]
    with two_parks.engine.connect() as conn:  # and nothing of an answer is stored anywhere
        stored = " ".join(str(r) for r in conn.execute(select(t.alert_outbox.c.last_error)))
    assert LEAK not in stored and "root:x" not in stored


def test_item1_a_name_re_pointed_at_an_internal_address_after_writing_is_refused_at_send(
        two_parks: Store, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch) -> None:
    """"Check again at send time (DNS can change: resolve and check the address actually connected to).\"
    A stand-in for DNS (a name server that changes its answer cannot run here): the name resolves to a public
    address when the subscription is written, to the internal service's loopback address when it is sent."""
    from analytics.alerts.channels import destinations

    public, internal = receivers
    monkeypatch.delenv(ALLOW, raising=False)
    port = internal.server.server_address[1]
    answer = {"ip": "8.8.8.8"}
    monkeypatch.setattr(destinations, "_resolve", lambda host, p: [(socket.AF_INET, (answer["ip"], p))]
                        if host == "hooks.rebind.example" else [])
    tk, c = _tokens(two_parks), _client(two_parks)
    r = _subscribe(c, tk["operator"], "webhook", {"url": f"http://hooks.rebind.example:{port}/admin",
                                                  "secret": "0123456789abcdef"})
    assert r.status_code == 200, r.text
    answer["ip"] = "127.0.0.1"  # re-pointed
    aid = _resolve_alert_of_a(c, tk, two_parks)
    assert Dispatcher(two_parks).run_once() == 0
    assert internal.got == [] and public.got == []
    (d,) = c.get(f"/api/v1/alerts/{aid}", headers=_h(tk["operator"])).json()["deliveries"]
    assert "resolves to a loopback address, refused" in d["last_error"], d
    # and a name that resolves to an internal address when written is refused then
    r = _subscribe(c, tk["operator"], "webhook", {"url": "http://hooks.rebind.example/x", "secret": "0123456789ab"})
    assert r.status_code == 422 and "resolves to a loopback address" in r.text, r.text


def test_item1_a_receiver_trickling_its_answer_is_cut_off(two_parks: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver that answers a header line every 0.2 s never trips a socket's timeout and held the
    dispatcher - every other subscription's alerts - for as long as it liked: the whole exchange is bounded
    (DEADLINE_S, 30 s; 1 s here)."""
    from analytics.alerts.channels import http as channel_http

    monkeypatch.setenv(ALLOW, "127.0.0.1")
    monkeypatch.setattr(channel_http, "DEADLINE_S", 1.0)
    stop = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        tk, c = _tokens(two_parks), _client(two_parks)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"
        assert _subscribe(c, tk["operator"], "webhook", {"url": url, "secret": "0123456789abcdef"}).status_code == 200
        aid = _resolve_alert_of_a(c, tk, two_parks)
        assert Dispatcher(two_parks).run_once() == 0
        (d,) = c.get(f"/api/v1/alerts/{aid}", headers=_h(tk["operator"])).json()["deliveries"]
        assert d["last_error"].endswith("no complete answer within 1 s"), d
    finally:
        stop.set()
        server.close()


def test_item4_secrets_masked_everywhere_and_deliveries_shown_only_to_their_owner(
        two_parks: Store, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """"An enterprise reading its own alert sees deliveries[].last_error holding the regulator's DingTalk URL
    with access_token/sign and an operator's webhook with user:password and ?token=; the same URLs are in the
    operator-readable audit of alert_subscriptions.\""""
    public, _internal = receivers
    public.routes["/echo"] = (500, {}, b"you sent {url}")  # a receiver echoing the request: the URL's tokens
    tk, c = _tokens(two_parks), _client(two_parks)
    monkeypatch.setenv(ALLOW, "127.0.0.1")
    secrets = ["DT-access-token-0123456789", "SEC-dingtalk-sign-secret-0123", "op-Passw0rd-xyz",
               "OP-query-token-0123456789", "op-hmac-secret-0123456789", "2e5f4ce2-1b38-4d1b-a994-790f21fc8d30",
               "smtp-Passw0rd-9876"]
    reg = _subscribe(c, tk["regulator"], "dingtalk", role="regulator",
                     config={"url": public.url("/echo/robot/send?access_token=DT-access-token-0123456789"),
                             "secret": "SEC-dingtalk-sign-secret-0123"})
    hook = _subscribe(c, tk["operator"], "webhook", config={
        "url": public.url("/echo?token=OP-query-token-0123456789").replace("//", "//ops:op-Passw0rd-xyz@"),
        "secret": "op-hmac-secret-0123456789"})
    fs = _subscribe(c, tk["operator"], "feishu",
                    config={"url": public.url("/echo/open-apis/bot/v2/hook/2e5f4ce2-1b38-4d1b-a994-790f21fc8d30")})
    with socket.socket() as s:  # a port nothing listens on: the mail cannot go, its password must not show
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    mail = _subscribe(c, tk["operator"], "email", config={
        "host": "127.0.0.1", "port": closed, "from": "parkmon@p1.cn", "to": ["duty@p1.cn"],
        "username": "parkmon", "password": "smtp-Passw0rd-9876"})
    for r in (reg, hook, fs, mail):
        assert r.status_code == 200 and not any(s in r.text for s in secrets), r.text
    # shown masked: the host stays, so the holder knows which receiver it is
    assert hook.json()["config"]["url"] == public.url("/echo?token=***").replace("//", "//ops:***@")
    assert fs.json()["config"]["url"].endswith("/open-apis/bot/v2/hook/***")
    for who in ("operator", "regulator", "admin"):
        listed = c.get("/api/v1/alert-subscriptions", headers=_h(tk[who]))
        assert listed.status_code == 200 and not any(s in listed.text for s in secrets), listed.text
    aid = _resolve_alert_of_a(c, tk, two_parks)
    caplog.set_level(logging.WARNING, logger="parkmon.alerts")
    assert Dispatcher(two_parks).run_once() == 0
    # the audit the operator reads, the raw audit rows, the stored errors, the logs: no secret
    audit = c.get("/api/v1/parks/p1/audit", params={"entity": "alert_subscriptions"}, headers=_h(tk["operator"]))
    assert audit.status_code == 200 and len(audit.json()) == 4, audit.text
    with two_parks.engine.connect() as conn:
        stored = " ".join(str(r) for r in conn.execute(select(t.audit_log.c.before, t.audit_log.c.after)))
        stored += " ".join(str(r) for r in conn.execute(select(t.alert_outbox.c.last_error)))
    for text in (audit.text, stored, caplog.text):
        assert not any(s in text for s in secrets), text
    # each holder sees its own deliveries; the enterprise whose alert it is, none of theirs (counted only)
    ids = {"regulator": {reg.json()["id"]}, "operator": {hook.json()["id"], fs.json()["id"], mail.json()["id"]},
           "a": set(), "admin": {reg.json()["id"], hook.json()["id"], fs.json()["id"], mail.json()["id"]}}
    for who, want in ids.items():
        one = c.get(f"/api/v1/alerts/{aid}", headers=_h(tk[who]))
        assert one.status_code == 200 and not any(s in one.text for s in secrets), one.text
        got = one.json()
        assert {d["subscription_id"] for d in got["deliveries"]} == want, (who, got["deliveries"])
        assert got["other_deliveries"] == 4 - len(want)  # one manual-resolve event, four subscriptions
        assert all(d["last_error"] for d in got["deliveries"])  # each failed, and says so


def test_migration_0009_backfills_owners_masks_audit_and_clears_stored_answers(store_url: str) -> None:
    """Rows from before the fix: each subscription's owner is who made it (its audit row's actor; none: an
    administrator's), the audit's URLs lose their tokens, the stored answers are gone. SQLite and PostgreSQL."""
    engine = create_engine(store_url)
    migrate.upgrade(engine, "0008")
    token_url = "https://oapi.dingtalk.com/robot/send?access_token=DT-access-token-0123456789"
    with engine.begin() as conn:
        for sid in (1, 2, 3):
            conn.execute(t.alert_subscriptions.insert().values(
                id=sid, name=f"s{sid}", role="operator", park="p1", kinds="", systems="", min_severity="info",
                channel="dingtalk", config=json.dumps({"url": token_url, "secret": "SEC-0123456789"}), enabled=True,
                created_ms=0))
        for sid, actor in ((1, "东区生态环境局"), (2, "一号园区管委会")):  # 3: no trail of its maker
            conn.execute(t.audit_log.insert().values(
                at_ms=0, actor=actor, action="create", entity="alert_subscriptions", entity_key=str(sid), park="p1",
                after=json.dumps({"id": sid, "config": {"url": token_url, "secret": "***"}})))
        aid = conn.execute(t.alerts.insert().values(
            rule_id="r", subject="p1/a/grid/imp", park="p1", kind="threshold", system="energy", severity="warning",
            state="firing", since_ms=0, fired_ms=0, created_ms=0)).inserted_primary_key[0]  # type: ignore[index]
        eid = conn.execute(t.alert_events.insert().values(
            alert_id=aid, at_ms=0, event="firing", title_zh="", text_zh="", text_en="")).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(t.alert_outbox.insert().values(
            event_id=eid, subscription_id=1, idem_key="k1", channel="dingtalk", payload="{}", created_ms=0,
            next_try_ms=0, attempts=1, last_error=f"{token_url}: HTTP 200 {PASSWD}"))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        owners = dict(conn.execute(select(t.alert_subscriptions.c.id, t.alert_subscriptions.c.owner)).all())
        audit = [r[0] for r in conn.execute(select(t.audit_log.c.after))]
        error = conn.execute(select(t.alert_outbox.c.last_error)).scalar_one()
    assert owners == {1: "东区生态环境局", 2: "一号园区管委会", 3: None}
    assert [json.loads(a)["config"]["url"] for a in audit] == [token_url.replace("DT-access-token-0123456789",
                                                                                "***")] * 2
    assert "root:x" not in error and "DT-access" not in error
    migrate.downgrade(engine, "0008")  # and back
    with engine.connect() as conn:
        assert "owner" not in {col["name"] for col in inspect(conn).get_columns("alert_subscriptions")}
    migrate.upgrade(engine)
    engine.dispose()


def test_a_second_regulator_token_sees_only_its_own_deliveries(two_parks: Store) -> None:
    """Two regulators of one region (东区): a delivery of one is not the other's to read (item 4 with 6)."""
    c = _client(two_parks)
    tk = _tokens(two_parks)
    other = create_token(two_parks, principal_of("regulator", "东区应急管理局", ["东区"]))
    sid = alert_outbox.create_subscription(
        two_parks, name="r", role="regulator", region=None, park="p1", enterprise=None, kinds=[], systems=[],
        min_severity="info", channel="webhook", config={"url": "https://hooks.park.example/x", "secret": "s"},
        actor="东区生态环境局")["id"]
    aid = _resolve_alert_of_a(c, tk, two_parks)
    mine = c.get(f"/api/v1/alerts/{aid}", headers=_h(tk["regulator"])).json()
    theirs = c.get(f"/api/v1/alerts/{aid}", headers=_h(other)).json()
    assert [d["subscription_id"] for d in mine["deliveries"]] == [sid] and mine["other_deliveries"] == 0
    assert theirs["deliveries"] == [] and theirs["other_deliveries"] == 1
