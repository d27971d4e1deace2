"""Modbus driver (pymodbus): TCP, RTU on a serial line, RTU over TCP.

Devices that share a physical link — the units on one RS-485 line, or behind one serial server
or 4G DTU — share one client and take turns (a half-duplex bus carries one request at a time).
Each device's points are read in coalesced blocks; an exception reply splits the block until only
the bad registers are lost. pymodbus is imported when a link is first built: checking a config needs
only the settings below.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from edge_agent.coalesce import Block, plan_reads, split
from edge_agent.config import DeviceConfig, SerialConfig
from edge_agent.drivers.base import Sample
from edge_agent.registers import decode_bit, decode_words
from parkmon.common import quality
from parkmon.common.clock import now_ms
from parkmon.common.quality import Reason

if TYPE_CHECKING:
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

log = logging.getLogger(__name__)


class ModbusConfig(DeviceConfig):
    """modbus_tcp: Modbus TCP; modbus_rtu: RTU on a serial line; modbus_rtu_over_tcp: RTU frames through a
    TCP serial server / 4G DTU (several unit ids behind one connection)."""

    label: ClassVar[str] = ("Modbus TCP; RTU on an RS-485 line (serial:); RTU through a serial server or 4G DTU "
                            "(Modbus 仪表: TCP、RS-485 串口、DTU 透传)")

    driver: Literal["modbus_tcp", "modbus_rtu", "modbus_rtu_over_tcp"] = "modbus_tcp"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    serial: SerialConfig | None = None
    unit: Annotated[int, Field(ge=0, le=255)] = 1
    max_block: Annotated[int, Field(ge=1, le=125)] = 125  # registers per request
    max_gap: Annotated[int, Field(ge=0, le=124)] = 8  # unused registers bridged when coalescing

    def check_driver(self) -> None:
        if self.driver == "modbus_rtu" and self.serial is None:
            raise ValueError("driver modbus_rtu needs serial: {device: /dev/ttyUSB0, baudrate: 9600, ...}")
        if self.driver != "modbus_rtu" and self.serial is not None:
            raise ValueError(f"serial settings are for drivers modbus_rtu and dlt645, not {self.driver}")
        missing = [p.name for p in self.points if p.address is None]
        if missing:
            raise ValueError(f"Modbus points need an address: {', '.join(missing)}")

    @property
    def link(self) -> str:
        return f"{self.serial.device if self.serial else f'{self.host}:{self.port}'} unit {self.unit}"

    def describe(self, every_s: float) -> list[str]:
        blocks = plan_reads(list(self.points), self.max_block, self.max_gap)
        lines = [f"device {self.id} {self.name!r} {self.driver} {self.link}: "
                 f"{len(self.points)} points in {len(blocks)} request(s) every {every_s} s"]
        lines += [f"  {self.id}.{p.name:<14} {p.metric:<26} {p.table:<8} @{p.address:<5} {p.type:<8} "
                  f"{p.order} x{p.scale:g}{p.offset:+g} [{p.resolved_unit}] {p.label}" for p in self.points]
        return lines


# a gateway that answers for a unit behind it that did not answer: that is a link failure
_NO_ANSWER_CODES = {0x0A, 0x0B}


class _ExceptionReply(Exception):
    """The device answered with a Modbus exception (illegal address, device failure ...)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


class Bus:
    """One link (TCP connection, serial line, DTU) and the lock that serialises its requests."""

    def __init__(self, device: ModbusConfig) -> None:
        from pymodbus import FramerType
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

        self.lock = asyncio.Lock()
        self.users = 0
        # retries=0: the poll cycle is the retry; a dead device must not hold the others up
        if device.driver == "modbus_rtu":
            assert device.serial is not None
            s = device.serial
            self.client: AsyncModbusTcpClient | AsyncModbusSerialClient = AsyncModbusSerialClient(
                s.device, framer=FramerType.RTU, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity,
                stopbits=s.stopbits, timeout=device.timeout_s, retries=0, reconnect_delay=0,
            )
            self.name = s.device
        else:
            framer = FramerType.RTU if device.driver == "modbus_rtu_over_tcp" else FramerType.SOCKET
            self.client = AsyncModbusTcpClient(device.host, port=device.port, framer=framer,
                                               timeout=device.timeout_s, retries=0, reconnect_delay=0)
            self.name = f"{device.host}:{device.port}"

    @staticmethod
    def key(device: ModbusConfig) -> tuple[str, ...]:
        if device.driver == "modbus_rtu":
            assert device.serial is not None
            return ("modbus", "serial", device.serial.device)
        return ("modbus", device.driver, device.host, str(device.port))

    async def connected(self) -> Any:
        if not self.client.connected:
            await self.client.connect()
        if not self.client.connected:
            raise ConnectionError(f"cannot open {self.name}")
        return self.client


class ModbusDriver:
    config: ClassVar[type[ModbusConfig]] = ModbusConfig

    def __init__(self, device: ModbusConfig, shared: dict[object, Any] | None = None) -> None:
        self.device = device
        self.blocks = plan_reads(list(device.points), device.max_block, device.max_gap)
        shared = {} if shared is None else shared
        bus = shared.get(Bus.key(device))
        if bus is None:
            bus = shared[Bus.key(device)] = Bus(device)
        self.bus: Bus = bus
        self.requests = 0  # requests sent, for health figures and the benchmark

    async def open(self) -> None:
        self.bus.users += 1

    async def close(self) -> None:
        self.bus.users -= 1
        if self.bus.users <= 0:
            self.bus.client.close()

    async def _request(self, block: Block) -> Any:
        client = await self.bus.connected()
        self.requests += 1
        count, unit = block.count, self.device.unit
        if block.table == "holding":
            rr = await client.read_holding_registers(block.start, count=count, device_id=unit)
        elif block.table == "input":
            rr = await client.read_input_registers(block.start, count=count, device_id=unit)
        elif block.table == "coil":
            rr = await client.read_coils(block.start, count=count, device_id=unit)
        else:
            rr = await client.read_discrete_inputs(block.start, count=count, device_id=unit)
        if rr.isError():
            raise _ExceptionReply(int(getattr(rr, "exception_code", 0)), str(rr))
        return rr

    def _decode(self, block: Block, rr: Any, ts: int) -> list[Sample]:
        out: list[Sample] = []
        dev = self.device.id
        for p in block.points:
            off = (p.address or 0) - block.start
            if block.table in ("coil", "discrete"):
                value, q = decode_bit(p, bool(rr.bits[off]))
            else:
                sf = (rr.registers[p.scale_factor_address - block.start]
                      if p.scale_factor_address is not None else None)
                value, q = decode_words(p, rr.registers[off : off + p.registers], sf)
            out.append((f"{dev}.{p.name}", ts, value, q))
        return out

    def _bad(self, block: Block, ts: int, why: Reason) -> list[Sample]:
        q = quality.bad(why)
        return [(f"{self.device.id}.{p.name}", ts, None, q) for p in block.points]

    async def _read_block(self, block: Block) -> list[Sample]:
        try:
            rr = await self._request(block)
        except _ExceptionReply as exc:
            if exc.code in _NO_ANSWER_CODES:
                raise ConnectionError(f"gateway reports unit {self.device.unit} not answering") from None
            parts = split(block)
            if not parts:
                return self._bad(block, now_ms(), Reason.DEVICE_FAILURE)
            out: list[Sample] = []
            for part in parts:
                out.extend(await self._read_block(part))
            return out
        return self._decode(block, rr, now_ms())

    async def read(self) -> list[Sample]:
        from pymodbus.exceptions import ModbusException  # loaded with the link already: a lookup

        out: list[Sample] = []
        async with self.bus.lock:
            for i, block in enumerate(self.blocks):
                try:
                    out.extend(await self._read_block(block))
                except (ConnectionError, ModbusException, TimeoutError, OSError) as exc:
                    # the device is gone: every point of it is bad now, none re-sent as fresh
                    log.debug("%s: %s", self.device.id, exc)
                    ts = now_ms()
                    for rest in self.blocks[i:]:
                        out.extend(self._bad(rest, ts, Reason.COMM_FAILURE))
                    if not isinstance(exc, ConnectionError) or not self.bus.client.connected:
                        self.bus.client.close()  # a fresh connection next cycle
                    break
        return out


# the name the first version used
ModbusTcpDriver = ModbusDriver


