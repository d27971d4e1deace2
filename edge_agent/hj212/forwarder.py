"""The gateway as a data logger towards a regulator's HJ 212 platform.

Records to send (relayed from a logger that dialled in, or built from a polled outlet's samples) go to a
SQLite outbox first, one row per (CN, DataTime): a record a logger re-sends is queued once. The sender
connects, sends the oldest unacknowledged row with Flag=5 and waits for 9014 with its QN (10 s × 3 by
default, the standard's table 1); without an answer it drops the connection and tries again later, so
nothing leaves the outbox unacknowledged. Rows stay ``keep_days`` after their ack, which is what the
platform's history requests (CN 2051 / 2061 / 2031 with BeginTime / EndTime) are answered from: 9011, the
records, then 9012. A request with the wrong PW or MN is refused with 9011 QnRtn 3 / 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from parkmon.common import hj212
from parkmon.common.clock import now_ms
from parkmon.common.hj212_codes import (
    CN_DATA_ACK,
    CN_EXE_RETURN,
    CN_GET_TIME,
    CN_QN_RETURN,
    CN_REALTIME,
    DATA_CNS,
    EXE_NO_DATA,
    EXE_SUCCESS,
    QN_BAD_MN,
    QN_BAD_PW,
    QN_READY,
    ST_SYSTEM,
)

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cn TEXT NOT NULL, data_time_ms INTEGER NOT NULL, cp TEXT NOT NULL,
    created_ms INTEGER NOT NULL, tries INTEGER NOT NULL DEFAULT 0, acked_ms INTEGER,
    UNIQUE (cn, data_time_ms));
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (acked_ms, id);
"""


@dataclass(frozen=True)
class Upstream:
    """Where and as whom: the platform's address, the MN / PW / ST the regulator assigned."""

    host: str
    port: int
    mn: str
    pw: str
    st: str
    periods: frozenset[str] = frozenset({"realtime", "minute", "hour", "day"})
    timeout_s: float = 10.0
    retries: int = 3
    keep_days: float = 30.0
    reconnect_s: float = 5.0


class Outbox:
    """The records on their way, and those sent (for history requests)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # queued is a promise: it survives a power cut
        self._db.executescript(_SCHEMA)

    def add(self, cn: str, data_time_ms: int, cp: str) -> bool:
        cur = self._db.execute("INSERT OR IGNORE INTO outbox (cn, data_time_ms, cp, created_ms) VALUES (?, ?, ?, ?)",
                               (cn, data_time_ms, cp, now_ms()))
        return cur.rowcount == 1

    def next_open(self) -> tuple[int, str, str] | None:
        row = self._db.execute("SELECT id, cn, cp FROM outbox WHERE acked_ms IS NULL ORDER BY id LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def tried(self, row_id: int) -> None:
        self._db.execute("UPDATE outbox SET tries = tries + 1 WHERE id = ?", (row_id,))

    def acked(self, row_id: int) -> None:
        self._db.execute("UPDATE outbox SET acked_ms = ? WHERE id = ?", (now_ms(), row_id))

    def history(self, cn: str, begin_ms: int, end_ms: int) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT cp FROM outbox WHERE cn = ? AND data_time_ms BETWEEN ? AND ? ORDER BY data_time_ms",
            (cn, begin_ms, end_ms))]

    def open_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox WHERE acked_ms IS NULL").fetchone()[0])

    def prune(self, keep_ms: int) -> int:
        cut = now_ms() - keep_ms
        return self._db.execute("DELETE FROM outbox WHERE acked_ms IS NOT NULL AND acked_ms < ?", (cut,)).rowcount

    def close(self) -> None:
        self._db.close()


class Forwarder:
    def __init__(self, up: Upstream, outbox_path: str | Path) -> None:
        self.up = up
        self.outbox = Outbox(outbox_path)
        self.sent = self.acked = self.resent = self.reconnects = self.refused = self.history_answers = 0
        self._wake = asyncio.Event()
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._stop = asyncio.Event()
        self._last_qn_ms = 0
        self._writer: asyncio.StreamWriter | None = None

    # --- what goes up ------------------------------------------------------------------------------
    def relay(self, rec: hj212.Record) -> bool:
        """Queue a record (a logger's, or one built here); False when it was already queued."""
        if DATA_CNS[rec.cn] not in self.up.periods:
            return False
        added = self.outbox.add(rec.cn, rec.data_time_ms, hj212.cp_of(rec.data_time_ms, rec.values, rec.flags,
                                                                        rec.extra))
        if added:
            self._wake.set()
        return added

    def relay_all(self, records: Sequence[hj212.Record]) -> int:
        return sum(self.relay(r) for r in records)

    # --- the link ----------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.close()

    async def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.up.host, self.up.port),
                                                        self.up.timeout_s)
            except (OSError, TimeoutError) as exc:
                log.info("HJ 212 platform %s:%s unreachable (%s); retrying", self.up.host, self.up.port, exc)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.up.reconnect_s * 6)
                continue
            backoff = 0.5
            self._writer = writer
            listener = asyncio.create_task(self._listen(reader, writer))
            try:
                await self._send_all(writer, listener)
            except (ConnectionError, OSError) as exc:
                log.info("HJ 212 link to %s:%s lost: %s", self.up.host, self.up.port, exc)
            finally:
                listener.cancel()
                writer.close()
                self._writer = None
                for fut in self._acks.values():
                    fut.cancel()
                self._acks.clear()
            if not self._stop.is_set():
                self.reconnects += 1
                await self._pause(min(self.up.reconnect_s, backoff))
        self.outbox.close()

    async def _pause(self, s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), s)

    def _qn(self) -> str:
        ms = max(now_ms(), self._last_qn_ms + 1)  # unique and increasing
        self._last_qn_ms = ms
        return hj212.make_qn(ms)

    async def _send_all(self, writer: asyncio.StreamWriter, listener: asyncio.Task[None]) -> None:
        while not self._stop.is_set():
            if listener.done():
                raise ConnectionError("the platform closed the connection")
            row = self.outbox.next_open()
            if row is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                except TimeoutError:
                    self.outbox.prune(int(self.up.keep_days * 86_400_000))
                continue
            row_id, cn, cp = row
            for attempt in range(self.up.retries):
                qn = self._qn()
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._acks[qn] = fut
                for part in hj212.split(hj212.Packet(self.up.st, cn, self.up.pw, self.up.mn, cp, qn, 5)):
                    writer.write(hj212.build(part))
                await writer.drain()
                self.outbox.tried(row_id)
                self.sent += 1
                if attempt:
                    self.resent += 1
                try:
                    await asyncio.wait_for(fut, self.up.timeout_s)
                except TimeoutError:
                    continue
                finally:
                    self._acks.pop(qn, None)
                self.outbox.acked(row_id)
                self.acked += 1
                break
            else:  # no answer after the retries: a fresh connection, the row stays queued
                raise ConnectionError(f"no 9014 after {self.up.retries} tries of {self.up.timeout_s:g} s")

    async def _listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = hj212.Framer()
        while data := await reader.read(65536):
            for item in framer.feed(data):
                if isinstance(item, hj212.Hj212Error):
                    log.warning("HJ 212 platform sent a bad frame: %s", item)
                    continue
                try:
                    p = hj212.parse(item)
                except hj212.Hj212Error as exc:
                    log.warning("HJ 212 platform sent a bad packet: %s", exc)
                    continue
                if p.cn == CN_DATA_ACK and p.qn in self._acks:
                    fut = self._acks[p.qn]
                    if not fut.done():
                        fut.set_result(None)
                elif p.cn not in (CN_DATA_ACK, CN_QN_RETURN, CN_EXE_RETURN):
                    for out in self._request(p):
                        writer.write(out)
                    await writer.drain()

    def _answer(self, to: hj212.Packet, cn: str, cp: str) -> bytes:
        return hj212.build(hj212.Packet(ST_SYSTEM, cn, self.up.pw, self.up.mn, cp, to.qn, 4))

    def _request(self, p: hj212.Packet) -> list[bytes]:
        """The platform asks: history of a data CN, or the time; anything else is refused politely."""
        if p.mn != self.up.mn:
            self.refused += 1
            return [self._answer(p, CN_QN_RETURN, f"QnRtn={QN_BAD_MN}")]
        if p.pw != self.up.pw:
            self.refused += 1
            return [self._answer(p, CN_QN_RETURN, f"QnRtn={QN_BAD_PW}")]
        ready = self._answer(p, CN_QN_RETURN, f"QnRtn={QN_READY}")
        if p.cn == CN_GET_TIME:
            now = hj212.format_time(now_ms())
            data = hj212.build(hj212.Packet(self.up.st, CN_GET_TIME, self.up.pw, self.up.mn, f"SystemTime={now}",
                                            p.qn, 4))
            return [ready, data, self._answer(p, CN_EXE_RETURN, f"ExeRtn={EXE_SUCCESS}")]
        if p.cn in DATA_CNS and p.cn != CN_REALTIME:
            try:
                items = hj212.cp_items(p.cp)
                begin = hj212.parse_time(items.get("BeginTime", ""), "BeginTime")
                end = hj212.parse_time(items.get("EndTime", ""), "EndTime")
            except hj212.Hj212Error as exc:
                log.warning("HJ 212 history request refused: %s", exc)
                return [self._answer(p, CN_QN_RETURN, "QnRtn=100")]
            rows = self.outbox.history(p.cn, begin, end)
            self.history_answers += 1
            out = [ready]
            for cp in rows:
                out += [hj212.build(part) for part in
                        hj212.split(hj212.Packet(self.up.st, p.cn, self.up.pw, self.up.mn, cp, p.qn, 4))]
            code = EXE_SUCCESS if rows else EXE_NO_DATA
            return [*out, self._answer(p, CN_EXE_RETURN, f"ExeRtn={code}")]
        return [self._answer(p, CN_QN_RETURN, "QnRtn=8")]  # CN this gateway does not serve
