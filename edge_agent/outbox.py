"""Polled samples on their way to the disk buffer (edge_agent/buffer.py), and what happens when the disk says no.

A poll's samples are written as soon as the poll hands them over, together with those of the polls of
the same tick that are still running (waited for ``gather_s`` at most, 0.1 s by default): one
transaction at a time, and what arrives during a write goes into the next (a group commit). So a
sample lives only in memory for that short wait and a write, far less than a poll interval, and the
publisher is told as soon as it is on disk.

When the disk refuses a write (full, failing), nothing is lost yet: the batches stay in memory with
their seqs, the write is retried with back-off (FIRST_RETRY_S doubling to MAX_RETRY_S), the log says
so once when it starts and once when it ends, and the health report shows ``write_failing``. Memory
holds at most ``limit`` samples: past it the oldest batches are dropped, counted in the buffer's
counters (saved with the first write that works) and logged; each dropped batch is a seq never sent,
a gap the platform's completeness report counts. Decision record: docs/decisions/0002-edge-buffer.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.buffer import DiskBuffer
from edge_agent.drivers.base import Sample
from parkmon.common.clock import now_ms

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 10.0


class BufferWriteError(OSError):
    """The disk refused the write that held these samples (they stay in memory and are retried). An
    OSError: the HJ 212 server then ends the logger's connection unacknowledged, and the logger re-sends."""


@dataclass(slots=True)
class _Batch:
    seq: int
    samples: list[Sample]
    waiter: asyncio.Future[None] | None = None  # a pushing device waiting for its samples to be on disk


@dataclass(slots=True)
class _Episode:
    """One stretch of failed writes, for the line that says it is over."""

    since_ms: int
    failures: int = 0
    dropped_batches: int = 0
    dropped_samples: int = 0
    first_dropped: int = 0
    last_dropped: int = 0


class Outbox:
    def __init__(self, buffer: DiskBuffer, max_samples: int, limit: int, written: Callable[[], None],
                 gather_s: float = 0.0) -> None:
        self.buffer = buffer
        self.max_samples = max_samples  # per batch (one MQTT message)
        self.limit = limit  # samples held in memory while the disk refuses writes
        self.gather_s = gather_s  # longest wait for the polls still running before a write
        self.polling = 0  # polls under way (the agent counts them)
        self._written = written
        self._fresh: list[Sample] = []  # polled since the last write began; no seq yet
        self._held: deque[_Batch] = deque()  # seqs handed out, not yet on disk
        self._held_samples = 0
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._writing = False
        self._episode: _Episode | None = None
        self.error = ""  # the last write error, while writes fail

    @property
    def failing_since_ms(self) -> int | None:
        ep = self._episode  # read once: the health report runs in another thread
        return ep.since_ms if ep else None

    @property
    def state(self) -> str:
        return "write_failing" if self._episode else "ok"

    @property
    def in_memory(self) -> int:
        """Polled samples not on disk yet."""
        return self._held_samples + len(self._fresh)

    def put(self, samples: list[Sample]) -> None:
        """A poll's samples (call it after every poll, even with none): written at once, or held while
        the disk refuses."""
        if samples:
            self._fresh.extend(samples)
            if self._episode and not self._writing:  # during a write its batches must stay where they are
                self._bound()
        self._wake.set()

    async def put_and_wait(self, samples: list[Sample]) -> None:
        """Samples a pushing device may acknowledge only once they are on disk (HJ 212 loggers): returns
        when they are, raises BufferWriteError if the disk refused (they are still held and retried; the
        device, not acknowledged, sends them again, which the platform's idempotency absorbs)."""
        if not samples:
            return
        self._form()  # what was polled before keeps the lower seqs
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        chunks = [samples[i : i + self.max_samples] for i in range(0, len(samples), self.max_samples)]
        for i, chunk in enumerate(chunks):
            # one write takes every held batch, so the last chunk on disk means all of them are
            self._hold(_Batch(self.buffer.next_seq(), chunk, done if i == len(chunks) - 1 else None))
        self._wake.set()
        await done

    def _hold(self, batch: _Batch) -> None:
        self._held.append(batch)
        self._held_samples += len(batch.samples)

    def _form(self) -> None:
        """Fresh samples become batches: each gets its seq now, for good."""
        samples, self._fresh = self._fresh, []
        for i in range(0, len(samples), self.max_samples):
            self._hold(_Batch(self.buffer.next_seq(), samples[i : i + self.max_samples]))

    async def run(self) -> None:
        """The writer: until close(), write what comes; then one last try."""
        delay = FIRST_RETRY_S
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            if not self._episode:
                await self._gather()
            if self._closing.is_set():
                break
            if await self._write():
                delay = FIRST_RETRY_S
                continue
            await self._pause(delay)
            delay = min(delay * 2, MAX_RETRY_S)
            self._wake.set()  # retry after the pause even if no poll comes
        await self._last_write()

    async def _pause(self, delay: float) -> None:
        """Wait before the next try; meanwhile keep the record of what is held current after each poll (an
        update in place, which a full disk usually still takes), so that if the agent dies before the disk
        is back, its next start counts these samples as lost and leaves their seqs unused."""
        loop = asyncio.get_running_loop()
        retry_at = loop.time() + delay
        while not self._closing.is_set() and (left := retry_at - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
            if self._wake.is_set() and not self._closing.is_set():
                self._wake.clear()
                await self._save_held()

    async def _save_held(self) -> None:
        self._form()  # every poll held gets its seq now, so the record covers it
        self._bound()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.buffer.write, [], len(self._held), self._held_samples)

    async def _gather(self) -> None:
        """The polls of one tick end within milliseconds of each other: wait for the ones still running
        (``polling``), at most ``gather_s``, so a tick makes one transaction and one message rather than
        one per device (an fsync and a PUBACK each: bench/edge.py measured the difference)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gather_s
        while self.polling and not self._closing.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
            self._wake.clear()

    def close(self) -> None:
        """Ask run() to write what is left and return (the agent awaits it)."""
        self._closing.set()
        self._wake.set()

    async def _write(self) -> bool:
        self._form()
        if not self._held:
            return True
        batches = list(self._held)
        self._writing = True
        try:
            # nothing stays held after this write but what comes during it
            await asyncio.to_thread(self.buffer.write, [(b.seq, b.samples) for b in batches], 0, 0)
        except Exception as exc:  # sqlite3.Error, OSError, or anything else: the writer must live on
            self._writing = False
            await self._failed(exc, batches)
            return False
        self._writing = False
        written = 0
        for _ in batches:
            b = self._held.popleft()
            self._held_samples -= len(b.samples)
            written += len(b.samples)
            if b.waiter is not None and not b.waiter.done():
                b.waiter.set_result(None)
        self._written()
        if self._episode:
            self._recovered(written)
        return True

    async def _failed(self, exc: Exception, batches: list[_Batch]) -> None:
        self.buffer.count_write_failure()
        self.error = f"{type(exc).__name__}: {exc}"
        if self._episode is None:
            self._episode = _Episode(now_ms())
            log.warning("cannot write the disk buffer %s (%s): keeping polled samples in memory (at most %d) and "
                        "retrying every %g-%g s; publishing goes on from what is on disk",
                        self.buffer.path, self.error, self.limit, FIRST_RETRY_S, MAX_RETRY_S,
                        exc_info=not isinstance(exc, OSError | sqlite3.Error))  # a surprise: show where
        self._episode.failures += 1
        for b in batches:
            if b.waiter is not None and not b.waiter.done():
                b.waiter.set_exception(BufferWriteError(f"disk buffer write failed: {self.error}"))
            b.waiter = None
        await self._save_held()

    def _bound(self) -> None:
        """While writes fail: past ``limit`` samples in memory, drop the oldest batches, counted."""
        if self.in_memory <= self.limit:
            return
        self._form()
        ep = self._episode
        batches = samples = 0
        while self._held and self._held_samples > self.limit:
            b = self._held.popleft()
            self._held_samples -= len(b.samples)
            batches, samples = batches + 1, samples + len(b.samples)
            if ep is not None:
                ep.first_dropped = ep.first_dropped or b.seq
                ep.last_dropped = b.seq
            if b.waiter is not None and not b.waiter.done():
                b.waiter.set_exception(BufferWriteError("dropped: the disk refused writes and memory was full"))
        self.buffer.count_loss("memory_full", batches, samples)
        if ep is not None:
            if not ep.dropped_batches:
                log.warning("memory limit of %d samples reached while the disk buffer refuses writes: dropping the "
                            "oldest polled samples (%d now, from seq %d); every dropped batch is a seq gap the "
                            "completeness report counts", self.limit, samples, ep.first_dropped)
            ep.dropped_batches += batches
            ep.dropped_samples += samples

    def _recovered(self, written: int) -> None:
        ep = self._episode
        assert ep is not None
        self._episode, self.error = None, ""
        lost = (f"dropped {ep.dropped_samples} samples in {ep.dropped_batches} batches for memory "
                f"(seq {ep.first_dropped}-{ep.last_dropped}, counted in dropped_samples)"
                if ep.dropped_batches else "nothing dropped")
        (log.warning if ep.dropped_batches else log.info)(
            "disk buffer writes work again after %.1f s and %d failed attempts: wrote %d samples held in memory; %s",
            (now_ms() - ep.since_ms) / 1000, ep.failures, written, lost)

    async def _last_write(self) -> None:
        """The agent stops: write what is held; if the disk still refuses, it is lost, and counted."""
        if not self.in_memory or await self._write():
            return
        self._form()
        batches, samples = len(self._held), self._held_samples
        first, last = self._held[0].seq, self._held[-1].seq
        for b in self._held:
            if b.waiter is not None and not b.waiter.done():
                b.waiter.set_exception(BufferWriteError("the agent stopped before the disk took them"))
        self._held.clear()
        self._held_samples = 0
        self.buffer.count_loss("unwritten_at_stop", batches, samples)
        saved = True
        try:
            await asyncio.to_thread(self.buffer.write, [], 0, 0)
        except Exception:
            saved = False
        log.error("stopping with %d polled samples (%d batches, seq %d-%d) the disk buffer would not take: lost; %s",
                  samples, batches, first, last,
                  "counted in its dropped_samples" if saved else "the disk refused to record even that")
