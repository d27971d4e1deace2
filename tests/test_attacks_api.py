"""Issue 20's API attacks, each replayed against the real app with real tokens and pinned: one test per
item, named after the attack, its docstring quoting it. Fixtures and helpers are tests/test_tenancy.py's."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
from fastapi.testclient import TestClient

from ingest.store import Store
from parkmon.api.app import create_app
from parkmon.api.auth import MAX_TOKEN, TOKEN_COOKIE, Auth, create_token, principal_of
from tests import test_tenancy as tt
from tests.test_tenancy import _client, _tokens

two_parks = tt.two_parks  # the fixture: parks p1 (东区; enterprises a, b) and p2 (西区; c)


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _park_doc(region: str, park_class: str = "low_carbon") -> dict[str, Any]:
    return {"park": {"key": "p1", "name_zh": "一号园区", "name_en": "Park 1", "park_class": park_class,
                     "region": region}, "enterprises": [{"key": "a"}, {"key": "b"}]}


def test_item5_operator_cannot_move_its_park_out_of_its_regulators_oversight(two_parks: Store) -> None:
    """"An operator can PUT /api/v1/parks/{park} with another region or park_class and so leave its
    regulator's oversight.\""""
    tk = _tokens(two_parks)
    c = _client(two_parks)
    for doc in (_park_doc("西区"), _park_doc("东区", "zero_carbon")):
        r = c.put("/api/v1/parks/p1", json=doc, headers=_h(tk["operator"]))
        assert r.status_code == 403 and "regulator" in r.json()["detail"], r.text
    assert c.get("/api/v1/parks/p1/points", headers=_h(tk["regulator"])).status_code == 200
    # the same document with the park's own region and class is the operator's to send
    assert c.put("/api/v1/parks/p1", json=_park_doc("东区"), headers=_h(tk["operator"])).status_code == 200
    # the regulator sets class within its regions, not a region it does not oversee
    assert c.put("/api/v1/parks/p1", json=_park_doc("东区", "zero_carbon"),
                 headers=_h(tk["regulator"])).status_code == 200
    assert c.put("/api/v1/parks/p1", json=_park_doc("西区"), headers=_h(tk["regulator"])).status_code == 403
    assert c.put("/api/v1/parks/p1", json=_park_doc("西区"), headers=_h(tk["admin"])).status_code == 200


def test_item7_enterprise_cannot_file_a_service_request_in_another_enterprises_name(two_parks: Store) -> None:
    """"Enterprise e01 can POST …/service-requests?enterprise=e01 with body {"enterprise": "e02", …} and
    create a request in e02's name.\""""
    tk = _tokens(two_parks)
    c = _client(two_parks)
    body = {"enterprise": "b", "category": "other", "title": "t"}
    r = c.post("/api/v1/parks/p1/service-requests", params={"enterprise": "a"}, json=body, headers=_h(tk["a"]))
    assert r.status_code == 403 and "own name" in r.json()["detail"], r.text
    listed = c.get("/api/v1/parks/p1/service-requests", headers=_h(tk["operator"])).json()
    assert listed == []
    ok = c.post("/api/v1/parks/p1/service-requests", params={"enterprise": "a"}, json={**body, "enterprise": "a"},
                headers=_h(tk["a"]))
    assert ok.status_code == 200, ok.text
    # the operator files for any enterprise of its park
    assert c.post("/api/v1/parks/p1/service-requests", json=body, headers=_h(tk["operator"])).status_code == 200


def test_item8_notice_addressed_to_another_enterprise_is_not_listed(two_parks: Store) -> None:
    """"A notice addressed to ["e02"] is listed to e01 (also with ?enterprise=e02).\""""
    tk = _tokens(two_parks)
    c = _client(two_parks)
    for audience in (["b"], None):
        r = c.post("/api/v1/parks/p1/notices", json={"title": f"to {audience}", "body": "x", "audience": audience},
                   headers=_h(tk["operator"]))
        assert r.status_code == 200, r.text
    seen = c.get("/api/v1/parks/p1/notices", headers=_h(tk["a"]))
    assert [n["audience"] for n in seen.json()] == [None], seen.text
    probe = c.get("/api/v1/parks/p1/notices", params={"enterprise": "b"}, headers=_h(tk["a"]))
    assert probe.status_code == 403, probe.text
    b = create_token(two_parks, principal_of("enterprise", "企业b", park="p1", enterprise="b"))
    assert len(c.get("/api/v1/parks/p1/notices", headers=_h(b)).json()) == 2
    assert len(c.get("/api/v1/parks/p1/notices", headers=_h(tk["operator"])).json()) == 2


def _oidc(store: Store) -> tuple[TestClient, Any, Any]:
    """A client whose app trusts a loopback identity provider, and a signer for its tokens."""
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from parkmon.api.auth import OidcConfig, OidcVerifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tt._Jwks({**jwk, "kid": "k1", "use": "sig", "alg": "RS256"})
    issuer = "https://idp.example.cn/realms/park"
    c = _client(store, oidc=OidcVerifier(OidcConfig(issuer, "parkmon", jwks_url=jwks.url)))

    def sign(drop: tuple[str, ...] = (), **claims: Any) -> str:
        base = {"iss": issuer, "aud": "parkmon", "sub": "u1", "exp": time.time() + 300}
        doc = {k: v for k, v in {**base, **claims}.items() if k not in drop}
        return str(jwt.encode(doc, key, algorithm="RS256", headers={"kid": "k1"}))

    return c, sign, jwks


def test_item16_bad_ids_dates_and_claim_types_are_422_not_500(two_parks: Store) -> None:
    """"500s instead of 422 for non-integer or out-of-range ids (/alerts/2.0, /alerts/abc, /points/abc/rollups,
    share start=9999-12-30…, electricity-activity?last=0001-01-01) and for OIDC claims of the wrong type
    (parkmon_park a list).\""""
    tk = _tokens(two_parks)
    c = TestClient(_client(two_parks).app, raise_server_exceptions=False)
    for who in ("operator", "admin"):
        for url in ("/api/v1/alerts/2.0", "/api/v1/alerts/abc", "/api/v1/alerts/99999999999",
                    "/api/v1/points/abc/rollups", "/api/v1/points/0/rollups",
                    "/api/v1/parks/p1/indicators/new-energy-share?start=9999-12-30T00:00:00%2B08:00",
                    "/api/v1/parks/p1/indicators/new-energy-share?start=0001-01-01T00:00:00Z&end=0001-01-02T00:00:00Z",
                    "/api/v1/parks/p1/indicators/electricity-activity?last=0001-01-01"):
            r = c.get(url, headers=_h(tk[who]))
            assert r.status_code == 422, (who, url, r.status_code, r.text)
    oc, sign, jwks = _oidc(two_parks)
    oc = TestClient(oc.app, raise_server_exceptions=False)
    for claims in ({"parkmon_role": "operator", "parkmon_park": ["p1"]}, {"parkmon_role": ["admin"]},
                   {"parkmon_role": "regulator", "parkmon_regions": [1, 2]},
                   {"parkmon_role": "enterprise", "parkmon_park": "p1", "parkmon_enterprise": {"a": 1}}):
        r = oc.get("/api/v1/parks", headers=_h(sign(**claims)))
        assert r.status_code == 403 and "claim" in r.json()["detail"], (claims, r.text)
    jwks.server.shutdown()


def test_item17_oidc_token_without_exp_is_refused(two_parks: Store) -> None:
    """"An OIDC token without exp is accepted (never expires): require exp.\""""
    c, sign, jwks = _oidc(two_parks)
    r = c.get("/api/v1/parks", headers=_h(sign(drop=("exp",), parkmon_role="admin")))
    assert r.status_code == 401 and "exp" in r.json()["detail"], r.text
    assert c.get("/api/v1/parks", headers=_h(sign(parkmon_role="admin"))).status_code == 200
    jwks.server.shutdown()


def test_item11_fake_tokens_do_not_grow_the_server(two_parks: Store) -> None:
    """"Without a token: 20 000 requests with distinct 8 KB fake tokens grow the server from 80 to 240 MB for
    good (the auth cache keeps every bad token; 64 KB tokens accepted). Bound token length and the cache.\""""
    c = _client(two_parks)
    auth: Auth = c.app.state.auth  # type: ignore[attr-defined]
    auth.cache_s = 60.0  # remember what it may: the bound, not the expiry, must keep it small
    huge = c.get("/api/v1/parks", headers=_h("x" * 65_536))
    assert huge.status_code == 401 and str(MAX_TOKEN) in huge.json()["detail"], huge.text
    assert c.get("/api/v1/parks", headers=_h("x" * (MAX_TOKEN + 1))).status_code == 401
    for i in range(auth.refused_size + 200):
        assert c.get("/api/v1/parks", headers=_h(f"{i:08d}" + "f" * 3000)).status_code == 401
    assert len(auth._refused) <= auth.refused_size and len(auth._cache) == 0
    good = _tokens(two_parks)["operator"]
    assert c.get("/api/v1/parks", headers=_h(good)).status_code == 200 and len(auth._cache) == 1


def test_item12_anonymous_bodies_are_refused_unread_and_large_bodies_413(two_parks: Store) -> None:
    """"Without a token: a 200 MB JSON body is read and parsed before the 401; a 100 MB multipart upload is
    spooled to disk before its 401. Authenticate before reading bodies; cap body size.\""""
    from tests.test_board import serve

    tk = _tokens(two_parks)
    app = create_app(two_parks, auth=Auth(two_parks, cache_s=0), max_body=1_000_000)
    with serve(app) as api:
        host, port = api.base.removeprefix("http://").split(":")
        # a body announced, never sent: the 401 comes without the server waiting for a byte of it
        for path, ctype in (("/api/v1/parks/p1/notices", "application/json"),
                            ("/api/v1/parks/p1/economy/import", "multipart/form-data; boundary=x")):
            with socket.create_connection((host, int(port)), timeout=30) as s:
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                          f"Content-Length: 900000\r\n\r\n".encode())
                head = s.recv(65536).decode(errors="replace")
            assert head.startswith("HTTP/1.1 401"), head
        big = {"title": "t", "body": "x" * 1_100_000}
        r = httpx.post(f"{api.base}/api/v1/parks/p1/notices", json=big, headers=_h(tk["operator"]))
        assert r.status_code == 413 and "1000000 bytes" in r.json()["detail"], r.text

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"title": "t", "body": "'
            for _ in range(30):
                yield b"x" * 50_000
            yield b'"}'

        r = httpx.post(f"{api.base}/api/v1/parks/p1/notices", content=chunks(),
                       headers={**_h(tk["operator"]), "Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        ok = httpx.post(f"{api.base}/api/v1/parks/p1/notices", json={"title": "t", "body": "x" * 1000},
                        headers=_h(tk["operator"]))
        assert ok.status_code == 200, ok.text


def test_item14_health_readings_count_needs_a_token(two_parks: Store) -> None:
    """"GET /api/v1/health?readings=true without a token runs count(*) over all readings.\""""
    c = _client(two_parks)
    assert c.get("/api/v1/health").json() == {"status": "ok"}
    anon = c.get("/api/v1/health", params={"readings": "true"})
    assert anon.status_code == 401 and "token" in anon.json()["detail"], anon.text
    r = c.get("/api/v1/health", params={"readings": "true"}, headers=_h(_tokens(two_parks)["operator"]))
    assert r.status_code == 200 and r.json()["readings"] > 0


def test_item19_anonymous_writes_are_counted_not_audited(two_parks: Store) -> None:
    """"Every unauthenticated write attempt adds an audit row (an audit-log flood); count them instead.\""""
    tk = _tokens(two_parks)
    c = _client(two_parks)
    before = c.get("/api/v1/parks/p1/audit", headers=_h(tk["admin"])).json()
    for i in range(50):
        c.post("/api/v1/parks/p1/notices", json={"title": f"t{i}", "body": ""},
               headers=_h("forged") if i % 2 else {})
        c.delete(f"/api/v1/alert-subscriptions/{i + 1}")
    assert c.get("/api/v1/parks/p1/audit", headers=_h(tk["admin"])).json() == before
    health = c.get("/api/v1/health", headers=_h(tk["admin"])).json()
    assert health["refused_unauthenticated_writes"] == 100, health
    assert "refused_unauthenticated_writes" not in c.get("/api/v1/health", headers=_h(tk["operator"])).json()


def test_item9_board_lists_only_visible_parks_and_pages_cannot_probe_keys(two_parks: Store) -> None:
    """"/board/ lists every park to any token holder (another region's too); /board/{park} answers 200 vs 404
    without a token, so park keys can be probed.\""""
    tk = _tokens(two_parks)
    c = _client(two_parks)
    listed = c.get("/board/", headers=_h(tk["regulator"])).text
    assert "p1" in listed and "p2" not in listed and "二号园区" not in listed
    assert "p2" not in c.get("/board/", headers=_h(tk["a"])).text
    assert "p2" in c.get("/board/", headers=_h(tk["admin"])).text
    anon = [c.get(f"/board/{k}") for k in ("p1", "p2", "nowhere")]
    assert {(r.status_code, r.text.replace(k, "")) for r, k in zip(anon, ("p1", "p2", "nowhere"), strict=True)} \
        == {(anon[0].status_code, anon[0].text.replace("p1", ""))}
    forged = [c.get(f"/board/{k}", headers=_h("forged")).status_code for k in ("p2", "nowhere")]
    assert forged[0] == forged[1]
    signed = [c.get(f"/board/{k}", headers=_h(tk["operator"])).status_code for k in ("p1", "p2", "nowhere")]
    assert signed == [200, 404, 404]


def test_item15_board_cookie_is_httponly_server_set_and_good_for_board_reads_only(two_parks: Store) -> None:
    """"The board's token cookie is set by script (so not HttpOnly), accepted on every write route, and a page
    on another port of the same host read it and acknowledged an alert with it.\""""
    tk = _tokens(two_parks)
    c = _client(two_parks)
    assert c.post("/board/sign-in", json={"token": "forged"}).status_code == 401
    assert TOKEN_COOKIE not in c.cookies
    r = c.post("/board/sign-in", json={"token": tk["operator"]})
    assert r.status_code == 204, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    behind_tls = _client(two_parks).post("/board/sign-in", json={"token": tk["operator"]},
                                         headers={"X-Forwarded-Proto": "https"})
    assert "secure" in behind_tls.headers["set-cookie"].lower()
    # the board's reads go with the cookie alone ...
    assert c.get("/api/v1/parks/p1/live/snapshot").status_code == 200
    # ... a write with it alone is anonymous: the alert stays unacknowledged
    alert = tt._ids(two_parks)["alert"]["a"]
    ack = c.post(f"/api/v1/alerts/{alert}/acknowledge", json={"note": "csrf"})
    assert ack.status_code == 401, ack.text
    assert c.get("/api/v1/parks/p1/points").status_code == 401  # not a board read either
    detail = c.get(f"/api/v1/alerts/{alert}", headers=_h(tk["operator"])).json()
    assert detail["acked_ms"] is None
    assert c.post(f"/api/v1/alerts/{alert}/acknowledge", json={"note": "ok"},
                  headers=_h(tk["operator"])).status_code == 200
    c.post("/board/sign-out")
    assert c.get("/api/v1/parks/p1/live/snapshot").status_code == 401


def test_item18_security_headers_and_stream_cap_per_token(two_parks: Store) -> None:
    """"No Content-Security-Policy, X-Frame-Options or nosniff headers; SSE streams uncapped per client.\""""
    from parkmon.api.board import MAX_STREAMS
    from tests.test_board import serve

    tk = _tokens(two_parks)
    c = _client(two_parks)
    for url in ("/board/p1", "/api/v1/health", "/static/board.js", "/api/v1/parks"):
        h = c.get(url).headers
        assert "script-src 'self'" in h["content-security-policy"] and "frame-ancestors 'none'" in \
            h["content-security-policy"], url
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff", url
    app = create_app(two_parks, auth=Auth(two_parks, cache_s=0))
    with serve(app) as api, httpx.Client(base_url=api.base, headers=_h(tk["operator"]), timeout=30) as hc:
        with ExitStack() as streams:
            kept = []  # the line iterators: closing one closes its connection
            for _ in range(MAX_STREAMS):
                r = streams.enter_context(hc.stream("GET", "/api/v1/parks/p1/live", params={"every": 60}))
                assert r.status_code == 200
                kept.append(r.iter_lines())
                next(kept[-1])  # the stream is open: its first event arrived
            over = hc.get("/api/v1/parks/p1/live", params={"every": 60})
            assert over.status_code == 429 and str(MAX_STREAMS) in over.json()["detail"], over.text
            # another token holder is not held back by this one's streams
            other = hc.get("/api/v1/parks/p1/live/snapshot", headers=_h(tk["admin"]))
            assert other.status_code == 200
        app.state.board.close()


def test_item6_subscriptions_belong_to_their_holder(two_parks: Store) -> None:
    """"An operator can list and delete a regulator's subscription for its park (and sees its secrets); the
    regulator passes authorization on an operator's subscription. Subscriptions belong to their holder.\"
    Also two regulators sharing a region, and two operators of one park: each holds only what it made."""
    from sqlalchemy import update

    from ingest.store import record_tables as t

    tk = _tokens(two_parks)
    tk["regulator2"] = create_token(two_parks, principal_of("regulator", "东区应急管理局", ["东区"]))
    tk["operator2"] = create_token(two_parks, principal_of("operator", "一号园区安全科", park="p1"))
    c = _client(two_parks)

    def make(who: str, role: str, **scope: str) -> int:  # through the API, by the holder's own token
        body = {"name": f"{who}'s {role} sub", "role": role, "channel": "webhook", **scope,
                "config": {"url": "https://hooks.example.cn/x", "secret": "s3cret-0123456789"}}
        r = c.post("/api/v1/alert-subscriptions", json=body, headers=_h(tk[who]))
        assert r.status_code == 200, r.text
        return int(r.json()["id"])

    reg_park, reg_region = make("regulator", "regulator", park="p1"), make("regulator", "regulator", region="东区")
    reg2 = make("regulator2", "regulator", region="东区")
    op, ent = make("operator", "operator", park="p1"), make("operator", "enterprise", park="p1", enterprise="a")
    op2 = make("operator2", "operator", park="p1")
    orphan = make("operator", "operator", park="p1")
    with two_parks.engine.begin() as conn:  # made before migration 0009 with no audit trail: no holder known
        conn.execute(update(t.alert_subscriptions).where(t.alert_subscriptions.c.id == orphan).values(owner=None))

    def listed(who: str) -> set[int]:
        r = c.get("/api/v1/alert-subscriptions", headers=_h(tk[who]))
        assert r.status_code == 200 and "s3cret" not in r.text, r.text
        return {s["id"] for s in r.json()}

    assert listed("operator") == {op, ent}
    assert listed("operator2") == {op2}
    assert listed("regulator") == {reg_park, reg_region}
    assert listed("regulator2") == {reg2}
    assert listed("a") == set()  # its enterprise's subscription is the operator's, who filed it
    assert listed("admin") == {reg_park, reg_region, reg2, op, ent, op2, orphan}
    for who, others in (("operator", (reg_park, reg_region, reg2, op2, orphan)), ("operator2", (op, ent)),
                        ("regulator", (op, ent, reg2)), ("regulator2", (reg_park, reg_region)), ("a", (ent,))):
        for sid in others:
            r = c.delete(f"/api/v1/alert-subscriptions/{sid}", headers=_h(tk[who]))
            assert r.status_code == 403, (who, sid, r.text)
    # a regulator's subscription is not the operator's to make either
    body = {"name": "x", "role": "regulator", "park": "p1", "channel": "webhook",
            "config": {"url": "https://hooks.example.cn/x", "secret": "0123456789abcdef"}}
    made = c.post("/api/v1/alert-subscriptions", json=body, headers=_h(tk["operator"]))
    assert made.status_code in (403, 422) and made.status_code != 200, made.text
    assert listed("admin") == {reg_park, reg_region, reg2, op, ent, op2, orphan}  # nothing was deleted
    for who, sid in (("operator", op), ("operator2", op2), ("regulator", reg_park), ("regulator2", reg2),
                     ("admin", orphan)):
        assert c.delete(f"/api/v1/alert-subscriptions/{sid}", headers=_h(tk[who])).status_code == 200, (who, sid)
    assert listed("admin") == {reg_region, ent}


def test_item10_share_request_work_is_bounded(two_parks: Store) -> None:
    """"One enterprise's share with interval_s=1 over 31 days: 9.7 s and 99 → 645 MB; three at once 1.9 GB.
    Bound the work a request may ask for (intervals × meters, rows read) with a clear 422 saying the limit.\""""
    from parkmon.api.indicators import MAX_CELLS

    tk = _tokens(two_parks)
    c = _client(two_parks)
    url = "/api/v1/parks/p1/indicators/new-energy-share"
    month = {"start": "2026-11-01T00:00:00+08:00", "end": "2026-12-02T00:00:00+08:00", "enterprise": "a"}
    r = c.get(url, params={**month, "interval_s": 1}, headers=_h(tk["a"]))
    assert r.status_code == 422, r.text
    assert str(MAX_CELLS) in r.json()["detail"] and "interval_s" in r.json()["detail"], r.text
    decade = {"start": "2016-01-01T00:00:00+08:00", "end": "2026-01-01T00:00:00+08:00"}
    assert c.get(url, params={**decade, "interval_s": 60}, headers=_h(tk["operator"])).status_code == 422
    # what real use asks for still answers
    assert c.get(url, params={**month, "interval_s": 900}, headers=_h(tk["a"])).status_code == 200
    assert c.get(url, params={**month, "interval_s": 60}, headers=_h(tk["operator"])).status_code == 200
