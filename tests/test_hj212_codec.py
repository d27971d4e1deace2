"""HJ 212-2017 codec: the standard's own example, public packets, precise errors, stream framing, split
packets, and properties (hypothesis): every packet built round-trips; random or mutated bytes never crash
the parser and always give an error."""

from __future__ import annotations

import string
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkmon.common import hj212, quality
from parkmon.common.hj212 import Hj212Error, Packet

# --- test vectors, each with its source ------------------------------------------------------------------
APP_A = (b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
         b"CP=&&RtdInterval=30&&1C80\r\n")  # HJ 212-2017 App. A, the standard's own example (CRC 1C80, length 101)
# HJ/T 212-2005 form (no QN, no Flag; old codes 011 COD, B01 flow, 060 NH3-N), lower-case CRC: the writer
# output in the tests of github.com/xiaoyao9184/hj-t212-parser (T212Mapper.writeDataAsString), an
# independent implementation. (The same tests' *input* packet carries CRC 4980, which is wrong for its
# segment — domain.md §3.2 warns about such fixtures — so it serves as a CRC-error vector below.)
LEGACY = (b"##0136ST=32;CN=2011;PW=000000;MN=LD130133000015;CP=&&DataTime=20160824003817;011-Rtd=231.0,"
          b"011-Flag=N;B01-Rtd=36.91;060-Rtd=1.803,060-Flag=N&&1dc0\r\n")
LEGACY_BAD_CRC = (b"##0136ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817;B01-Rtd=36.91;"
                  b"011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&4980\r\n")
# constructed 2017 packets of the project's reference sheet (../shared/reference/domain.md §3.2: CRC and
# length computed there with the App. A algorithm, codes from App. B): CEMS real-time, wastewater hour, ack
REALTIME = (b"##0341QN=20240101120000000;ST=31;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&"
            b"DataTime=20240101120000;a21026-Rtd=35.2,a21026-ZsRtd=41.0,a21026-Flag=N;a21002-Rtd=48.7,"
            b"a21002-ZsRtd=56.7,a21002-Flag=N;a34013-Rtd=4.1,a34013-ZsRtd=4.8,a34013-Flag=N;a19001-Rtd=9.2,"
            b"a19001-Flag=N;a01012-Rtd=55.3,a01012-Flag=N;a00000-Rtd=62.5,a00000-Flag=N&&9481\r\n")
HOUR = (b"##0344QN=20240101120000000;ST=32;CN=2061;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&"
        b"DataTime=20240101110000;w00000-Cou=63.0,w00000-Min=16.4,w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;"
        b"w01018-Cou=2.53,w01018-Min=38.2,w01018-Avg=40.1,w01018-Max=42.0,w01018-Flag=N;w21003-Cou=0.08,"
        b"w21003-Min=1.10,w21003-Avg=1.21,w21003-Max=1.35,w21003-Flag=N&&5CC0\r\n")
ACK = b"##0087QN=20240101120000000;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&4E00\r\n"


def _modbus_crc(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_the_standards_own_example_round_trips_with_its_crc() -> None:
    p = hj212.parse(APP_A)
    assert (p.qn, p.st, p.cn, p.pw, p.mn, p.flag, p.cp) == (
        "20160801085857223", "32", "1062", "100000", "010000A8900016F000169DC0", 5, "RtdInterval=30")
    assert p.version == 2017 and p.ack_requested and not p.split
    assert hj212.build(p) == APP_A
    seg = APP_A[6:-6]
    assert len(seg) == 101 and hj212.crc16(seg) == 0x1C80
    assert _modbus_crc(seg) != 0x1C80  # HJ 212's CRC is its own, not CRC-16/MODBUS


@pytest.mark.parametrize("frame", [REALTIME, HOUR, ACK], ids=["cems-2011", "water-2061", "ack-9014"])
def test_reference_packets_round_trip(frame: bytes) -> None:
    assert hj212.build(hj212.parse(frame)) == frame


def test_records_decode_into_values_flags_and_metrics() -> None:
    r = hj212.record(hj212.parse(REALTIME))
    assert r.cn == "2011" and r.period == "realtime" and hj212.format_time(r.data_time_ms) == "20240101120000"
    assert r.values["a21026"] == {"Rtd": 35.2, "ZsRtd": 41.0} and r.flags["a21026"] == "N"
    assert hj212.metric_of("a21026", "Rtd", "2011") == "cems.so2"
    assert hj212.metric_of("a21026", "ZsRtd", "2011") == "cems.so2.ref"
    assert hj212.point_name("a21026", "ZsRtd", "2011") == "a21026-ZsRtd"
    h = hj212.record(hj212.parse(HOUR))
    assert h.values["w01018"] == {"Cou": 2.53, "Min": 38.2, "Avg": 40.1, "Max": 42.0}
    assert hj212.metric_of("w01018", "Avg", "2061") == "ww.cod.hour.avg"
    assert hj212.metric_of("w00000", "Cou", "2061") == "ww.flow.hour.amount"
    assert hj212.point_name("w01018", "Avg", "2061") == "w01018-Avg-hour"
    assert hj212.metric_of("a21005", "Rtd", "2011") is None  # CO: decoded, no parkmon metric


def test_a_2005_packet_from_another_implementation_maps_old_codes() -> None:
    p = hj212.parse(LEGACY)
    assert p.version == 2005 and p.qn is None and p.flag is None
    r = hj212.record(p)
    assert r.values == {"w01018": {"Rtd": 231.0}, "w00000": {"Rtd": 36.91}, "w21003": {"Rtd": 1.803}}
    assert hj212.build(p) == LEGACY.replace(b"1dc0", b"1DC0")  # we write upper case; either is read
    with pytest.raises(Hj212Error) as err:
        hj212.parse(LEGACY_BAD_CRC)
    assert err.value.field == "CRC" and "got 4980" in str(err.value)


def test_flags_map_to_quality() -> None:
    assert hj212.flag_quality("N") == quality.GOOD and hj212.flag_quality(None) == quality.GOOD
    assert quality.reason(hj212.flag_quality("C")) == quality.Reason.CALIBRATION
    assert not quality.is_good(hj212.flag_quality("D")) and not quality.is_good(hj212.flag_quality("X"))


@pytest.mark.parametrize(("frame", "where", "says"), [
    (APP_A.replace(b"1C80", b"1C81"), "CRC", "expected 1C80"),
    (APP_A.replace(b"##0101", b"##0100"), "length", "100 characters"),
    (APP_A.replace(b"##0101", b"##01x1"), "length", "4 decimal digits"),
    (APP_A[:-2] + b"\n\n", "tail", "CR LF"),
    (b"$$" + APP_A[2:], "header", "'##'"),
    (hj212.build(Packet("32", "2011", "1", "M", "DataTime=2024010112000;a21026-Rtd=1")), "DataTime", "14 digits"),
    (hj212.build(Packet("32", "2011", "1", "M", "DataTime=20241301120000;a21026-Rtd=1")), "DataTime", "real date"),
    (hj212.build(Packet("32", "2011", "1", "M", "DataTime=20240101120000;a21026-Rtd=abc")), "CP a21026-Rtd",
     "a number"),
    (hj212.build(Packet("32", "2011", "1", "M", "DataTime=20240101120000;a21026-Rtd=1,a21026-Rtd=2")),
     "CP a21026-Rtd", "each item once"),
    (hj212.build(Packet("32", "2011", "1", "M", "DataTime=20240101120000;a21026-Flag=NN")), "CP a21026-Flag",
     "one data flag"),
])
def test_a_bad_packet_says_which_field_and_what_was_expected(frame: bytes, where: str, says: str) -> None:
    with pytest.raises(Hj212Error) as err:
        hj212.record(hj212.parse(frame))
    assert err.value.field == where and says in str(err.value), str(err.value)


def test_segment_errors_name_the_field() -> None:
    for seg, where in [("ST=32;CN=2011;PW=1;MN=M", "CP"), ("QN=123;ST=32;CN=2011;PW=1;MN=M;CP=&&&&", "QN"),
                       ("ST=32;CN=2011;PW=1;CP=&&&&", "MN"), ("ST=3a;CN=2011;PW=1;MN=M;CP=&&&&", "ST"),
                       ("ST=32;CN=2011;PW=1;MN=M;Flag=999;CP=&&&&", "Flag"),
                       ("ST=32;CN=2011;PW=1;MN=M;PNUM=2;CP=&&&&", "PNUM/PNO"),
                       ("ST=32;CN=2011;PW=1;MN=M;PNUM=2;PNO=3;CP=&&&&", "PNO"),
                       ("ST=32;XX=1;CN=2011;PW=1;MN=M;CP=&&&&", "XX")]:
        with pytest.raises(Hj212Error) as err:
            hj212.parse_segment(seg)
        assert err.value.field == where, (seg, str(err.value))


def test_framer_cuts_a_stream_and_resyncs_after_garbage_and_truncation() -> None:
    f = hj212.Framer()
    stream = b"noise" + REALTIME + HOUR[:50] + ACK + APP_A
    out = list(f.feed(stream))
    kinds = [type(x).__name__ for x in out]
    assert out[1] == REALTIME and out[-2:] == [ACK, APP_A], kinds
    errors = [x for x in out if isinstance(x, Hj212Error)]
    assert errors[0].field == "stream" and any(e.field == "length" for e in errors)  # the truncated hour
    # byte by byte, the same frames come out whole
    f2 = hj212.Framer()
    got = [x for b in REALTIME + ACK for x in f2.feed(bytes([b]))]
    assert got == [REALTIME, ACK] and f2.pending() == b""
    f3 = hj212.Framer()
    assert list(f3.feed(HOUR[:100])) == [] and f3.pending() == HOUR[:100]  # waits for the rest


def test_a_long_record_splits_and_reassembles_in_any_order() -> None:
    values = {f"a{21000 + i:05d}": {"Rtd": 100.0 + i, "ZsRtd": 120.5 + i} for i in range(60)}
    cp = hj212.cp_of(1_704_081_600_000, values, dict.fromkeys(values, "N"))
    whole = Packet("31", "2011", "123456", "010000A8900016F000169DC0", cp, "20240101120000000", 5)
    parts = hj212.split(whole)
    assert len(parts) > 1 and all(len(hj212.build(p)) <= 1024 + 12 for p in parts)
    frames = [hj212.parse(hj212.build(p)) for p in parts]
    assert all(p.split and p.pnum == len(parts) for p in frames)
    r = hj212.Reassembler()
    got = [r.add(p) for p in reversed(frames)]
    assert got[:-1] == [None] * (len(parts) - 1) and r.incomplete() == 0
    joined = got[-1]
    assert joined is not None and not joined.split and hj212.record(joined).values == values


# --- properties ----------------------------------------------------------------------------------------
_digits = st.text(string.digits, min_size=1, max_size=4)
_safe = st.text(string.ascii_letters + string.digits, min_size=1, max_size=9)
_codes = st.sampled_from(["a21026", "a21002", "a34013", "a19001", "a00000", "w00000", "w01018", "w21003"])
_fields = st.sampled_from(["Rtd", "ZsRtd", "Avg", "Min", "Max", "Cou"])
_values = st.dictionaries(_codes, st.dictionaries(_fields, st.floats(-1e6, 1e6, allow_nan=False).map(
    lambda v: round(v, 4)), min_size=1, max_size=4), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st_=st.sampled_from(["31", "32", "91"]), cn=st.sampled_from(["2011", "2051", "2061", "2031"]), pw=_safe,
       mn=st.text(string.hexdigits, min_size=1, max_size=24), flag=st.sampled_from([None, 4, 5]),
       when=st.integers(946_684_800_000, 4_102_444_799_000), values=_values,
       flags=st.sampled_from(list("NFMSDCTB")))
def test_any_packet_built_round_trips(st_: str, cn: str, pw: str, mn: str, flag: int | None, when: int,
                                      values: dict[str, dict[str, float]], flags: str) -> None:
    when -= when % 1000
    cp = hj212.cp_of(when, values, dict.fromkeys(values, flags))
    p = Packet(st_, cn, pw, mn, cp, hj212.make_qn(when), flag)
    frame = hj212.build(p)
    back = hj212.parse(frame)
    assert back == p and hj212.build(back) == frame
    r = hj212.record(back)
    assert r.data_time_ms == when and r.flags == dict.fromkeys(values, flags)
    assert r.values == {c: {f: pytest.approx(v, abs=1e-6) for f, v in fv.items()} for c, fv in values.items()}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_the_table_crc_is_the_standards_bit_loop(data: bytes) -> None:
    assert hj212.crc16(data) == hj212._crc16_bitwise(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=1200))
def test_random_bytes_never_crash_and_always_give_an_error(data: bytes) -> None:
    try:
        p = hj212.parse(data)
    except Hj212Error:
        pass
    else:  # astronomically unlikely, but then it must be a real packet
        assert hj212.parse(hj212.build(p)) == p
    for item in hj212.Framer().feed(data):
        assert isinstance(item, (bytes, Hj212Error))


@settings(max_examples=500, deadline=None)
@given(frame=st.sampled_from([APP_A, REALTIME, HOUR, ACK, LEGACY]), at=st.integers(0, 400), byte=st.integers(0, 255))
def test_a_mutated_byte_is_always_caught(frame: bytes, at: int, byte: int) -> None:
    at %= len(frame)
    if frame[at] == byte:
        return
    bad = frame[:at] + bytes([byte]) + frame[at + 1:]
    try:
        p = hj212.parse(bad)
    except Hj212Error:
        return
    # only a change of case in the CRC's hex digits leaves the packet as it was
    assert p == hj212.parse(frame) and bad.lower() == frame.lower()


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(1, 80), min_size=1, max_size=30), junk=st.binary(max_size=40))
def test_framing_is_independent_of_how_the_stream_is_cut(cuts: list[int], junk: bytes) -> None:
    stream = junk.replace(b"#", b"") + REALTIME + HOUR + ACK
    f = hj212.Framer()
    out: list[bytes | Hj212Error] = []
    i = 0
    for c in cuts:
        out += f.feed(stream[i:i + c])
        i += c
    out += f.feed(stream[i:])
    assert [x for x in out if isinstance(x, bytes)] == [REALTIME, HOUR, ACK]


def test_reassembler_keeps_disagreeing_parts_apart_and_forgets_stale_ones() -> None:
    base = Packet("31", "2011", "1", "M", "a=1", "20240101120000000", 7)
    r = hj212.Reassembler(max_age_s=10)
    assert r.add(replace(base, pnum=3, pno=3), now_s=0) is None
    assert r.add(replace(base, pnum=3, pno=2), now_s=0) is None
    with pytest.raises(Hj212Error) as err:  # a part that disagrees on PNUM: an error, not a KeyError
        r.add(replace(base, pnum=2, pno=2), now_s=0)
    assert err.value.field == "PNUM" and "3" in err.value.expected
    assert r.incomplete() == 1
    assert r.add(replace(base, qn="20240101120000001", pnum=2, pno=1), now_s=20) is None
    assert r.expired == 1 and r.incomplete() == 1
    single = r.add(replace(base, pnum=1, pno=1))
    assert single is not None and not single.split and single.pnum is None


def test_the_crc_field_must_be_four_hex_digits_and_values_finite() -> None:
    seg = APP_A[6:-6]
    crc = hj212.crc16(seg)
    for text in (b"+140" if crc == 0x140 else b"+1C8", b" 1C8", b"0x1C", b"1_C8"):
        with pytest.raises(Hj212Error) as err:
            hj212.parse(APP_A[:-6] + text + b"\r\n")
        assert err.value.field == "CRC"
    with pytest.raises(Hj212Error, match="finite"):
        hj212.cp_of(0, {"a21026": {"Rtd": float("nan")}})
