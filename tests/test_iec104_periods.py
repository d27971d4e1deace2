"""The IEC 104 driver's interrogations on a period and after a station re-initialises, and the station's clock
against the gateway's, with a c104 (lib60870) station on loopback; and the driver needing nothing beyond the
standard library and the gateway's own packages."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import subprocess
import sys
import time
from typing import Any

import pytest

c104 = pytest.importorskip("c104", reason="c104 (lib60870) is a test dependency: ./dev.sh test installs it")

from parkmon.common import quality  # noqa: E402
from parkmon.common.netutil import free_port  # noqa: E402
from tests.test_iec104_c104 import Station, collect, counter, device, initial, of, run_with  # noqa: E402

GOOD = quality.GOOD


def test_periodic_interrogations_pick_up_what_the_station_did_not_send() -> None:
    st = Station(free_port())
    initial(st)
    st.start()

    async def body(drv: Any) -> None:
        await collect(drv, lambda g: bool(of(g, "p_float")) and bool(of(g, "e_import")))
        st.set(100, c104.ShortInfo(actual=42.0))  # changed in the station, not sent: the next GI brings it
        st.set(200, counter(200000))  # likewise a counter: the next counter interrogation
        got = await collect(drv, lambda g: any(v == 42.0 for _, v, _ in of(g, "p_float"))
                            and any(v == pytest.approx(2000.0) for _, v, _ in of(g, "e_import")))
        assert [q for _, v, q in of(got, "p_float") if v == 42.0][:1] == [GOOD]
        assert drv.connects == 1  # the same connection, asked again

    run_with(st, {"gi_period_s": 0.3, "ci_period_s": 0.3}, body)


def test_a_station_that_re_initialises_is_interrogated_again() -> None:
    st = Station(free_port())
    initial(st)
    st.start()

    async def body(drv: Any) -> None:
        await collect(drv, lambda g: bool(of(g, "p_float")))
        st.set(100, c104.ShortInfo(actual=17.0))
        station = st.server.get_station(common_address=1)
        station.signal_initialized(cause=c104.Coi.REMOTE_RESET)  # M_EI_NA_1: end of initialisation
        await collect(drv, lambda g: any(v == 17.0 for _, v, _ in of(g, "p_float")))
        assert drv.connects == 1

    run_with(st, {"gi_period_s": None, "ci_period_s": None}, body)  # no periodic GI: only the M_EI asks


def test_time_tags_ahead_of_the_gateway_clock_are_replaced_by_the_arrival_time(
        caplog: pytest.LogCaptureFixture) -> None:
    st = Station(free_port())
    initial(st)
    st.start()

    async def body(drv: Any) -> None:
        await collect(drv, lambda g: bool(of(g, "p_float_t")))
        an_hour_ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        before = int(time.time() * 1000)
        st.set(101, c104.ShortInfo(actual=5.0, recorded_at=an_hour_ahead), send=True)
        got = await collect(drv, lambda g: any(v == 5.0 for _, v, _ in of(g, "p_float_t")))
        after = int(time.time() * 1000)
        ((ts, value, q),) = [s for s in of(got, "p_float_t") if s[1] == 5.0]
        assert before <= ts <= after and (value, q) == (5.0, GOOD)

    with caplog.at_level(logging.WARNING, logger="edge_agent.drivers.iec104.driver"):
        run_with(st, {"max_clock_skew_s": 60}, body)
    skew = [r.getMessage() for r in caplog.records if "ahead of this gateway's clock" in r.getMessage()]
    assert len(skew) == 1 and "values stamped on arrival (check station_utc_offset_h and both clocks)" in skew[0]


def test_time_source_gateway_ignores_the_tags() -> None:
    st = Station(free_port())
    initial(st)
    st.start()

    async def body(drv: Any) -> None:
        before = int(time.time() * 1000)
        got = await collect(drv, lambda g: bool(of(g, "e_export_t")))
        after = int(time.time() * 1000)
        ((ts, value, _),) = of(got, "e_export_t")  # the station's tag says 2026-12-07 10:00:04
        assert before <= ts <= after and value == -7.0

    run_with(st, {"time_source": "gateway"}, body)


def test_the_driver_needs_no_library_beyond_the_gateways() -> None:
    code = ("import sys\n"
            "import edge_agent.drivers.iec104.driver, edge_agent.drivers.iec104.scan\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'c104', 'pymodbus', 'asyncua', 'serial', "
            "'paho', 'lib60870'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cyclic_values_arrive_every_cycle_as_new_readings() -> None:
    """A station reporting a measured value cyclically (cause 1, periodic: here every 100 ms, lib60870's own
    timer); without a time tag each arrival is a reading at its arrival time."""
    port = free_port()
    server = c104.Server(ip="127.0.0.1", port=port, tick_rate_ms=50)
    st = server.add_station(common_address=1)
    st.add_point(io_address=100, type=c104.Type.M_ME_NC_1, report_ms=100).value = 12.5
    server.start()

    async def run() -> list[tuple[int, float | None, int]]:
        from edge_agent.drivers.iec104.driver import Iec104Driver

        drv = Iec104Driver(device(port, gi_period_s=None, ci_period_s=None))
        await drv.open()
        try:
            return of(await collect(drv, lambda g: len(of(g, "p_float")) >= 4), "p_float")
        finally:
            await drv.close()

    try:
        got = asyncio.run(run())
    finally:
        server.stop()
    assert {(v, q) for _, v, q in got} == {(12.5, GOOD)}
    stamps = [ts for ts, _, _ in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # one reading per cycle, in order
