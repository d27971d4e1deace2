"""The HJ 212 simulators over real TCP on loopback: the data loggers (simulators/hj212_logger.py) and the
test platform (simulators/hj212_platform.py).

Simulated time runs at 3600× (an hour of minute records in a second) or is injected as a clock, and the
timeouts are a few tenths of a second, so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from parkmon.common.hj212 import Hj212Error, Packet, build, cp_of, metric_of, parse, parse_time, split
from simulators.definition import load_definition
from simulators.engine import TickEngine
from simulators.hj212_logger import DataLogger, OutletModel
from simulators.hj212_platform import TestPlatform, wait_until

T0 = parse_time("20250621100000")  # 10:00 China time
MIDNIGHT = parse_time("20250621000000")
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
FAST: dict[str, Any] = {"speed": 3600.0, "sim_start_ms": T0, "ack_timeout_s": 1.0, "reconnect_min_s": 0.05,
                        "reconnect_max_s": 0.2}


def run(coro: Coroutine[Any, Any, None], timeout_s: float = 20.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout_s))


def logger(port: int, **kw: Any) -> DataLogger:
    return DataLogger("127.0.0.1", port, **{**FAST, **kw})


def test_an_hour_of_records_reaches_the_platform_each_acked() -> None:
    """CEMS and wastewater, an hour: every record made arrives once, acknowledged, with the values sent."""
    async def main() -> None:
        async with TestPlatform() as plat:
            cems = logger(plat.port, kind="cems", end_ms=T0 + HOUR)
            ww = logger(plat.port, kind="wastewater", end_ms=T0 + HOUR)
            async with cems, ww:
                await cems.wait_idle(15)
                await ww.wait_idle(15)
            assert plat.dead_letters == [] and plat.counters.duplicates == 0
            assert plat.counters.acks_sent == plat.counters.records == 2 * 181
            for lg, st in ((cems, "31"), (ww, "32")):
                made = lg.generated()
                assert len(lg.generated("2011")) == 120 and len(lg.generated("2061")) == 1
                assert lg.generated("2051") == [("2051", T0 + k * MINUTE) for k in range(60)]
                assert plat.keys(lg.mn) == set(made) and len(made) == 181
                assert lg.acked() == made  # in order, each once
                c = lg.counters
                assert c.sent == c.acked == 181 and c.resent == 0 and c.connections == 1
                stored = plat.dedup()
                for cn, t in made:
                    assert stored[(lg.mn, cn, t)] == lg.record(cn, t)  # what was sent is what is stored
                    assert stored[(lg.mn, cn, t)].st == st
            _check_cems(cems)
            _check_water(ww)

    run(main())


def _hour_and_minutes(lg: DataLogger) -> tuple[dict[str, dict[str, float]], list[dict[str, dict[str, float]]]]:
    return lg.record("2061", T0).values, [lg.record("2051", t).values for _, t in lg.generated("2051")]


def _check_cems(lg: DataLogger) -> None:
    hour, minutes = _hour_and_minutes(lg)
    assert set(hour) == {"a21026", "a21002", "a34013", "a19001", "a01012", "a00000"}
    for code in ("a21026", "a21002", "a34013", "a00000"):  # kg of a pollutant, m³ of flue gas
        assert hour[code]["Cou"] == pytest.approx(sum(m[code]["Cou"] for m in minutes), rel=1e-4)
    for code, f in hour.items():
        assert f["Min"] == min(m[code]["Min"] for m in minutes) and f["Max"] == max(m[code]["Max"] for m in minutes)
        assert f["Avg"] == pytest.approx(sum(m[code]["Avg"] for m in minutes) / 60, abs=2e-3)
    for code in ("a21026", "a21002", "a34013"):  # at the reference O2 (6 %) with O2 at 6-12 %: higher
        assert hour[code]["ZsAvg"] > hour[code]["Avg"]
        assert hour[code]["ZsAvg"] == pytest.approx(hour[code]["Avg"] * 15 / (21 - hour["a19001"]["Avg"]), rel=0.03)
    # SO2 amount ≈ mean concentration × flue gas (mg/m³ × m³ -> kg)
    assert hour["a21026"]["Cou"] == pytest.approx(hour["a21026"]["Avg"] * hour["a00000"]["Cou"] * 1e-6, rel=0.05)
    assert 20 < hour["a21026"]["Avg"] < 130 and 6 <= hour["a19001"]["Avg"] <= 12
    rt = lg.record("2011", T0 + 30_000).values
    assert {"Rtd", "ZsRtd"} <= set(rt["a21026"]) and set(rt["a00000"]) == {"Rtd"}
    _every_field_is_a_parkmon_metric(lg)


def _check_water(lg: DataLogger) -> None:
    hour, minutes = _hour_and_minutes(lg)
    assert set(hour) == {"w00000", "w01018", "w21003", "w01001", "w21011", "w21001"}
    assert "Cou" not in hour["w01001"] and "ZsAvg" not in hour["w01018"]  # pH has no amount, water no O2
    for code in ("w00000", "w01018", "w21003", "w21011", "w21001"):
        assert hour[code]["Cou"] == pytest.approx(sum(m[code]["Cou"] for m in minutes), rel=1e-4)
    # COD kg ≈ m³ × mg/L × 10⁻³ (App. D); the flow L/s × 3600 s / 1000 = m³
    assert hour["w01018"]["Cou"] == pytest.approx(hour["w00000"]["Cou"] * hour["w01018"]["Avg"] * 1e-3, rel=0.05)
    assert hour["w00000"]["Cou"] == pytest.approx(hour["w00000"]["Avg"] * 3.6, rel=1e-3)
    assert 5 < hour["w01001"]["Avg"] < 10
    _every_field_is_a_parkmon_metric(lg)


def _every_field_is_a_parkmon_metric(lg: DataLogger) -> None:
    for cn, t in lg.generated()[:200]:
        for code, fields in lg.record(cn, t).values.items():
            assert all(metric_of(code, f, cn) is not None for f in fields), (cn, code, fields)


def test_values_are_the_simulated_parks_own() -> None:
    """An outlet stepped alone gives the values the whole park's TickEngine gives that device."""
    engine = TickEngine(load_definition(), 2025, 5.0, T0)
    cems = OutletModel(None, 2025, "cems", "e01")
    ww = OutletModel(None, 2025, "wastewater", "e02")
    for k in range(300):
        engine.tick(engine.sim_ms_of(k))
        t = engine.sim_ms_of(k)
        assert cems.step(t, 5.0 if k else 0.0) == engine.model.find("e01", "cems1").values
        assert ww.step(t, 5.0 if k else 0.0) == engine.model.find("e02", "ww1").values
    other = OutletModel(None, 2026, "cems", "e01")
    assert other.step(T0, 0.0) == OutletModel(None, 2025, "cems", "e01").step(T0, 0.0)  # tick 0: the means
    assert other.step(T0 + 5000, 5.0) != cems.step(T0 + 300 * 5000, 5.0)
    with pytest.raises(KeyError, match="enterprise e03 has no cems device"):
        OutletModel(None, 2025, "cems", "e03")


def test_dropped_connections_lose_nothing_and_copies_are_removed() -> None:
    """The logger drops its socket half-way through a packet; later the platform closes the connection
    while a record is stored but not yet acknowledged: every record arrives, the copy is de-duplicated."""
    async def main() -> None:
        async with TestPlatform() as plat:
            lg = logger(plat.port, kind="cems", end_ms=T0 + HOUR)
            async with lg:
                await wait_until(lambda: plat.counters.records >= 20, 10, "20 records")
                lg.set_fault("drop_connection")
                await wait_until(lambda: lg.counters.connections >= 2 and plat.counters.records >= 60, 10,
                                 "a reconnection")
                plat.set_fault("drop_acks", 1)
                await wait_until(lambda: plat.counters.acks_dropped == 1, 10, "an upload stored, not acknowledged")
                assert await plat.close_client(lg.mn)
                await lg.wait_idle(15)
            made = lg.generated()
            assert plat.keys(lg.mn) == set(made) and len(made) == 181
            assert plat.counters.duplicates >= 1 and plat.counters.conflicts == 0
            assert len(plat.received) == len(made) + plat.counters.duplicates
            c = lg.counters
            assert c.faults == {"drop_connection": 1} and c.drops >= 2 and c.connections == c.drops + 1
            assert c.acked == len(made) and c.resent >= 2
            cut = [d for d in plat.dead_letters if "connection closed" in d.reason]
            assert len(cut) == 1 and cut[0].reason.startswith("stream: expected a whole packet before the connection")
            assert len(plat.dead_letters) == 1

    run(main())


def test_bad_frames_become_dead_letters_with_the_codecs_reason_and_the_stream_goes_on() -> None:
    async def main() -> None:
        async with TestPlatform() as plat:
            lg = logger(plat.port, kind="wastewater", end_ms=T0 + 10 * MINUTE, rtd_interval_s=0, ack_timeout_s=0.3,
                        faults=["bad_crc", "wrong_length", "truncated"])
            async with lg:
                await lg.wait_idle(15)
            assert plat.keys(lg.mn) == set(lg.generated()) and len(lg.generated()) == 10
            crc, length, cut = plat.dead_letters
            # the bad CRC: the whole frame kept, the reason the codec's own
            with pytest.raises(Hj212Error) as err:
                parse(crc.data)
            assert crc.reason == str(err.value) and crc.reason.startswith("CRC: expected ")
            n = int(crc.data[2:6])  # the data segment's real length
            assert length.reason.startswith(f"length: expected {n - 1} characters then CRC and CR LF, "
                                            f"got '##{n - 1:04d}")
            assert cut.reason.startswith(f"length: expected {n} characters of data segment")
            c = lg.counters
            assert c.faults == {"bad_crc": 1, "wrong_length": 1, "truncated": 1}
            assert c.crc_nacks == 1  # the platform's 9011 QnRtn=9: re-sent at once
            assert c.ack_timeouts >= 1  # the wrong length got no answer
            assert c.acked == 10 and c.sent == 10 + c.resent and c.resent >= 3
            assert plat.counters.records == c.sent - 3  # every whole copy stored, none of the three bad ones

    run(main())


def test_late_ack_makes_the_logger_resend_and_de_dup_removes_the_copy() -> None:
    async def main() -> None:
        async with TestPlatform() as plat:
            plat.set_fault("late_ack", count=1, seconds=0.5)
            lg = logger(plat.port, kind="cems", end_ms=T0 + 5 * MINUTE, rtd_interval_s=0, ack_timeout_s=0.2)
            async with lg:
                await lg.wait_idle(10)
                await wait_until(lambda: lg.counters.stray_acks == 1, 5, "the late 9014")
            c = lg.counters
            assert c.ack_timeouts >= 1 and c.resent >= 1 and c.acked == 5
            assert plat.counters.acks_late == 1 and plat.counters.duplicates == c.resent
            assert len(plat.received) == 5 + c.resent and plat.keys(lg.mn) == set(lg.generated())

    run(main())


def test_history_requests_day_records_and_an_injected_clock() -> None:
    """A day and an hour of simulated time in one jump of the injected clock; then the platform asks for
    hour, minute and day records of a window, the time, and (with the logger answering late) re-asks."""
    now = [MIDNIGHT]

    async def main() -> None:
        async with TestPlatform() as plat:
            lg = logger(plat.port, kind="cems", clock=lambda: now[0], sim_start_ms=MIDNIGHT, rtd_interval_s=0,
                        end_ms=MIDNIGHT + DAY + HOUR, late_ack_s=0.45)
            async with lg:
                now[0] = MIDNIGHT + DAY + HOUR
                await lg.wait_idle(15)
                assert len(lg.generated("2051")) == 25 * 60 and len(lg.generated("2061")) == 25
                assert lg.generated("2031") == [("2031", MIDNIGHT)]
                assert plat.keys(lg.mn) == set(lg.generated())

                r = await plat.request_history(lg.mn, "2061", begin_ms=MIDNIGHT + 2 * HOUR,
                                               end_ms=MIDNIGHT + 5 * HOUR, timeout_s=2)
                assert r.ok and r.qn_rtn == 1 and r.exe_rtn == 1 and r.resent == 0
                assert [x.data_time_ms for x in r.records] == [MIDNIGHT + h * HOUR for h in (2, 3, 4, 5)]
                assert all(x == plat.dedup()[(lg.mn, "2061", x.data_time_ms)] for x in r.records)
                assert plat.counters.duplicates == 4  # the answers are stored too, as copies
                assert {x.source for x in plat.received[-4:]} == {"history"}

                minutes = await plat.request_history(lg.mn, "2051", begin_ms=T0, end_ms=T0 + 9 * MINUTE, timeout_s=2)
                assert [x.data_time_ms for x in minutes.records] == [T0 + k * MINUTE for k in range(10)]
                day = await plat.request_history(lg.mn, "2031", begin_ms=MIDNIGHT, end_ms=MIDNIGHT, timeout_s=2)
                (rec,) = day.records
                hours = [lg.record("2061", MIDNIGHT + h * HOUR).values for h in range(24)]
                assert rec.values["a21026"]["Cou"] == pytest.approx(sum(h["a21026"]["Cou"] for h in hours), rel=1e-4)
                none = await plat.request_history(lg.mn, "2061", begin_ms=MIDNIGHT + 3 * DAY,
                                                  end_ms=MIDNIGHT + 4 * DAY, timeout_s=2)
                assert none.qn_rtn == 1 and none.exe_rtn == 100 and none.records == []
                backwards = await plat.request_history(lg.mn, "2061", begin_ms=MIDNIGHT + HOUR, end_ms=MIDNIGHT,
                                                       timeout_s=2)
                assert backwards.exe_rtn == 3  # 命令请求条件错误

                assert await plat.request_time(lg.mn, timeout_s=2) == MIDNIGHT + DAY + HOUR

                lg.set_fault("late_ack")  # its 9011 comes after the platform's 0.3 s: the request goes again
                late = await plat.request_history(lg.mn, "2061", begin_ms=MIDNIGHT, end_ms=MIDNIGHT + HOUR,
                                                  timeout_s=0.3, retries=3)
                assert late.ok and late.resent >= 1 and len(late.records) == 2
                assert lg.counters.faults["late_ack"] == 1 and lg.counters.duplicate_requests == late.resent
                assert plat.counters.requests_resent == late.resent

                with pytest.raises(LookupError, match="not connected"):
                    await plat.request_history("0" * 24, begin_ms=MIDNIGHT, end_ms=MIDNIGHT)

    run(main())


def test_wrong_pw_and_unknown_mn_are_refused_and_nothing_is_stored() -> None:
    async def main() -> None:
        good_mn, stranger = "AAAA0000000000000000000A", "BBBB0000000000000000000B"
        async with TestPlatform(allow={good_mn: "123456"}) as plat:
            good = logger(plat.port, kind="cems", mn=good_mn, end_ms=T0 + 3 * MINUTE, rtd_interval_s=0)
            bad_pw = logger(plat.port, kind="cems", mn=good_mn, pw="654321", end_ms=T0 + 3 * MINUTE,
                            rtd_interval_s=0)
            unknown = logger(plat.port, kind="wastewater", mn=stranger, end_ms=T0 + 3 * MINUTE, rtd_interval_s=0)
            async with good, bad_pw, unknown:
                await good.wait_idle(10)
                await wait_until(lambda: bad_pw.counters.refused >= 1 and unknown.counters.refused >= 1, 10,
                                 "both refused")
            assert {(r.pw, r.qn_rtn) for r in plat.refusals if r.mn == good_mn} == {("654321", 3)}
            assert {r.qn_rtn for r in plat.refusals if r.mn == stranger} == {4}
            assert all(r.record.mn == good_mn for r in plat.received)
            assert len(plat.received) == 3 and plat.keys(good_mn) == set(good.generated())
            assert bad_pw.counters.acked == 0 and unknown.counters.acked == 0
            assert bad_pw.queued == 3 and unknown.queued == 3  # kept, to be sent when the platform accepts

    run(main())


def test_split_packets_are_joined_and_parts_that_disagree_are_dead_letters() -> None:
    """A record too long for one packet comes in parts (Flag 7, PNUM/PNO): each part is acknowledged and
    the record is stored whole; parts of one QN that disagree on PNUM are a dead letter, the link lives on."""
    mn = "CCCC0000000000000000000C"
    values = {f"a{21000 + i}": {"Avg": 10.0 + i, "Min": 9.0, "Max": 11.0 + i, "Cou": 0.5} for i in range(30)}
    big = Packet("31", "2061", "123456", mn, cp_of(T0, values, dict.fromkeys(values, "N")), qn="20250621110000000",
                 flag=5)
    parts = split(big)
    assert len(parts) >= 2 and all(p.flag == 7 for p in parts)
    base: dict[str, Any] = {"st": "31", "cn": "2061", "pw": "123456", "mn": mn, "qn": "20250621110000001", "flag": 7}
    disagree = [Packet(cp=f"DataTime=20250621110000;a21026-Avg={v}", pnum=n, pno=o, **base)
                for v, n, o in ((1, 3, 3), (2, 3, 2), (3, 2, 2))]
    alone = Packet("31", "2061", "123456", mn, cp_of(T0 + HOUR, {"a21026": {"Avg": 1.0}}), qn="20250621120000000",
                   flag=5)

    async def main() -> None:
        async with TestPlatform() as plat:
            reader, writer = await asyncio.open_connection("127.0.0.1", plat.port)
            for p in [*parts, *disagree, alone]:
                writer.write(build(p))
            await writer.drain()
            await wait_until(lambda: plat.counters.records == 2, 5, "two records")
            acks = [parse(await reader.readuntil(b"\r\n")) for _ in range(len(parts) + 3)]
            writer.close()
        assert [(a.cn, a.qn) for a in acks] == [("9014", big.qn)] * len(parts) + [("9014", base["qn"])] * 2 + [
            ("9014", alone.qn)]
        assert plat.dedup()[(mn, "2061", T0)].values == values
        (dead,) = plat.dead_letters  # the codec's Reassembler raises KeyError there; the platform keeps going
        assert "PNUM" in dead.reason and dead.data == build(disagree[2])

    run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_logger_keeps_dialling_until_the_platform_is_up() -> None:
    async def main() -> None:
        port = _free_port()
        lg = logger(port, kind="wastewater", end_ms=T0 + 10 * MINUTE)
        async with lg:
            await wait_until(lambda: lg.counters.connect_failures >= 2 and len(lg.generated()) == 30, 10,
                             "records made while the platform is down")
            assert lg.counters.sent == 0 and lg.queued == 30
            async with TestPlatform(port=port) as plat:
                await lg.wait_idle(10)
                assert plat.keys(lg.mn) == set(lg.generated()) and lg.acked() == lg.generated()

    run(main())


def _parkmon(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parkmon.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_help() -> None:
    for cmd, words in (("hj212", ["--host", "--port", "--mn", "--pw", "--speed", "--fault", "drop_connection"]),
                       ("hj212-platform", ["--port", "--allow", "--late-ack", "--drop-acks", "--json"])):
        out = _parkmon("sim", cmd, "--help")
        assert out.returncode == 0 and out.stdout.startswith(f"usage: parkmon sim {cmd}")
        assert all(w in out.stdout for w in words), out.stdout


def test_cli_logger_and_platform_talk() -> None:
    """``parkmon sim hj212-platform`` prints each record (Chinese and English) and dead letter that
    ``parkmon sim hj212`` sends it, with a fault."""
    plat = subprocess.Popen([sys.executable, "-m", "parkmon.cli", "sim", "hj212-platform", "--port", "0",
                             "--duration", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert plat.stdout is not None
        first = plat.stdout.readline()
        assert first.startswith("HJ 212 platform listening on 127.0.0.1:"), first + (plat.stderr.read() if
                                                                                      plat.stderr else "")
        port = first.rsplit(":", 1)[1].strip()
        start = time.monotonic()
        out = _parkmon("sim", "hj212", "--port", port, "--speed", "3600", "--sim-start", "2025-06-21T10:00",
                       "--rtd-interval", "0", "--duration", "1.5", "--report-s", "0.5", "--fault", "bad_crc",
                       "--ack-timeout", "0.5")
        assert out.returncode == 0, out.stderr
        assert "cems logger MN=" in out.stdout and "wastewater logger MN=" in out.stdout and "acked" in out.stdout
        plat.terminate()
        text, _ = plat.communicate(timeout=10)
        assert time.monotonic() - start < 15
    finally:
        if plat.poll() is None:
            plat.kill()
            plat.wait(5)
    lines = text.splitlines()
    assert any("CN 2051 分钟数据 minute" in line and "二氧化硫 SO2" in line and "mg/m3" in line for line in lines)
    assert any("CN 2051 分钟数据 minute" in line and "化学需氧量 COD" in line for line in lines)
    assert sum(line.startswith("死信 dead letter") and "CRC: expected" in line for line in lines) == 2
    assert lines[-1].startswith("stopped: ") and "2 dead letters" in lines[-1]
