"""One IEC 60870-5-104 connection as the controlling station sees it: STARTDT, the timers, the windows.

- t0: the TCP connection must be up within t0.
- t1: every frame that asks for an answer (an I frame we sent, STARTDT / TESTFR act) is answered within t1,
  or the connection is closed (the station is gone or stuck: a reconnect, not a wait forever).
- t2: an I frame received is acknowledged (S frame) within t2 at the latest, or at once after w of them.
- t3: after t3 without any frame from the station, a TESTFR act asks whether it is still there.
- k: at most k of our I frames unacknowledged; a further send waits.

A sequence error (an I frame whose N(S) is not the one expected, an acknowledgement of frames never sent)
closes the connection, as the standard says: the two sides no longer agree on what was delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.drivers.iec104 import apci
from edge_agent.drivers.iec104.apci import U

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Params:
    t0_s: float = 30.0
    t1_s: float = 15.0
    t2_s: float = 10.0
    t3_s: float = 20.0
    k: int = 12
    w: int = 8


class LinkError(ConnectionError):
    """The connection is of no further use; the message says why (the driver logs it and reconnects)."""


class Link:
    """Connect with ``run()``; ``on_asdu`` gets each received ASDU in order, ``on_started`` is called once
    STARTDT is confirmed. ``run()`` returns only by raising LinkError / OSError, or when closed."""

    def __init__(self, host: str, port: int, params: Params, on_asdu: Callable[[bytes], None],
                 on_started: Callable[[], None] | None = None) -> None:
        self.host, self.port, self.p = host, port, params
        self.on_asdu, self.on_started = on_asdu, on_started
        self.started = False  # STARTDT confirmed and the link still up
        self.was_started = False  # STARTDT was confirmed on this connection at some point
        self.frames_in = 0
        self._writer: asyncio.StreamWriter | None = None
        self._vs = 0  # N(S) of our next I frame
        self._vr = 0  # N(S) we expect next from the station
        self._acked = 0  # the oldest of our I frames not yet acknowledged
        self._sent: deque[tuple[int, float]] = deque()  # our unacknowledged I frames: (N(S), when sent)
        self._unacked_in = 0  # I frames received and not yet acknowledged
        self._t2_at: float | None = None
        self._pending: tuple[U, float] | None = None  # a U act awaiting its con, and its t1 deadline
        self._last_in = 0.0
        self._window = asyncio.Event()
        self._stopped = asyncio.Event()  # STOPDT confirmed
        self._closing = False

    async def run(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.p.t0_s)
        except TimeoutError:
            raise LinkError(f"no TCP connection to {self.host}:{self.port} within t0 = {self.p.t0_s:g} s") from None
        self._writer = writer
        self._last_in = time.monotonic()
        self._ask(U.STARTDT_ACT)
        tasks = [asyncio.create_task(self._read(reader)), asyncio.create_task(self._tick())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()  # the reason the link ended
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._close_socket()

    async def send_asdu(self, asdu: bytes) -> None:
        """Send an I frame, waiting while k frames are unacknowledged (t1 closes a link that stays full)."""
        while apci.seq_distance(self._vs, self._acked) >= self.p.k:
            self._window.clear()
            await self._window.wait()
        if self._writer is None or self._closing:
            raise LinkError("the link is closed")
        self._write(apci.i_frame(self._vs, self._vr, asdu))
        self._sent.append((self._vs, time.monotonic()))
        self._vs = (self._vs + 1) % apci.SEQ_MOD
        self._unacked_in, self._t2_at = 0, None  # an I frame carries our N(R): it acknowledges too

    async def stop_data(self, within_s: float) -> None:
        """STOPDT: acknowledge what was received (a station confirms STOPDT only once its frames are), ask it
        to stop sending and wait (at most ``within_s``) for its confirmation; frames still arriving are taken."""
        if not self.started or self._closing:
            return
        if self._unacked_in:
            self._write(apci.s_frame(self._vr))
            self._unacked_in, self._t2_at = 0, None
        self._stopped.clear()
        self._ask(U.STOPDT_ACT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), within_s)

    def close(self, ack: bool = True) -> None:
        """Hang up; with ``ack``, first acknowledge what was received, so the station need not send it again
        (without: a station that keeps unacknowledged frames sends them on the next connection)."""
        if self._writer is not None and not self._closing and ack and self._unacked_in:
            with contextlib.suppress(OSError, RuntimeError):
                self._write(apci.s_frame(self._vr))
        self._close_socket()

    def _close_socket(self) -> None:
        self._closing = True
        self.started = False
        self._window.set()  # a sender waiting for the window learns the link is gone
        if self._writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.close()

    def _write(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    def _ask(self, function: U) -> None:
        self._write(apci.u_frame(function))
        self._pending = (function, time.monotonic() + self.p.t1_s)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buf = bytearray()
        while True:
            chunk = await reader.read(65536)  # whatever has arrived: many frames per wake-up under load
            if not chunk:
                raise LinkError("the station closed the connection")
            self._last_in = time.monotonic()
            buf += chunk
            at, end = 0, len(buf)
            try:
                while end - at >= 2:
                    size = apci.check_header(buf[at:at + 2])
                    if end - at < 2 + size:
                        break
                    frame = apci.parse(bytes(buf[at + 2:at + 2 + size]))
                    at += 2 + size
                    self.frames_in += 1
                    if isinstance(frame, apci.IFrame):
                        self._on_i(frame)
                    elif isinstance(frame, apci.SFrame):
                        self._on_ack(frame.nr)
                    else:
                        self._on_u(frame.function)
            except apci.FrameError as exc:
                raise LinkError(str(exc)) from None
            del buf[:at]

    def _on_i(self, frame: apci.IFrame) -> None:
        if not self.started:
            raise LinkError("the station sent data before confirming STARTDT")
        if frame.ns != self._vr:
            raise LinkError(f"sequence error: I frame N(S) = {frame.ns}, expected {self._vr} (a frame was lost "
                            "or repeated)")
        self._vr = (self._vr + 1) % apci.SEQ_MOD
        self._on_ack(frame.nr)
        self._unacked_in += 1
        if self._unacked_in >= self.p.w:
            self._write(apci.s_frame(self._vr))
            self._unacked_in, self._t2_at = 0, None
        elif self._t2_at is None:
            self._t2_at = time.monotonic() + self.p.t2_s
        self.on_asdu(frame.asdu)

    def _on_ack(self, nr: int) -> None:
        if apci.seq_distance(nr, self._acked) > apci.seq_distance(self._vs, self._acked):
            raise LinkError(f"sequence error: the station acknowledged up to N(R) = {nr}, but we sent up to "
                            f"{self._vs}")
        for _ in range(apci.seq_distance(nr, self._acked)):  # _sent holds _acked.._vs in order
            self._sent.popleft()
        self._acked = nr
        self._window.set()

    def _on_u(self, function: U) -> None:
        if function is U.TESTFR_ACT:
            self._write(apci.u_frame(U.TESTFR_CON))
            return
        want = {U.STARTDT_CON: U.STARTDT_ACT, U.TESTFR_CON: U.TESTFR_ACT, U.STOPDT_CON: U.STOPDT_ACT}.get(function)
        if want is None:  # STARTDT / STOPDT act: a controlled station never sends them
            log.debug("%s:%s sent %s, which only a controlling station sends; ignored", self.host, self.port,
                      function.name)
            return
        if self._pending is None or self._pending[0] is not want:
            log.debug("%s:%s: %s without our %s; ignored", self.host, self.port, function.name, want.name)
            return
        self._pending = None
        if function is U.STOPDT_CON:
            self.started = False
            self._stopped.set()
        if function is U.STARTDT_CON:
            self.started = self.was_started = True
            if self.on_started is not None:
                self.on_started()

    async def _tick(self) -> None:
        step = min(0.1, self.p.t2_s / 4, self.p.t1_s / 4)
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            if self._pending is not None and now > self._pending[1]:
                raise LinkError(f"no {self._pending[0].name.replace('_ACT', '')} confirmation within "
                                f"t1 = {self.p.t1_s:g} s: the station is not answering")
            if self._sent and now - self._sent[0][1] > self.p.t1_s:
                raise LinkError(f"our I frame {self._sent[0][0]} not acknowledged within t1 = {self.p.t1_s:g} s")
            if self._t2_at is not None and now >= self._t2_at:
                self._write(apci.s_frame(self._vr))
                self._unacked_in, self._t2_at = 0, None
            if self._pending is None and now - self._last_in >= self.p.t3_s:
                self._ask(U.TESTFR_ACT)  # idle for t3: is the station still there?
