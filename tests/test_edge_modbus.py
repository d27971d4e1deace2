"""The Modbus TCP driver against a real pymodbus server: decoding, coalescing, faults."""

from __future__ import annotations

import asyncio
import struct
import time

from edge_agent.config import DeviceConfig
from edge_agent.drivers.modbus import ModbusTcpDriver
from parkmon.common import quality
from parkmon.common.quality import Reason
from tests.modbus_server import free_port, register_server


def _read(device: DeviceConfig) -> tuple[list[tuple[str, int, float | None, int]], int]:
    async def go() -> tuple[list[tuple[str, int, float | None, int]], int]:
        drv = ModbusTcpDriver(device)
        await drv.open()
        try:
            return await drv.read(), drv.requests
        finally:
            await drv.close()

    return asyncio.run(go())


def test_grid_meter_profile_read_in_one_request() -> None:
    # import 123456.78 kWh -> uint32 12345678 = 0x00BC614E; power 250.5 kW float32 0x437A8000 sent CDAB
    power = struct.pack(">f", 250.5)
    regs = {0: 0x00BC, 1: 0x614E, 2: 0, 3: 42, 4: int.from_bytes(power[2:], "big"), 5: int.from_bytes(power[:2], "big")}
    with register_server({3: {"holding": regs}}) as port:
        dev = DeviceConfig.model_validate({"id": "grid", "port": port, "unit": 3, "points": [
            {"name": "import", "metric": "elec.import.energy", "address": 0, "type": "uint32", "scale": 0.01},
            {"name": "export", "metric": "elec.export.energy", "address": 2, "type": "uint32", "scale": 0.01},
            {"name": "power", "metric": "elec.active_power", "address": 4, "type": "float32", "order": "CDAB"},
        ]})
        samples, requests = _read(dev)
    values = {s[0]: s[2] for s in samples}
    assert values == {"grid.import": 123456.78, "grid.export": 0.42, "grid.power": 250.5}
    assert requests == 1, "three points in six adjacent registers must cost one request"
    assert all(q == quality.GOOD for *_, q in samples)


def test_exception_reply_loses_only_the_bad_register() -> None:
    # the server has 100 registers; the point at 110 gets "illegal data address"
    with register_server({1: {"holding": {0: 7, 1: 8}, "input": {5: 99}}}) as port:
        dev = DeviceConfig.model_validate({"id": "m", "port": port, "max_gap": 120, "points": [
            {"name": "a", "metric": "water.flow", "address": 0},
            {"name": "b", "metric": "water.flow", "address": 1},
            {"name": "missing", "metric": "water.flow", "address": 110},
            {"name": "c", "metric": "water.flow", "table": "input", "address": 5},
        ]})
        samples, _ = _read(dev)
    got = {s[0]: (s[2], s[3]) for s in samples}
    assert got["m.a"] == (7.0, quality.GOOD)
    assert got["m.b"] == (8.0, quality.GOOD)
    assert got["m.c"] == (99.0, quality.GOOD)
    assert got["m.missing"] == (None, quality.bad(Reason.DEVICE_FAILURE))


def test_unreachable_device_gives_bad_samples_fast_and_others_unaffected() -> None:
    dead_port = free_port()  # nothing listens here
    with register_server({1: {"holding": {0: 1}}}) as port:
        live = DeviceConfig.model_validate({"id": "live", "port": port, "points": [
            {"name": "x", "metric": "water.flow", "address": 0}]})
        dead = DeviceConfig.model_validate({"id": "dead", "port": dead_port, "timeout_s": 0.5, "points": [
            {"name": "x", "metric": "water.flow", "address": 0},
            {"name": "y", "metric": "water.flow", "address": 9},
        ]})

        async def both() -> list[list[tuple[str, int, float | None, int]]]:
            drivers = [ModbusTcpDriver(live), ModbusTcpDriver(dead)]
            for d in drivers:
                await d.open()
            try:
                return list(await asyncio.gather(*(d.read() for d in drivers)))
            finally:
                for d in drivers:
                    await d.close()

        t0 = time.monotonic()
        live_samples, dead_samples = asyncio.run(both())
        elapsed = time.monotonic() - t0
    assert [(s[0], s[2], s[3]) for s in live_samples] == [("live.x", 1.0, quality.GOOD)]
    assert [(s[0], s[2], s[3]) for s in dead_samples] == [
        ("dead.x", None, quality.bad(Reason.COMM_FAILURE)),
        ("dead.y", None, quality.bad(Reason.COMM_FAILURE)),
    ]
    assert elapsed < 3, f"a dead device held the cycle up for {elapsed:.1f} s"
