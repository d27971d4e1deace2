"""What the gateway fault tests need around a real agent process: a meter that numbers its answers, a
subscriber that keeps every batch the broker delivers, and the agent's log as it writes it.

The meter (a real pymodbus TCP server) answers register 0 with the number of reads it has served, so
the samples a test gets back say by themselves which polls arrived: read k delivered means value k
delivered. ``freeze()`` makes it answer with an exception from then on, so the count of good reads is
final and every one of them is known to have been answered.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from parkmon.common import quality, wire
from parkmon.common.netutil import free_port
from tests.modbus_server import _wait_listening

POINTS = ("n", "a", "b")  # n: the read's number; a, b: fixed values (every poll carries three samples)


class CountingMeter:
    def __init__(self) -> None:
        self.port = free_port()
        self.reads = 0  # good answers served
        self._frozen = False
        self._lock = threading.Lock()

    def freeze(self) -> int:
        """From now on answer every read with a device failure; returns the final number of good reads."""
        with self._lock:
            self._frozen = True
            return self.reads

    @contextmanager
    def serving(self) -> Iterator[CountingMeter]:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        holder: list[ModbusTcpServer] = []

        async def main() -> None:
            regs = ModbusSequentialDataBlock(1, [0, 1200, 3400] + [0] * 17)
            context = ModbusServerContext(devices={1: ModbusDeviceContext(hr=regs)}, single=False)
            server = ModbusTcpServer(context, address=("127.0.0.1", self.port))
            store: Any = server.context
            original = store.async_getValues

            async def numbered(device_id: int, func_code: int, address: int, count: int = 1) -> Any:
                values = await original(device_id, func_code, address, count)
                with self._lock:  # numbered and decided in one step: a frozen meter serves no more reads
                    if self._frozen:
                        return ExcCodes.DEVICE_FAILURE
                    if isinstance(values, list) and address == 0:
                        self.reads += 1
                        values = [self.reads, *values[1:]]
                    return values

            store.async_getValues = numbered
            holder.append(server)
            task = asyncio.create_task(server.serve_forever())
            ready.set()
            await task

        thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
        thread.start()
        ready.wait(5)
        _wait_listening(self.port)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(holder[0].shutdown(), loop).result(5)
            thread.join(5)
            loop.close()


class BrokerTap:
    """Every data batch and health report the broker delivers for the park, in arrival order."""

    def __init__(self, port: int) -> None:
        self.batches: list[wire.Batch] = []
        self.health: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="fault-tap")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([("parkmon/v1/demo/+/+/data", 1), ("parkmon/v1/demo/+/+/health", 1)])
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.topic.endswith("/data"):
                self.batches.append(wire.decode_batch(bytes(msg.payload)))
            else:
                self.health.append(json.loads(msg.payload))

    def values(self, point: str) -> set[int]:
        """The distinct good values delivered for ``m.<point>``."""
        with self._lock:
            return {int(v) for b in self.batches for p, _ts, v, q in b.samples
                    if p == f"m.{point}" and v is not None and quality.is_good(q)}

    def stamps(self, point: str) -> set[int]:
        """The distinct poll times of the good samples delivered for ``m.<point>``."""
        with self._lock:
            return {ts for b in self.batches for p, ts, v, q in b.samples
                    if p == f"m.{point}" and v is not None and quality.is_good(q)}

    def by_seq(self) -> dict[int, list[list[wire.Sample]]]:
        """Each seq with every distinct set of samples it arrived with (more than one: a seq reused)."""
        out: dict[int, list[list[wire.Sample]]] = {}
        with self._lock:
            for b in self.batches:
                contents = out.setdefault(b.seq, [])
                if list(b.samples) not in contents:
                    contents.append(list(b.samples))
        return out

    def last_health(self) -> dict[str, Any]:
        with self._lock:
            return self.health[-1] if self.health else {}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def agent_config(path: Path, meter_port: int, mqtt_port: int, poll_s: float, *,
                 gateway: tuple[str, str, str] = ("demo", "e01", "gw-f"), mqtt: dict[str, Any] | None = None,
                 timeout_s: float = 0.5, **buffer: Any) -> Path:
    park, enterprise, gw = gateway
    cfg = {
        "gateway": {"park": park, "enterprise": enterprise, "id": gw},
        "mqtt": {"port": mqtt_port, **(mqtt or {})},
        "buffer": {"path": str(path.parent / "buffer.db"), **buffer},
        "publish": {"health_interval_s": 0.3},
        "poll_interval_s": poll_s,
        "devices": [{"id": "m", "port": meter_port, "timeout_s": timeout_s,
                     "points": [{"name": p, "metric": "elec.active_power", "address": i}
                                for i, p in enumerate(POINTS)]}],
    }
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


class AgentProcess:
    """``parkmon edge run`` as an operator starts it; its log (stderr, a pipe: the fault tests limit
    the files the agent may write, not pipes) is kept line by line."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "parkmon.cli", "edge", "run", "-c", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.stopping = False  # SIGTERM sent
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logged(self, text: str) -> list[str]:
        return [ln for ln in list(self.lines) if text in ln]

    def wait(self, timeout: float = 30.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    @property
    def log(self) -> str:
        return "\n".join(self.lines)
