"""A test receiving platform for HJ 212-2017 (监控中心 / 上位机), as a regulator's server behaves.

An asyncio TCP server; each connection's byte stream is cut into frames by the codec's ``Framer``
(with resync), parts are joined by its ``Reassembler``. What happens to what arrives:

- a frame the codec rejects is a dead letter with the codec's own reason (``CRC: expected 1C80 …``,
  ``length: expected 340 characters then CRC and CR LF …``); bytes of a packet cut short by the
  connection closing are one too. The stream continues with the next frame. A CRC error whose header
  still reads is answered with 9011 QnRtn=9 (its QN), so the logger re-sends at once (``nack_crc``).
- with an allow-list (MN → PW) a packet from an unknown MN gets 9011 QnRtn=4 and a wrong PW QnRtn=3
  (table 7); nothing of it is stored.
- a data upload (CN 2011 / 2051 / 2061 / 2031) is stored (every copy, in ``received``, and once per
  (MN, CN, DataTime) in :meth:`TestPlatform.dedup`) and, when its Flag asks, acknowledged with 9014
  (its QN, ST=91, Flag=4, ``CP=&&&&``). Faults: ``late_ack`` (the next acks come ``seconds`` late)
  and ``drop_acks`` (the next ``count`` uploads are never acknowledged).
- :meth:`TestPlatform.request_history` asks a connected logger for its records of a window: CN 2051
  / 2061 / 2031 with ``BeginTime``/``EndTime`` and Flag=5 (v2017 + answer wanted, as in the
  standard's App. A request), re-sent with the same QN if no 9011 comes within the timeout; then the
  records carrying the request's QN until the 9012.
- :meth:`TestPlatform.close_client` closes a logger's connection, to test drops from this side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from parkmon.common import metrics
from parkmon.common.hj212 import (
    Framer,
    Hj212Error,
    Packet,
    Reassembler,
    Record,
    build,
    cp_items,
    format_time,
    make_qn,
    metric_of,
    parse,
    parse_segment,
    parse_time,
    record,
)
from parkmon.common.hj212_codes import (
    CN_DATA_ACK,
    CN_DAY,
    CN_EXE_RETURN,
    CN_HOUR,
    CN_MINUTE,
    CN_QN_RETURN,
    CN_REALTIME,
    CODE_NAMES,
    DATA_CNS,
    QN_BAD_CRC,
    QN_BAD_MN,
    QN_BAD_PW,
    QN_READY,
    QN_UNKNOWN,
    ST_SYSTEM,
)

PLATFORM_FAULTS = ("late_ack", "drop_acks")
CN_TIME = "1011"


@dataclass(frozen=True)
class Received:
    """One copy of a record as it arrived: ``source`` is ``upload`` or ``history`` (an answer to a request)."""

    record: Record
    qn: str | None
    source: str
    client: int
    peer: str
    at: float  # wall time, s


@dataclass(frozen=True)
class DeadLetter:
    client: int
    peer: str
    data: bytes  # the frame, or the codec's excerpt of bytes that never made a frame
    reason: str  # the codec's Hj212Error text
    at: float


@dataclass(frozen=True)
class Refusal:
    client: int
    mn: str
    pw: str
    cn: str
    qn: str | None
    qn_rtn: int  # 3 wrong PW, 4 unknown MN


@dataclass
class Reply:
    """What a logger answered a request: QnRtn of its 9011, the packets with the request's QN, ExeRtn of
    its 9012. ``qn_rtn`` is None if no 9011 came; ``exe_rtn`` None if the 9012 never came."""

    qn: str
    cn: str
    qn_rtn: int | None = None
    exe_rtn: int | None = None
    packets: list[Packet] = field(default_factory=list)
    resent: int = 0  # times the request was sent again for want of a 9011

    @property
    def records(self) -> list[Record]:
        return [record(p) for p in self.packets if p.cn in DATA_CNS]

    @property
    def ok(self) -> bool:
        return self.qn_rtn == QN_READY and self.exe_rtn is not None


@dataclass
class PlatformCounters:
    connections: int = 0
    frames: int = 0  # frames that parsed
    records: int = 0  # record copies stored (duplicates included)
    duplicates: int = 0  # copies whose (MN, CN, DataTime) was already stored
    conflicts: int = 0  # duplicates whose values differ from the first copy
    acks_sent: int = 0
    acks_late: int = 0
    acks_dropped: int = 0
    refused: int = 0
    requests: int = 0
    requests_resent: int = 0


@dataclass(eq=False)
class _Client:
    id: int
    peer: str
    writer: asyncio.StreamWriter
    framer: Framer = field(default_factory=Framer)
    parts: Reassembler = field(default_factory=Reassembler)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    mns: set[str] = field(default_factory=set)


class TestPlatform:
    """A receiving platform on ``host:port`` (0: a free port, see :attr:`port` after :meth:`start`).

    ``allow`` maps MN -> PW; without it every MN and PW is accepted. ``ack_timeout_s`` / ``retries``
    are the platform's own for requests (10 s × 3 by default, HJ 212 table 1). ``on_record`` and
    ``on_dead_letter`` are called for each arrival (the CLI prints them).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, allow: dict[str, str] | None = None,
                 ack_timeout_s: float = 10.0, retries: int = 3,
                 on_record: Callable[[Received, bool], None] | None = None,
                 on_dead_letter: Callable[[DeadLetter], None] | None = None,
                 on_refusal: Callable[[Refusal], None] | None = None, nack_crc: bool = True) -> None:
        self.host, self.port = host, port
        self.nack_crc = nack_crc
        self.allow = dict(allow) if allow is not None else None
        self.ack_timeout_s, self.retries = ack_timeout_s, retries
        self.on_record, self.on_dead_letter, self.on_refusal = on_record, on_dead_letter, on_refusal
        self.received: list[Received] = []
        self.dead_letters: list[DeadLetter] = []
        self.refusals: list[Refusal] = []
        self.others: list[Packet] = []  # packets that were neither data nor an answer to a request of ours
        self.counters = PlatformCounters()
        self._dedup: dict[tuple[str, str, int], Record] = {}
        self._server: asyncio.Server | None = None
        self._clients: dict[int, _Client] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._later: set[asyncio.Task[None]] = set()
        self._by_mn: dict[str, _Client] = {}
        self._st: dict[str, str] = {}
        self._pw: dict[str, str] = {}
        self._requests: dict[str, asyncio.Queue[Packet]] = {}
        self._next_client = 0
        self._qn_ms = 0
        self._late_count, self._late_s = 0, 0.0
        self._drop_acks = 0

    # --- server ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for c in list(self._clients.values()):
            c.writer.close()
        for t in self._later:
            t.cancel()
        # closed writers end the handlers (their read sees the end); cancelling one instead makes asyncio
        # 3.11's stream callback log the CancelledError, so that is only the last resort
        if self._handlers:
            _, stuck = await asyncio.wait(self._handlers, timeout=2.0)
            for t in stuck:
                t.cancel()
        await asyncio.gather(*self._handlers, *self._later, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TestPlatform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- faults and control ---------------------------------------------------------------------------
    def set_fault(self, name: str, count: int = 1, seconds: float = 11.0) -> None:
        """``late_ack``: the next ``count`` 9014s go ``seconds`` late; ``drop_acks``: the next ``count``
        uploads asking for one get none."""
        if name == "late_ack":
            self._late_count, self._late_s = count, seconds
        elif name == "drop_acks":
            self._drop_acks = count
        else:
            raise ValueError(f"unknown platform fault {name!r}; faults: {', '.join(PLATFORM_FAULTS)}")

    def clear_faults(self) -> None:
        self._late_count = self._drop_acks = 0

    def connected_mns(self) -> list[str]:
        return sorted(mn for mn, c in self._by_mn.items() if not c.writer.is_closing())

    async def close_client(self, mn: str) -> bool:
        """Close the connection ``mn`` last spoke on (the logger should reconnect); False if none."""
        c = self._by_mn.get(mn)
        if c is None or c.writer.is_closing():
            return False
        c.writer.close()
        with contextlib.suppress(OSError):
            await c.writer.wait_closed()
        return True

    # --- what arrived ---------------------------------------------------------------------------------
    def dedup(self) -> dict[tuple[str, str, int], Record]:
        """The first copy of each record, keyed (MN, CN, DataTime ms)."""
        return dict(self._dedup)

    def keys(self, mn: str | None = None, cn: str | None = None) -> set[tuple[str, int]]:
        """(CN, DataTime ms) of the records stored, for one MN and / or CN."""
        return {(c, t) for m, c, t in self._dedup if (mn is None or m == mn) and (cn is None or c == cn)}

    # --- requests -------------------------------------------------------------------------------------
    async def request(self, mn: str, cn: str, cp: str = "", *, timeout_s: float | None = None,
                      retries: int | None = None) -> Reply:
        """Send a request (Flag=5) to the logger ``mn`` and collect its answer; see :class:`Reply`."""
        if mn not in self.connected_mns():
            raise LookupError(f"MN {mn} is not connected; connected: {', '.join(self.connected_mns()) or 'none'}")
        timeout = self.ack_timeout_s if timeout_s is None else timeout_s
        tries = (self.retries if retries is None else retries) + 1
        self._qn_ms = max(int(time.time() * 1000), self._qn_ms + 1)
        qn = make_qn(self._qn_ms)
        pw = self.allow.get(mn, "") if self.allow is not None else self._pw.get(mn, "")
        frame = build(Packet(self._st.get(mn, ST_SYSTEM), cn, pw, mn, cp, qn=qn, flag=5))
        queue: asyncio.Queue[Packet] = asyncio.Queue()
        self._requests[qn] = queue
        reply = Reply(qn, cn)
        try:
            first: Packet | None = None
            for attempt in range(tries):
                if attempt:
                    reply.resent += 1
                    self.counters.requests_resent += 1
                else:
                    self.counters.requests += 1
                client = self._by_mn.get(mn)  # the logger may have reconnected since the last try
                if client is not None:
                    await self._send(client, frame)
                try:
                    first = await asyncio.wait_for(queue.get(), timeout)
                    break
                except TimeoutError:
                    continue
            p = first
            while p is not None:
                if p.cn == CN_QN_RETURN:
                    reply.qn_rtn = _code(p, "QnRtn")
                    if reply.qn_rtn != QN_READY:
                        break
                elif p.cn == CN_EXE_RETURN:
                    reply.exe_rtn = _code(p, "ExeRtn")
                    break
                else:
                    reply.packets.append(p)
                try:
                    p = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
        finally:
            del self._requests[qn]
        return reply

    async def request_history(self, mn: str, cn: str = CN_HOUR, *, begin_ms: int, end_ms: int,
                              timeout_s: float | None = None, retries: int | None = None) -> Reply:
        """A logger's records (CN 2051 / 2061 / 2031) with DataTime in [begin, end] (China time, whole
        seconds); ``reply.records`` holds them. They are stored as well (source ``history``)."""
        cp = f"BeginTime={format_time(begin_ms)};EndTime={format_time(end_ms)}"
        return await self.request(mn, cn, cp, timeout_s=timeout_s, retries=retries)

    async def request_time(self, mn: str, *, timeout_s: float | None = None) -> int:
        """The logger's clock (CN 1011 → SystemTime), epoch ms."""
        reply = await self.request(mn, CN_TIME, timeout_s=timeout_s)
        for p in reply.packets:
            items = cp_items(p.cp)
            if "SystemTime" in items:
                return parse_time(items["SystemTime"], "SystemTime")
        raise TimeoutError(f"MN {mn} gave no SystemTime (QnRtn {reply.qn_rtn}, ExeRtn {reply.exe_rtn})")

    # --- connection -----------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._next_client += 1
        peer = writer.get_extra_info("peername")
        client = _Client(self._next_client, f"{peer[0]}:{peer[1]}" if peer else "?", writer)
        self._clients[client.id] = client
        self.counters.connections += 1
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for item in client.framer.feed(data):
                    await self._on_frame(client, item)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            rest = client.framer.pending()
            if rest.strip(b"\r\n"):
                self._dead(client, rest, str(Hj212Error(
                    "stream", "a whole packet before the connection closed",
                    f"{len(rest)} bytes of an unfinished packet {rest[:40].decode('ascii', 'replace')!r}…")))
            del self._clients[client.id]
            for mn in client.mns:
                if self._by_mn.get(mn) is client:
                    del self._by_mn[mn]
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    async def _send(self, client: _Client, frame: bytes) -> None:
        if client.writer.is_closing():
            return
        async with client.lock:
            client.writer.write(frame)
            with contextlib.suppress(OSError):
                await client.writer.drain()

    def _dead(self, client: _Client, data: bytes, reason: str) -> None:
        d = DeadLetter(client.id, client.peer, data, reason, time.time())
        self.dead_letters.append(d)
        if self.on_dead_letter is not None:
            self.on_dead_letter(d)

    async def _on_frame(self, client: _Client, item: bytes | Hj212Error) -> None:
        if isinstance(item, Hj212Error):
            self._dead(client, item.got.encode("utf-8", "replace"), str(item))
            return
        try:
            p = parse(item)
        except Hj212Error as exc:
            self._dead(client, item, str(exc))
            if exc.field == "CRC" and self.nack_crc:  # the header still says who: ask for it again
                with contextlib.suppress(Hj212Error, UnicodeDecodeError):
                    h = parse_segment(item[6:-6].decode("ascii"))
                    if h.qn is not None:
                        await self._send(client, build(Packet(ST_SYSTEM, CN_QN_RETURN, h.pw, h.mn,
                                                              f"QnRtn={QN_BAD_CRC}", qn=h.qn, flag=4)))
            return
        self.counters.frames += 1
        refusal = self._check(p)
        if refusal:
            r = Refusal(client.id, p.mn, p.pw, p.cn, p.qn, refusal)
            self.refusals.append(r)
            self.counters.refused += 1
            if self.on_refusal is not None:
                self.on_refusal(r)
            await self._send(client, build(Packet(ST_SYSTEM, CN_QN_RETURN, p.pw, p.mn, f"QnRtn={refusal}",
                                                  qn=p.qn, flag=4)))
            return
        client.mns.add(p.mn)
        self._by_mn[p.mn] = client
        self._pw[p.mn] = p.pw
        if p.st != ST_SYSTEM:
            self._st[p.mn] = p.st
        try:
            whole = client.parts.add(p)
        except Hj212Error as exc:
            self._dead(client, item, str(exc))
            return
        except KeyError as exc:  # the codec's Reassembler, when parts of one QN disagree on PNUM
            self._dead(client, item, f"PNUM/PNO: parts of QN {p.qn} disagree on PNUM (part {exc} missing)")
            return
        if whole is None:  # a part of a split packet: acknowledged as it comes
            if p.ack_requested:
                await self._ack(client, p)
            return
        await self._on_packet(client, whole, item)

    def _check(self, p: Packet) -> int:
        if self.allow is None:
            return 0
        if p.mn not in self.allow:
            return QN_BAD_MN
        return QN_BAD_PW if self.allow[p.mn] != p.pw else 0

    async def _on_packet(self, client: _Client, p: Packet, raw: bytes) -> None:
        request = self._requests.get(p.qn) if p.qn is not None else None
        if p.cn in DATA_CNS:
            try:
                rec = record(p)
            except Hj212Error as exc:
                self._dead(client, raw, str(exc))
                return
            self._store(Received(rec, p.qn, "upload" if request is None else "history", client.id, client.peer,
                                 time.time()))
            if request is not None:
                request.put_nowait(p)
            if p.ack_requested:
                await self._ack(client, p)
        elif request is not None:
            request.put_nowait(p)
        elif p.cn != CN_DATA_ACK:
            self.others.append(p)

    def _store(self, r: Received) -> None:
        self.received.append(r)
        self.counters.records += 1
        key = (r.record.mn, r.record.cn, r.record.data_time_ms)
        first = self._dedup.get(key)
        if first is None:
            self._dedup[key] = r.record
        else:
            self.counters.duplicates += 1
            if (first.values, first.flags) != (r.record.values, r.record.flags):
                self.counters.conflicts += 1
        if self.on_record is not None:
            self.on_record(r, first is not None)

    async def _ack(self, client: _Client, p: Packet) -> None:
        if self._drop_acks > 0:
            self._drop_acks -= 1
            self.counters.acks_dropped += 1
            return
        frame = build(Packet(ST_SYSTEM, CN_DATA_ACK, p.pw, p.mn, "", qn=p.qn, flag=4))
        if self._late_count > 0:
            self._late_count -= 1
            self.counters.acks_late += 1
            task = asyncio.create_task(self._send_later(client, frame, self._late_s))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            return
        await self._send(client, frame)
        self.counters.acks_sent += 1

    async def _send_later(self, client: _Client, frame: bytes, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._send(client, frame)
        self.counters.acks_sent += 1


def _code(p: Packet, name: str) -> int:
    try:
        return int(cp_items(p.cp).get(name, QN_UNKNOWN))
    except (Hj212Error, ValueError):
        return QN_UNKNOWN


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str = "the condition") -> None:
    """Poll ``predicate`` every 10 ms until true; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout_s} s")
        await asyncio.sleep(0.01)


# --- printing (parkmon sim hj212-platform) ------------------------------------------------------------------
CN_LABELS: dict[str, tuple[str, str]] = {CN_REALTIME: ("实时数据", "real-time"), CN_MINUTE: ("分钟数据", "minute"),
                                         CN_HOUR: ("小时数据", "hourly"), CN_DAY: ("日数据", "daily")}
QN_RTN_LABELS: dict[int, tuple[str, str]] = {QN_BAD_PW: ("密码错误", "wrong PW"), QN_BAD_MN: ("MN错误", "unknown MN")}


def _unit(code: str, fld: str, cn: str) -> str:
    name = metric_of(code, fld, cn)
    m = metrics.METRICS.get(name) if name is not None else None
    return m.unit if m is not None and m.unit else ""


def describe_record(r: Record) -> str:
    """One line: time, MN, what the record is, then each code by name with its fields and units."""
    zh, en = CN_LABELS.get(r.cn, ("数据", "data"))
    items = []
    for code, fields in r.values.items():
        czh, cen = CODE_NAMES.get(code, (code, code))
        main = "Rtd" if "Rtd" in fields else "Avg"
        text = ", ".join(f"{f} {v:g}{' ' + u if (u := _unit(code, f, r.cn)) and f in (main, 'Cou') else ''}"
                         for f, v in fields.items())
        flag = r.flags.get(code)
        items.append(f"{czh} {cen} [{code}] {text}" + (f" (Flag {flag})" if flag and flag != "N" else ""))
    stamp = datetime_text(r.data_time_ms)
    return f"{stamp} MN {r.mn} ST {r.st} CN {r.cn} {zh} {en}: " + "; ".join(items)


def datetime_text(ms: int) -> str:
    t = format_time(ms)
    return f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:]}"


def describe_received(r: Received, duplicate: bool, as_json: bool = False) -> str:
    if as_json:
        rec = r.record
        return json.dumps({"mn": rec.mn, "st": rec.st, "cn": rec.cn, "data_time": datetime_text(rec.data_time_ms),
                           "data_time_ms": rec.data_time_ms, "values": rec.values, "flags": rec.flags,
                           "qn": r.qn, "source": r.source, "duplicate": duplicate, "peer": r.peer},
                          ensure_ascii=False)
    note = (" (历史数据 history)" if r.source == "history" else "") + (" (重复 duplicate)" if duplicate else "")
    return describe_record(r.record) + note


def describe_dead_letter(d: DeadLetter, as_json: bool = False) -> str:
    if as_json:
        return json.dumps({"dead_letter": d.reason, "peer": d.peer, "bytes": d.data[:200].decode("ascii", "replace")},
                          ensure_ascii=False)
    return f"死信 dead letter from {d.peer}: {d.reason}"


def describe_refusal(r: Refusal, as_json: bool = False) -> str:
    zh, en = QN_RTN_LABELS.get(r.qn_rtn, ("拒绝", "refused"))
    if as_json:
        return json.dumps({"refused": r.mn, "qn_rtn": r.qn_rtn, "reason": en, "cn": r.cn, "qn": r.qn})
    return f"拒绝 refused MN {r.mn} CN {r.cn}: 9011 QnRtn={r.qn_rtn} {zh} {en}"
