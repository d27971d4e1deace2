"""The TCP server HJ 212 data loggers and DTUs dial into.

One server per listening address, shared by every ``hj212`` device of the gateway (loggers are told
apart by their MN). Each connection's byte stream is cut into frames (``parkmon.common.hj212.Framer``); a
frame that breaks the standard is kept as a dead letter with the codec's reason (and, when its header
can still be read, answered with 9011 so the logger re-sends); a packet from an unknown MN or with the
wrong PW is refused with 9011 QnRtn 4 / 3 and kept; data uploads (2011 / 2051 / 2061 / 2031) go to the
logger's sink and are acknowledged with 9014 when their Flag asks. Split packets are joined first.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from parkmon.common import hj212
from parkmon.common.clock import now_ms
from parkmon.common.hj212_codes import (
    CN_DATA_ACK,
    CN_EXE_RETURN,
    CN_NOTICE_RETURN,
    CN_QN_RETURN,
    DATA_CNS,
    QN_BAD_CRC,
    QN_BAD_MN,
    QN_BAD_PW,
    QN_UNKNOWN,
    ST_SYSTEM,
)

log = logging.getLogger(__name__)

Sink = Callable[[hj212.Record], Awaitable[None]]  # returns once the record's samples are on disk


@dataclass
class Logger:
    mn: str
    pw: str
    sink: Sink
    packets: int = 0
    records: int = 0
    refused: int = 0
    last_ms: int = 0


class DeadLetters:
    """Bad frames, one JSON line each (time, peer, field, reason, the bytes): nothing is dropped silently."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0

    def keep(self, peer: str, reason: str, where: str, data: bytes) -> None:
        self.count += 1
        log.warning("HJ 212 dead letter from %s: %s", peer, reason)
        if self.path is None:
            return
        line = {"at_ms": now_ms(), "peer": peer, "field": where, "reason": reason,
                "bytes_b64": base64.b64encode(data[:4096]).decode()}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


def reply(to: hj212.Packet, cn: str, cp: str = "", pw: str | None = None) -> bytes:
    return hj212.build(hj212.Packet(ST_SYSTEM, cn, pw if pw is not None else to.pw, to.mn, cp, to.qn, 4))


class ReceiverServer:
    def __init__(self, host: str, port: int, dead_letters: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.loggers: dict[str, Logger] = {}
        self.dead = DeadLetters(dead_letters)
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def register(self, mn: str, pw: str, sink: Sink) -> Logger:
        if mn in self.loggers:
            raise ValueError(f"two hj212 devices claim MN {mn}; each data logger has its own MN")
        self.loggers[mn] = Logger(mn, pw, sink)
        return self.loggers[mn]

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._client, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]  # port 0: the one the system gave
            log.info("HJ 212 receiver listening on %s:%s", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = ":".join(str(x) for x in (writer.get_extra_info("peername") or ("?",))[:2])
        self.connections += 1
        self._writers.add(writer)
        framer, joiner = hj212.Framer(), hj212.Reassembler()
        try:
            while data := await reader.read(65536):
                for item in framer.feed(data):
                    answer = await self.handle(item, peer, joiner)
                    if answer:
                        writer.write(answer)
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.info("HJ 212 connection from %s ended: %s", peer, exc)
        finally:
            rest = framer.pending()
            if rest.strip(b"\r\n"):
                self.dead.keep(peer, "connection closed inside a packet (truncated)", "stream", rest)
            self._writers.discard(writer)
            writer.close()

    async def handle(self, item: bytes | hj212.Hj212Error, peer: str, joiner: hj212.Reassembler) -> bytes:
        """One frame (or framing error) in, the bytes to answer out (empty: nothing to say). A data
        upload is acknowledged only after its sink has put it on disk: an ack is a promise."""
        if isinstance(item, hj212.Hj212Error):
            self.dead.keep(peer, str(item), item.field, item.got.encode())
            return b""
        try:
            p = hj212.parse(item)
        except hj212.Hj212Error as exc:
            self.dead.keep(peer, str(exc), exc.field, item)
            if exc.field == "CRC":  # the header still says who sent it: ask for the packet again
                try:
                    p = hj212.parse_segment(item[6:-6].decode("ascii"))
                except (hj212.Hj212Error, UnicodeDecodeError):
                    return b""
                return reply(p, CN_QN_RETURN, f"QnRtn={QN_BAD_CRC}") if p.qn else b""
            return b""
        lg = self.loggers.get(p.mn)
        if lg is None:
            self.dead.keep(peer, f"MN {p.mn} is not configured on this gateway (add an hj212 device with this mn)",
                           "MN", item)
            return reply(p, CN_QN_RETURN, f"QnRtn={QN_BAD_MN}")
        lg.packets += 1
        lg.last_ms = now_ms()
        if p.pw != lg.pw:
            lg.refused += 1
            self.dead.keep(peer, f"PW of MN {p.mn} does not match the configured one", "PW", item)
            return reply(p, CN_QN_RETURN, f"QnRtn={QN_BAD_PW}", pw=lg.pw)
        if p.cn in (CN_QN_RETURN, CN_EXE_RETURN, CN_NOTICE_RETURN, CN_DATA_ACK):
            return b""  # answers to requests of ours
        ack = reply(p, CN_DATA_ACK) if p.ack_requested else b""
        try:
            whole = joiner.add(p)
        except hj212.Hj212Error as exc:
            self.dead.keep(peer, str(exc), exc.field, item)
            return b""
        if whole is None:
            return ack  # a part of a split packet: acknowledged, kept until the rest comes
        if whole.cn not in DATA_CNS:
            log.info("HJ 212 %s sent CN %s; parkmon takes data uploads (%s)", p.mn, p.cn, ", ".join(DATA_CNS))
            return reply(p, CN_NOTICE_RETURN) if p.ack_requested else b""
        try:
            rec = hj212.record(whole)
        except hj212.Hj212Error as exc:
            self.dead.keep(peer, str(exc), exc.field, item)
            return reply(p, CN_QN_RETURN, f"QnRtn={QN_UNKNOWN}") if p.ack_requested else b""
        lg.records += 1
        await lg.sink(rec)
        return ack
