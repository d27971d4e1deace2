"""A simulated OPC UA meter (asyncua server) for the driver tests and demos.

Variables live under ``ns=2;s=<object>.<name>`` so configs can name them the way plants do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from asyncua.server.server import Server
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uatypes import DataValue, StatusCode, Variant, VariantType

logging.getLogger("asyncua").setLevel(logging.ERROR)

__all__ = ["OpcUaMeter", "StatusCodes"]


class OpcUaMeter:
    """An OPC UA server with one object of float variables, on its own event loop thread."""

    def __init__(self, port: int, values: dict[str, float], obj: str = "Meter1") -> None:
        self.port, self.obj, self.initial = port, obj, dict(values)
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/parkmon/"
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._vars: dict[str, Any] = {}

    def node_id(self, name: str) -> str:
        return f"ns=2;s={self.obj}.{name}"

    async def _start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        idx = await server.register_namespace("urn:parkmon:simulator")
        obj = await server.nodes.objects.add_object(f"ns={idx};s={self.obj}", self.obj)
        for name, value in self.initial.items():
            self._vars[name] = await obj.add_variable(self.node_id(name), name, float(value))
        await server.start()
        self._server = server

    def start(self) -> OpcUaMeter:
        self._thread = threading.Thread(target=self._loop.run_forever, name="opcua-meter", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(20)
        return self

    def set(self, name: str, value: float, status: int = StatusCodes.Good) -> None:
        async def write() -> None:
            # asyncua's type aliases (UInt32, DateTime) are plain int and datetime at run time
            dv = DataValue(Variant(float(value), VariantType.Double), StatusCode(status),  # type: ignore[arg-type]
                           SourceTimestamp=datetime.now(UTC))  # type: ignore[arg-type]
            await self._vars[name].write_value(dv)

        asyncio.run_coroutine_threadsafe(write(), self._loop).result(10)

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(20)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop.close()
