"""The OPC UA driver against a real asyncua server: subscription, status to quality, restart, polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from edge_agent.config import DeviceConfig
from edge_agent.drivers.opcua import OpcUaDriver
from parkmon.common import quality
from parkmon.common.netutil import free_port
from parkmon.common.quality import Reason
from simulators.opcua_server import OpcUaMeter, StatusCodes


def _device(meter: OpcUaMeter, mode: str) -> DeviceConfig:
    return DeviceConfig.model_validate({
        "id": "m1", "driver": "opcua", "endpoint": meter.endpoint, "opcua_mode": mode, "timeout_s": 1.0,
        "poll_interval_s": 0.2,
        "points": [{"name": "power", "metric": "elec.active_power", "node_id": meter.node_id("Power"),
                    "scale": 0.001},
                   {"name": "voltage", "metric": "elec.voltage", "node_id": meter.node_id("Voltage")}],
    })


def _drain(driver: OpcUaDriver, loop: asyncio.AbstractEventLoop, until: Any, timeout: float = 10) -> list[Any]:
    """Read every 0.2 s until ``until(samples so far)`` holds."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += loop.run_until_complete(driver.read())
        if until(got):
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out; samples so far: {got}")


def test_subscription_status_and_reconnect_after_restart() -> None:
    port = free_port()
    meter = OpcUaMeter(port, {"Power": 1000.0, "Voltage": 230.0}).start()
    loop = asyncio.new_event_loop()
    driver = OpcUaDriver(_device(meter, "subscription"))
    try:
        first = _drain(driver, loop, lambda s: any(k == "m1.power" for k, *_ in s))
        assert ("m1.power", pytest.approx(1.0), quality.GOOD) in [(k, v, q) for k, _, v, q in first]
        before = int(time.time() * 1000)
        meter.set("Power", 12500.0)
        changed = _drain(driver, loop, lambda s: any(v == pytest.approx(12.5) for _, _, v, _ in s))
        (ts,) = [t for k, t, v, _ in changed if v == pytest.approx(12.5)]
        assert ts >= before - 1000, "the sample carries the server's source timestamp"
        meter.set("Voltage", 0.0, StatusCodes.BadSensorFailure)
        bad = _drain(driver, loop, lambda s: any(k == "m1.voltage" for k, *_ in s))
        assert ("m1.voltage", None, quality.bad(Reason.SENSOR_FAILURE)) in [(k, v, q) for k, _, v, q in bad]

        meter.stop()
        down = loop.run_until_complete(driver.read())
        assert {(k, q) for k, _, _, q in down} == {("m1.power", quality.bad(Reason.COMM_FAILURE)),
                                                    ("m1.voltage", quality.bad(Reason.COMM_FAILURE))}
        meter = OpcUaMeter(port, {"Power": 2000.0, "Voltage": 231.0}).start()  # same port: a restart
        back = _drain(driver, loop, lambda s: any(v == pytest.approx(2.0) for _, _, v, _ in s), timeout=20)
        assert any(k == "m1.power" and q == quality.GOOD for k, _, _, q in back)
        assert driver.reconnects >= 2
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
        meter.stop()


def test_poll_mode_reads_every_point_each_cycle() -> None:
    meter = OpcUaMeter(free_port(), {"Power": 4200.0, "Voltage": 229.5}).start()
    loop = asyncio.new_event_loop()
    driver = OpcUaDriver(_device(meter, "poll"))
    try:
        samples = loop.run_until_complete(driver.read())
        assert {k: v for k, _, v, _ in samples} == {"m1.power": pytest.approx(4.2), "m1.voltage": pytest.approx(229.5)}
        assert all(q == quality.GOOD for *_, q in samples)
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
        meter.stop()


def test_poll_mode_says_a_node_the_server_does_not_have_is_a_configuration_error() -> None:
    # the server answers the read of an unknown node with BadNodeIdUnknown (0x80340000, OPC UA Part 4): the
    # point is bad with the reason to fix in the gateway's file, the other point unaffected
    meter = OpcUaMeter(free_port(), {"Power": 4200.0, "Voltage": 229.5}).start()
    loop = asyncio.new_event_loop()
    dev = _device(meter, "poll").model_dump()
    dev["points"][1]["node_id"] = "ns=2;s=NoSuchTag"
    driver = OpcUaDriver(DeviceConfig.model_validate(dev))
    try:
        samples = loop.run_until_complete(driver.read())
        assert {k: (v, q) for k, _, v, q in samples} == {"m1.power": (pytest.approx(4.2), quality.GOOD),
                                                          "m1.voltage": (None, quality.bad(Reason.CONFIG_ERROR))}
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
        meter.stop()
