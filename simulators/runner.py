"""Run the simulated park: one pymodbus TCP server per enterprise, a tick loop, the ground truth.

Ticks follow a fixed schedule (``wall_start + k * tick_s``) and tick ``k`` is simulated time
``sim_start + k * tick_s * speed``, so the simulated clock follows the wall clock and the values
still depend only on the seed. A late tick is caught up, not skipped. All registers of a device
are rewritten with one call per table, between two polls, so a poll never sees half an update.

pymodbus 3.16 serves ``SimDevice`` lists (``ModbusServerContext``/``ModbusDeviceContext`` are
deprecated wrappers there whose ``async_setValues`` answers DEVICE_BUSY), hence ``SimDevice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from parkmon.common.clock import CHINA
from parkmon.common.netutil import free_port
from simulators.definition import ParkDef, load_definition, parse_definition
from simulators.edge_configs import edge_configs, park_info
from simulators.engine import FAULTS, TickEngine
from simulators.ground_truth import GroundTruthWriter
from simulators.park import PROFILES, ParkModel
from simulators.registers import BIT_TABLES, FC, profile_points, table_sizes

__all__ = ["FAULTS", "PROFILES", "SimulatedPark", "ThreadedPark", "default_sim_start", "start_in_thread"]

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every refused request as an error
log = logging.getLogger(__name__)

_CATCH_UP = 100  # ticks done back to back before the loop yields to the servers again
_BIT_FC = {FC[t] for t in BIT_TABLES}  # coils and discrete inputs are set as booleans


def default_sim_start() -> int:
    """06:00 China time on a summer day: the demo opens with the sun coming up."""
    return int(datetime(2025, 6, 21, 6, 0, tzinfo=CHINA).timestamp() * 1000)


class SimulatedPark:
    """``async with SimulatedPark(...) as park:`` serves the park until the block ends."""

    def __init__(self, definition: dict[str, Any] | ParkDef | str | Path | None = None, seed: int = 2025,
                 speed: float = 60.0, port_base: int | None = None, ground_truth_path: str | Path | None = None,
                 *, tick_s: float = 0.5, sim_start_ms: int | None = None, host: str = "127.0.0.1",
                 tick_log: str | Path | None = None) -> None:
        if speed <= 0 or tick_s <= 0:
            raise ValueError(f"speed ({speed}) and tick_s ({tick_s}) must be > 0")
        spec = parse_definition(definition if isinstance(definition, dict | ParkDef) else load_definition(definition))
        self.definition = spec
        self.speed, self.tick_s, self.host, self.port_base = speed, tick_s, host, port_base
        self.sim_start_ms = sim_start_ms if sim_start_ms is not None else default_sim_start()
        self.engine = TickEngine(spec, seed, tick_s * speed, self.sim_start_ms)
        self.ground_truth_path = ground_truth_path
        self.tick_log = tick_log  # a file of tick wall times (ms), for delay measurements
        self.ports: dict[str, int] = {}
        self.ticks = 0
        self.tick_times: deque[int] = deque(maxlen=200_000)  # wall ms when registers changed
        self._servers: dict[str, ModbusTcpServer] = {}
        self._task: asyncio.Task[None] | None = None
        self._gt: GroundTruthWriter | None = None
        self._tick_file: IO[str] | None = None

    @property
    def model(self) -> ParkModel:
        return self.engine.model

    @property
    def sim_ms(self) -> int:
        """Simulated time of the latest tick (epoch ms UTC)."""
        return self.engine.sim_ms

    @property
    def faults(self) -> dict[tuple[str, str], str]:
        return dict(self.engine.faults)

    # ---- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> SimulatedPark:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _start(self) -> None:
        if self.ground_truth_path:
            self._gt = GroundTruthWriter(self.ground_truth_path, self.engine.run_info(
                mode="live", speed=self.speed, tick_s=self.tick_s))
        if self.tick_log:
            self._tick_file = open(self.tick_log, "a", encoding="ascii")  # noqa: SIM115, ASYNC230 - closed in __aexit__
        for i, ent in enumerate(self.model.enterprises):
            port = self.port_base + i if self.port_base else free_port(self.host)
            devices = [self._sim_device(ent.key, d.id, d.unit, d.profile) for d in ent.devices]
            server = ModbusTcpServer(devices, address=(self.host, port))
            try:
                await server.serve_forever(background=True)
            except RuntimeError:
                raise OSError(f"enterprise {ent.key}: cannot listen on {self.host}:{port} (in use?); "
                              "choose another port base, or none for free ports") from None
            self._servers[ent.key] = server
            self.ports[ent.key] = port
        await self._tick_once(time.time())  # registers hold real values before anyone polls
        self._task = asyncio.create_task(self._loop(asyncio.get_running_loop().time()), name="sim-ticks")

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for server in self._servers.values():
            await server.shutdown()  # type: ignore[no-untyped-call]
        self._servers.clear()
        if self._gt:
            self._gt.close()
            self._gt = None
        if self._tick_file:
            self._tick_file.close()
            self._tick_file = None

    def _sim_device(self, ent: str, dev: str, unit: int, profile: str) -> SimDevice:
        size = table_sizes(profile_points(profile))
        regs = {t: SimData(0, count=size[t], values=0, datatype=DataType.REGISTERS) for t in ("holding", "input")}
        # coils and discrete inputs: one SimData item of BITS holds 16 of them, addressed bit by bit
        bits = {t: SimData(0, count=-(-size[t] // 16), values=0, datatype=DataType.BITS) for t in BIT_TABLES}
        return SimDevice(id=unit, simdata=([bits["coil"]], [bits["discrete"]], [regs["holding"]], [regs["input"]]),
                         action=partial(self._action, (ent, dev)))

    async def _action(self, key: tuple[str, str], _fc: int, _start: int, _addr: int, _count: int,
                      _regs: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        # an offline device behind the enterprise's gateway: the gateway says it got no answer (0x0B),
        # as pymodbus itself does for a unit it does not know. The tick's own writes still land.
        if set_values is None and self.engine.faults.get(key) == "offline":
            return ExcCodes.GATEWAY_NO_RESPONSE
        return None

    # ---- ticks --------------------------------------------------------------------------
    async def _loop(self, mono0: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = mono0 + self.engine.next_tick * self.tick_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            done = 0
            while self.engine.next_tick * self.tick_s + mono0 <= loop.time() and done < _CATCH_UP:
                await self._tick_once(time.time())
                done += 1
            if done > 1:
                log.debug("simulated park caught up %d late ticks", done - 1)

    async def _tick_once(self, now: float) -> None:
        wall_ms = int(now * 1000)
        writes, rows, balances = self.engine.tick(wall_ms)
        for w in writes:  # one whole table per call: a poll sees this tick or the last, never a mix
            values: list[int] | list[bool] = [bool(b) for b in w.words] if w.function_code in _BIT_FC else w.words
            refused = await self._servers[w.enterprise].context.async_setValues(w.unit, w.function_code, 0, values)
            if refused is not None:
                raise RuntimeError(f"{w.enterprise} unit {w.unit}: pymodbus refused the register write: {refused}")
        self.ticks += 1
        self.tick_times.append(wall_ms)
        if self._tick_file:
            self._tick_file.write(f"{wall_ms}\n")
            self._tick_file.flush()
        if self._gt:
            self._gt.write(rows, balances)

    # ---- for callers -----------------------------------------------------------------------
    def set_fault(self, enterprise: str, device: str, kind: str | None) -> None:
        """``offline``, ``sentinel``, ``meter_reset`` (once), or ``None`` to clear."""
        self.engine.set_fault(enterprise, device, kind)

    def park_info(self) -> dict[str, Any]:
        return park_info(self.definition)

    def edge_configs(self, mqtt_host: str, mqtt_port: int, buffer_dir: str | Path,
                     poll_interval_s: float = 2.0) -> dict[str, dict[str, Any]]:
        if not self.ports:
            raise RuntimeError("the park is not running yet: its ports are assigned on start")
        return edge_configs(self.definition, self.ports, mqtt_host, mqtt_port, buffer_dir,
                            poll_interval_s=poll_interval_s, modbus_host=self.host)


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
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.set()

        try:
            self._loop.run_until_complete(main())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    def start(self, timeout_s: float = 30.0) -> ThreadedPark:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"simulated park did not start within {timeout_s} s")
        if self._error:
            self._thread.join(10)
            raise RuntimeError(f"simulated park failed to start: {self._error}") from self._error
        return self

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on the park's loop (its state is the loop's) and return its result or raise."""
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def set_fault(self, enterprise: str, device: str, kind: str | None) -> None:
        self._call(self.park.set_fault, enterprise, device, kind)

    @property
    def ports(self) -> dict[str, int]:
        return dict(self.park.ports)

    @property
    def sim_ms(self) -> int:
        return self.park.sim_ms

    def park_info(self) -> dict[str, Any]:
        return self.park.park_info()

    def edge_configs(self, mqtt_host: str, mqtt_port: int, buffer_dir: str | Path,
                     poll_interval_s: float = 2.0) -> dict[str, dict[str, Any]]:
        return self.park.edge_configs(mqtt_host, mqtt_port, buffer_dir, poll_interval_s)

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice."""
        if self._thread.is_alive() and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.ident is not None:
            self._thread.join(15)
        if self._thread.is_alive():
            raise RuntimeError("simulated park thread did not stop within 15 s")

    def __enter__(self) -> ThreadedPark:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_in_thread(definition: dict[str, Any] | ParkDef | str | Path | None = None, seed: int = 2025,
                    speed: float = 60.0, port_base: int | None = None, ground_truth_path: str | Path | None = None,
                    **kwargs: Any) -> ThreadedPark:
    """Start a :class:`SimulatedPark` in a background thread; ``.ports``, ``.set_fault()``, ``.stop()``."""
    return ThreadedPark(SimulatedPark(definition, seed, speed, port_base, ground_truth_path, **kwargs)).start()

