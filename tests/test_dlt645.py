"""DL/T 645-2007: the codec against the verified frames of domain.md §7, and the driver against
simulated meters behind a real TCP serial server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from edge_agent import dlt645
from edge_agent.config import ConfigError, DeviceConfig, parse_config
from edge_agent.drivers.dlt645 import Dlt645Driver
from parkmon.common import quality
from parkmon.common.netutil import free_port
from parkmon.common.quality import Reason
from simulators.dlt645_meter import Dlt645Line

# verified frames, ../shared/reference/domain.md §7
READ_REQUEST = bytes.fromhex("68 37 03 00 92 81 39 68 11 04 33 33 34 33 38 16".replace(" ", ""))
READ_REPLY = bytes.fromhex("68 37 03 00 92 81 39 68 91 08 33 33 34 33 37 33 33 33 8C 16".replace(" ", ""))
WILDCARD_READ = bytes.fromhex("FE FE FE FE 68 AA AA AA AA AA AA 68 11 04 33 33 34 33 AE 16".replace(" ", ""))


def test_verified_frames() -> None:
    assert dlt645.build_read("398192000337", 0x00010000, preamble=False) == READ_REQUEST
    assert dlt645.build_read(dlt645.WILDCARD, 0x00010000) == WILDCARD_READ
    frame = dlt645.parse(READ_REPLY)
    assert (frame.address, frame.control) == ("398192000337", 0x91)
    assert dlt645.read_reply(frame, 0x00010000) == pytest.approx(0.04)  # 000000.04 kWh


@pytest.mark.parametrize(("frame", "message"), [
    (READ_REPLY[:-2] + b"\x00\x16", "checksum 0x00 does not match the computed 0x8c"),
    (READ_REPLY[:-1] + b"\x17", "expected 0x16"),
    (READ_REPLY[:6], "frame too short"),
    (b"\x01\x02", "no frame start"),
    (READ_REPLY[:7] + b"\x00" + READ_REPLY[8:], "expected the second 0x68"),
])
def test_bad_frames_say_what_is_wrong(frame: bytes, message: str) -> None:
    with pytest.raises(dlt645.Dlt645Error, match=message):
        dlt645.parse(frame)


@pytest.mark.parametrize(("di", "value"), [(0x00010000, 123456.78), (0x02010100, 229.8),
                                           (0x02020100, -5.125), (0x02030000, 12.3456), (0x02800002, 50.01)])
def test_value_formats_round_trip(di: int, value: float) -> None:
    assert dlt645.decode_value(di, dlt645.encode_value(di, value)) == pytest.approx(value)


def _device(port: int, address: str, points: list[tuple[str, str, str]]) -> DeviceConfig:
    return DeviceConfig.model_validate({
        "id": f"m{address[-2:]}", "driver": "dlt645", "host": "127.0.0.1", "port": port, "meter_address": address,
        "timeout_s": 0.5, "points": [{"name": n, "metric": m, "di": di} for n, m, di in points]})


def test_two_meters_on_one_line_and_a_missing_value() -> None:
    port = free_port()
    line = Dlt645Line(port, {
        "398192000337": {0x00010000: 12345.67, 0x02010100: 229.8, 0x02030000: -1.5},
        "000000000012": {0x00010000: 42.0},
    }).start()
    pts = [("import", "elec.import.energy", "00010000"), ("voltage", "elec.voltage", "02010100"),
           ("power", "elec.active_power", "02030000")]
    try:
        async def go() -> list[list[tuple[str, int, float | None, int]]]:
            shared: dict[object, object] = {}
            a = Dlt645Driver(_device(port, "398192000337", pts), shared)
            b = Dlt645Driver(_device(port, "000000000012", pts), shared)
            ghost = Dlt645Driver(_device(port, "999999999999", pts[:1]), shared)
            for d in (a, b, ghost):
                await d.open()
            try:
                return list(await asyncio.gather(a.read(), b.read(), ghost.read()))
            finally:
                for d in (a, b, ghost):
                    await d.close()

        first, second, ghost = asyncio.run(go())
    finally:
        line.stop()
    assert {k: (v, q) for k, _, v, q in first} == {
        "m37.import": (pytest.approx(12345.67), 0), "m37.voltage": (pytest.approx(229.8), 0),
        "m37.power": (pytest.approx(-1.5), 0)}
    got = {k: (v, q) for k, _, v, q in second}
    assert got["m12.import"] == (pytest.approx(42.0), quality.GOOD)
    # the meter does not hold the voltage: it said so (error reply), which is a device answer, not silence
    assert got["m12.voltage"] == (None, quality.bad(Reason.DEVICE_FAILURE))
    # nobody has that address: silence, a link-level failure
    assert [(k, q) for k, _, _, q in ghost] == [("m99.import", quality.bad(Reason.COMM_FAILURE))]


def test_config_needs_address_and_known_dis() -> None:
    gw = {"park": "p", "enterprise": "e", "id": "g"}
    with pytest.raises(ConfigError, match="needs meter_address"):
        parse_config({"gateway": gw, "devices": [{"id": "m", "driver": "dlt645", "points": [
            {"name": "x", "metric": "elec.import.energy", "di": "00010000"}]}]})
    with pytest.raises(ConfigError, match="need a di parkmon can decode"):
        parse_config({"gateway": gw, "devices": [{"id": "m", "driver": "dlt645", "meter_address": "398192000337",
                                                   "points": [{"name": "x", "metric": "elec.import.energy",
                                                               "di": "04000101"}]}]})


def test_random_and_mutated_bytes_never_crash_the_parser() -> None:
    import random

    rng = random.Random(645)
    inputs = [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(2000)]
    for _ in range(2000):  # one byte of a valid reply changed
        b = bytearray(READ_REPLY)
        b[rng.randrange(len(b))] = rng.randrange(256)
        inputs.append(bytes(b))
    for data in inputs:
        try:
            frame = dlt645.parse(data)
        except dlt645.Dlt645Error:
            continue
        with contextlib.suppress(dlt645.Dlt645Error):
            dlt645.read_reply(frame, 0x00010000)


def test_meter_on_a_serial_line(tmp_path: object) -> None:
    """The driver's serial path: a real pseudo-terminal pair (socat), a meter answering on one end."""
    import shutil
    import subprocess
    import threading
    import time
    from pathlib import Path

    import serial  # type: ignore[import-untyped]

    if shutil.which("socat") is None:
        pytest.skip("socat is not installed (apt-get install socat): it makes the virtual serial line")
    a, b = Path(str(tmp_path)) / "ttyA", Path(str(tmp_path)) / "ttyB"
    socat = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    line = Dlt645Line(0, {"398192000337": {0x00010000: 777.77, 0x02800002: 50.02}})  # the answering logic only
    stop = threading.Event()

    opened = threading.Event()

    def meter() -> None:
        port = serial.Serial(str(a), 2400, parity="E", timeout=0.05)
        opened.set()  # pyserial flushes the input on open: a request sent before this would be lost
        buf = b""
        while not stop.is_set():
            buf += bytes(port.read(64))
            need = dlt645.frame_length(buf)
            if need is not None and len(buf) >= need:
                reply = line._answer(dlt645.parse(buf[:need]))
                buf = buf[need:]
                if reply:
                    port.write(reply)
        port.close()

    t = threading.Thread(target=meter, daemon=True)
    t.start()
    assert opened.wait(5), "the simulated meter could not open its end of the serial line"
    try:
        dev = DeviceConfig.model_validate({
            "id": "m", "driver": "dlt645", "meter_address": "398192000337", "timeout_s": 1.0,
            "serial": {"device": str(b), "baudrate": 2400, "parity": "E"},
            "points": [{"name": "import", "metric": "elec.import.energy", "di": "00010000"},
                       {"name": "freq", "metric": "elec.frequency", "di": "02800002"}]})

        async def go() -> list[tuple[str, int, float | None, int]]:
            drv = Dlt645Driver(dev)
            await drv.open()
            try:
                return await drv.read()
            finally:
                await drv.close()

        got = {k: (v, q) for k, _, v, q in asyncio.run(go())}
    finally:
        stop.set()
        t.join(5)
        socat.terminate()
        socat.wait(5)
    assert got == {"m.import": (pytest.approx(777.77), quality.GOOD), "m.freq": (pytest.approx(50.02), quality.GOOD)}
