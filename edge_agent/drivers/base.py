"""The driver seam: one small interface per kind of device link (STYLE.md point 1).

A driver is built from its device config, opens its link in ``open()``, and ``read()`` returns one
sample per configured point: a device that does not answer gives bad-quality samples with a
reason, never an exception and never the last value re-sent as fresh.
"""

from __future__ import annotations

from typing import Any, Protocol

from edge_agent.config import DeviceConfig
from parkmon.common.seams import resolve

Sample = tuple[str, int, float | None, int]  # (device.point, ts_ms, value, quality): parkmon.common.wire


class Driver(Protocol):
    device: DeviceConfig

    async def open(self) -> None: ...

    async def read(self) -> list[Sample]: ...

    async def close(self) -> None: ...


# name -> "module:Class"; a gateway imports only the drivers its config names.
DRIVERS: dict[str, str] = {
    "modbus_tcp": "edge_agent.drivers.modbus:ModbusDriver",
    "modbus_rtu": "edge_agent.drivers.modbus:ModbusDriver",
    "modbus_rtu_over_tcp": "edge_agent.drivers.modbus:ModbusDriver",
    "opcua": "edge_agent.drivers.opcua:OpcUaDriver",
    "dlt645": "edge_agent.drivers.dlt645:Dlt645Driver",
    "hj212": "edge_agent.drivers.hj212:Hj212Driver",
}


def create_driver(device: DeviceConfig, shared: dict[object, Any] | None = None) -> Driver:
    """``shared`` is one agent's place for links several devices use (a serial line, a DTU)."""
    driver: Driver = resolve(DRIVERS[device.driver])(device, {} if shared is None else shared)
    return driver
