"""Hypothesis on the wire contract's decoders (issue 10, "bad input everywhere"): random bytes, random
JSON and mutated valid payloads are either refused with ``wire.ContractError`` or decode to something
the platform can store (ids and point names as documented, times 2000-3000, integers within the
database's 64 bits, no NUL in text); valid messages built by strategies round-trip. Then a corpus of
malformed payloads through a real mosquitto into ingest: each becomes a dead letter with its reason,
and a valid batch after them is stored."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store
from parkmon.common import wire
from tests.mqtt_util import publish_all, publisher, wait_for

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
POINT = re.compile(r"[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}")
TS_MIN, TS_MAX = 946_684_800_000, 32_503_680_000_000
INT64 = range(-(2**63), 2**63)
T0 = 1_763_800_000_000

# ---- strategies for valid messages ----------------------------------------------------------------
ids = st.from_regex(ID, fullmatch=True)
points = st.builds(lambda d, p: f"{d}.{p}", ids, ids)
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
ms = st.integers(0, 2**63 - 1)
samples = st.tuples(points, st.integers(TS_MIN, TS_MAX - 1),
                    st.none() | st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 255))
batches = st.builds(wire.Batch, st.just(1), ids, ms, ms, st.lists(samples, max_size=20))
metas = st.builds(wire.Meta, st.just(1), ids, ms,
                  st.dictionaries(points, st.builds(wire.PointMeta, texts, texts, texts.map(lambda t: t[:16]), texts),
                                  max_size=5),
                  st.dictionaries(ids, texts, max_size=3))
statuses = st.builds(wire.Status, st.just(1), ids, st.sampled_from(["online", "offline"]), ms, texts)
counts = st.integers(0, 2**63 - 1)
healths = st.builds(wire.Health, st.just(1), ids, ms, st.floats(0, 1e9),
                    st.dictionaries(ids, st.builds(wire.DeviceHealth, st.none() | st.booleans(), counts, counts,
                                                   counts, counts), max_size=3),
                    counts, counts, st.none() | ms, counts, counts, counts, counts, counts, counts)
# any JSON document, and objects with the contract's keys holding any JSON
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)
shaped = st.fixed_dictionaries({}, optional={k: json_values | st.just(1) for k in (
    "v", "gw", "seq", "sent", "samples", "points", "devices", "state", "agent", "uptime_s", "buffer_batches")})


# the contract's structure, each field either valid or anything of its JSON type: any text (short, or long
# for the database's columns), any integer (beyond 64 bits too), any finite float
any_text = st.text(max_size=20) | st.text(min_size=20, max_size=300)
any_int = st.integers() | st.integers(-(2**80), 2**80)
ts_ = st.integers(TS_MIN, TS_MAX - 1)
loose = {
    "batch": st.fixed_dictionaries({"v": st.just(1), "gw": ids | any_text, "seq": ms | any_int, "sent": ms | any_int,
                                    "samples": st.lists(st.tuples(points | any_text, ts_ | any_int,
                                                                  st.none() | st.floats(allow_nan=False),
                                                                  st.integers(0, 255) | any_int), max_size=3)}),
    "meta": st.fixed_dictionaries({"v": st.just(1), "gw": ids, "sent": ms | any_int, "points": st.dictionaries(
        points | any_text, st.fixed_dictionaries({k: texts | any_text for k in ("metric", "unit", "kind", "name")}),
        min_size=1, max_size=3), "devices": st.dictionaries(ids | any_text, texts | any_text, max_size=3)}),
    "status": st.fixed_dictionaries({"v": st.just(1), "gw": ids | any_text, "state": st.sampled_from(["online", "x"]),
                                     "sent": ms | any_int, "agent": texts | any_text}),
    "health": st.builds(lambda h, sent: {**json.loads(wire.encode(h)), "sent": sent}, healths, ms | any_int),
}


def _payloads(valid: st.SearchStrategy[Any], kind: str) -> st.SearchStrategy[bytes]:
    """Random bytes, random JSON, contract-shaped JSON, the contract's structure with any content, and valid
    messages with their bytes mutated."""
    return st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                     shaped.map(lambda v: json.dumps(v).encode()), loose[kind].map(lambda v: json.dumps(v).encode()),
                     st.tuples(valid.map(wire.encode), st.randoms(use_true_random=False)).map(lambda t: _mutate(*t)))


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        i = rnd.randrange(len(b) + 1)
        op = rnd.choice(("flip", "insert", "delete", "truncate", "digits"))
        if op == "flip" and i < len(b):
            b[i] ^= 1 << rnd.randrange(8)
        elif op == "insert":
            b[i:i] = rnd.choice([b"\\u0000", b"\\n", b"-", b"9" * rnd.randint(1, 30), b"1e400", b"null", b'"x"', b"[",
                                 b",", bytes([rnd.randrange(256)])])
        elif op == "delete":
            del b[i:i + rnd.randint(1, 5)]
        elif op == "truncate":
            del b[i:]
        elif op == "digits":  # numbers made longer: beyond the 64 bits of the database
            m = re.search(rb"\d+", bytes(b[i:]))
            if m:
                b[i + m.end():i + m.end()] = b"0" * rnd.randint(1, 25)
    return bytes(b)


def _decoded(decode: Callable[[bytes], Any], payload: bytes) -> Any:
    """The decoded message, or None when refused; anything but ContractError fails the test."""
    try:
        return decode(payload)
    except wire.ContractError as exc:
        assert str(exc), "a refusal says why"
        return None


# ---- what an accepted message must satisfy: the platform can store it ---------------------------
def _storable_text(*texts: str) -> None:
    for t in texts:
        assert "\x00" not in t, f"{t!r}: PostgreSQL text cannot hold NUL"


def _check_batch(b: wire.Batch) -> None:
    assert b.v == 1  # gw: the consumer compares it with the topic's gateway
    assert b.seq in INT64 and b.seq >= 0 and b.sent in INT64, (b.seq, b.sent)
    for point, ts, value, q in b.samples:
        assert POINT.fullmatch(point), point
        assert TS_MIN <= ts < TS_MAX and 0 <= q <= 255
        assert value is None or math.isfinite(value)


def _check_meta(m: wire.Meta) -> None:
    assert m.sent in INT64
    for key, pm in m.points.items():
        assert POINT.fullmatch(key), key
        _storable_text(pm.metric, pm.unit, pm.kind, pm.name)
        assert len(pm.metric) <= 64 and len(pm.unit) <= 32 and len(pm.kind) <= 16, pm  # the points' columns
    for dev, name in m.devices.items():
        assert ID.fullmatch(dev), dev  # a device id: the store registers it
        _storable_text(name)


def _check_status(s: wire.Status) -> None:
    assert s.sent in INT64 and s.state in ("online", "offline")  # sent is the gateway's status_ms


def _check_health(h: wire.Health) -> None:
    assert h.sent in INT64  # health_ms; the rest is kept as the JSON text it came in


# message: its decoder, a strategy of valid ones, the invariant of what the decoder accepts
CASES: dict[str, tuple[Callable[[bytes], Any], st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "batch": (wire.decode_batch, batches, _check_batch),
    "meta": (wire.decode_meta, metas, _check_meta),
    "status": (wire.decode_status, statuses, _check_status),
    "health": (wire.decode_health, healths, _check_health),
}


@pytest.mark.parametrize("message", CASES)
def test_valid_messages_round_trip(message: str) -> None:
    decode, valid, check = CASES[message]

    @FUZZ
    @given(valid)
    def run(msg: Any) -> None:
        back = decode(wire.encode(msg))
        assert back == msg
        check(back)

    run()


@pytest.mark.parametrize("message", CASES)
def test_bad_payloads_are_refused_with_a_contract_error(message: str) -> None:
    decode, valid, check = CASES[message]

    @FUZZ
    @given(_payloads(valid, message))
    def run(payload: bytes) -> None:
        got = _decoded(decode, payload)
        if got is not None:
            check(got)

    run()


segments = st.one_of(ids, ids.map(lambda s: s + "\n"), st.text(max_size=8), st.sampled_from(["", "+", "#"]))


@FUZZ
@given(st.one_of(st.text(max_size=80),
                 st.builds(lambda *p: "/".join(p), st.sampled_from(["parkmon/v1"] * 3 + ["parkmon\n/v1", "x/v2"]),
                           segments, segments, segments, st.sampled_from([*wire.LEAVES, "data\n", "x", ""]))))
def test_topics_are_parsed_or_refused(topic: str) -> None:
    try:
        park, ent, gw, leaf = wire.parse_topic(topic)
    except wire.ContractError as exc:
        assert str(exc)
        return
    assert all(ID.fullmatch(x) for x in (park, ent, gw)), (park, ent, gw)
    assert leaf in wire.LEAVES and topic == wire.topic(park, ent, gw, leaf)  # type: ignore[arg-type]


# ---- through the real ingest path ------------------------------------------------------------------
TOPIC = wire.topic("demo", "e01", "gw1", "data")


def _valid(seq: int) -> bytes:
    return wire.encode(wire.Batch(1, "gw1", seq, T0, [("grid.p", T0 + seq * 1000, float(seq), 0)]))


def _corpus() -> list[tuple[str, bytes]]:
    """Malformed messages on every leaf: a fixed draw of mutated batches the decoder refuses, and the
    cases the properties above found (each was a crash, a stall or a garbage row before its fix)."""
    rnd = random.Random(10)
    mutated: list[bytes] = []
    while len(mutated) < 6:
        p = _mutate(_valid(1), rnd)
        if _decoded(wire.decode_batch, p) is None:
            mutated.append(p)
    leaf = {x: wire.topic("demo", "e01", "gw1", x) for x in wire.LEAVES}  # type: ignore[arg-type]
    return [
        *[(TOPIC, p) for p in mutated],
        (TOPIC, b'{"v":1,"gw":"gw1","seq":2,"sent":99999999999999999999,"samples":[]}'),  # sent beyond 64 bits
        (TOPIC, b'{"v":1,"gw":"gw1","seq":3,"sent":0,"samples":[["grid.p\\n",1763800000000,1.0,0]]}'),
        (TOPIC, b'{"v":1,"gw":"gw1\xff","seq":4,"sent":0,"samples":[]}'),  # a string that is not UTF-8
        # (a topic with a newline, "parkmon/v1/demo\n/…", never gets here: mosquitto drops the publisher)
        (leaf["meta"], b'{"v":1,"gw":"gw1","sent":0,"points":{},"devices":{"no such id!":"x"}}'),
        (leaf["meta"], b'{"v":1,"gw":"gw1","sent":0,"points":{"grid.p":{"metric":"\\u0000","unit":"","kind":""}}}'),
        (leaf["meta"], b'{"v":1,"gw":"gw1","sent":0,"points":{"grid.p":{"metric":"m","unit":"' + b"k" * 40
         + b'","kind":""}}}'),  # longer than the points table's unit column
        (leaf["status"], b'{"v":1,"gw":"gw1","state":"online","sent":1e30}'),
        (leaf["status"], b'{"v":1,"gw":"gw1","state":"online","sent":99999999999999999999}'),
        (leaf["health"], wire.encode(wire.Health(1, "gw1", 0, 1.0, {}, 0, 0, None, 0, 0, 0, 0, 0, 0))
         .replace(b'"sent":0', b'"sent":99999999999999999999')),
        (leaf["gate"], b'{"v":1,"events":[{"id":"a\\u0000","gate":"g1","ts":1763800000000,"plate":"\\u65e0\\u724c",'
                       b'"class":"car","direction":"in"}]}'),
    ]


@pytest.fixture
def ingest(mosquitto: Mosquitto, store: Store) -> Iterator[Ingestor]:
    store.upsert_park("demo", "示范园区", "Demo", "zero_carbon")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url, max_wait_ms=20), store)
    ing.start()
    assert ing.connected.wait(10)
    try:
        yield ing
    finally:
        ing.stop()


def test_malformed_messages_become_dead_letters_and_a_valid_batch_after_them_is_stored(
        mosquitto: Mosquitto, store: Store, ingest: Ingestor) -> None:
    bad = _corpus()
    pub = publisher(mosquitto.port)
    publish_all(pub, [*bad, (TOPIC, _valid(9))])
    wait_for(lambda: ingest.stats.messages >= len(bad) + 1, what="every message handled")
    pub.loop_stop()
    letters = store.dead_letters(limit=100)
    assert sorted(d.payload for d in letters) == sorted(p for _t, p in bad), "one dead letter per bad message"
    for d in letters:
        assert d.reason and "internal error" not in d.reason, (d.topic, d.payload, d.reason)
    assert store.count_readings() == 1, "the valid batch after them was stored"
    assert [p.key for p in store.parks()] == ["demo"], "no park from a bad id"
    assert [p.key for p in store.points("demo")] == ["demo.e01.grid.p"], "no point from a bad name"
