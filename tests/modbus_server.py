"""A real pymodbus TCP server with fixed register contents, on a free loopback port, in a thread.

Driver tests use it to check decoding against register images written out by hand; the whole-park
simulator in ``simulators/`` serves the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymodbus import FramerType
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from parkmon.common.netutil import free_port

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)




def _block(values: dict[int, int], size: int) -> ModbusSequentialDataBlock:
    regs = [0] * size
    for addr, v in values.items():
        regs[addr] = v
    return ModbusSequentialDataBlock(1, regs)  # block address 1 serves protocol address 0


@contextmanager
def register_server(units: dict[int, dict[str, dict[int, int]]], size: int | None = None,
                    framer: FramerType = FramerType.SOCKET, serial_port: str | None = None) -> Iterator[int]:
    """``units = {unit: {"holding": {addr: word}, "input": {...}, "coil": {...}, "discrete": {...}}}``.

    Each table holds ``size`` addresses (default: 100, or up to the highest address given plus
    ten); reading past them gets an "illegal address" exception reply. Yields the TCP port; with
    ``serial_port`` the server speaks RTU on that serial device instead (and yields 0).
    """
    port = free_port()
    top = max((a for t in units.values() for table in t.values() for a in table), default=0)
    size = size or max(100, top + 10)
    devices = {
        unit: ModbusDeviceContext(
            hr=_block(t.get("holding", {}), size), ir=_block(t.get("input", {}), size),
            co=_block(t.get("coil", {}), size), di=_block(t.get("discrete", {}), size),
        )
        for unit, t in units.items()
    }
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: list[ModbusTcpServer | ModbusSerialServer] = []

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            # pymodbus binds the server to the loop it is built in
            context = ModbusServerContext(devices=devices, single=False)
            server: ModbusTcpServer | ModbusSerialServer
            if serial_port:
                # an absent unit on a real line stays silent rather than answering with an error
                server = ModbusSerialServer(context, port=serial_port, framer=FramerType.RTU, baudrate=9600,
                                            ignore_missing_devices=True)
            else:
                server = ModbusTcpServer(context, address=("127.0.0.1", port), framer=framer,
                                         ignore_missing_devices=True)
            _silent_for_absent_units(server)
            holder.append(server)
            task = asyncio.create_task(server.serve_forever())
            ready.set()
            await task

        loop.run_until_complete(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    if serial_port:
        time.sleep(0.3)  # the serial server opens its port asynchronously
    else:
        _wait_listening(port)
    try:
        yield 0 if serial_port else port
    finally:
        asyncio.run_coroutine_threadsafe(holder[0].shutdown(), loop).result(5)
        thread.join(5)
        loop.close()


def _wait_listening(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"modbus test server did not listen on {port}")


def _silent_for_absent_units(server: ModbusTcpServer | ModbusSerialServer) -> None:
    """pymodbus 3.16's datastore raises KeyError for a unit it does not hold, which the server turns
    into a "device failure" reply; on a real RS-485 line an absent unit is silent. Raise the
    exception the server's ``ignore_missing_devices`` option expects instead."""
    context: Any = server.context
    known = set(context.device_ids())
    get_values = context.async_getValues

    async def checked(device_id: int, *args: Any) -> Any:
        if device_id not in known:
            raise NoSuchIdException(device_id)
        return await get_values(device_id, *args)

    context.async_getValues = checked
