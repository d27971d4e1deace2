"""The gateway's main loop: poll every device on its own schedule, buffer, publish.

Each device has its own task on a wall-clock-aligned schedule, so one slow or dead device never
delays the others and cycles do not drift. Each poll's samples go to the disk buffer at once
(edge_agent/outbox.py: on disk before the next poll, held and retried while the disk refuses), and
each write wakes the publisher, so publishing follows the polls instead of a timer of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from edge_agent.buffer import DELIVERIES, WRITE_FAILURES, DiskBuffer
from edge_agent.config import AgentConfig, DeviceConfig
from edge_agent.drivers.base import Driver, Sample, create_driver
from edge_agent.hj212.forwarder import Forwarder, Upstream
from edge_agent.hj212.from_samples import PeriodRecords, realtime_records
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.sample_filter import SampleFilter
from parkmon.common import metrics, quality, wire
from parkmon.common.clock import now_ms

log = logging.getLogger(__name__)

# the longest a poll's samples wait in memory for the other polls of their tick before the write (at most a
# tenth of the fastest poll interval): on disk well before the next poll, in one transaction per tick
GATHER_S = 0.1


def build_meta(cfg: AgentConfig) -> wire.Meta:
    points = {
        f"{d.id}.{p.name}": wire.PointMeta(p.metric, p.resolved_unit, metrics.get(p.metric).kind.value, p.label)
        for d in cfg.devices
        for p in d.points
    }
    return wire.Meta(wire.VERSION, cfg.gateway.id, now_ms(), points,
                     {d.id: d.name for d in cfg.devices})


@dataclass
class DeviceHealth:
    polls: int = 0
    errors: int = 0
    late_cycles: int = 0
    up: bool | None = None  # None until the first poll says
    requests: int = 0
    last_poll_ms: int = 0


@dataclass
class Agent:
    cfg: AgentConfig
    health: dict[str, DeviceHealth] = field(default_factory=dict)

    def __post_init__(self) -> None:
        gw = self.cfg.gateway
        self.buffer = DiskBuffer(self.cfg.buffer.path, gw.id, int(self.cfg.buffer.max_mb * 1024 * 1024))
        self.publisher = Publisher(self.cfg, self.buffer, build_meta(self.cfg))
        self.filter = SampleFilter(self.cfg)
        fastest = min([self.interval(d) for d in self.cfg.devices] or [self.cfg.poll_interval_s])
        self.outbox = Outbox(self.buffer, self.cfg.publish.max_samples, self.cfg.buffer.max_memory_samples,
                             self.publisher.notify, gather_s=min(GATHER_S, fastest / 10))
        if self.buffer.found_unwritten[0]:
            n, s = self.buffer.found_unwritten
            log.warning("the last run of this gateway ended with %d polled samples (%d batches) it could not write "
                        "to %s: lost, counted in dropped_samples; their seqs stay unused (a gap)", s, n,
                        self.buffer.path)
        self._stop = asyncio.Event()
        self._started = time.monotonic()
        # device id -> the HJ 212 platforms its outlet reports to (edge_agent/hj212/forwarder.py)
        self.forwarders: dict[str, list[Forwarder]] = {}
        for u in self.cfg.hj212_upstream:
            up = Upstream(u.host, u.port, u.mn, u.pw, u.st, frozenset(u.periods), u.timeout_s, u.retries, u.keep_days)
            self.forwarders.setdefault(u.device, []).append(
                Forwarder(up, f"{self.cfg.buffer.path}.hj212-{u.name}.db"))
        self._pushing = {d.id for d in self.cfg.devices if d.pushes}
        self._periods: dict[tuple[str, int], PeriodRecords] = {}

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        # links several devices use (serial lines, DTUs, the HJ 212 listening socket), and what pushing
        # devices need: a way to put samples on disk before they acknowledge, the HJ 212 forwarders
        shared: dict[object, object] = {"store_samples": self._store_now,
                                         "hj212_dead_letters": f"{self.cfg.buffer.path}.hj212-dead-letters.jsonl",
                                         "hj212_relay": self.forwarders}
        drivers = [create_driver(d, shared) for d in self.cfg.devices]
        for drv in drivers:
            await drv.open()
        self.publisher.start()
        uplinks = [asyncio.create_task(fw.run(), name=f"hj212-{fw.up.host}") for fws in self.forwarders.values()
                   for fw in fws]
        tasks = [asyncio.create_task(self._poll_loop(drv), name=f"poll-{drv.device.id}") for drv in drivers]
        writer = asyncio.create_task(self.outbox.run(), name="buffer-writer")
        reporter = asyncio.create_task(self._health_loop(), name="health")
        try:
            await self._stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            # a library that swallows the cancellation mid-request must not keep the agent alive:
            # the poll loops also watch the stop flag, and we wait for them a bounded time
            _done, stuck = await asyncio.wait(tasks, timeout=5.0) if tasks else (set(), set())
            for t in stuck:
                log.warning("poll task %s did not stop within 5 s; leaving it", t.get_name())
            reporter.cancel()
            self.outbox.close()  # what was polled is on disk before we go (or counted as lost)
            await asyncio.gather(writer, reporter, return_exceptions=True)
            for drv in drivers:
                await drv.close()
            for fws in self.forwarders.values():
                for fw in fws:
                    fw.stop()
            await asyncio.gather(*uplinks, return_exceptions=True)
            await asyncio.to_thread(self.publisher.stop)
            self.buffer.close()

    def interval(self, device: DeviceConfig) -> float:
        return device.poll_interval_s or self.cfg.poll_interval_s

    async def _poll_loop(self, drv: Driver) -> None:
        dev = drv.device
        h = self.health.setdefault(dev.id, DeviceHealth())
        step = self.interval(dev)
        next_at = (time.time() // step + 1) * step
        while not self._stop.is_set():
            await asyncio.sleep(max(0.0, next_at - time.time()))
            self.outbox.polling += 1
            try:
                samples = await drv.read()
            finally:
                self.outbox.polling -= 1
            h.polls += 1
            h.requests = int(getattr(drv, "requests", 0))
            h.last_poll_ms = now_ms()
            self._note_state(dev, h, samples)
            if dev.id in self.forwarders and dev.id not in self._pushing:
                for fw in self.forwarders[dev.id]:  # a polled outlet: the gateway is its data logger
                    fw.relay_all(realtime_records(dev, samples, fw.up.mn, fw.up.st))
                    periods = self._periods.setdefault((dev.id, id(fw)), PeriodRecords(dev, fw))
                    periods.add(samples, now_ms())
            self.outbox.put(self.filter.apply(samples))
            next_at += step
            now = time.time()
            if now > next_at:  # overran: skip the missed slots rather than bunching polls
                missed = int((now - next_at) // step) + 1
                h.late_cycles += missed
                next_at += missed * step

    def _note_state(self, dev: DeviceConfig, h: DeviceHealth, samples: list[Sample]) -> None:
        down = bool(samples) and all(
            quality.reason(s[3]) == quality.Reason.COMM_FAILURE for s in samples
        )
        if down:
            h.errors += 1
        # log a device going down once and coming back once, not every cycle
        if down and h.up is not False:
            log.warning("device %s (%s) is not answering; its points are sent as bad quality", dev.id, dev.link)
        elif not down and h.up is False:
            log.warning("device %s answers again", dev.id)
        h.up = not down

    def health_report(self) -> wire.Health:
        batches, samples, oldest = self.buffer.depth()
        out, acks, now = self.outbox, self.publisher.acks, now_ms()
        return wire.Health(
            wire.VERSION, self.cfg.gateway.id, now,
            round(time.monotonic() - self._started, 1),
            {d: wire.DeviceHealth(h.up, h.polls, h.errors, h.late_cycles, h.requests)
             for d, h in self.health.items()},
            batches, samples, oldest, self.buffer.dropped(), self.publisher.published, self.publisher.acked,
            self.filter.resets, self.filter.rollovers, self.filter.suppressed,
            buffer_state=out.state, buffer_error=out.error, buffer_failing_since_ms=out.failing_since_ms,
            buffer_write_failures=self.buffer.counter(WRITE_FAILURES), memory_samples=out.in_memory,
            memory_limit_samples=out.limit, dropped_batches=self.buffer.dropped_batches(),
            dropped_by_cause=self.buffer.losses(),
            ack_state=acks.state, unacked_batches=acks.unacked,
            unacked_oldest_age_s=None if oldest is None else round(max(0, now - oldest) / 1000, 1),
            confirmed=acks.confirmed, resent=acks.resent,
            unconfirmed_deleted=self.buffer.counter(DELIVERIES["puback"][0]),
        )

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.publish.health_interval_s)
            try:
                report = await asyncio.to_thread(self.health_report)
            except Exception as exc:  # a disk that cannot even be read: the next report may work
                log.debug("no health report this time: %s", exc)
                continue
            self.publisher.publish_health(report)

    async def _store_now(self, samples: list[Sample]) -> None:
        """Samples a pushing device must have on disk before it acknowledges them (HJ 212 loggers)."""
        await self.outbox.put_and_wait(samples)
