"""The DL/T 645-2007 driver against a meter parkmon did not write: the ``dlt645`` package's meter side (PyPI,
Apache-2.0; a test dependency only), run as its own process on loopback TCP, as a meter behind a TCP serial
server. tests/test_dlt645.py talks to parkmon's simulated meter, built on the codec under test; here the frames
come from another implementation, so an address, BCD, sign or 0x33 mistake shared by both sides would show.

What the meter holds is written out below with its BCD bytes on the wire worked by hand (low byte first, each
data byte + 0x33 on the line; a signed value carries its sign in the top bit of the last byte).
"""

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
import yaml

from edge_agent.config import DeviceConfig, load_config
from edge_agent.drivers.base import Driver, Sample, create_driver
from parkmon.common import quality
from parkmon.common.netutil import free_port
from parkmon.common.quality import Reason
from tests.interop_peers import Peer

NAMEPLATE = "202401150007"
# A0..A5 on the wire, low byte first: 07 00 15 01 24 20. dlt645 3.2.0's set_address("...") takes its digits in
# wire order (A0 first), the reverse of the nameplate, so the meter is given these bytes instead
WIRE_ADDRESS = "070015012420"

# the meter: its own process, dlt645's MeterServerService; argv: a TCP port or a serial device, address bytes,
# {di: value}, the DIs it lacks. Each stdin line {"di": ..., "value": ...} sets one value and is answered "ok";
# the meter stops when its stdin closes.
METER = """
import json, sys
from dlt645 import MeterServerService
link, address, values, lacks = sys.argv[1], bytes.fromhex(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
if link.isdigit():
    meter = MeterServerService.new_tcp_server("127.0.0.1", int(link), 5.0)
else:  # DL/T 645's usual line: 2400 baud, 8 data bits, even parity, 1 stop bit
    meter = MeterServerService.new_rtu_server(link, 8, 1, 2400, "E", 1.0)
meter.set_address(address)
def put(di, value):
    return meter.set_00(di, value) if di >> 24 == 0 else meter.set_02(di, value)
for di, value in values.items():
    assert put(int(di, 16), value), di
for di in json.loads(lacks):
    del meter.data_map[int(di, 16)]
assert meter.server.start(), "the meter could not listen"
print("ready", link, flush=True)
for line in sys.stdin:
    change = json.loads(line)
    print("ok" if put(int(change["di"], 16), change["value"]) else "error", flush=True)
meter.server.stop()
"""

VALUES = {
    "00000000": 12345.67,  # combined active energy XXXXXX.XX: 01 23 45 67 -> 67 45 23 01
    "00010000": 12000.50,  # forward active energy: 01 20 00 50 -> 50 00 20 01
    "00020000": 345.17,  # reverse active energy: 00 03 45 17 -> 17 45 03 00
    "02010100": 231.4,  # phase A voltage XXX.X: 23 14 -> 14 23
    "02020100": -12.345,  # phase A current XXX.XXX signed: 01 23 45, sign bit -> 45 23 81
    "02030000": -45.6789,  # total active power XX.XXXX signed: 45 67 89, sign bit -> 89 67 C5
    "02060000": -0.987,  # total power factor X.XXX signed: 09 87, sign bit -> 87 89
    "02800002": 49.98,  # grid frequency XX.XX: 49 98 -> 98 49
}
LACKS = ["02010200"]  # a single-phase meter: no phase B voltage; it answers that read with an error frame (D1)

# point name, DI, metric, scale
POINTS = [("e_total", "00000000", "elec.load.energy", 1.0), ("e_import", "00010000", "elec.import.energy", 1.0),
          ("e_export", "00020000", "elec.export.energy", 1.0), ("ua", "02010100", "elec.voltage", 1.0),
          ("ub", "02010200", "elec.voltage", 1.0), ("ia", "02020100", "elec.current", 1.0),
          ("p", "02030000", "elec.active_power", 1.0),
          ("pf", "02060000", "elec.power_factor", 1.0), ("f", "02800002", "elec.frequency", 1.0)]

GOOD = quality.GOOD
EXPECTED: dict[str, tuple[float | None, int]] = {
    "m.e_total": (12345.67, GOOD), "m.e_import": (12000.5, GOOD), "m.e_export": (345.17, GOOD),
    "m.ua": (231.4, GOOD),
    "m.ub": (None, quality.bad(Reason.DEVICE_FAILURE)),  # the meter said no: this point alone is lost
    "m.ia": (-12.345, GOOD),
    "m.p": (-45.6789, GOOD),
    "m.pf": (-0.987, GOOD), "m.f": (49.98, GOOD),
}


def _start(link: int | Path) -> Peer:
    return Peer([sys.executable, "-c", METER, str(link), WIRE_ADDRESS, json.dumps(VALUES), json.dumps(LACKS)])


@pytest.fixture
def meter_port() -> Iterator[tuple[Peer, int]]:
    # the meter runs in its own process, but from this interpreter: the package must be installed here
    pytest.importorskip("dlt645", reason="the dlt645 package (PyPI) is a test dependency: ./dev.sh test installs it")
    port = free_port()
    meter = _start(port)
    try:
        yield meter, port
    finally:
        meter.stop()


def _device(tmp_path: Path, port: int | None, serial: Path | None = None) -> DeviceConfig:
    link: dict[str, object] = ({"host": "127.0.0.1", "port": port} if serial is None else
                               {"serial": {"device": str(serial), "baudrate": 2400, "parity": "E"}})
    config = {"gateway": {"park": "p1", "enterprise": "e1", "id": "gw1"},
              "devices": [{"id": "m", "driver": "dlt645", "meter_address": NAMEPLATE, "timeout_s": 2.0, **link,
                           "points": [{"name": n, "metric": m, "di": di, "scale": s} for n, di, m, s in POINTS]}]}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_config(path).devices[0]


def _values(samples: list[Sample]) -> dict[str, tuple[float | None, int]]:
    return {key: (value, q) for key, _, value, q in samples}


def test_readings_as_the_meter_sent_them(meter_port: tuple[Peer, int], tmp_path: Path) -> None:
    meter, port = meter_port
    driver = create_driver(_device(tmp_path, port))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(driver.open())
        assert _values(loop.run_until_complete(driver.read())) == EXPECTED
        # a new reading on the meter is the next cycle's value (energy 12345.68: 68 45 23 01 on the wire)
        meter.command(json.dumps({"di": "00000000", "value": 12345.68}))
        again = _values(loop.run_until_complete(driver.read()))
        assert again["m.e_total"] == (12345.68, GOOD)
    finally:
        loop.run_until_complete(driver.close())
        loop.close()


def test_meter_gone_then_back(meter_port: tuple[Peer, int], tmp_path: Path) -> None:
    meter, port = meter_port
    driver: Driver = create_driver(_device(tmp_path, port))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(driver.open())
        assert _values(loop.run_until_complete(driver.read()))["m.ua"] == (231.4, GOOD)
        meter.stop()  # the serial server's connection drops
        down = loop.run_until_complete(driver.read())
        assert {(value, q) for _, _, value, q in down} == {(None, quality.bad(Reason.COMM_FAILURE))}
        assert len(down) == len(POINTS), "every point is reported bad, none re-sent as fresh"
        meter = _start(port)  # the same meter again, on the same port
        assert _values(loop.run_until_complete(driver.read())) == EXPECTED
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
        meter.stop()


def test_readings_over_a_serial_line(tmp_path: Path) -> None:
    """The driver's serial path (pyserial) against the package's RTU meter, on a pseudo-terminal pair (socat)."""
    pytest.importorskip("dlt645", reason="the dlt645 package (PyPI) is a test dependency: ./dev.sh test installs it")
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (apt-get install socat): it makes the virtual serial line")
    gateway_end, meter_end = tmp_path / "ttyA", tmp_path / "ttyB"
    socat = subprocess.Popen(["socat", f"pty,raw,echo=0,link={gateway_end}", f"pty,raw,echo=0,link={meter_end}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meter: Peer | None = None
    try:
        deadline = time.monotonic() + 5
        while not (gateway_end.exists() and meter_end.exists()) and time.monotonic() < deadline:
            time.sleep(0.02)
        meter = _start(meter_end)
        driver = create_driver(_device(tmp_path, None, serial=gateway_end))

        async def go() -> list[Sample]:
            await driver.open()
            try:
                return await driver.read()
            finally:
                await driver.close()

        assert _values(asyncio.run(go())) == EXPECTED
    finally:
        if meter is not None:
            meter.stop()
        socat.terminate()
        socat.wait(5)
