"""Simulated DL/T 645-2007 meters behind a TCP serial server (several meters on one line).

Only the addressed meter answers; an address nobody has stays silent (as on a real RS-485 line);
a data identifier the meter does not hold gets the standard error reply (control 0xD1).
"""

from __future__ import annotations

import asyncio
import threading

from edge_agent import dlt645


class Dlt645Line:
    def __init__(self, port: int, meters: dict[str, dict[int, float]]) -> None:
        self.port = port
        self.meters = {a.upper(): dict(v) for a, v in meters.items()}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dlt645-line", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.requests = 0

    def set(self, address: str, di: int, value: float) -> None:
        self._loop.call_soon_threadsafe(self.meters[address.upper()].__setitem__, di, value)

    def _answer(self, frame: dlt645.Frame) -> bytes | None:
        if frame.control != dlt645.READ or len(frame.data) != 4:
            return None
        targets = list(self.meters) if frame.address == dlt645.WILDCARD else [frame.address]
        for address in targets:
            values = self.meters.get(address)
            if values is None:
                continue
            di = int.from_bytes(frame.data, "little")
            if di not in values:
                return dlt645.build(address, dlt645.READ_ERROR, b"\x02")  # 0x02: no data requested
            return dlt645.build(address, dlt645.READ_REPLY, frame.data + dlt645.encode_value(di, values[di]))
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        try:
            while chunk := await reader.read(256):
                buf += chunk
                need = dlt645.frame_length(buf)
                while need is not None and len(buf) >= need:
                    frame_bytes, buf = buf[:need], buf[need:]
                    self.requests += 1
                    try:
                        reply = self._answer(dlt645.parse(frame_bytes))
                    except dlt645.Dlt645Error:
                        reply = None  # a garbled frame gets no answer on a real line either
                    if reply:
                        writer.write(reply)
                        await writer.drain()
                    need = dlt645.frame_length(buf)
        finally:
            writer.close()

    def start(self) -> Dlt645Line:
        self._thread.start()

        async def up() -> None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

        asyncio.run_coroutine_threadsafe(up(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def down() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
