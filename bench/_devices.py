"""Bench helper: N Modbus TCP servers, each answering for U units of 25 float32 holding values.

Values change every second. Prints one line of JSON with the ports, then serves until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymodbus.client import ModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from parkmon.common.netutil import free_port

VALUES = 25


def words(t: float, unit: int) -> list[int]:
    out: list[int] = []
    for i in range(VALUES):
        v = 100.0 * math.sin(t / 10 + unit + i) + unit
        out += ModbusTcpClient.convert_to_registers(v, ModbusTcpClient.DATATYPE.FLOAT32)
    return out


async def main(servers: int, units: int) -> None:
    ports = [free_port() for _ in range(servers)]
    srvs = []
    tasks = []
    for port in ports:
        devs = [SimDevice(id=u, simdata=[SimData(0, count=2 * VALUES, values=0, datatype=DataType.REGISTERS)])
                for u in range(1, units + 1)]
        srv = ModbusTcpServer(devs, address=("127.0.0.1", port))
        srvs.append(srv)
        tasks.append(asyncio.create_task(srv.serve_forever()))
    await asyncio.sleep(0.5)
    print(json.dumps({"ports": ports, "units": units}), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    while not stop.is_set():
        t = time.time()
        for srv in srvs:
            for u in range(1, units + 1):
                await srv.context.async_setValues(u, 3, 0, words(t, u))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    for srv in srvs:
        await srv.shutdown()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
