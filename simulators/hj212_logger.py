"""A simulated HJ 212-2017 data logger (数采仪): a CEMS logger (ST 31) or a wastewater station (ST 32)
that dials a platform over TCP and uploads what its outlet measures, as a real one does.

Values come from the simulated park's own physics: :class:`OutletModel` steps one ``cems`` or
``wastewater`` device of the park definition alone, with the random streams the whole park gives it,
so at the same step its values are the ones ``TickEngine`` logs for that device. The logger samples
every ``sample_s`` simulated seconds (5 s: a CEMS minute is the mean of 12 samples, HJ 212 App. D)
and uploads, all with Flag=5 (v2017, acknowledgement requested):

- CN 2011 real-time data every ``rtd_interval_s`` (``Rtd``, ``ZsRtd`` at the reference O2),
- CN 2051 minute, 2061 hour and 2031 day records when each period ends (``Min``/``Avg``/``Max``,
  ``ZsMin``/``ZsAvg``/``ZsMax`` for flue-gas pollutants, ``Cou``: kg of a pollutant, m³ of a flow).
  Only periods the logger saw whole are reported; DataTime is the period's start in China time.

Reliability, as the standard's timeout and re-send rule (table 1) asks: one upload in flight, each
waits for the 9014 with its QN, ``ack_timeout_s`` at a time, and is re-sent with the same QN up to
``retries`` times (10 s × 3 by default); a 9011 QnRtn=9 (CRC error) to it makes it re-send at once.
A record still unacknowledged stays at the head of the queue: the connection is given up and re-made
with back-off, and the queue is re-sent in order. Records made while the link is down wait in the queue.

It answers the platform's requests: history (CN 2051 / 2061 / 2031 with ``BeginTime``/``EndTime``,
inclusive) as 9011 QnRtn=1, the records (CN of the request, the request's QN, Flag=4), then 9012
ExeRtn=1 (100 when there is none); the time (CN 1011) as 9011, ``SystemTime``, 9012. A wrong PW gets
9011 QnRtn=3, another MN QnRtn=4, another command QnRtn=8.

Faults (``set_fault(name)``, each for the next packet it applies to): ``bad_crc``, ``wrong_length``
(the length field one less than the data segment), ``truncated`` (the first half of the packet, then
the whole packet), ``drop_connection`` (half the packet, then the socket is closed) on uploads, and
``late_ack`` on the next answer to a request (it comes ``late_ack_s`` later).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from parkmon.common.hj212 import (
    Framer,
    Hj212Error,
    Packet,
    Reassembler,
    Record,
    build,
    cp_items,
    cp_of,
    format_time,
    make_qn,
    parse,
    parse_time,
    record,
)
from parkmon.common.hj212_codes import (
    CN_DATA_ACK,
    CN_DAY,
    CN_EXE_RETURN,
    CN_GET_TIME,
    CN_HOUR,
    CN_MINUTE,
    CN_NOTICE_RETURN,
    CN_QN_RETURN,
    CN_REALTIME,
    EXE_BAD_CONDITION,
    EXE_NO_DATA,
    EXE_SUCCESS,
    PERIOD_MS,
    QN_BAD_CN,
    QN_BAD_CRC,
    QN_BAD_MN,
    QN_BAD_PW,
    QN_READY,
    ST_AIR_SOURCE,
    ST_SYSTEM,
    ST_WATER_SOURCE,
)
from simulators.definition import ParkDef, load_definition, parse_definition
from simulators.park import ParkModel

KINDS: dict[str, str] = {"cems": ST_AIR_SOURCE, "wastewater": ST_WATER_SOURCE}
SEND_FAULTS = ("bad_crc", "wrong_length", "truncated", "drop_connection")
FAULTS = (*SEND_FAULTS, "late_ack")
PERIOD_CNS = (CN_MINUTE, CN_HOUR, CN_DAY)
HISTORY_CNS = frozenset(PERIOD_CNS)
CN_TIME = CN_GET_TIME
REQUEST_CNS = frozenset({*PERIOD_CNS, CN_TIME})
CHINA_OFFSET_MS = 8 * 3_600_000  # China has no daylight saving: a day starts at 16:00 UTC
FLAG_UPLOAD = 5  # v2017 (000001) + A: acknowledge
FLAG_NO_ACK = 4  # v2017, no acknowledgement

# physics value -> HJ 212-2017 code (domain.md §3.3, App. B)
CEMS_CODES: dict[str, str] = {"so2": "a21026", "nox": "a21002", "particulate": "a34013", "o2": "a19001",
                              "temperature": "a01012", "flow": "a00000"}
CEMS_POLLUTANTS = ("so2", "nox", "particulate")  # mg/m³: a value at the reference O2 and an amount in kg
WATER_CODES: dict[str, str] = {"flow": "w00000", "cod": "w01018", "nh3n": "w21003", "ph": "w01001",
                               "tp": "w21011", "tn": "w21001"}
WATER_POLLUTANTS = ("cod", "nh3n", "tp", "tn")  # mg/L: an amount in kg


class _Dropped(Exception):
    """The connection ended (by the platform, the network or a fault); the message says how."""


class OutletModel:
    """One CEMS or wastewater outlet of the simulated park, stepped on its own.

    The park's model is built with only this device in its enterprise: the enterprise's activity
    (shift shape × its noise stream ``{seed}-{enterprise}``) and the device's own streams are those of
    the whole park, so ``step`` gives the values ``TickEngine`` gives this device at the same step.
    """

    def __init__(self, definition: dict[str, Any] | ParkDef | str | Path | None, seed: int, kind: str,
                 enterprise: str = "e01", device: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown station kind {kind!r}; kinds: {', '.join(KINDS)}")
        if definition is None or isinstance(definition, (str, Path)):
            definition = load_definition(definition)
        spec = parse_definition(definition)
        ent = next((e for e in spec.enterprises if e.key == enterprise), None)
        if ent is None:
            raise KeyError(f"no enterprise {enterprise!r}; the park has {', '.join(e.key for e in spec.enterprises)}")
        candidates = [d for d in ent.devices if d.kind == kind and (device is None or d.id == device)]
        if not candidates:
            what = f"device {device!r} of kind {kind}" if device else f"{kind} device"
            have = ", ".join(f"{d.id} ({d.kind})" for d in ent.devices)
            raise KeyError(f"enterprise {enterprise} has no {what}; it has {have}")
        dev = candidates[0]
        alone = spec.model_copy(update={"enterprises": [ent.model_copy(update={"devices": [dev]})]})
        self.kind, self.enterprise, self.device, self.park = kind, enterprise, dev.id, spec.park.key
        self.name = dev.name or dev.id
        self._model = ParkModel(alone, seed)
        self._values = self._model.find(enterprise, dev.id).values

    def step(self, sim_ms: int, dt_s: float) -> dict[str, float]:
        """Advance to ``sim_ms`` (``dt_s`` simulated seconds after the last step; 0 at the first)."""
        self._model.step(sim_ms, dt_s)
        return dict(self._values)


def default_mn(park: str, enterprise: str, device: str) -> str:
    """A stable 24-hex-digit MN (the standard's EPC-96 form) for a simulated outlet."""
    return hashlib.sha1(f"parkmon-{park}-{enterprise}-{device}".encode()).hexdigest()[:24].upper()


@dataclass
class Counters:
    """What a logger did; ``sent`` counts every transmission of an upload, whole or faulty."""

    generated: int = 0  # records made (2011, 2051, 2061, 2031)
    sent: int = 0
    acked: int = 0  # records acknowledged by a 9014 with their QN
    resent: int = 0  # transmissions of a record after its first
    ack_timeouts: int = 0
    stray_acks: int = 0  # a 9014 for no record waiting (e.g. the late ack of a record already re-sent)
    refused: int = 0  # a 9011 with QnRtn other than 1 or 9 to an upload (wrong PW, unknown MN ...)
    crc_nacks: int = 0  # a 9011 QnRtn=9 (CRC error) to the upload in flight: re-sent at once
    faults: dict[str, int] = field(default_factory=dict)  # faults injected, by name
    connections: int = 0
    connect_failures: int = 0
    drops: int = 0  # connections that ended (either side, or a fault)
    requests: int = 0  # platform requests answered
    duplicate_requests: int = 0  # a request repeated while its answer was still under way
    bad_frames: int = 0  # frames from the platform that did not parse


@dataclass
class _Upload:
    cn: str
    data_time_ms: int
    qn: str
    frame: bytes
    sends: int = 0


class _Acc:
    """One open period: least, sum and greatest of each value, and the amounts summed."""

    __slots__ = ("amount", "n", "start", "stats")

    def __init__(self, start: int) -> None:
        self.start = start
        self.n = 0
        self.stats: dict[tuple[str, str], list[float]] = {}  # (code, Rtd|ZsRtd) -> [min, sum, max]
        self.amount: dict[str, float] = {}

    def add(self, inst: dict[str, dict[str, float]], amount: dict[str, float]) -> None:
        self.n += 1
        for code, fields in inst.items():
            for fld, v in fields.items():
                s = self.stats.get((code, fld))
                if s is None:
                    self.stats[(code, fld)] = [v, v, v]
                else:
                    s[0], s[1], s[2] = min(s[0], v), s[1] + v, max(s[2], v)
        for code, a in amount.items():
            self.amount[code] = self.amount.get(code, 0.0) + a

    def values(self, codes: list[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for code in codes:
            f: dict[str, float] = {}
            if code in self.amount:
                a = self.amount[code]
                f["Cou"] = round(a, 3) if code in ("a00000", "w00000") else round(a, 6)
            for src, prefix in (("Rtd", ""), ("ZsRtd", "Zs")):
                s = self.stats.get((code, src))
                if s is not None:
                    f[f"{prefix}Min"], f[f"{prefix}Avg"], f[f"{prefix}Max"] = (
                        round(s[0], 3), round(s[1] / self.n, 3), round(s[2], 3))
            out[code] = f
        return out


def period_start(cn: str, t_ms: int) -> int:
    """The start of the minute / hour / China-time day holding ``t_ms``."""
    if cn == CN_DAY:
        return (t_ms + CHINA_OFFSET_MS) // 86_400_000 * 86_400_000 - CHINA_OFFSET_MS
    return t_ms - t_ms % PERIOD_MS[cn]


class DataLogger:
    """A data logger uploading one outlet's HJ 212 data to ``host:port``; see the module docstring.

    Simulated time: ``clock`` (a function returning the simulated epoch ms) if given, else
    ``sim_start_ms`` + wall time since :meth:`start` × ``speed``. ``sim_start_ms`` defaults to the
    clock's (or the wall clock's) time rounded down to the sample step. With ``end_ms`` the logger
    stops making records there (samples before it; periods that end by it), so a test knows exactly
    which records exist.
    """

    MAX_SAMPLES_PER_TURN: ClassVar[int] = 2000  # catching up never holds the event loop for long

    def __init__(self, host: str, port: int, *, kind: str = "cems", mn: str | None = None, pw: str = "123456",
                 park: dict[str, Any] | ParkDef | str | Path | None = None, enterprise: str = "e01",
                 device: str | None = None, seed: int = 2025, speed: float = 1.0, sim_start_ms: int | None = None,
                 end_ms: int | None = None, clock: Callable[[], int] | None = None, sample_s: float = 5.0,
                 rtd_interval_s: float = 30.0, ref_o2: float = 6.0, ack_timeout_s: float = 10.0, retries: int = 3,
                 late_ack_s: float | None = None, reconnect_min_s: float = 1.0, reconnect_max_s: float = 30.0,
                 connect_timeout_s: float = 10.0, faults: tuple[str, ...] | list[str] = ()) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if sample_s <= 0 or 60 % sample_s:
            raise ValueError(f"sample_s must divide a minute (5 s is the standard's spacing), got {sample_s}")
        if rtd_interval_s < 0:
            raise ValueError(f"rtd_interval_s must be ≥ 0 (0: no real-time data), got {rtd_interval_s}")
        if not 0 <= ref_o2 < 21:
            raise ValueError(f"ref_o2 must be a percentage below 21, got {ref_o2}")
        self.model = OutletModel(park, seed, kind, enterprise, device)
        self.kind, self.st = kind, KINDS[kind]
        self.host, self.port = host, port
        self.mn = mn or default_mn(self.model.park, self.model.enterprise, self.model.device)
        self.pw = pw
        if len(self.mn) > 24 or len(self.pw) > 6:
            raise ValueError(f"MN is at most 24 characters and PW at most 6 (HJ 212 table 3): {self.mn!r} / {pw!r}")
        self.speed, self.clock = speed, clock
        self.sample_ms = round(sample_s * 1000)
        self.rtd_ms = round(rtd_interval_s * 1000)
        self.ref_o2 = ref_o2
        self.ack_timeout_s, self.retries = ack_timeout_s, retries
        self.late_ack_s = late_ack_s if late_ack_s is not None else 1.5 * ack_timeout_s
        self.reconnect_min_s, self.reconnect_max_s = reconnect_min_s, reconnect_max_s
        self.connect_timeout_s = connect_timeout_s
        self.end_ms = end_ms
        self._sim_start_arg = sim_start_ms
        self.sim_start_ms = 0  # fixed by start()
        self._wall0 = 0.0
        codes = CEMS_CODES if kind == "cems" else WATER_CODES
        self._codes = [codes[k] for k in codes]
        self.counters = Counters()
        self.errors: deque[str] = deque(maxlen=100)  # the last bad frames and connection ends, for a human
        # generation state
        self._next_t: int | None = None
        self._last_t: int | None = None
        self._first_t = 0
        self._next_rtd = 0
        self._open: dict[str, _Acc] = {}
        self._qn_ms = 0
        self._generating_done = False
        self._generated: list[tuple[str, int]] = []
        self._cps: dict[tuple[str, int], str] = {}
        self._history: dict[str, list[tuple[int, str]]] = {cn: [] for cn in PERIOD_CNS}
        self._acked: list[tuple[str, int]] = []
        # sending state
        self._queue: deque[_Upload] = deque()
        self._queued = asyncio.Event()
        self._idle = asyncio.Event()
        self._waiting: tuple[str, asyncio.Future[bool]] | None = None  # QN in flight: True acked, False re-send
        self._writer: asyncio.StreamWriter | None = None
        self._wlock = asyncio.Lock()
        self._send_faults: deque[str] = deque()
        self._late_acks = 0
        self._serving: set[str] = set()
        self._answers: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        for name in faults:
            self.set_fault(name)

    # --- public ---------------------------------------------------------------------------------------
    def set_fault(self, name: str, count: int = 1) -> None:
        """Arm a fault for the next ``count`` packets it applies to (uploads; answers for ``late_ack``)."""
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; faults: {', '.join(FAULTS)}")
        if name == "late_ack":
            self._late_acks += count
        else:
            self._send_faults.extend([name] * count)

    def clear_faults(self) -> None:
        self._send_faults.clear()
        self._late_acks = 0

    def sim_now(self) -> int:
        """The logger's simulated time, epoch ms (meaningful once started)."""
        if self.clock is not None:
            return self.clock()
        return self.sim_start_ms + round((time.monotonic() - self._wall0) * self.speed * 1000)

    def generated(self, cn: str | None = None) -> list[tuple[str, int]]:
        """Every record made so far, (CN, DataTime ms) in the order made; only one CN's with ``cn``."""
        return [k for k in self._generated if cn is None or k[0] == cn]

    def acked(self) -> list[tuple[str, int]]:
        """The records the platform acknowledged, in order."""
        return list(self._acked)

    def record(self, cn: str, data_time_ms: int) -> Record:
        """A record made, decoded from the CP text that was sent."""
        cp = self._cps[(cn, data_time_ms)]
        return record(Packet(self.st, cn, self.pw, self.mn, cp))

    @property
    def queued(self) -> int:
        """Records waiting for their acknowledgement (the one in flight included)."""
        return len(self._queue)

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    @property
    def finished(self) -> bool:
        """``end_ms`` reached and every record acknowledged."""
        return self._generating_done and not self._queue

    async def wait_idle(self, timeout_s: float) -> None:
        """Until ``end_ms`` is reached (if set) and every record made is acknowledged."""
        try:
            async with asyncio.timeout(timeout_s):
                while not (self._generating_done or self.end_ms is None) or self._queue:
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            raise TimeoutError(f"logger {self.mn}: {len(self._queue)} records unacknowledged after {timeout_s} s "
                               f"(generation {'done' if self._generating_done else 'running'}, {self.counters}, "
                               f"last errors {list(self.errors)[-3:]})") from None

    async def start(self) -> None:
        if self._next_t is not None:
            raise RuntimeError("a DataLogger starts once (its records and queue are those of one run); make a new one")
        now = self.clock() if self.clock is not None else int(time.time() * 1000)
        start = self._sim_start_arg if self._sim_start_arg is not None else now - now % self.sample_ms
        self.sim_start_ms = start
        self._wall0 = time.monotonic()
        self._next_t = self._first_t = start
        if self.rtd_ms:
            self._next_rtd = -(-start // self.rtd_ms) * self.rtd_ms
        self._tasks = [asyncio.create_task(self._generate_loop(), name=f"hj212-gen-{self.mn}"),
                       asyncio.create_task(self._connect_loop(), name=f"hj212-link-{self.mn}")]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in [*tasks, *self._answers]:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_writer()
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r

    async def __aenter__(self) -> DataLogger:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- records --------------------------------------------------------------------------------------
    async def _generate_loop(self) -> None:
        while not self._generating_done:
            now = self.sim_now()
            self._advance(now)
            if self._generating_done:
                break
            assert self._next_t is not None
            delay = 0.02 if self.clock is not None else (self._next_t - now) / 1000 / self.speed
            await asyncio.sleep(min(max(delay, 0.0), 0.25))
        self._idle.set()

    def _advance(self, now_ms: int) -> None:
        """Take every sample due by ``now_ms`` and emit the records that closes."""
        assert self._next_t is not None
        budget = self.MAX_SAMPLES_PER_TURN
        while budget and self._next_t <= now_ms and (self.end_ms is None or self._next_t < self.end_ms):
            t = self._next_t
            self._close_periods(t)
            dt_s = 0.0 if self._last_t is None else (t - self._last_t) / 1000
            self._last_t = t
            inst, amount = self._measure(self.model.step(t, dt_s))
            for cn in PERIOD_CNS:
                acc = self._open.get(cn)
                if acc is None:
                    acc = self._open[cn] = _Acc(period_start(cn, t))
                acc.add(inst, amount)
            if self.rtd_ms and t >= self._next_rtd:
                self._emit(CN_REALTIME, t, {c: {k: round(v, 3) for k, v in f.items()} for c, f in inst.items()})
                self._next_rtd = (t // self.rtd_ms + 1) * self.rtd_ms
            self._next_t = t + self.sample_ms
            budget -= 1
        if self.end_ms is not None and now_ms >= self.end_ms and self._next_t >= self.end_ms:
            self._close_periods(self.end_ms)
            self._generating_done = True

    def _close_periods(self, t: int) -> None:
        for cn in PERIOD_CNS:
            acc = self._open.get(cn)
            if acc is None or acc.start + PERIOD_MS[cn] > t:  # a China day is always 24 h (no DST)
                continue
            del self._open[cn]
            if acc.start >= self._first_t:  # a period seen whole
                self._emit(cn, acc.start, acc.values(self._codes))

    def _measure(self, v: dict[str, float]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """One sample as {code: {Rtd, ZsRtd}} and the amounts over the sample's step (kg, m³)."""
        dt = self.sample_ms / 1000
        inst: dict[str, dict[str, float]] = {}
        amount: dict[str, float] = {}
        if self.kind == "cems":
            o2 = min(v["o2"], 20.0)
            ref = (21.0 - self.ref_o2) / (21.0 - o2)  # C_折 = C × (21 − O2ref) / (21 − O2), App. D
            flow = max(v["flow"], 0.0)  # m³/s
            for name, code in CEMS_CODES.items():
                inst[code] = {"Rtd": v[name]}
                if name in CEMS_POLLUTANTS:
                    inst[code]["ZsRtd"] = v[name] * ref
                    amount[code] = v[name] * flow * dt * 1e-6  # mg/m³ × m³ -> kg
            amount[CEMS_CODES["flow"]] = flow * dt
        else:
            volume = max(v["flow"], 0.0) * dt * 1e-3  # L/s -> m³, D = Q × T × 10⁻³ (App. D)
            for name, code in WATER_CODES.items():
                inst[code] = {"Rtd": v[name]}
                if name in WATER_POLLUTANTS:
                    amount[code] = volume * v[name] * 1e-3  # G = D × C × 10⁻³ kg
            amount[WATER_CODES["flow"]] = volume
        return inst, amount

    def _emit(self, cn: str, data_time_ms: int, values: dict[str, dict[str, float]]) -> None:
        cp = cp_of(data_time_ms, values, dict.fromkeys(values, "N"))
        key = (cn, data_time_ms)
        self._generated.append(key)
        self._cps[key] = cp
        if cn in HISTORY_CNS:
            self._history[cn].append((data_time_ms, cp))
        made_at = data_time_ms if cn == CN_REALTIME else data_time_ms + PERIOD_MS[cn]
        self._qn_ms = max(made_at, self._qn_ms + 1)  # a QN per upload, from the logger's clock
        qn = make_qn(self._qn_ms)
        frame = build(Packet(self.st, cn, self.pw, self.mn, cp, qn=qn, flag=FLAG_UPLOAD))
        self._queue.append(_Upload(cn, data_time_ms, qn, frame))
        self.counters.generated += 1
        self._queued.set()

    # --- link -----------------------------------------------------------------------------------------
    async def _connect_loop(self) -> None:
        backoff = self.reconnect_min_s
        while True:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                        self.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                self.counters.connect_failures += 1
                self.errors.append(f"connect {self.host}:{self.port}: {exc or type(exc).__name__}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
                continue
            self.counters.connections += 1
            acked_before = self.counters.acked
            reason = await self._session(reader, writer)
            self.counters.drops += 1
            self.errors.append(reason)
            # a link that carried data starts the back-off again; one that failed at once doubles it
            backoff = self.reconnect_min_s if self.counters.acked > acked_before else min(
                backoff * 2, self.reconnect_max_s)
            await asyncio.sleep(backoff)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        self._writer = writer
        tasks = [asyncio.create_task(self._read_loop(reader)), asyncio.create_task(self._send_loop())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in [*tasks, *self._answers]:
                t.cancel()
            await asyncio.gather(*tasks, *self._answers, return_exceptions=True)
            self._waiting = None
            await self._close_writer()
        exc = next(t.exception() for t in done)
        if isinstance(exc, (_Dropped, OSError)):
            return str(exc) or type(exc).__name__
        raise exc if exc is not None else RuntimeError("a link task ended without a reason")

    async def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise _Dropped("not connected")
        async with self._wlock:
            writer.write(data)
            await writer.drain()

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        framer, parts = Framer(), Reassembler()
        while True:
            data = await reader.read(65536)
            if not data:
                raise _Dropped(f"closed by {self.host}:{self.port}")
            for item in framer.feed(data):
                try:
                    if isinstance(item, Hj212Error):
                        raise item
                    p = parts.add(parse(item))
                except Hj212Error as exc:
                    self.counters.bad_frames += 1
                    self.errors.append(f"bad frame from the platform: {exc}")
                    continue
                if p is not None:
                    self._on_packet(p)

    def _on_packet(self, p: Packet) -> None:
        w = self._waiting
        mine = w is not None and w[0] == p.qn and not w[1].done()
        if p.cn == CN_DATA_ACK:
            if w is not None and mine:
                w[1].set_result(True)
            else:
                self.counters.stray_acks += 1
        elif p.cn == CN_QN_RETURN:
            try:
                rtn = cp_items(p.cp).get("QnRtn")
            except Hj212Error:
                rtn = None
            if rtn == str(QN_BAD_CRC) and w is not None and mine:  # the platform asks for the packet again
                self.counters.crc_nacks += 1
                w[1].set_result(False)
            elif rtn != str(QN_READY):
                self.counters.refused += 1
                self.errors.append(f"platform refused QN {p.qn}: QnRtn={rtn}")
        elif p.cn in (CN_EXE_RETURN, CN_NOTICE_RETURN):
            pass
        else:  # a request
            task = asyncio.create_task(self._answer(p))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            item = self._queue[0]
            acked = False
            try:
                for _ in range(self.retries + 1):
                    # one future per try, under the record's QN: an ack of an earlier try still counts
                    fut: asyncio.Future[bool] = loop.create_future()
                    self._waiting = (item.qn, fut)
                    await self._transmit(item)
                    try:
                        acked = await asyncio.wait_for(fut, self.ack_timeout_s)
                    except TimeoutError:
                        self.counters.ack_timeouts += 1
                    if acked:
                        break
                if not acked:
                    raise _Dropped(f"no 9014 for QN {item.qn} (CN {item.cn}) after {item.sends} sends, "
                                   f"{self.ack_timeout_s:g} s each: link given up, record kept")
            finally:
                self._waiting = None
            self._queue.popleft()
            self._acked.append((item.cn, item.data_time_ms))
            self.counters.acked += 1
            if not self._queue:
                self._idle.set()

    async def _transmit(self, item: _Upload) -> None:
        fault = self._send_faults.popleft() if self._send_faults else None
        frame = item.frame
        self.counters.sent += 1
        if item.sends:
            self.counters.resent += 1
        item.sends += 1
        if fault is None:
            await self._write(frame)
            return
        self.counters.faults[fault] = self.counters.faults.get(fault, 0) + 1
        half = len(frame) // 2
        if fault == "bad_crc":
            crc = int(frame[-6:-2], 16) ^ 0x5A5A
            await self._write(frame[:-6] + f"{crc:04X}".encode() + b"\r\n")
        elif fault == "wrong_length":
            n = int(frame[2:6])
            await self._write(b"##" + f"{n - 1:04d}".encode() + frame[6:])
        elif fault == "truncated":
            await self._write(frame[:half])
            await self._transmit(item)  # then the whole packet
        else:  # drop_connection
            await self._write(frame[:half])
            writer = self._writer
            if writer is not None:
                writer.close()
            raise _Dropped(f"fault drop_connection: closed after {half} of {len(frame)} bytes of QN {item.qn}")

    # --- answers to the platform ----------------------------------------------------------------------
    def _reply(self, qn: str | None, cn: str, cp: str) -> bytes:
        return build(Packet(ST_SYSTEM, cn, self.pw, self.mn, cp, qn=qn, flag=FLAG_NO_ACK))

    async def _answer(self, p: Packet) -> None:
        key = p.qn or ""
        if key and key in self._serving:
            self.counters.duplicate_requests += 1
            return
        self._serving.add(key)
        try:
            rtn = QN_READY
            if p.pw != self.pw:
                rtn = QN_BAD_PW
            elif p.mn != self.mn:
                rtn = QN_BAD_MN
            elif p.cn not in REQUEST_CNS:
                rtn = QN_BAD_CN
            if self._late_acks > 0:
                self._late_acks -= 1
                self.counters.faults["late_ack"] = self.counters.faults.get("late_ack", 0) + 1
                await asyncio.sleep(self.late_ack_s)
            if p.ack_requested or rtn != QN_READY:
                await self._write(self._reply(p.qn, CN_QN_RETURN, f"QnRtn={rtn}"))
            if rtn != QN_READY:
                return
            frames, exe = self._answer_data(p)
            for f in frames:
                await self._write(f)
            await self._write(self._reply(p.qn, CN_EXE_RETURN, f"ExeRtn={exe}"))
            self.counters.requests += 1
        except (_Dropped, OSError):
            return
        finally:
            self._serving.discard(key)

    def _answer_data(self, p: Packet) -> tuple[list[bytes], int]:
        try:
            items = cp_items(p.cp)
        except Hj212Error:
            return [], EXE_BAD_CONDITION
        if p.cn == CN_TIME:
            cp = (f"PolId={items['PolId']};" if "PolId" in items else "") + f"SystemTime={format_time(self.sim_now())}"
            return [build(Packet(self.st, CN_TIME, self.pw, self.mn, cp, qn=p.qn, flag=FLAG_NO_ACK))], EXE_SUCCESS
        try:
            begin = parse_time(items.get("BeginTime", ""), "BeginTime")
            end = parse_time(items.get("EndTime", ""), "EndTime")
        except Hj212Error:
            return [], EXE_BAD_CONDITION
        if begin > end:
            return [], EXE_BAD_CONDITION
        rows = self._history[p.cn]
        lo = bisect.bisect_left(rows, (begin, ""))
        frames = [build(Packet(self.st, p.cn, self.pw, self.mn, cp, qn=p.qn, flag=FLAG_NO_ACK))
                  for ms, cp in rows[lo:] if ms <= end]
        return frames, EXE_SUCCESS if frames else EXE_NO_DATA
