"""The IEC 60870-5-104 codec and link against frames worked out by hand from the standard's layouts (not made by
the codec), and the driver's config rules. The interop with an independent station is tests/test_iec104_c104.py.

The time tag used throughout: 2026-12-07 10:00:00.123 UTC, a Monday.
  days 1970-01-01 .. 2026-01-01: 56 years x 365 + 14 leap days (1972 .. 2024) = 20 454
  2026-01-01 .. 2026-12-07: 334 (Jan .. Nov) + 6 = 340  -> 20 794 days x 86 400 s = 1 796 601 600 s
  + 10 h (36 000 s) = 1 796 637 600 s -> 1 796 637 600 123 ms; 20 794 mod 7 = 4 days after a Thursday: Monday
CP56Time2a: ms 123 = 7B 00 | minute 00 | hour 0A | weekday 1 << 5 | day 7 = 27 | month 0C | year 26 = 1A
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import ConfigError, parse_config
from edge_agent.drivers.iec104 import apci, asdu
from edge_agent.drivers.iec104.asdu import Flag
from edge_agent.drivers.iec104.driver import flags_quality
from edge_agent.drivers.iec104.link import Link, LinkError, Params
from parkmon.common import quality
from parkmon.common.quality import Reason

TAG = bytes.fromhex("7B00000A270C1A")
TAG_MS = 1_796_637_600_123


def test_apci_frames() -> None:
    assert apci.parse(bytes.fromhex("43000000")) == apci.UFrame(apci.U.TESTFR_ACT)
    assert apci.parse(bytes.fromhex("0B000000")) == apci.UFrame(apci.U.STARTDT_CON)
    assert apci.parse(bytes.fromhex("01000A00")) == apci.SFrame(5)  # N(R) 5 << 1 = 0x0A
    # N(S) 300 << 1 = 600 = 0x0258 -> 58 02; N(R) 16384 << 1 = 32768 = 0x8000 -> 00 80
    assert apci.parse(bytes.fromhex("58020080AA")) == apci.IFrame(300, 16384, b"\xaa")
    assert apci.u_frame(apci.U.STARTDT_ACT) == bytes.fromhex("680407000000")
    assert apci.s_frame(5) == bytes.fromhex("680401000A00")
    assert apci.i_frame(300, 16384, b"\xaa") == bytes.fromhex("680558020080AA")
    assert apci.check_header(bytes.fromhex("6812")) == 18
    for head in ("6904", "6803", "68FE"):  # wrong start byte, too short, longer than 253
        with pytest.raises(apci.FrameError):
            apci.check_header(bytes.fromhex(head))
    with pytest.raises(apci.FrameError, match="control octet 0x47"):
        apci.parse(bytes.fromhex("47000000"))  # two U functions at once is no function


def test_short_float_with_time_tag_and_quality() -> None:
    # type 36 M_ME_TF_1, 1 object, cause 3 (spontaneous), originator 0, CA 1; IOA 100 = 64 00 00;
    # -1.5 = 0xBFC00000 -> 00 00 C0 BF; QDS C0 = IV | NT; then the tag
    a = asdu.decode(bytes.fromhex("240103000100" "640000" "0000C0BF" "C0") + TAG)
    assert (a.type_id, a.cot, a.negative, a.test, a.common_address) == (36, 3, False, False, 1)
    assert a.objects == [asdu.InfoObject(100, -1.5, Flag.IV | Flag.NT, TAG_MS)]
    # the same tag from a station keeping Beijing time (UTC+8) is 8 h earlier in UTC
    b = asdu.decode(bytes.fromhex("240103000100" "640000" "0000C0BF" "00") + TAG, utc_offset_ms=8 * 3_600_000)
    assert b.objects[0].time_ms == TAG_MS - 8 * 3_600_000 == 1_796_608_800_123


def test_normalised_scaled_counters_and_points() -> None:
    # 9 M_ME_NA_1: NVA 0x4000 = 16384 / 32768 = 0.5; QDS 01 = OV
    assert asdu.decode(bytes.fromhex("090114000100" "010000" "0040" "01")).objects == [
        asdu.InfoObject(1, 0.5, Flag.OV, None)]
    # 11 M_ME_NB_1: -2345 = 0x10000 - 2345 = 0xF6D7 -> D7 F6; QDS 20 = SB; cause 20 = interrogated by station
    a = asdu.decode(bytes.fromhex("0B0114000100" "020000" "D7F6" "20"))
    assert (a.cot, a.objects) == (20, [asdu.InfoObject(2, -2345.0, Flag.SB, None)])
    # 15 M_IT_NA_1: 123456 = 0x0001E240 -> 40 E2 01 00; 23 = CY (0x20) | sequence 3; cause 37 (counter request)
    a = asdu.decode(bytes.fromhex("0F0125000100" "C80000" "40E20100" "23"))
    assert (a.cot, a.objects) == (37, [asdu.InfoObject(200, 123456.0, Flag.CY, None, 3)])
    # 37 M_IT_TB_1: -7 = 0xFFFFFFF9; 44 = CA (0x40) | sequence 4
    assert asdu.decode(bytes.fromhex("250103000100" "C90000" "F9FFFFFF" "44") + TAG).objects == [
        asdu.InfoObject(201, -7.0, Flag.CA, TAG_MS, 4)]
    # 31 M_DP_TB_1: DIQ 12 = BL | DPI 2 (on) -> 1; DIQ 00 = DPI 0 (intermediate) -> no value
    assert asdu.decode(bytes.fromhex("1F0203000100" "2C0100" "12") + TAG + bytes.fromhex("2D0100" "00")
                       + TAG).objects == [asdu.InfoObject(300, 1.0, Flag.BL, TAG_MS),
                                          asdu.InfoObject(301, None, Flag(0), TAG_MS)]
    # 1 M_SP_NA_1, SQ = 1 with 3 objects (VSQ 0x83) from IOA 1000 = 0x03E8: off, off, on + NT (0x41)
    assert asdu.decode(bytes.fromhex("018314000100" "E80300" "01" "00" "41")).objects == [
        asdu.InfoObject(1000, 1.0, Flag(0), None), asdu.InfoObject(1001, 0.0, Flag(0), None),
        asdu.InfoObject(1002, 1.0, Flag.NT, None)]
    # 21 M_ME_ND_1 (no quality): 0xC000 = -16384 -> -0.5; cause 1 periodic
    assert asdu.decode(bytes.fromhex("150101000100" "030000" "00C0")).objects == [
        asdu.InfoObject(3, -0.5, Flag(0), None)]


def test_time_tags_and_asdus_that_do_not_add_up() -> None:
    invalid_clock = TAG[:2] + b"\x80" + TAG[3:]  # minute octet bit 7: the station says its clock is not valid
    o = asdu.decode(bytes.fromhex("1E0103000100" "0A0000" "01") + invalid_clock).objects[0]
    assert (o.value, o.flags, o.time_ms) == (1.0, Flag.TIME_IV, TAG_MS)
    no_date = TAG[:5] + b"\x00" + TAG[6:]  # month 0
    o = asdu.decode(bytes.fromhex("1E0103000100" "0A0000" "01") + no_date).objects[0]
    assert (o.flags, o.time_ms) == (Flag.TIME_IV, None)
    february_31 = TAG[:4] + bytes((0x3F, 0x02)) + TAG[6:]  # weekday 1, day 31, month 2
    assert asdu.decode(bytes.fromhex("1E0103000100" "0A0000" "01") + february_31).objects[0].time_ms is None
    with pytest.raises(asdu.AsduError, match=r"type 13 with 2 objects .* is 22 bytes, got 14"):
        asdu.decode(bytes.fromhex("0D0203000100" "640000" "00004841" "00"))  # says 2 objects, carries 1
    # a type parkmon does not read is handed over undecoded (the driver logs it once)
    assert asdu.decode(bytes.fromhex("050103000100" "0A0000" "0500")).objects == []


@st.composite
def well_sized(draw: st.DrawFn) -> bytes:
    """An ASDU of a type parkmon reads whose length adds up, its bytes otherwise random (dates included)."""
    type_id = draw(st.sampled_from(sorted(asdu.ELEMENT)))
    count, sq = draw(st.integers(1, 10)), draw(st.booleans())
    size = asdu.ELEMENT[type_id][0]
    body = draw(st.binary(min_size=3 + size * count if sq else (3 + size) * count,
                          max_size=3 + size * count if sq else (3 + size) * count))
    return bytes((type_id, count | (0x80 if sq else 0))) + draw(st.binary(min_size=4, max_size=4)) + body


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=4, max_size=253) | well_sized(), st.integers(-14 * 3_600_000, 14 * 3_600_000))
def test_any_bytes_decode_or_are_refused_with_the_codecs_own_error(data: bytes, offset_ms: int) -> None:
    """Never another exception: the driver skips an AsduError and closes the link on a FrameError."""
    try:
        a = asdu.decode(data, offset_ms)
        for o in a.objects:
            assert 0 <= o.ioa <= 0xFFFFFF and (o.time_ms is None or isinstance(o.time_ms, int))
    except asdu.AsduError:
        pass
    with contextlib.suppress(apci.FrameError):
        apci.parse(data)


def test_interrogation_commands() -> None:
    # 100 C_IC_NA_1, 1 object, cause 6 (activation), originator 0, CA 1, IOA 0, QOI 20 (station) = 0x14
    assert asdu.command(asdu.Type.C_IC_NA_1, asdu.QOI_STATION, 1) == bytes.fromhex("640106000100" "000000" "14")
    # 101 C_CI_NA_1 to CA 0x1234 (34 12), originator 7, QCC 5 (general request, freeze 0: read)
    assert asdu.command(asdu.Type.C_CI_NA_1, asdu.QCC_GENERAL_READ, 0x1234, 7) == bytes.fromhex(
        "650106073412" "000000" "05")
    a = asdu.decode(bytes.fromhex("64010A000100" "000000" "14"))  # the station's activation termination
    assert (a.type_id, a.cot, a.objects, a.raw_info) == (100, 10, [], bytes.fromhex("00000014"))
    a = asdu.decode(bytes.fromhex("640147000100" "000000" "14"))  # cause octet 0x47: P/N (0x40) set, cause 7
    assert (a.cot, a.negative) == (7, True)


def test_quality_bits_onto_parkmon_quality() -> None:
    assert flags_quality(Flag(0)) == quality.GOOD
    assert flags_quality(Flag.IV | Flag.NT) == quality.bad(Reason.DEVICE_FAILURE)  # invalid outranks the rest
    assert flags_quality(Flag.NT) == quality.uncertain(Reason.LAST_USABLE)
    assert flags_quality(Flag.BL) == quality.uncertain(Reason.LAST_USABLE)
    assert flags_quality(Flag.SB) == quality.uncertain(Reason.MANUAL)
    assert flags_quality(Flag.OV) == quality.uncertain(Reason.OUT_OF_RANGE)
    assert flags_quality(Flag.CY) == quality.uncertain(Reason.COUNTER_ROLLOVER)
    assert flags_quality(Flag.CA) == quality.uncertain(Reason.MANUAL)


class _Station:
    """A scripted station on loopback: what it sends is written out here byte by byte."""

    def __init__(self) -> None:
        self.got = bytearray()
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.arrived = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connected.set()
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(1024):
                self.got += chunk
                self.arrived.set()

    async def wait_for(self, data: bytes) -> None:
        while data not in self.got:
            self.arrived.clear()
            await self.arrived.wait()


async def _scripted(script: object, params: Params, then: object = None) -> tuple[bytes, list[bytes], str]:
    """Run a Link against a scripted station; ``then(link, station, its run() task)`` runs once STARTDT is
    confirmed."""
    station = _Station()
    server = await asyncio.start_server(station.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    received: list[bytes] = []
    up = asyncio.Event()
    link = Link("127.0.0.1", port, params, received.append, up.set)
    runner = asyncio.create_task(link.run())
    why = ""
    try:
        await asyncio.wait_for(station.connected.wait(), 5)
        await asyncio.wait_for(script(station), 10)  # type: ignore[operator]
        if then is not None:
            await asyncio.wait_for(up.wait(), 10)
            await asyncio.wait_for(then(link, station, runner), 10)  # type: ignore[operator]
            return bytes(station.got), received, why
        try:
            await asyncio.wait_for(runner, 10)
        except LinkError as exc:
            why = str(exc)
    finally:
        runner.cancel()
        link.close()
        server.close()
    return bytes(station.got), received, why


def test_link_starts_acknowledges_every_w_frames_answers_testfr_and_closes_on_a_sequence_error() -> None:
    # an M_SP_NA_1 ASDU (IOA 1, on): 01 01 03 00 01 00 01 00 00 01, 10 bytes -> APDU length 14 = 0x0E
    point = bytes.fromhex("01010300010001000001")

    def i_frame(ns: int) -> bytes:  # N(S) << 1 in the first two control octets, N(R) 0
        return bytes((0x68, 0x0E, (ns << 1) & 0xFF, ns >> 7, 0, 0)) + point

    async def script(st: _Station) -> None:
        assert st.writer is not None
        await st.wait_for(bytes.fromhex("680407000000"))  # STARTDT act
        st.writer.write(bytes.fromhex("68040B000000"))  # STARTDT con
        for ns in range(3):  # w = 3: after the third the client acknowledges N(R) 3 (3 << 1 = 06)
            st.writer.write(i_frame(ns))
        await st.wait_for(bytes.fromhex("680401000600"))
        st.writer.write(bytes.fromhex("680443000000"))  # TESTFR act
        await st.wait_for(bytes.fromhex("680483000000"))  # TESTFR con
        st.writer.write(i_frame(5))  # N(S) 5 where 3 was due: frames 3 and 4 were lost

    _, received, why = asyncio.run(_scripted(script, Params(t1_s=5, t2_s=4, t3_s=20, k=12, w=3)))
    assert received == [point] * 3, "the frame out of sequence is not handed over"
    assert why == "sequence error: I frame N(S) = 5, expected 3 (a frame was lost or repeated)"


def test_stopdt_asks_the_station_to_stop_and_waits_for_its_confirmation() -> None:
    async def script(st: _Station) -> None:
        assert st.writer is not None
        await st.wait_for(bytes.fromhex("680407000000"))
        st.writer.write(bytes.fromhex("68040B000000"))

    async def stop(link: Link, st: _Station, _: asyncio.Task[None]) -> None:
        stopping = asyncio.create_task(link.stop_data(5))
        await st.wait_for(bytes.fromhex("680413000000"))  # STOPDT act
        assert st.writer is not None and not stopping.done()
        st.writer.write(bytes.fromhex("680423000000"))  # STOPDT con
        await stopping
        assert not link.started

    got, _, _ = asyncio.run(_scripted(script, Params(), stop))
    assert got == bytes.fromhex("680407000000" "680413000000")


def test_k_window_holds_our_second_frame_until_the_first_is_acknowledged_and_t1_gives_up() -> None:
    gi = asdu.command(asdu.Type.C_IC_NA_1, asdu.QOI_STATION, 1)  # 10 bytes: APDU length 14 = 0x0E
    ci = asdu.command(asdu.Type.C_CI_NA_1, asdu.QCC_GENERAL_READ, 1)
    # our I frames: N(S) 0 -> 00 00, N(S) 1 -> 02 00; N(R) 0 (nothing received)
    first, second = bytes.fromhex("680E00000000") + gi, bytes.fromhex("680E02000000") + ci

    async def script(st: _Station) -> None:
        assert st.writer is not None
        await st.wait_for(bytes.fromhex("680407000000"))
        st.writer.write(bytes.fromhex("68040B000000"))

    async def window(link: Link, st: _Station, running: asyncio.Task[None]) -> None:
        assert st.writer is not None
        await link.send_asdu(gi)
        later = asyncio.create_task(link.send_asdu(ci))  # k = 1: waits for the station's acknowledgement
        await st.wait_for(first)
        await asyncio.sleep(0.3)
        assert second not in st.got and not later.done()
        st.writer.write(bytes.fromhex("680401000200"))  # S frame, N(R) 1 (1 << 1 = 02): the first is received
        await later
        await st.wait_for(second)
        with pytest.raises(LinkError, match=r"our I frame 1 not acknowledged within t1 = 1 s"):
            await running  # the second is never acknowledged

    got, _, _ = asyncio.run(_scripted(script, Params(t1_s=1.0, t2_s=0.5, t3_s=20, k=1, w=1), window))
    assert got == bytes.fromhex("680407000000") + first + second


def test_link_sends_testfr_when_idle_and_gives_up_after_t1_without_confirmation() -> None:
    async def script(st: _Station) -> None:
        assert st.writer is not None
        await st.wait_for(bytes.fromhex("680407000000"))
        st.writer.write(bytes.fromhex("68040B000000"))
        await st.wait_for(bytes.fromhex("680443000000"))  # idle for t3: TESTFR act, which this station ignores

    got, _, why = asyncio.run(_scripted(script, Params(t1_s=1.0, t2_s=0.4, t3_s=0.3, k=12, w=8)))
    assert got == bytes.fromhex("680407000000" "680443000000")
    assert why == "no TESTFR confirmation within t1 = 1 s: the station is not answering"


GATEWAY = {"gateway": {"park": "p", "enterprise": "e", "id": "g"}}
POINT = {"name": "p", "metric": "elec.active_power", "ioa": 16385}


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "driver iec104 needs host"),
    ({"host": "10.0.0.20", "t2_s": 15}, r"t2_s \(15\) must be shorter than t1_s \(15\)"),
    ({"host": "10.0.0.20", "k": 4, "w": 8}, r"w \(8\) must not exceed k \(4\)"),
    ({"host": "10.0.0.20", "common_address": 65535}, "field common_address: Input should be less than or equal "
                                                     "to 65534"),
    ({"host": "10.0.0.20", "points": [POINT, {**POINT, "name": "q"}]},
     "ioa 16385 appears twice \\(points 'p' and 'q'\\)"),
    ({"host": "10.0.0.20", "points": [{"name": "p", "metric": "elec.active_power"}]},
     "point 'p', field ioa: Field required"),
])
def test_config_rules_name_the_device(settings: dict[str, object], message: str) -> None:
    dev = {"id": "sub110", "driver": "iec104", "points": [POINT], **settings}
    with pytest.raises(ConfigError, match=message) as err:
        parse_config({**GATEWAY, "devices": [dev]})
    assert "device 'sub110'" in str(err.value)
