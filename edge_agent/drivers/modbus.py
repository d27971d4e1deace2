"""Modbus TCP driver (pymodbus): coalesced block reads, exception replies split down to the bad point."""

from __future__ import annotations

import logging
import time
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from parkmon import quality
from parkmon.quality import Reason

from ..coalesce import Block, plan_reads, split
from ..config import DeviceConfig
from ..registers import decode_bit, decode_words
from .base import Sample

log = logging.getLogger(__name__)


class _ExceptionReply(Exception):
    """The device answered with a Modbus exception (illegal address, device failure ...)."""


class ModbusTcpDriver:
    def __init__(self, device: DeviceConfig) -> None:
        self.device = device
        self.blocks = plan_reads(list(device.points), device.max_block, device.max_gap)
        self._client: AsyncModbusTcpClient | None = None
        self.requests = 0  # requests sent, for health figures and the benchmark

    async def open(self) -> None:
        # retries=0: the poll cycle is the retry; a dead device must not hold the others up
        self._client = AsyncModbusTcpClient(
            self.device.host, port=self.device.port, timeout=self.device.timeout_s, retries=0,
            reconnect_delay=0,
        )

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def _ensure_connected(self) -> AsyncModbusTcpClient:
        assert self._client is not None, "open() first"
        if not self._client.connected:
            await self._client.connect()
        if not self._client.connected:
            raise ConnectionError(f"cannot connect to {self.device.host}:{self.device.port}")
        return self._client

    async def _request(self, block: Block) -> Any:
        client = await self._ensure_connected()
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
            raise _ExceptionReply(str(rr))
        return rr

    def _decode(self, block: Block, rr: Any, ts: int) -> list[Sample]:
        out: list[Sample] = []
        dev = self.device.id
        for p in block.points:
            off = p.address - block.start
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
        except _ExceptionReply:
            parts = split(block)
            if not parts:
                return self._bad(block, now_ms(), Reason.DEVICE_FAILURE)
            out: list[Sample] = []
            for part in parts:
                out.extend(await self._read_block(part))
            return out
        return self._decode(block, rr, now_ms())

    async def read(self) -> list[Sample]:
        out: list[Sample] = []
        for i, block in enumerate(self.blocks):
            try:
                out.extend(await self._read_block(block))
            except (ConnectionError, ModbusException, TimeoutError, OSError) as exc:
                # the device is gone: every point of it is bad now, none re-sent as fresh
                log.debug("%s: %s", self.device.id, exc)
                ts = now_ms()
                for rest in self.blocks[i:]:
                    out.extend(self._bad(rest, ts, Reason.COMM_FAILURE))
                if self._client is not None:
                    self._client.close()
                break
        return out


def now_ms() -> int:
    return time.time_ns() // 1_000_000
