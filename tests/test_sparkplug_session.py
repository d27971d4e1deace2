"""The bridge's bookkeeping per Sparkplug edge node (ingest/sparkplug/session.py), message by message: seq
wrapping and its batch seqs, a redelivery, a stale death, data no birth explains, signed integers both ways
they travel, and the mapping's checks. The payloads are built with parkmon's own encoder here; what Tahu's
client sends is checked in tests/test_sparkplug_tahu.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.sparkplug import codec, mapping
from ingest.sparkplug.codec import SpMetric, SpPayload
from ingest.sparkplug.session import NodeSession, SeqBases

T0 = 1_765_000_000_000
NODE = mapping.NodeMap(group="G", node="N", park="p", enterprise="e", gateway="gw", points=[
    mapping.PointMap(device="M", sparkplug="P", point="m.p", metric="elec.active_power")])


def _session() -> NodeSession:
    return NodeSession("G", "N", NODE, SeqBases())


def _birth(s: NodeSession, ts: int = T0, bd: int = 0) -> None:
    s.handle("NBIRTH", "", SpPayload(ts, 0, [SpMetric("bdSeq", None, ts, codec.UINT64, bd)]), ts)
    s.handle("DBIRTH", "M", SpPayload(ts, 1, [SpMetric("P", 7, ts, codec.FLOAT, 1.0)]), ts)


def _data(seq: int, value: float, ts: int) -> SpPayload:
    return SpPayload(ts, seq, [SpMetric(None, 7, ts, codec.FLOAT, value)])


def test_seq_wraps_at_256_and_batch_seqs_run_on() -> None:
    s = _session()
    _birth(s)
    base = T0 * 1000  # the first birth a bridge sees starts at its time in ms x 1000
    seqs = []
    for k in range(2, 2 + 300):  # seq 2..255, then 0..45: n = k
        out = s.handle("DDATA", "M", _data(k % 256, float(k), T0 + k), T0 + k)
        assert out.rebirth is None
        seqs.append(out.batches[0].seq)
    assert seqs == [base + k for k in range(2, 302)]


def test_a_redelivered_message_gets_its_first_batch_seq_and_asks_nothing() -> None:
    s = _session()
    _birth(s)
    first = [s.handle("DDATA", "M", _data(q, float(q), T0 + q), T0 + q).batches[0] for q in range(2, 6)]
    again = s.handle("DDATA", "M", _data(3, 3.0, T0 + 3), T0 + 9)
    assert again.rebirth is None and again.batches[0].seq == first[1].seq == T0 * 1000 + 3
    assert again.batches[0].samples == first[1].samples
    nxt = s.handle("DDATA", "M", _data(6, 6.0, T0 + 6), T0 + 6)  # the line goes on after it
    assert nxt.rebirth is None and nxt.batches[0].seq == T0 * 1000 + 6


def test_a_gap_asks_for_a_rebirth_and_keeps_the_values() -> None:
    s = _session()
    _birth(s)
    out = s.handle("DDATA", "M", _data(5, 5.0, T0 + 5), T0 + 5)  # 2, 3, 4 lost
    assert out.rebirth == "seq gap: expected 2, got 5 (3 messages missing)"
    assert out.batches[0].samples == [("m.p", T0 + 5, 5.0, 0)]
    # the rebirth: a new birth goes on after the last batch seq (T0 * 1000 + 5)
    s.handle("NBIRTH", "", SpPayload(T0 + 100, 0, [SpMetric("bdSeq", None, None, codec.UINT64, 0)]), T0 + 100)
    out = s.handle("DBIRTH", "M", SpPayload(T0 + 100, 1, [SpMetric("P", 7, T0 + 100, codec.FLOAT, 2.0)]), T0 + 100)
    assert out.batches[0].seq == T0 * 1000 + 5 + 1 + 1  # base 5 + 1, DBIRTH n = 1


def test_an_older_connections_death_is_ignored_and_the_live_ones_marks_offline() -> None:
    s = _session()
    _birth(s, bd=4)
    stale = s.handle("NDEATH", "", SpPayload(T0, None, [SpMetric("bdSeq", None, None, codec.UINT64, 3)]), T0 + 1)
    assert stale.status is None and s.alive
    dead = s.handle("NDEATH", "", SpPayload(T0, None, [SpMetric("bdSeq", None, None, codec.UINT64, 4)]), T0 + 2)
    assert dead.status == "offline"
    assert dead.batches[0].samples == [("m.p", T0 + 2, None, 0x81)]  # bad: comm failure, at its arrival
    later = s.handle("DDATA", "M", _data(9, 9.0, T0 + 9), T0 + 9)  # not the dead birth's next seq (2)
    assert later.batches == [] and later.rebirth is not None


def test_data_before_any_birth_and_an_unknown_alias_ask_for_a_rebirth() -> None:
    s = _session()
    out = s.handle("DDATA", "M", _data(3, 1.0, T0), T0)
    assert out.batches == [] and out.rebirth == "DDATA from a node without a live birth (bridge started after " \
                                                "it, or it died)"
    _birth(s)
    out = s.handle("DDATA", "M", SpPayload(T0, 2, [SpMetric(None, 99, T0, codec.FLOAT, 1.0)]), T0)
    assert out.rebirth == "alias 99 of device M is in no birth"


@pytest.mark.parametrize("raw", [0xFD, 0xFFFF_FFFD])  # Int8 -3: 8-bit two's complement, or 32-bit
def test_signed_int8_reads_as_negative_whatever_the_width_it_travels_in(raw: int) -> None:
    msg = codec.Payload()
    m = msg.metrics.add()
    m.name, m.datatype, m.int_value = "x", codec.INT8, raw
    (got,) = codec.decode(msg.SerializeToString()).metrics
    assert got.value == -3


def test_mapping_errors_name_the_file_and_what_to_fix(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("nodes:\n  - {group: G, node: N, park: p, enterprise: e,\n"
                 "     points: [{sparkplug: P, point: m.p, metric: elec.activ_power}]}\n", encoding="utf-8")
    with pytest.raises(mapping.MappingError,
                       match=r"m\.yaml: nodes.0.points.0.metric: unknown metric 'elec.activ_power'.*elec.active_power"):
        mapping.load(f)
    f.write_text("nodes:\n  - {group: G, node: 'bad id', park: p, enterprise: e}\n", encoding="utf-8")
    with pytest.raises(mapping.MappingError, match="gateway id 'bad id' must be 1-64 characters"):
        mapping.load(f)


def test_the_command_refuses_a_wrong_mapping_file_with_the_fix(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from ingest.cli import main

    f = tmp_path / "m.yaml"
    f.write_text("nodes:\n  - {group: G, node: N, park: p, enterprise: e, colour: red}\n", encoding="utf-8")
    assert main(["sparkplug", "--mapping", str(f), "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert f"{f}: nodes.0.colour: Extra inputs are not permitted" in capsys.readouterr().err
    assert main(["sparkplug", "--mapping", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: no such mapping file; see docs/sparkplug.md for its format" in capsys.readouterr().err
