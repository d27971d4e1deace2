"""The IEC 104 driver against a station parkmon did not write: c104 (Fraunhofer FIT's binding of lib60870, a test
dependency only) runs the substation on loopback. What the station is told to send is written out here; what
the driver hands over must be exactly that: value x scale, the station's time tag, its quality bits as parkmon
quality, each reading once.

Time tags: 2026-12-07 10:00:SS UTC = 1 796 637 600 000 ms + SS x 1000 (the arithmetic is in
tests/test_iec104_codec.py's docstring).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

c104 = pytest.importorskip("c104", reason="c104 (lib60870) is a test dependency: ./dev.sh test installs it")

from edge_agent.drivers.base import Sample  # noqa: E402
from edge_agent.drivers.iec104.driver import Iec104Config, Iec104Driver  # noqa: E402
from parkmon.common import quality  # noqa: E402
from parkmon.common.netutil import free_port  # noqa: E402
from parkmon.common.quality import Reason  # noqa: E402

T0 = 1_796_637_600_000  # 2026-12-07 10:00:00 UTC
GOOD, LAST, MANUAL = quality.GOOD, quality.uncertain(Reason.LAST_USABLE), quality.uncertain(Reason.MANUAL)
OVER, INVALID = quality.uncertain(Reason.OUT_OF_RANGE), quality.bad(Reason.DEVICE_FAILURE)
DOWN = quality.bad(Reason.COMM_FAILURE)


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 12, 7, 10, 0, second, tzinfo=dt.UTC)


# ioa -> (c104 type, point name, metric, scale)
OBJECTS: dict[int, tuple[Any, str, str, float]] = {
    100: (c104.Type.M_ME_NC_1, "p_float", "elec.active_power", 1.0),
    101: (c104.Type.M_ME_TF_1, "p_float_t", "elec.active_power", 1.0),
    110: (c104.Type.M_ME_NB_1, "u_scaled", "elec.voltage", 0.1),
    111: (c104.Type.M_ME_TE_1, "u_scaled_t", "elec.voltage", 0.1),
    120: (c104.Type.M_ME_NA_1, "pf_norm", "elec.power_factor", 1.0),
    121: (c104.Type.M_ME_TD_1, "p_norm_t", "elec.active_power", 1000.0),
    200: (c104.Type.M_IT_NA_1, "e_import", "elec.import.energy", 0.01),
    201: (c104.Type.M_IT_TB_1, "e_export_t", "elec.export.energy", 1.0),
    300: (c104.Type.M_SP_NA_1, "alarm", "safety.fire_alarm", 1.0),
    301: (c104.Type.M_SP_TB_1, "alarm_t", "safety.fire_alarm", 1.0),
    310: (c104.Type.M_DP_NA_1, "breaker", "device.state", 1.0),
    311: (c104.Type.M_DP_TB_1, "breaker_t", "device.state", 1.0),
}


class Station:
    """A c104 server with one station (common address 1) holding OBJECTS."""

    def __init__(self, port: int) -> None:
        self.server = c104.Server(ip="127.0.0.1", port=port)
        station = self.server.add_station(common_address=1)
        self.points = {ioa: station.add_point(io_address=ioa, type=t) for ioa, (t, *_) in OBJECTS.items()}

    def start(self) -> Station:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def set(self, ioa: int, info: Any, send: bool = False) -> None:
        self.points[ioa].info = info
        if send:
            assert self.points[ioa].transmit(cause=c104.Cot.SPONTANEOUS), "the station had no client to send to"


def counter(value: int, q: Any = None, when: dt.datetime | None = None) -> Any:
    return c104.BinaryCounterInfo(counter=value, sequence=c104.UInt5(value % 32),
                                  quality=q or c104.BinaryCounterQuality(), recorded_at=when)


def initial(st: Station) -> None:
    """What the station holds before the gateway connects (answers to the interrogations)."""
    st.set(100, c104.ShortInfo(actual=12.5))
    st.set(101, c104.ShortInfo(actual=-3.25, quality=c104.Quality.NonTopical, recorded_at=at(1)))
    st.set(110, c104.ScaledInfo(actual=c104.Int16(2301)))
    st.set(111, c104.ScaledInfo(actual=c104.Int16(-32768), recorded_at=at(2)))
    st.set(120, c104.NormalizedInfo(actual=c104.NormalizedFloat(0.5)))
    st.set(121, c104.NormalizedInfo(actual=c104.NormalizedFloat(-0.25), recorded_at=at(3)))
    st.set(200, counter(123456))
    st.set(201, counter(-7, when=at(4)))
    st.set(300, c104.SingleInfo(on=True))
    st.set(301, c104.SingleInfo(on=False, quality=c104.Quality.Blocked, recorded_at=at(5)))
    st.set(310, c104.DoubleInfo(state=c104.Double.ON))
    st.set(311, c104.DoubleInfo(state=c104.Double.INTERMEDIATE, recorded_at=at(6)))


def device(port: int, **settings: Any) -> Iec104Config:
    return Iec104Config.model_validate({
        "id": "sub", "driver": "iec104", "host": "127.0.0.1", "port": port, "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5, **settings,
        "points": [{"name": name, "metric": metric, "ioa": ioa, "scale": scale}
                   for ioa, (_, name, metric, scale) in OBJECTS.items()]})


async def collect(drv: Iec104Driver, until: Callable[[list[Sample]], bool], within_s: float = 20) -> list[Sample]:
    """read() every 50 ms, as the agent would every cycle, until ``until(samples so far)`` holds."""
    got: list[Sample] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        got += await drv.read()
        if until(got):
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out; samples so far: {got}")


def has(*names: str) -> Callable[[list[Sample]], bool]:
    return lambda got: {f"sub.{n}" for n in names} <= {k for k, _, _, q in got if q != DOWN}


def of(got: list[Sample], name: str) -> list[tuple[int, float | None, int]]:
    return [(ts, v, q) for k, ts, v, q in got if k == f"sub.{name}" and q != DOWN]


def run_with(st: Station, settings: dict[str, Any], body: Callable[[Iec104Driver], Awaitable[None]]) -> None:
    """Run ``body`` with a driver connected to the started station ``st``; close both whatever happens."""
    async def run() -> None:
        drv = Iec104Driver(device(st.server.port, **settings))
        await drv.open()
        try:
            await body(drv)
        finally:
            await drv.close()

    try:
        asyncio.run(run())
    finally:
        st.stop()


def test_values_time_tags_and_quality_arrive_as_the_station_sent_them() -> None:
    st = Station(free_port())
    initial(st)
    st.start()

    async def check(drv: Iec104Driver) -> None:
        before = int(time.time() * 1000)
        got = await collect(drv, has(*(name for _, name, _, _ in OBJECTS.values())))
        after = int(time.time() * 1000)
        # without a time tag: stamped on arrival
        for name, want in (("p_float", 12.5), ("u_scaled", 230.1), ("pf_norm", 0.5), ("e_import", 1234.56),
                           ("alarm", 1.0), ("breaker", 1.0)):
            ((ts, value, q),) = of(got, name)
            assert before <= ts <= after and q == GOOD, name
            # 2301 x 0.1; 123456 x 0.01; normalised 0.5 is 16384 / 32768, give or take the station's rounding
            assert value == pytest.approx(want, abs=1e-4 if name != "pf_norm" else 1 / 32768), name
        assert of(got, "p_float_t") == [(T0 + 1000, -3.25, LAST)]  # NT: not topical -> last usable
        ((ts, value, q),) = of(got, "u_scaled_t")
        assert (ts, q) == (T0 + 2000, GOOD) and value == pytest.approx(-3276.8)  # -32768 x 0.1
        ((ts, value, q),) = of(got, "p_norm_t")
        assert (ts, q) == (T0 + 3000, GOOD) and value == pytest.approx(-250.0, abs=1000 / 32768)  # -0.25 x 1000
        assert of(got, "e_export_t") == [(T0 + 4000, -7.0, GOOD)]
        assert of(got, "alarm_t") == [(T0 + 5000, 0.0, LAST)]  # BL: blocked at its last value
        assert of(got, "breaker_t") == [(T0 + 6000, None, quality.bad(Reason.SENSOR_FAILURE))]  # intermediate

        # spontaneous changes, each quality bit the standard has
        st.set(101, c104.ShortInfo(actual=99.0, quality=c104.Quality.Invalid, recorded_at=at(10)), send=True)
        st.set(111, c104.ScaledInfo(actual=c104.Int16(32767), quality=c104.Quality.Overflow,
                                    recorded_at=at(11)), send=True)
        st.set(121, c104.NormalizedInfo(actual=c104.NormalizedFloat(0.0), quality=c104.Quality.Substituted,
                                        recorded_at=at(12)), send=True)
        st.set(201, counter(1000, c104.BinaryCounterQuality.Carry, at(13)), send=True)
        st.set(201, counter(1001, c104.BinaryCounterQuality.Adjusted, at(14)), send=True)
        st.set(201, counter(1002, c104.BinaryCounterQuality.Invalid, at(15)), send=True)
        st.set(311, c104.DoubleInfo(state=c104.Double.OFF, recorded_at=at(16)), send=True)
        got = await collect(drv, lambda g: len(of(g, "e_export_t")) == 3 and bool(of(g, "breaker_t")))
        assert of(got, "p_float_t") == [(T0 + 10_000, None, INVALID)]  # IV: the value is not to be used
        ((ts, value, q),) = of(got, "u_scaled_t")
        assert (ts, q) == (T0 + 11_000, OVER) and value == pytest.approx(3276.7)  # 32767 x 0.1, OV
        assert of(got, "p_norm_t") == [(T0 + 12_000, 0.0, MANUAL)]
        assert of(got, "e_export_t") == [(T0 + 13_000, 1000.0, quality.uncertain(Reason.COUNTER_ROLLOVER)),
                                         (T0 + 14_000, 1001.0, MANUAL), (T0 + 15_000, None, INVALID)]
        assert of(got, "breaker_t") == [(T0 + 16_000, 0.0, GOOD)]
        assert drv.connects == 1

    run_with(st, {}, check)


def test_a_burst_of_spontaneous_values_arrives_whole_and_once() -> None:
    """500 values, one frame each: more than lib60870's window of 12 unacknowledged frames, so the driver's
    acknowledgements (every w frames, or after t2) are what keeps them coming."""
    st = Station(free_port())
    initial(st)
    st.start()

    async def check(drv: Iec104Driver) -> None:
        await collect(drv, has("p_float_t"))
        sent = []
        for i in range(500):
            when = at(0) + dt.timedelta(milliseconds=20 * i)
            st.set(101, c104.ShortInfo(actual=float(i), recorded_at=when), send=True)
            sent.append((T0 + 20 * i, float(i), GOOD))
        got = await collect(drv, lambda g: len(of(g, "p_float_t")) >= 500)
        assert of(got, "p_float_t") == sent
        assert drv.connects == 1

    run_with(st, {}, check)


def test_the_link_survives_the_station_restarting_and_no_reading_is_doubled() -> None:
    port = free_port()
    st = Station(port)
    initial(st)
    st.start()

    async def run() -> None:
        nonlocal st
        drv = Iec104Driver(device(port))
        await drv.open()
        try:
            got = await collect(drv, has("e_export_t", "e_import", "p_float"))
            assert of(got, "e_export_t") == [(T0 + 4000, -7.0, GOOD)]
            st.stop()
            down = await collect(drv, lambda g: {k for k, _, _, q in g if q == DOWN} == {
                f"sub.{name}" for _, name, _, _ in OBJECTS.values()})
            assert all(v is None for k, _, v, q in down if q == DOWN)

            st = Station(port)  # the same station back, one value changed while it was away
            initial(st)
            st.set(100, c104.ShortInfo(actual=13.0))
            st.start()
            got = await collect(drv, lambda g: any(v == 13.0 for _, _, v, _ in g) and bool(of(g, "e_import")),
                                within_s=30)
            # the counter reading the station holds is the one already handed over (same time tag): not again;
            # the counter without a time tag is a new reading, stamped on arrival
            assert of(got, "e_export_t") == []
            assert [v for _, v, _ in of(got, "e_import")] == [pytest.approx(1234.56)]
            st.set(201, counter(5, when=at(20)), send=True)
            got = await collect(drv, has("e_export_t"))
            assert of(got, "e_export_t") == [(T0 + 20_000, 5.0, GOOD)]
            assert drv.connects == 2
        finally:
            await drv.close()

    try:
        asyncio.run(run())
    finally:
        st.stop()


class Blackhole:
    """A TCP relay between the driver and the station. ``freeze()`` makes the connections it carries drop every
    byte both ways without closing (a router that died, an RTU's hung stack): the station stops answering,
    TESTFR included. A stand-in for a broken network, which loopback cannot be made into otherwise."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.live: list[object] = []
        self.frozen: set[int] = set()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self.frozen.update(id(c) for c in self.live)

    async def _relay(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        conn = object()
        self.live.append(conn)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(4096):
                    if id(conn) not in self.frozen:
                        w.write(data)
            except ConnectionError:
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(down_r, up_w), pipe(up_r, down_w))


def test_a_station_that_stops_answering_is_dropped_after_t1_and_reconnected(caplog: pytest.LogCaptureFixture) -> None:
    st = Station(free_port())
    initial(st)
    st.start()

    async def run() -> None:
        relay = Blackhole(st.server.port)
        await relay.start()
        drv = Iec104Driver(device(relay.port, t1_s=1.0, t2_s=0.5, t3_s=1.0))
        await drv.open()
        try:
            await collect(drv, has("p_float_t"))
            relay.freeze()
            # sent into the dead connection: lost there, but the station still holds it
            st.set(101, c104.ShortInfo(actual=7.5, recorded_at=at(30)), send=True)
            got = await collect(drv, lambda g: any(v == 7.5 for _, _, v, _ in g))
            assert of(got, "p_float_t") == [(T0 + 30_000, 7.5, GOOD)]  # from the new connection's GI, once
            assert drv.connects == 2
        finally:
            await drv.close()
            relay.server.close()

    try:
        with caplog.at_level(logging.WARNING, logger="edge_agent.drivers.iec104.driver"):
            asyncio.run(run())
    finally:
        st.stop()
    lost = [r.getMessage() for r in caplog.records if "link lost" in r.getMessage()]
    assert len(lost) == 1, lost  # what the site engineer reads in the gateway's log
    assert lost[0].endswith("link lost: no TESTFR confirmation within t1 = 1 s: the station is not answering; "
                            "reconnecting")
