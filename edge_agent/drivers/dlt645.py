"""DL/T 645-2007 driver: read each point's data identifier from a meter, over a serial line or a
TCP serial server. Meters on one line share it and take turns (the line is half-duplex)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from edge_agent import dlt645
from edge_agent.config import DeviceConfig, SerialConfig
from edge_agent.drivers.base import Sample
from parkmon.common import quality
from parkmon.common.clock import now_ms
from parkmon.common.quality import Reason

log = logging.getLogger(__name__)


class Dlt645Config(DeviceConfig):
    """A DL/T 645-2007 meter, on a serial line (serial) or through a TCP serial server (host/port)."""

    label: ClassVar[str] = ("DL/T 645-2007 meters on a serial line or through a TCP serial server "
                            "(多功能电能表, 串口或串口服务器)")

    driver: Literal["dlt645"] = "dlt645"
    meter_address: Annotated[str | None, Field(pattern=r"^([0-9]{12}|[Aa]{12})$")] = None
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    serial: SerialConfig | None = None

    def check_driver(self) -> None:
        if not self.meter_address:
            raise ValueError("driver dlt645 needs meter_address: the 12 digits on the meter's nameplate")
        for p in self.points:
            if p.di is None or int(p.di, 16) not in dlt645.FORMATS:
                known = ", ".join(f"{d:08X}" for d in dlt645.FORMATS)
                raise ValueError(f"point {p.name!r}: DL/T 645 points need a di parkmon can decode ({known})")

    @property
    def link(self) -> str:
        return f"{self.serial.device if self.serial else f'{self.host}:{self.port}'} meter {self.meter_address}"

    def describe(self, every_s: float) -> list[str]:
        lines = [f"device {self.id} {self.name!r} dlt645 {self.link}: {len(self.points)} points every {every_s} s"]
        lines += [f"  {self.id}.{p.name:<14} {p.metric:<26} di {p.di} x{p.scale:g}{p.offset:+g} "
                  f"[{p.resolved_unit}] {p.label}" for p in self.points]
        return lines


class _Link:
    """One TCP connection or serial port and the lock that serialises its exchanges."""

    def __init__(self, device: Dlt645Config) -> None:
        self.device = device
        self.lock = asyncio.Lock()
        self.users = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._serial: Any = None

    async def exchange(self, frame: bytes, within_s: float) -> bytes:
        if self.device.serial is not None:
            return await asyncio.to_thread(self._serial_exchange, frame, within_s)
        if self._writer is None or self._reader is None:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.device.host, self.device.port), within_s)
            self._reader, self._writer = reader, writer
        else:
            reader, writer = self._reader, self._writer
        writer.write(frame)
        await writer.drain()
        buf = b""
        deadline = time.monotonic() + within_s
        while True:
            need = dlt645.frame_length(buf)
            if need is not None and len(buf) >= need:
                return buf[:need]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete reply")
            chunk = await asyncio.wait_for(reader.read(256), left)
            if not chunk:
                raise ConnectionError("the serial server closed the connection")
            buf += chunk

    def _serial_exchange(self, frame: bytes, timeout: float) -> bytes:
        import serial  # type: ignore[import-untyped]  # pyserial, only for meters on a local serial port

        if self._serial is None:
            s = self.device.serial
            assert s is not None
            self._serial = serial.Serial(s.device, s.baudrate, bytesize=s.bytesize, parity=s.parity,
                                         stopbits=s.stopbits, timeout=0.05)
        port = self._serial
        port.reset_input_buffer()
        port.write(frame)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            buf += bytes(port.read(256))
            need = dlt645.frame_length(buf)
            if need is not None and len(buf) >= need:
                return buf[:need]
        raise TimeoutError("no complete reply")

    async def reset(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None
        if self._serial is not None:
            self._serial.close()
            self._serial = None


class Dlt645Driver:
    config: ClassVar[type[Dlt645Config]] = Dlt645Config

    def __init__(self, device: Dlt645Config, shared: dict[object, Any] | None = None) -> None:
        self.device = device
        assert device.meter_address is not None
        self.address = device.meter_address.upper()
        shared = {} if shared is None else shared
        key = ("dlt645", device.serial.device if device.serial else f"{device.host}:{device.port}")
        link = shared.get(key)
        if link is None:
            link = shared[key] = _Link(device)
        self.link: _Link = link
        self.requests = 0

    async def open(self) -> None:
        self.link.users += 1

    async def close(self) -> None:
        self.link.users -= 1
        if self.link.users <= 0:
            await self.link.reset()

    async def read(self) -> list[Sample]:
        out: list[Sample] = []
        async with self.link.lock:
            for i, p in enumerate(self.device.points):
                di = int(p.di or "0", 16)
                key = f"{self.device.id}.{p.name}"
                try:
                    self.requests += 1
                    raw = await self.link.exchange(dlt645.build_read(self.address, di), self.device.timeout_s)
                    ts = now_ms()
                    frame = dlt645.parse(raw)
                    if frame.address != self.address and self.address != dlt645.WILDCARD:
                        raise dlt645.Dlt645Error(f"reply from meter {frame.address}, asked {self.address}")
                    value = dlt645.read_reply(frame, di) * p.scale + p.offset
                    out.append((key, ts, value, quality.GOOD))
                except dlt645.Dlt645Error as exc:  # the meter answered, but not with this value
                    log.debug("%s: %s", key, exc)
                    out.append((key, now_ms(), None, quality.bad(Reason.DEVICE_FAILURE)))
                except (TimeoutError, ConnectionError, OSError) as exc:
                    log.debug("%s: %s", self.device.id, exc)
                    await self.link.reset()
                    ts = now_ms()
                    out += [(f"{self.device.id}.{q.name}", ts, None, quality.bad(Reason.COMM_FAILURE))
                            for q in self.device.points[i:]]
                    break
        return out
