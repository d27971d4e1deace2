"""Run the simulated park: one pymodbus TCP server per enterprise, a tick loop, the ground truth.

Registers of a device are rewritten in one call per table per tick, on the servers' own event
loop, so a poll never sees half an update.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge_agent.config import PointConfig
from parkmon.netutil import free_port

from .ground_truth import GroundTruthWriter, Row
from .park import PROFILES, Device, ParkModel, load_definition
from .physics import CHINA
from .registers import encode, profile_points, sentinel_words

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

FAULTS = ("offline", "sentinel", "meter_reset")
_FC = {"holding": 3, "input": 4}




def default_sim_start() -> int:
    """06:00 China time on a summer day: the demo opens with the sun coming up."""
    return int(datetime(2025, 6, 21, 6, 0, tzinfo=CHINA).timestamp() * 1000)


class SimulatedPark:
    def __init__(self, definition: dict[str, Any] | str | Path | None = None, seed: int = 2025,
                 speed: float = 60.0, tick_s: float = 0.5, port_base: int | None = None,
                 ground_truth_path: str | Path | None = None, sim_start_ms: int | None = None,
                 host: str = "127.0.0.1", tick_log: str | Path | None = None) -> None:
        self.definition = definition if isinstance(definition, dict) else load_definition(definition)
        self.model = ParkModel(self.definition, seed)
        self.speed, self.tick_s, self.host = speed, tick_s, host
        self.port_base = port_base
        self.ground_truth_path = ground_truth_path
        self.tick_log = tick_log  # a file of tick wall times (ms), for delay measurements
        self._tick_file: Any = None
        self.sim_start_ms = sim_start_ms if sim_start_ms is not None else default_sim_start()
        self.ports: dict[str, int] = {}
        self.faults: dict[tuple[str, str], str] = {}
        self._points: dict[str, list[PointConfig]] = {k: profile_points(v) for k, v in PROFILES.items()}
        self._servers: list[ModbusTcpServer] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._gt: GroundTruthWriter | None = None
        self.ticks = 0
        self.tick_times: deque[int] = deque(maxlen=200_000)  # wall ms when registers changed
        self.sim_ms = self.sim_start_ms

    # ---- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> SimulatedPark:
        if self.ground_truth_path:
            self._gt = GroundTruthWriter(self.ground_truth_path)
        if self.tick_log:
            self._tick_file = open(self.tick_log, "a", encoding="ascii")  # noqa: SIM115, ASYNC230 - closed in __aexit__
        for i, ent in enumerate(self.model.enterprises):
            port = self.port_base + i if self.port_base else free_port()
            devices = [self._sim_device(ent.key, d) for d in ent.devices]
            server = ModbusTcpServer(devices, address=(self.host, port))
            self._servers.append(server)
            self._tasks.append(asyncio.create_task(server.serve_forever(), name=f"modbus-{ent.key}"))
            self.ports[ent.key] = port
        for port in self.ports.values():
            await _wait_listening(self.host, port)
        self._wall0 = self._last = time.time()
        await self._tick()  # registers hold real values before anyone polls
        self._tasks.append(asyncio.create_task(self._loop(), name="sim-ticks"))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for s in self._servers:
            await s.shutdown()  # type: ignore[no-untyped-call]
        if self._gt:
            self._gt.close()
        if self._tick_file:
            self._tick_file.close()

    def _sim_device(self, ent: str, d: Device) -> SimDevice:
        pts = self._points[d.kind]
        size = {t: max([p.span[1] for p in pts if p.table == t], default=1) for t in _FC}
        blocks = [SimData(0, count=size[t], values=0, datatype=DataType.REGISTERS) for t in ("holding", "input")]
        bits = SimData(0, count=16, values=0, datatype=DataType.BITS)
        action = partial(self._action, (ent, d.id))
        return SimDevice(id=d.unit, simdata=([bits], [bits], [blocks[0]], [blocks[1]]), action=action)

    async def _action(self, key: tuple[str, str], _fc: int, _start: int, _addr: int, _count: int,
                      _regs: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        # a device behind a serial gateway that stopped answering: the gateway says so (0x0B)
        if set_values is None and self.faults.get(key) == "offline":
            return ExcCodes.GATEWAY_NO_RESPONSE
        return None

    # ---- ticks --------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self._tick()

    async def _tick(self) -> None:
        now = time.time()
        dt_s = (now - self._last) * self.speed
        self._last = now
        self.sim_ms = self.sim_start_ms + int((now - self._wall0) * self.speed * 1000)
        if dt_s > 0:
            self.model.step(self.sim_ms, dt_s)
        wall_ms = int(now * 1000)
        rows: list[Row] = []
        for ent, server in zip(self.model.enterprises, self._servers, strict=True):
            for d in ent.devices:
                rows += await self._write_device(server, ent.key, d, wall_ms)
        self.ticks += 1
        self.tick_times.append(wall_ms)
        if self._tick_file:
            self._tick_file.write(f"{wall_ms}\n")
            self._tick_file.flush()
        if self._gt and rows:
            self._gt.write(rows)

    async def _write_device(self, server: ModbusTcpServer, ent: str, d: Device, wall_ms: int) -> list[Row]:
        fault = self.faults.get((ent, d.id))
        if fault == "meter_reset":
            for name in ("import", "export", "generation", "curtailed", "charge", "discharge", "volume"):
                if name in d.values:
                    d.values[name] = 0.0
            del self.faults[(ent, d.id)]
        rows: list[Row] = []
        images: dict[str, list[int]] = {}
        for p in self._points[d.kind]:
            img = images.setdefault(p.table, [])
            words, represented = encode(p, d.values[p.name])
            rep: float | None = represented
            if fault == "sentinel" and p.sentinels:
                words, rep = sentinel_words(p), None
            at = p.span[0]  # the profiles' simulated devices have no scale-factor registers
            img.extend([0] * (at + len(words) - len(img)))
            img[at : at + len(words)] = words
            rows.append((wall_ms, self.sim_ms, ent, d.id, p.name, d.values[p.name], rep))
        for table, img in images.items():
            await server.context.async_setValues(d.unit, _FC[table], 0, img)
        return rows

    # ---- for callers -----------------------------------------------------------------------
    def set_fault(self, enterprise: str, device: str, kind: str | None) -> None:
        if kind is not None and kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; faults: {', '.join(FAULTS)}")
        if kind is None:
            self.faults.pop((enterprise, device), None)
        else:
            self.faults[(enterprise, device)] = kind

    def park_info(self) -> dict[str, Any]:
        info = dict(self.model.info)
        info["enterprises"] = {e.key: e.name for e in self.model.enterprises}
        return info

    def edge_configs(self, mqtt_host: str, mqtt_port: int, buffer_dir: str,
                     poll_interval_s: float = 2.0) -> dict[str, dict[str, Any]]:
        park = self.model.info["key"]
        out: dict[str, dict[str, Any]] = {}
        for ent in self.model.enterprises:
            out[ent.key] = {
                "gateway": {"park": park, "enterprise": ent.key, "id": f"gw-{ent.key}"},
                "mqtt": {"host": mqtt_host, "port": mqtt_port},
                "buffer": {"path": str(Path(buffer_dir) / f"gw-{ent.key}.db")},
                "publish": {"interval_s": 1.0},
                "poll_interval_s": poll_interval_s,
                "devices": [{"id": d.id, "name": d.name, "driver": "modbus_tcp", "host": self.host,
                             "port": self.ports[ent.key], "unit": d.unit, "profile": PROFILES[d.kind]}
                            for d in ent.devices],
            }
        return out


async def _wait_listening(host: str, port: int, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            _r, w = await asyncio.open_connection(host, port)
            w.close()
            await w.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.02)
    raise RuntimeError(f"simulated Modbus server did not listen on {host}:{port}")


class ThreadedPark:
    """The park on its own event loop in a background thread, for synchronous callers."""

    def __init__(self, park: SimulatedPark) -> None:
        self.park = park
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="simulated-park", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                async with self.park:
                    self._ready.set()
                    await self._stop.wait()
            except BaseException as exc:
                self._error = exc
                self._ready.set()

        self._loop.run_until_complete(main())
        self._loop.close()

    def start(self) -> ThreadedPark:
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise RuntimeError(f"simulated park failed to start: {self._error}") from self._error
        return self

    def call(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(10)

    def set_fault(self, enterprise: str, device: str, kind: str | None) -> None:
        self._loop.call_soon_threadsafe(self.park.set_fault, enterprise, device, kind)

    @property
    def ports(self) -> dict[str, int]:
        return self.park.ports

    def park_info(self) -> dict[str, Any]:
        return self.park.park_info()

    def edge_configs(self, mqtt_host: str, mqtt_port: int, buffer_dir: str,
                     poll_interval_s: float = 2.0) -> dict[str, dict[str, Any]]:
        return self.park.edge_configs(mqtt_host, mqtt_port, buffer_dir, poll_interval_s)

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)


def start_in_thread(**kwargs: Any) -> ThreadedPark:
    return ThreadedPark(SimulatedPark(**kwargs)).start()
