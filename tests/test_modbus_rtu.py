"""Modbus RTU on a serial line with several units (multi-drop), and RTU over TCP (a 4G/Ethernet DTU).

The serial line is a real pseudo-terminal pair made by socat; the devices are a real pymodbus
serial server answering for units 1 and 2. Unit 3 is wired in the config but absent from the line."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus import FramerType

from edge_agent.config import parse_config
from edge_agent.drivers.base import create_driver
from parkmon.common import quality
from parkmon.common.quality import Reason
from tests.modbus_server import register_server

UNITS = {1: {"holding": {0: 2301, 1: 125}}, 2: {"holding": {0: 2287, 1: 90}}}


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (apt-get install socat): it makes the virtual serial line")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(5)


def _devices(driver: str, **link: object) -> list[dict[str, object]]:
    points = [{"name": "voltage", "metric": "elec.voltage", "address": 0, "scale": 0.1},
              {"name": "current", "metric": "elec.current", "address": 1, "scale": 0.1}]
    return [{"id": f"m{u}", "driver": driver, "unit": u, "timeout_s": 0.3, "points": points, **link}
            for u in (1, 2, 3)]


def _read_all(devices: list[dict[str, object]]) -> dict[str, tuple[float | None, int]]:
    cfg = parse_config({"gateway": {"park": "p", "enterprise": "e", "id": "g"}, "devices": devices})

    async def go() -> list[tuple[str, int, float | None, int]]:
        shared: dict[object, object] = {}
        drivers = [create_driver(d, shared) for d in cfg.devices]
        for d in drivers:
            await d.open()
        try:
            results = await asyncio.gather(*(d.read() for d in drivers))
        finally:
            for d in drivers:
                await d.close()
        assert len(shared) == 1, "all three units share one link"
        return [s for r in results for s in r]

    return {k: (v, q) for k, _ts, v, q in asyncio.run(go())}


def _check(got: dict[str, tuple[float | None, int]]) -> None:
    assert got["m1.voltage"] == (pytest.approx(230.1), quality.GOOD)
    assert got["m1.current"] == (pytest.approx(12.5), quality.GOOD)
    assert got["m2.voltage"] == (pytest.approx(228.7), quality.GOOD)
    assert got["m2.current"] == (pytest.approx(9.0), quality.GOOD)
    # the absent unit is bad with a link reason; it did not spoil its neighbours' readings
    assert got["m3.voltage"] == (None, quality.bad(Reason.COMM_FAILURE))


def test_rtu_multidrop_on_a_serial_line(serial_pair: tuple[str, str]) -> None:
    server_end, gateway_end = serial_pair
    with register_server(UNITS, serial_port=server_end):
        got = _read_all(_devices("modbus_rtu", serial={"device": gateway_end, "baudrate": 9600}))
    _check(got)


def test_rtu_over_tcp_through_a_dtu() -> None:
    with register_server(UNITS, framer=FramerType.RTU) as port:
        got = _read_all(_devices("modbus_rtu_over_tcp", host="127.0.0.1", port=port))
    _check(got)


def test_rtu_needs_serial_settings() -> None:
    from edge_agent.config import ConfigError

    with pytest.raises(ConfigError, match="driver modbus_rtu needs serial"):
        parse_config({"gateway": {"park": "p", "enterprise": "e", "id": "g"},
                      "devices": [{"id": "m", "driver": "modbus_rtu", "points": [
                          {"name": "v", "metric": "elec.voltage", "address": 0}]}]})


def test_scan_finds_the_units_on_a_line(serial_pair: tuple[str, str]) -> None:
    server_end, gateway_end = serial_pair
    with register_server(UNITS, serial_port=server_end):
        out = subprocess.run([sys.executable, "-m", "parkmon.cli", "edge", "scan", "--serial", gateway_end,
                              "--units", "1-5", "--timeout", "0.2"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["unit"] for line in out.stdout.splitlines()] == [1, 2]
    assert "2 unit(s) answered" in out.stderr


def test_scan_over_tcp_and_a_clear_error_without_a_link() -> None:
    with register_server(UNITS) as port:
        out = subprocess.run([sys.executable, "-m", "parkmon.cli", "edge", "scan", "--host", "127.0.0.1",
                              "--port", str(port), "--units", "1-3"], capture_output=True, text=True, timeout=60)
    assert [json.loads(line)["unit"] for line in out.stdout.splitlines()] == [1, 2]
    bad = subprocess.run([sys.executable, "-m", "parkmon.cli", "edge", "scan"], capture_output=True, text=True)
    assert bad.returncode == 2 and "give --host HOST" in bad.stderr
