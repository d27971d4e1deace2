"""The ack message (parkmon/common/wire.py) and the gateway's side of end-to-end acknowledgement
(edge_agent/acks.py, publisher.py): what is confirmed, what is sent again and when, how it degrades when the
platform never confirms (docs/decisions/0010). The fault drills with every component are in
tests/test_end_to_end_ack.py."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import msgspec
import pytest

from edge_agent.acks import PROBE_MAX_S, AckTracker
from edge_agent.agent import Agent
from edge_agent.buffer import DiskBuffer
from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import open_store
from parkmon.common import wire
from tests.modbus_server import register_server
from tests.mqtt_util import publish_all, publisher, wait_for
from tests.test_edge_agent_mqtt import _config, running

# ---- the message ------------------------------------------------------------------------------------


def test_ack_round_trip_ranges_and_cover() -> None:
    assert wire.seq_ranges([5, 3, 4, 9, 9, 1]) == [(1, 1), (3, 5), (9, 9)]
    assert wire.seq_ranges([]) == []
    ack = wire.Ack(wire.VERSION, "gw-01", wire.seq_ranges([1, 2, 3, 7, 10, 11]))
    payload = wire.encode(ack)
    assert payload == b'{"v":1,"gw":"gw-01","seqs":[[1,3],[7,7],[10,11]]}'
    back = wire.decode_ack(payload, "gw-01")
    assert back == ack
    assert [s for s in range(13) if back.covers(s)] == [1, 2, 3, 7, 10, 11]
    everything = wire.decode_ack(b'{"v":1,"gw":"g","seqs":[[1,9223372036854775807]]}')
    assert everything.covers(2**62) and not everything.covers(0)  # a bisection, not a walk through the range


@pytest.mark.parametrize(("payload", "says"), [
    (b'{"v":1,"gw":"gw-01","seqs":[]}', "length >= 1"),
    (b'{"v":1,"gw":"gw-01","seqs":[[3,1]]}', "ends before it starts"),
    (b'{"v":1,"gw":"gw-01","seqs":[[1,3],[3,4]]}', "not after the range before it"),
    (b'{"v":1,"gw":"gw-01","seqs":[[5,6],[1,2]]}', "not after the range before it"),
    (b'{"v":1,"gw":"gw-01","seqs":[[-1,3]]}', ">= 0"),
    (b'{"v":1,"gw":"gw-01","seqs":[[1,9223372036854775808]]}', "<= 9223372036854775807"),
    (b'{"v":1,"gw":"gw-01","seqs":[[1.0,2]]}', "Expected `int`"),
    (b'{"v":1,"gw":"gw-01","seqs":[[1,2,3]]}', "length 2"),
    (b'{"v":1,"gw":"gw-01","seqs":[1,2]}', "Expected `array`"),
    (b'{"v":1,"gw":"gw-02","seqs":[[1,2]]}', "for gateway 'gw-02'"),
    (b'{"v":2,"gw":"gw-01","seqs":[[1,2]]}', "version 2"),
    (b'{"v":1,"seqs":[[1,2]]}', "missing required field `gw`"),
    (b'[1,2]', "Expected `object`"),
    (b'\xff', "not valid JSON"),
])
def test_a_bad_ack_is_refused_with_the_reason(payload: bytes, says: str) -> None:
    with pytest.raises(wire.ContractError, match="ack") as err:
        wire.decode_ack(payload, "gw-01")
    assert says in str(err.value)


def test_too_many_ranges_are_refused() -> None:
    seqs = [[2 * i, 2 * i] for i in range(wire.MAX_ACK_RANGES + 1)]
    with pytest.raises(wire.ContractError, match="length <="):
        wire.decode_ack(msgspec.json.encode({"v": 1, "gw": "g", "seqs": seqs}))


def test_batch_seq_reads_the_seq_of_a_batch_that_breaks_the_contract() -> None:
    assert wire.batch_seq(b'{"v":1,"gw":"g","seq":42,"sent":"never","samples":7}') == 42
    assert wire.batch_seq(b'{"v":1,"gw":"g","seq":-1}') is None
    assert wire.batch_seq(b"not json") is None


# ---- the tracker, on a clock of its own ----------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _tracker(setting: str = "auto", confirmed_before: bool = False, max_unacked: int = 100) -> tuple[AckTracker, Clock]:
    clock = Clock()
    return AckTracker(setting, 30.0, 600.0, max_unacked, confirmed_before, clock), clock


def _ack(*seqs: int) -> wire.Ack:
    return wire.Ack(1, "gw", wire.seq_ranges(seqs))


def test_a_batch_is_deleted_when_confirmed_not_when_pubacked() -> None:
    t, _clock = _tracker()
    for seq in (1, 2, 3):
        t.sent(seq, 0, conn=1)
        t.puback(seq)
    assert t.take() == ([], []) and t.unacked == 3
    t.confirm(_ack(1, 3, 99))  # 99: never sent by this run, nothing to do
    assert t.take() == ([1, 3], []) and t.unacked == 1 and t.confirmed == 2


def test_a_new_connection_resends_what_paho_does_not() -> None:
    t, _clock = _tracker()
    for seq in (1, 2, 3, 4):
        t.sent(seq, 0, conn=1)
    for seq in (1, 2, 3):
        t.puback(seq)
    assert t.due(conn=1, held={4}) == []
    assert t.due(conn=2, held={4}) == [1, 2, 3]  # 4: paho re-sends it itself, on the new connection
    for seq in (1, 2, 3):
        t.sent(seq, 0, conn=2)
    assert t.due(conn=2, held=set()) == [] and t.resent == 3


def test_a_hole_is_resent_after_the_timeout_once_a_later_batch_is_confirmed() -> None:
    t, clock = _tracker()
    for seq in (1, 2, 3):
        t.sent(seq, 0, conn=1)
        t.puback(seq)
        clock.t += 1
    t.confirm(_ack(2, 3))
    assert t.due(1, set()) == []  # 1 may still be on its way (another worker, a slow commit)
    clock.t += 30
    assert t.due(1, set()) == [1]


def test_nothing_confirmed_at_all_probes_with_the_oldest_backing_off() -> None:
    t, clock = _tracker("required")
    for seq in (1, 2, 3):
        t.sent(seq, 0, conn=1)
        t.puback(seq)
    probes = []
    for _ in range(2000):
        clock.t += 1
        if due := t.due(1, set()):
            assert due == [1]
            t.sent(1, 0, conn=1)
            t.puback(1)
            probes.append(clock.t - 1000)
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert probes[0] == 30 and gaps[:4] == [60, 120, 240, 480] and max(gaps) == PROBE_MAX_S


def test_max_unacked_bounds_what_is_out() -> None:
    t, _clock = _tracker(max_unacked=2)
    assert t.room() == 2
    t.sent(1, 0, 1)
    t.sent(2, 0, 1)
    assert t.room() == 0
    t.confirm(_ack(1))
    assert t.room() == 1


def test_a_buffer_never_confirmed_falls_back_to_puback_and_an_ack_ends_it(caplog: pytest.LogCaptureFixture) -> None:
    t, clock = _tracker()
    caplog.set_level(logging.INFO, logger="edge_agent")
    t.sent(1, 0, 1)
    t.puback(1)
    clock.t += 599
    t.due(1, set())  # (a probe: the oldest, sent again)
    assert t.mode == "e2e"
    clock.t += 1
    t.due(1, set())
    assert t.mode == "fallback" and t.state == "fallback" and t.room() is None
    assert t.take() == ([], [1])  # what the broker had PUBACKed goes now
    t.sent(2, 0, 1)
    t.puback(2)
    assert t.take() == ([], [2])
    t.sent(3, 0, 1)
    t.confirm(_ack(3))
    assert t.mode == "e2e" and t.take() == ([3], [])
    said = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in said] == [
        "the platform has confirmed nothing for 599 s",
        "the platform has confirmed no batch in 600 s of PUBACKs (an older platform, or an ACL that keeps this "
        "gateway from reading its ack topic)",
        "the platform confirms batches again after 600 s without",
        "the platform confirms batches again"]
    assert "2 batches were deleted on the broker's PUBACK alone" in said[-1]


@pytest.mark.parametrize(("setting", "confirmed_before"), [("required", False), ("auto", True)])
def test_no_fallback_once_the_platform_is_known_to_confirm(setting: str, confirmed_before: bool) -> None:
    t, clock = _tracker(setting, confirmed_before)
    t.sent(1, 0, 1)
    t.puback(1)
    clock.t += 10 * 600
    t.due(1, set())
    assert t.mode == "e2e" and t.state == "waiting" and t.take() == ([], [])


def test_off_deletes_on_puback() -> None:
    t, _clock = _tracker("off")
    t.sent(1, 0, 1)
    t.puback(1)
    assert t.state == "off" and t.take() == ([], [1]) and t.due(2, set()) == []


# ---- the agent, a real broker, no ingest then ingest ----------------------------------------------------

def test_required_keeps_everything_until_ingest_confirms_it(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with register_server({1: {"holding": {1: 1234}}}) as port:
        agent = Agent(_config(port, mosquitto.port, tmp_path, mqtt={"port": mosquitto.port,
                                                                      "end_to_end_ack": "required",
                                                                      "ack_timeout_s": 0.5}))
        with running(agent):
            wait_for(lambda: agent.publisher.acks.unacked >= 10, what="10 batches sent")
            wait_for(lambda: agent.publisher.acked >= 10, what="PUBACKs from the broker")
            health = agent.health_report()
            assert health.buffer_batches >= health.unacked_batches >= 10  # the broker's word is not enough
            assert health.ack_state == "waiting" and health.unacked_oldest_age_s is not None
            store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
            ingest = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
            ingest.start()  # its first subscription: the batches published before it are re-sent by the probe
            try:
                # the ten it held and what it polled since: confirmed, at most the last two still in flight
                wait_for(lambda: (h := agent.health_report()).buffer_batches <= 2 and h.confirmed >= 10,
                         what="the backlog confirmed")
                health = agent.health_report()
                assert health.ack_state == "ok" and health.confirmed >= 10 and health.unconfirmed_deleted == 0
                polls = agent.health["grid"].polls
                wait_for(lambda: store.count_readings() >= 3 * polls, what="every poll stored")
            finally:
                ingest.stop()
                store.close()
    buf = DiskBuffer(tmp_path / "buffer.db", "gw-e01", 1 << 30)
    assert buf.counter("confirmed_batches") >= 10 and buf.counter("unconfirmed_deleted_batches") == 0
    buf.close()


def test_an_older_platform_that_never_confirms_gets_puback_deletion(mosquitto: Mosquitto, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    with register_server({1: {"holding": {1: 1234}}}) as port:
        agent = Agent(_config(port, mosquitto.port, tmp_path, mqtt={"port": mosquitto.port, "ack_fallback_s": 1}))
        with caplog.at_level(logging.WARNING, logger="edge_agent"), running(agent):
            wait_for(lambda: agent.health_report().ack_state == "fallback", what="the fallback")
            wait_for(lambda: agent.health_report().unconfirmed_deleted >= 5, what="PUBACK deletion, counted")
            assert agent.health_report().buffer_batches <= 2
            # an ack from someone who is not ingest is refused (the ACL stops it in production), and said so
            pub = publisher(mosquitto.port)
            publish_all(pub, [(agent.publisher.topic_ack, b'{"v":1,"gw":"gw-e99","seqs":[[1,99]]}')])
            wait_for(lambda: agent.publisher.acks.refused == 1, what="the forged ack refused")
            pub.disconnect()
            assert agent.health_report().ack_state == "fallback"
    lines = [r.getMessage() for r in caplog.records]
    assert sum("confirmed no batch" in ln for ln in lines) == 1
    assert sum("ignored an ack" in ln and "for gateway 'gw-e99'" in ln for ln in lines) == 1
    buf = DiskBuffer(tmp_path / "buffer.db", "gw-e01", 1 << 30)
    assert buf.counter("unconfirmed_deleted_batches") >= 5 and buf.counter("confirmed_batches") == 0
    buf.close()
