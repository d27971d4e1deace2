"""HJ 212 data loggers as devices: they dial in (edge_agent/hj212/server.py), this driver turns their
records into samples on the device's points (named as HJ 212 names them: a21026-Rtd, w01018-Avg-hour).

Unlike a polled meter, a logger pushes: the record's samples go to the gateway's disk buffer before the
server acknowledges it (through the agent's ``store_samples`` in ``shared``), carry the logger's DataTime
(the period's start for minute / hour / day records) and its data flags as quality. ``read()`` hands over
anything not yet stored (when run without an agent, e.g. ``parkmon edge poll``) and, when the logger has
been silent longer than ``stale_after_s``, a comm-failure sample per real-time point: silence is visible.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge_agent.config import DeviceConfig
from edge_agent.drivers.base import Sample
from edge_agent.hj212.server import ReceiverServer
from parkmon.common import hj212, quality
from parkmon.common.clock import now_ms

log = logging.getLogger(__name__)


class Hj212Driver:
    def __init__(self, device: DeviceConfig, shared: dict[object, Any]) -> None:
        self.device = device
        self.shared = shared
        self._names = {p.name for p in device.points}
        self._realtime = [p.name for p in device.points if p.name.endswith(("-Rtd", "-ZsRtd"))]
        self._queue: list[Sample] = []
        self._server: ReceiverServer | None = None
        self._last_ms = 0
        self._opened_ms = 0
        self._unmapped: set[str] = set()
        self.requests = 0  # records received (the health report's "requests")

    async def open(self) -> None:
        key = ("hj212", self.device.host, self.device.port)
        server = self.shared.get(key)
        if server is None:
            dead = self.shared.get("hj212_dead_letters")
            server = ReceiverServer(self.device.host, self.device.port, Path(dead) if dead else None)
            self.shared[key] = server
            await server.start()
        self._server = server
        assert self.device.mn is not None and self.device.pw is not None, "checked when the config loads"
        server.register(self.device.mn, self.device.pw, self._sink)
        self._opened_ms = now_ms()

    def samples_of(self, rec: hj212.Record) -> list[Sample]:
        out: list[Sample] = []
        for code, fields in rec.values.items():
            q = hj212.flag_quality(rec.flags.get(code))
            for fld, value in fields.items():
                name = hj212.point_name(code, fld, rec.cn)
                if name in self._names:
                    out.append((f"{self.device.id}.{name}", rec.data_time_ms, value, q))
                elif name not in self._unmapped:
                    self._unmapped.add(name)
                    log.info("device %s: the logger sends %s, which is not one of its points; add it to keep it",
                             self.device.id, name)
        return out

    async def _sink(self, rec: hj212.Record) -> None:
        self.requests += 1
        self._last_ms = now_ms()
        for forwarder in self.shared.get("hj212_relay", {}).get(self.device.id, []):
            forwarder.relay(rec)  # on the forwarder's disk before the logger hears the ack
        samples = self.samples_of(rec)
        store = self.shared.get("store_samples")
        if store is not None:
            await store(samples)
        else:
            self._queue.extend(samples)

    async def read(self) -> list[Sample]:
        out, self._queue = self._queue, []
        now = now_ms()
        if now - max(self._last_ms, self._opened_ms) > self.device.stale_after_s * 1000:
            bad = quality.bad(quality.Reason.COMM_FAILURE)
            out += [(f"{self.device.id}.{n}", now, None, bad) for n in self._realtime]
        return out

    async def close(self) -> None:
        if self._server is not None:
            self._server.loggers.pop(self.device.mn or "", None)
            if not self._server.loggers:
                await self._server.close()
                self.shared.pop(("hj212", self.device.host, self.device.port), None)
            self._server = None
