"""Find which unit ids answer on a Modbus link (``parkmon edge scan``).

A unit that answers — with data or with a Modbus exception — is there; silence until the timeout
means no unit at that id. Units are tried one at a time, as a half-duplex RS-485 line requires.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException


@dataclass(frozen=True)
class Found:
    unit: int
    answer: str  # "data" or the exception the unit replied with


Client = AsyncModbusTcpClient | AsyncModbusSerialClient


async def scan(make_client: Callable[[], Client], units: Iterable[int], address: int = 0,
               table: str = "holding", progress: Callable[[int], None] | None = None) -> list[Found]:
    client = make_client()  # pymodbus binds a client to the running event loop
    await client.connect()
    if not client.connected:
        raise ConnectionError("cannot open the link: check host/port or serial device and permissions")
    found: list[Found] = []
    try:
        for unit in units:
            if progress:
                progress(unit)
            try:
                if table == "input":
                    rr = await client.read_input_registers(address, count=1, device_id=unit)
                else:
                    rr = await client.read_holding_registers(address, count=1, device_id=unit)
            except (ModbusException, TimeoutError, OSError):
                if not client.connected:  # a TCP peer that hangs up on unknown units
                    await client.connect()
                continue
            code = getattr(rr, "exception_code", None)
            if code in (0x0A, 0x0B):  # a gateway saying nobody answered behind it
                continue
            found.append(Found(unit, f"exception {code}" if rr.isError() else "data"))
    finally:
        client.close()
    return found


def make_client(host: str | None, port: int, serial: str | None, baudrate: int, parity: str,
                rtu_over_tcp: bool, timeout: float) -> Client:
    if serial:
        return AsyncModbusSerialClient(serial, framer=FramerType.RTU, baudrate=baudrate, parity=parity,
                                       timeout=timeout, retries=0, reconnect_delay=0)
    framer = FramerType.RTU if rtu_over_tcp else FramerType.SOCKET
    return AsyncModbusTcpClient(host or "127.0.0.1", port=port, framer=framer, timeout=timeout, retries=0,
                                reconnect_delay=0)


def parse_units(text: str) -> list[int]:
    """'1-10,20' -> [1..10, 20]; ids must be 1-247."""
    units: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"--units {text!r}: expected ranges like 1-10,20") from None
        if not 1 <= a <= b <= 247:
            raise ValueError(f"--units {text!r}: unit ids run from 1 to 247")
        units.extend(range(a, b + 1))
    return units
