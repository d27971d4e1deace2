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
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from edge_agent.config import DeviceConfig
from edge_agent.drivers.base import Sample
from parkmon.common import quality
from parkmon.common.clock import now_ms

if TYPE_CHECKING:
    from edge_agent.hj212.server import ReceiverServer
    from parkmon.common import hj212

log = logging.getLogger(__name__)


class Hj212Config(DeviceConfig):
    """An HJ 212-2017 data logger: it dials in to host:port (the gateway listens there) and is told apart
    from the others on that port by its MN. Without points (and without a profile) it has every point its
    system code reports (edge_agent/hj212/points.py)."""

    label: ClassVar[str] = ("HJ 212-2017 data loggers dialling in over TCP, told apart by MN "
                            "(污染源在线监测数采仪, 烟气 CEMS / 废水)")
    pushes: ClassVar[bool] = True

    driver: Literal["hj212"] = "hj212"
    mn: Annotated[str | None, Field(min_length=1, max_length=24)] = None  # the logger's id (MN)
    pw: Annotated[str | None, Field(min_length=1, max_length=6)] = None  # its access password (PW)
    st: Literal["31", "32"] | None = None  # system: 31 flue gas (CEMS), 32 wastewater
    stale_after_s: Annotated[float, Field(gt=0)] = 300.0  # silence longer than this is a comm failure
    host: str = "127.0.0.1"  # where the gateway listens
    port: Annotated[int, Field(ge=1, le=65535)] = 502

    @model_validator(mode="before")
    @classmethod
    def _default_points(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and not raw.get("points") and not raw.get("profile"):
            # the HJ 212 codec is imported for a config with a logger in it only (like the rules below)
            from edge_agent.hj212.points import default_points

            return {**raw, "points": default_points(str(raw.get("st") or "31"))}
        return raw

    def check_driver(self) -> None:
        if not self.mn or not self.pw:
            raise ValueError("driver hj212 needs mn and pw: the data logger's MN and access password")
        from edge_agent.hj212.points import parse_point_name

        for p in self.points:
            parse_point_name(p.name)

    @property
    def link(self) -> str:
        return f"MN {self.mn} dialling in to {self.host}:{self.port}"

    def describe(self, every_s: float) -> list[str]:
        lines = [f"device {self.id} {self.name!r} hj212 logger MN {self.mn} (ST {self.st or '31'}) dials in to "
                 f"{self.host}:{self.port}: {len(self.points)} points; silent > {self.stale_after_s:g} s = comm "
                 "failure"]
        lines += [f"  {self.id}.{p.name:<22} {p.metric:<30} [{p.resolved_unit}] {p.label}" for p in self.points]
        return lines


class Hj212Driver:
    config: ClassVar[type[Hj212Config]] = Hj212Config

    def __init__(self, device: Hj212Config, shared: dict[object, Any]) -> None:
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
            from edge_agent.hj212.server import ReceiverServer  # the listening side: only to run, not to check

            dead = self.shared.get("hj212_dead_letters")
            server = ReceiverServer(self.device.host, self.device.port, Path(dead) if dead else None)
            self.shared[key] = server
            await server.start()
        self._server = server
        assert self.device.mn is not None and self.device.pw is not None, "checked when the config loads"
        server.register(self.device.mn, self.device.pw, self._sink)
        self._opened_ms = now_ms()

    def samples_of(self, rec: hj212.Record) -> list[Sample]:
        from parkmon.common import hj212  # loaded by the server that handed over rec: a lookup

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
