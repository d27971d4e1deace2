"""IEC 60870-5-104 driver: the gateway as controlling station of a substation's RTU or a PV plant's telecontrol.

The driver keeps one connection to the station and reconnects with back-off when it drops (t1 expiry, the
station restarting, a refused connection). Once STARTDT is confirmed it sends a general interrogation and a
counter interrogation, and repeats them every ``gi_period_s`` / ``ci_period_s``; an end of initialisation
from the station (it restarted its application) asks for both again. Everything the station sends —
interrogation answers, spontaneous and periodic values — becomes a sample of the point mapped to its
information object address, with the station's time tag (CP56Time2a) when it has one, and its quality bits
as parkmon quality. ``read()`` hands over what arrived since the last cycle; while the link is down each
cycle gives a comm-failure sample per point. A value received twice with the same time tag (a frame sent
again after a reconnect, an interrogation answer repeating the last event) is handed over once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from edge_agent.config import DeviceConfig, PointConfig
from edge_agent.drivers.base import Sample
from edge_agent.drivers.iec104 import asdu
from edge_agent.drivers.iec104.asdu import TIME_IV, Flag
from edge_agent.drivers.iec104.link import Link, LinkError, Params
from parkmon.common import quality
from parkmon.common.clock import now_ms
from parkmon.common.quality import QualityClass, Reason

log = logging.getLogger(__name__)


class Iec104Point(PointConfig):
    ioa: Annotated[int, Field(ge=1, le=0xFFFFFF)]  # information object address (3 octets)


class Iec104Config(DeviceConfig):
    """A station (RTU, substation gateway, PV plant telecontrol) answering IEC 60870-5-104 on host:port."""

    label: ClassVar[str] = ("IEC 60870-5-104 stations: substation RTUs, PV plant telecontrol "
                            "(变电站远动 104 规约, 本网关作主站)")

    driver: Literal["iec104"] = "iec104"
    points: list[Iec104Point] = Field(default_factory=list)  # type: ignore[assignment]  # each names its IOA
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 2404
    common_address: Annotated[int, Field(ge=1, le=65534)] = 1  # the ASDU address of the station
    originator_address: Annotated[int, Field(ge=0, le=255)] = 0
    # the standard's timers and windows; defaults are its recommended values
    t0_s: Annotated[float, Field(gt=0, le=255)] = 30.0
    t1_s: Annotated[float, Field(gt=0, le=255)] = 15.0
    t2_s: Annotated[float, Field(gt=0, le=255)] = 10.0
    t3_s: Annotated[float, Field(gt=0, le=172800)] = 20.0
    k: Annotated[int, Field(ge=1, le=32767)] = 12
    w: Annotated[int, Field(ge=1, le=32767)] = 8
    gi_period_s: Annotated[float | None, Field(gt=0)] = 900.0  # general interrogation; None: on connect only
    ci_period_s: Annotated[float | None, Field(gt=0)] = 900.0  # counter interrogation; None: on connect only
    # CP56Time2a carries the station's wall clock without a zone: how far ahead of UTC it runs (8 for Beijing time)
    station_utc_offset_h: Annotated[float, Field(ge=-14, le=14)] = 0.0
    time_source: Literal["station", "gateway"] = "station"  # gateway: stamp values when received
    max_clock_skew_s: Annotated[float, Field(gt=0)] = 300.0  # a time tag further ahead is the gateway's time
    reconnect_min_s: Annotated[float, Field(gt=0)] = 1.0
    reconnect_max_s: Annotated[float, Field(gt=0)] = 60.0
    max_queued: Annotated[int, Field(ge=1)] = 100_000  # samples held between two reads; the oldest go first

    def check_driver(self) -> None:
        if not self.host:
            raise ValueError("driver iec104 needs host: the station's address (its port defaults to 2404)")
        if self.t2_s >= self.t1_s:
            raise ValueError(f"t2_s ({self.t2_s:g}) must be shorter than t1_s ({self.t1_s:g}): the station would "
                             "give up on its frames before we acknowledge them")
        if self.w > self.k:
            raise ValueError(f"w ({self.w}) must not exceed k ({self.k}); the standard recommends w <= 2k/3")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        seen: dict[int, str] = {}
        for p in self.points:
            if p.ioa in seen:
                raise ValueError(f"ioa {p.ioa} appears twice (points {seen[p.ioa]!r} and {p.name!r}): one point "
                                 "per information object address")
            seen[p.ioa] = p.name

    @property
    def link(self) -> str:
        return f"{self.host}:{self.port} CA {self.common_address}"

    def describe(self, every_s: float) -> list[str]:
        def period(s: float | None) -> str:
            return "on connect" if s is None else f"on connect and every {s:g} s"

        lines = [f"device {self.id} {self.name!r} iec104 {self.link}: {len(self.points)} objects, handed over every "
                 f"{every_s} s; GI {period(self.gi_period_s)}, counters {period(self.ci_period_s)}; "
                 f"t0/t1/t2/t3 {self.t0_s:g}/{self.t1_s:g}/{self.t2_s:g}/{self.t3_s:g} s, k {self.k}, w {self.w}; "
                 f"time {self.time_source} (UTC{self.station_utc_offset_h:+g} h)"]
        lines += [f"  {self.id}.{p.name:<14} {p.metric:<26} ioa {p.ioa} x{p.scale:g}{p.offset:+g} "
                  f"[{p.resolved_unit}] {p.label}" for p in self.points]
        return lines


def flags_quality(flags: int) -> int:
    """The quality bits onto parkmon quality. IV: the value is wrong; the others keep a usable value but
    say why it may not be current (NT, BL), or not measured (SB), or not exact (OV, CA, CY)."""
    if flags & Flag.IV:
        return quality.bad(Reason.DEVICE_FAILURE)
    for flag, why in ((Flag.OV, Reason.OUT_OF_RANGE), (Flag.SB, Reason.MANUAL), (Flag.CA, Reason.MANUAL),
                      (Flag.CY, Reason.COUNTER_ROLLOVER), (Flag.BL, Reason.LAST_USABLE),
                      (Flag.NT, Reason.LAST_USABLE)):
        if flags & flag:
            return quality.uncertain(why)
    return quality.GOOD


_QUALITY = [flags_quality(f) for f in range(128)]  # every combination but TIME_IV, looked up per value
_INDETERMINATE = quality.bad(Reason.SENSOR_FAILURE)  # a double point neither on nor off
RECENT = 32  # time-tagged readings remembered per IOA: more than a station's window (k, 12 by default) of
# frames it may send again after a reconnect


class Iec104Driver:
    config: ClassVar[type[Iec104Config]] = Iec104Config

    def __init__(self, device: Iec104Config, shared: dict[object, Any] | None = None) -> None:
        self.device = device
        d = device
        self.params = Params(d.t0_s, d.t1_s, d.t2_s, d.t3_s, d.k, d.w)
        self._by_ioa = {p.ioa: (f"{d.id}.{p.name}", p.scale, p.offset) for p in d.points}
        self._offset_ms = round(d.station_utc_offset_h * 3_600_000)
        self._skew_ms = d.max_clock_skew_s * 1000
        self._queue: list[Sample] = []
        # per IOA, the last time-tagged readings handed over: one coming again is a repeat, not a reading
        self._recent: dict[int, deque[tuple[int, float | None, int]]] = {}
        self._newest: dict[int, int] = {}  # per IOA, the newest time tag handed over
        self._link: Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._asker: asyncio.Task[None] | None = None  # the interrogations of the current connection
        self._first = asyncio.Event()  # the first interrogations answered, or the first connection failed
        self._first_read = True
        self._again = asyncio.Event()  # interrogate now (the station re-initialised)
        self._waiting: set[int] = set()  # interrogations sent and not yet terminated (type ids)
        self._said: set[object] = set()  # what was logged once
        self.requests = 0  # ASDUs received (the health report's "requests")
        self.connects = 0
        self.dropped = 0  # samples dropped because max_queued were waiting
        self.clock_offset_ms: int | None = None  # gateway receipt time minus the station's tag, last seen
        self.last_error = ""

    async def open(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"iec104-{self.device.id}")

    async def close(self) -> None:
        # everything received handed over: acknowledge it all and STOPDT. Otherwise hang up leaving the last
        # frames unacknowledged: a station that keeps such frames sends them again on the next connection
        if self._link is not None and not self._queue:
            await self._link.stop_data(min(self.device.t1_s, 2.0))
        if self._task is not None:
            self._task.cancel()  # its link hangs up on the way out
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def read(self) -> list[Sample]:
        if self._first_read:  # `parkmon edge poll --once` reads at once: give the first interrogation a chance
            self._first_read = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first.wait(), self.device.t0_s + self.device.t1_s)
        out, self._queue = self._queue, []
        if self._link is None or not self._link.started:
            ts, bad = now_ms(), quality.bad(Reason.COMM_FAILURE)
            out += [(key, ts, None, bad) for key, _, _ in self._by_ioa.values()]
        return out

    async def _supervise(self) -> None:
        d = self.device
        delay = d.reconnect_min_s
        assert d.host is not None, "checked when the config loads"
        while True:
            link = Link(d.host, d.port, self.params, self._on_asdu, self._on_started)
            self._link = link
            try:
                await link.run()
                why = "the link was closed"
            except (LinkError, OSError) as exc:
                why = str(exc) or type(exc).__name__
            except Exception as exc:  # a bug of ours on some frame: say so with its traceback, and carry on
                log.exception("iec104 %s: unexpected error on the link; reconnecting", d.id)
                why = f"{type(exc).__name__}: {exc}"
            finally:
                if self._asker is not None:
                    self._asker.cancel()
                    self._asker = None
                link.close(ack=False)  # run() hung up already; what close() wanted acknowledged, it did
            self._link = None
            self._waiting.clear()
            self._first.set()
            if link.was_started:
                delay = d.reconnect_min_s
                log.warning("iec104 %s (%s): link lost: %s; reconnecting", d.id, d.link, why)
            elif why != self.last_error:
                log.warning("iec104 %s (%s): cannot start the link: %s; retrying, back-off up to %g s", d.id, d.link,
                            why, d.reconnect_max_s)
            self.last_error = why
            await asyncio.sleep(delay)
            delay = min(delay * 2, d.reconnect_max_s)

    def _on_started(self) -> None:
        self.connects += 1
        if self.connects > 1 or self.last_error:
            log.warning("iec104 %s (%s): link up again", self.device.id, self.device.link)
        self.last_error = ""
        if self._link is not None:
            self._asker = asyncio.create_task(self._interrogate(self._link))

    async def _interrogate(self, link: Link) -> None:
        """GI and CI at once, then each on its period, and both again when the station re-initialises."""
        d = self.device
        gi_at = ci_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= gi_at:
                self._waiting.add(asdu.Type.C_IC_NA_1)
                await link.send_asdu(asdu.command(asdu.Type.C_IC_NA_1, asdu.QOI_STATION, d.common_address,
                                                  d.originator_address))
                gi_at = now + (d.gi_period_s or math.inf)
            if now >= ci_at:
                self._waiting.add(asdu.Type.C_CI_NA_1)
                await link.send_asdu(asdu.command(asdu.Type.C_CI_NA_1, asdu.QCC_GENERAL_READ, d.common_address,
                                                  d.originator_address))
                ci_at = now + (d.ci_period_s or math.inf)
            self._again.clear()
            wait = min(gi_at, ci_at) - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._again.wait(), None if math.isinf(wait) else max(0.0, wait))
                gi_at = ci_at = time.monotonic()  # end of initialisation: ask for everything again

    def _once(self, key: object, level: int, msg: str, *args: object) -> None:
        if key not in self._said:
            self._said.add(key)
            log.log(level, msg, *args)

    def _on_asdu(self, raw: bytes) -> None:
        self.requests += 1
        d = self.device
        try:
            a = asdu.decode(raw, self._offset_ms)
        except asdu.AsduError as exc:
            self._once(("bad", raw[:1]), logging.WARNING, "iec104 %s: %s; skipped", d.id, exc)
            return
        if a.common_address != d.common_address:
            self._once(("ca", a.common_address), logging.WARNING, "iec104 %s: ASDU for common address %d, this "
                       "device is %d; skipped (set common_address or add a device)", d.id, a.common_address,
                       d.common_address)
            return
        if a.objects:
            if not a.test:  # a test ASDU's values are not the plant's
                self._take(a.objects)
        elif a.type_id in (asdu.Type.C_IC_NA_1, asdu.Type.C_CI_NA_1):
            self._answered(a)
        elif a.type_id == asdu.Type.M_EI_NA_1:
            log.info("iec104 %s: the station re-initialised; interrogating again", d.id)
            self._again.set()
        else:
            self._once(("type", a.type_id), logging.WARNING, "iec104 %s: ASDU type %d is not one parkmon reads "
                       "(docs/iec104.md lists them); skipped", d.id, a.type_id)

    def _answered(self, a: asdu.Asdu) -> None:
        what = "general interrogation" if a.type_id == asdu.Type.C_IC_NA_1 else "counter interrogation"
        if a.negative or a.cot >= asdu.Cot.UNKNOWN_TYPE:
            self._once(("refused", a.type_id, a.cot), logging.WARNING, "iec104 %s: the station refused the %s "
                       "(cause %d)", self.device.id, what, a.cot)
            self._waiting.discard(a.type_id)
        elif a.cot == asdu.Cot.ACTIVATION_TERMINATION:
            self._waiting.discard(a.type_id)
        if not self._waiting:
            self._first.set()

    def _take(self, objects: list[asdu.InfoObject]) -> None:
        now = now_ms()
        station_time = self.device.time_source == "station"
        for o in objects:
            point = self._by_ioa.get(o.ioa)
            if point is None:
                self._once(("ioa", o.ioa), logging.INFO, "iec104 %s: the station sends ioa %d, which is no point "
                           "of this device; add it to keep it", self.device.id, o.ioa)
                continue
            key, scale, offset = point
            ts, tagged = now, False
            if o.time_ms is not None and station_time and not o.flags & TIME_IV:
                self.clock_offset_ms = now - o.time_ms
                if o.time_ms - now > self._skew_ms:
                    self._once("skew", logging.WARNING, "iec104 %s: the station's time tags run %.0f s ahead of "
                               "this gateway's clock: values stamped on arrival (check station_utc_offset_h and "
                               "both clocks)", self.device.id, (o.time_ms - now) / 1000)
                else:
                    ts, tagged = o.time_ms, True
            q = _QUALITY[o.flags & 0x7F]
            value: float | None
            if o.value is None:
                value, q = None, _INDETERMINATE
            elif q >> 6 == QualityClass.BAD:
                value = None
            else:
                value = o.value * scale + offset
            if tagged:
                recent = self._recent.get(o.ioa)
                if recent is None:
                    recent = self._recent[o.ioa] = deque(maxlen=RECENT)
                    self._newest[o.ioa] = ts
                # newer than every reading kept (the usual case) cannot be a repeat: no need to look
                elif ts <= self._newest[o.ioa]:
                    if (ts, value, q) in recent:
                        continue  # a frame sent again after a reconnect, an interrogation repeating the last event
                else:
                    self._newest[o.ioa] = ts
                recent.append((ts, value, q))
            self._queue.append((key, ts, value, q))
        excess = len(self._queue) - self.device.max_queued
        if excess > 0:
            del self._queue[:excess]
            self.dropped += excess
            self._once("full", logging.WARNING, "iec104 %s: more than %d samples between two reads: the oldest "
                       "dropped (counted)", self.device.id, self.device.max_queued)
