"""One Sparkplug edge node as the bridge sees it: births, aliases, bdSeq and seq, what to forward. No I/O.

``NodeSession.handle`` takes one message (its type, device, decoded payload, arrival time) and returns an
``Outcome``: parkmon wire batches, the gateway's catalogue and status to publish, and a rebirth to ask for.

Sequence numbers (Sparkplug 3.0 section 6.4.x): ``seq`` runs 0..255 across every message of a node from its
NBIRTH (0) on, then wraps. The session counts the wraps, so each message has ``n = 256 * wraps + seq`` within
its birth, and its parkmon batch seq is ``base + n``: the same message always gets the same (gateway, seq),
so a redelivery after a reconnect is stored once (ingest keeps (gateway, seq) and (point, ts) once). ``base``
is handed out per birth by a ``SeqBases``: the previous birth's last seq + 1 (the completeness report sees a
gateway's batches as one run); the first birth a bridge process sees starts at the birth time in ms x 1000.

A message whose seq is not the next one: within the last 128 seen, it is a redelivery (forwarded again under
its first seq: stored once); otherwise some were lost, and the bridge asks for a rebirth (the message itself
is still forwarded: its values are good). Data from a node with no birth, after its death, or with an alias
no birth named, cannot be read: it is dropped and a rebirth asked for.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

from ingest.sparkplug import codec
from ingest.sparkplug.mapping import NodeMap, PointMap
from parkmon.common import metrics as vocabulary
from parkmon.common import quality, wire

log = logging.getLogger(__name__)

NUMERIC = {codec.INT8, codec.INT16, codec.INT32, codec.INT64, codec.UINT8, codec.UINT16, codec.UINT32,
           codec.UINT64, codec.FLOAT, codec.DOUBLE, codec.BOOLEAN}
UNIT_KEYS = ("engunit", "engunits", "engineeringunits", "unit", "units")  # birth properties naming the unit
REDELIVERY_WINDOW = 128
_TS_MIN, _TS_MAX = 946_684_800_000, 32_503_680_000_000  # the wire's: 2000-01-01 .. 3000-01-01 UTC
OFFLINE = quality.bad(quality.Reason.COMM_FAILURE)  # what a death leaves on the points, as a silent device
NULL = quality.bad(quality.Reason.DEVICE_FAILURE)  # a metric the node sent as null


class SeqBases:
    """Where each birth's batch seqs start, per gateway: after the previous birth's."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, gateway: str, birth_ms: int) -> int:
        return self._next.get(gateway, birth_ms * 1000)

    def used(self, gateway: str, seq: int) -> None:
        self._next[gateway] = max(self._next.get(gateway, 0), seq + 1)


@dataclass(slots=True)
class _Def:
    """A metric as its birth defined it."""

    name: str
    datatype: int | None
    target: PointMap | None  # None: not mapped (skipped), or refused (wrong unit)


@dataclass
class Outcome:
    batches: list[wire.Batch] = field(default_factory=list)
    meta: wire.Meta | None = None
    status: str | None = None  # "online" | "offline"
    rebirth: str | None = None  # why a rebirth is asked for
    notes: list[str] = field(default_factory=list)  # what a person should know (logged once by the bridge)


def sparkplug_quality(props: dict[str, codec.Value]) -> int | None:
    """The "Quality" property (OPC DA codes, as Ignition and Tahu send them: 192 good, 64 uncertain, 0 bad)."""
    q = props.get("Quality", props.get("quality"))
    if not isinstance(q, int) or isinstance(q, bool):
        return None
    cls = q & 0xC0
    if cls == 0xC0:
        return quality.GOOD
    if cls == 0x40:
        return quality.make(quality.QualityClass.UNCERTAIN)
    return quality.bad(quality.Reason.DEVICE_FAILURE)


def _unit(props: dict[str, codec.Value]) -> str | None:
    for k, v in props.items():
        if k.lower() in UNIT_KEYS and isinstance(v, str):
            return v
    return None


class NodeSession:
    def __init__(self, group: str, node: str, mapping: NodeMap, bases: SeqBases) -> None:
        self.group, self.node, self.map, self.bases = group, node, mapping, bases
        self.gateway = mapping.gateway_id
        self.alive = False
        self.bdseq: int | None = None
        self.birth_ms: int | None = None
        self.base = 0
        self.last_n = -1  # n of the last message in order
        self.seen: deque[int] = deque(maxlen=REDELIVERY_WINDOW)
        self.defs: dict[tuple[str, str], _Def] = {}  # (device, name)
        self.aliases: dict[tuple[str, int], str] = {}  # (device, alias) -> name
        self.devices: set[str] = set()
        self.stats = {"births": 0, "gaps": 0, "redelivered": 0, "dropped": 0, "samples": 0, "restored": 0}
        self.resumed = False  # births read back after a restart: the next message's seq is taken as it comes

    # ---- one message ------------------------------------------------------------------------
    def handle(self, kind: str, device: str, p: codec.SpPayload, received_ms: int) -> Outcome:
        out = Outcome()
        if kind == "NBIRTH":
            self._nbirth(p, received_ms, out)
        elif kind == "NDEATH":
            self._ndeath(p, received_ms, out)
        elif not self.alive and not (kind in ("NDATA", "DDATA") and self._continues(p.seq)):
            self.stats["dropped"] += 1
            out.rebirth = f"{kind} from a node without a live birth (bridge started after it, or it died)"
        elif kind in ("DBIRTH", "NDATA", "DDATA", "DDEATH"):
            n = self._place(p.seq, kind, out)
            if n is None:
                return out
            if kind == "DBIRTH":
                self._dbirth(device, p, n, received_ms, out)
            elif kind == "DDEATH":
                self._ddeath(device, p, n, received_ms, out)
            else:
                self._data(device, p, n, received_ms, out)
        return out

    def restore(self, births: list[tuple[str, codec.SpPayload, int]], now: int) -> None:
        """The births a previous bridge process kept ((device, payload, received ms), the NBIRTH's device "" first):
        the aliases and points are its again, so the data the broker held meanwhile is read, not dropped. Where the
        seq stood is not kept, so the next message is taken as the next one, under batch seqs of a new run
        (``now`` x 1000, as a birth's): readings it repeats are stored once all the same ((point, ts))."""
        for device, p, received_ms in births:
            self.handle("NBIRTH" if device == "" else "DBIRTH", device, p, received_ms)  # state only
        if not self.alive:
            return
        self.stats = dict.fromkeys(self.stats, 0) | {"restored": len(births)}
        self.base = max(now * 1000, self.bases.take(self.gateway, now))
        self.bases.used(self.gateway, self.base)
        self.last_n = -1
        self.seen.clear()
        self.resumed = True

    def _continues(self, seq: int | None) -> bool:
        """Data after the death that goes on from the dead birth's last seq (or repeats one): that birth's,
        late. Across a broker restart the old connection's will can overtake messages the node had queued
        for it; their seq proves whose they are. After a real death a node starts again with an NBIRTH."""
        if self.birth_ms is None or seq is None or not 0 <= seq <= 255:
            return False
        back = (self.last_n - seq) % 256
        return seq == (self.last_n + 1) % 256 or (back < REDELIVERY_WINDOW and self.last_n - back in self.seen)

    def _place(self, seq: int | None, kind: str, out: Outcome) -> int | None:
        """The message's n within its birth, or None (no seq: dropped). A gap asks for a rebirth."""
        if seq is None or not 0 <= seq <= 255:
            self.stats["dropped"] += 1
            out.rebirth = f"{kind} with seq {seq} (must be 0-255)"
            return None
        if self.resumed:  # the first message after a restart: where the seq stood was not kept
            self.resumed = False
            self.last_n = seq - 1
        ahead = (seq - self.last_n - 1) % 256
        if ahead == 0:
            n = self.last_n + 1
        else:
            back = (self.last_n - seq) % 256
            if back < REDELIVERY_WINDOW and self.last_n - back in self.seen:
                self.stats["redelivered"] += 1
                return self.last_n - back  # forwarded again under its first seq: stored once
            n = self.last_n + 1 + ahead
            self.stats["gaps"] += 1
            out.rebirth = f"seq gap: expected {(self.last_n + 1) % 256}, got {seq} ({ahead} messages missing)"
        self.last_n = n
        self.seen.append(n)
        return n

    # ---- births and deaths ------------------------------------------------------------------
    def _nbirth(self, p: codec.SpPayload, received_ms: int, out: Outcome) -> None:
        bd = next((m.value for m in p.metrics if m.name == "bdSeq"), None)
        birth_ms = p.timestamp if p.timestamp is not None else received_ms
        if self.alive and bd == self.bdseq and birth_ms == self.birth_ms:
            self.stats["redelivered"] += 1  # the same birth again: same session, same seqs
            return
        if not isinstance(bd, int) or isinstance(bd, bool):
            out.notes.append(f"NBIRTH of {self.group}/{self.node} without a bdSeq metric: its NDEATH cannot be "
                             "told from an older connection's")
        self.bdseq = bd if isinstance(bd, int) else None
        self.birth_ms = birth_ms
        self.alive = True
        self.base = self.bases.take(self.gateway, birth_ms)
        self.last_n = -1
        self.seen.clear()
        self.defs.clear()  # an NBIRTH invalidates every alias and every device's birth
        self.aliases.clear()
        self.devices.clear()
        self.stats["births"] += 1
        if p.seq not in (0, None):
            out.notes.append(f"NBIRTH of {self.group}/{self.node} with seq {p.seq}; the specification says 0")
        n = self._place(p.seq if p.seq is not None else 0, "NBIRTH", out)
        out.rebirth = None  # a birth is what a rebirth would give
        self._define("", p, out)
        out.status = "online"
        out.meta = self._meta(received_ms)
        self._emit(self._samples("", p, received_ms, out), n or 0, received_ms, out)

    def _dbirth(self, device: str, p: codec.SpPayload, n: int, received_ms: int, out: Outcome) -> None:
        self._forget(device)
        self.devices.add(device)
        self._define(device, p, out)
        out.meta = self._meta(received_ms)
        self._emit(self._samples(device, p, received_ms, out), n, received_ms, out)

    def _ndeath(self, p: codec.SpPayload, received_ms: int, out: Outcome) -> None:
        bd = next((m.value for m in p.metrics if m.name == "bdSeq"), None)
        if not self.alive:
            return  # a death repeated, or of a session this bridge never saw born
        if self.bdseq is not None and bd is not None and bd != self.bdseq:
            out.notes.append(f"NDEATH of {self.group}/{self.node} with bdSeq {bd!r}, not the live birth's "
                             f"{self.bdseq}: an older connection's will, ignored")
            return
        self.alive = False
        out.status = "offline"
        # a will's timestamp is when the node connected, not when it died: the arrival time is nearer. A death
        # has no seq of its own: its rows ride under the last message's batch seq (ingest writes a repeated
        # seq's rows all the same), so late data going on from that seq keeps its own numbers
        self._emit([(t.point, received_ms, None, OFFLINE) for t in self._targets(None)], max(self.last_n, 0),
                   received_ms, out)

    def _ddeath(self, device: str, p: codec.SpPayload, n: int, received_ms: int, out: Outcome) -> None:
        self.devices.discard(device)
        ts = p.timestamp if p.timestamp is not None else received_ms
        self._emit([(t.point, ts, None, OFFLINE) for t in self._targets(device)], n, received_ms, out)
        self._forget(device)  # its data needs a new DBIRTH now

    def _forget(self, device: str) -> None:
        for key in [k for k in self.defs if k[0] == device]:
            del self.defs[key]
        for akey in [k for k in self.aliases if k[0] == device]:
            del self.aliases[akey]

    def _targets(self, device: str | None) -> list[PointMap]:
        return [d.target for k, d in self.defs.items() if d.target and (device is None or k[0] == device)]

    def _define(self, device: str, p: codec.SpPayload, out: Outcome) -> None:
        for m in p.metrics:
            if not m.name or (device == "" and m.name == "bdSeq"):
                continue
            target = self.map.find(device, m.name)
            declared = _unit(m.properties)
            if target and declared is not None and target.expected_unit is not None \
                    and declared.lower() != target.expected_unit.lower():
                out.notes.append(f"{self.group}/{self.node}/{device or '-'} metric {m.name!r}: its birth says "
                                 f"unit {declared!r}, the mapping expects {target.expected_unit!r}; not stored "
                                 "until the mapping says `unit:` and `scale:` for it")
                target = None
            self.defs[(device, m.name)] = _Def(m.name, m.datatype, target)
            if m.alias is not None:
                self.aliases[(device, m.alias)] = m.name

    def _meta(self, received_ms: int) -> wire.Meta:
        points: dict[str, wire.PointMeta] = {}
        for d in self.defs.values():
            t = d.target
            if t is None or not t.metric:
                continue
            v = vocabulary.get(t.metric)
            points[t.point] = wire.PointMeta(metric=t.metric, unit=v.unit, kind=str(v.kind), name=d.name[:200])
        return wire.Meta(v=wire.VERSION, gw=self.gateway, sent=received_ms, points=points)

    # ---- values ------------------------------------------------------------------------------
    def _data(self, device: str, p: codec.SpPayload, n: int, received_ms: int, out: Outcome) -> None:
        self._emit(self._samples(device, p, received_ms, out), n, received_ms, out)

    def _samples(self, device: str, p: codec.SpPayload, received_ms: int, out: Outcome) -> list[wire.Sample]:
        samples: list[wire.Sample] = []
        for m in p.metrics:
            name = m.name
            if name is None and m.alias is not None:
                name = self.aliases.get((device, m.alias))
                if name is None:
                    out.rebirth = f"alias {m.alias} of device {device or '-'} is in no birth"
                    continue
            if name is None:
                continue
            d = self.defs.get((device, name))
            if d is None:
                if not (device == "" and name in ("bdSeq", "Node Control/Rebirth")):
                    out.rebirth = f"metric {name!r} of device {device or '-'} is in no birth"
                continue
            datatype = m.datatype if m.datatype is not None else d.datatype
            if d.target is None or datatype not in NUMERIC:
                continue  # not mapped, refused, or not a number (strings, dates, data sets)
            ts = m.timestamp if m.timestamp is not None else (p.timestamp if p.timestamp is not None
                                                                 else received_ms)
            if not _TS_MIN <= ts < _TS_MAX:
                out.notes.append(f"{self.group}/{self.node} metric {name!r}: timestamp {ts} is not epoch ms "
                                 "between 2000 and 3000; sample dropped")
                continue
            q = sparkplug_quality(m.properties)
            value = m.value
            if isinstance(value, bool):
                value = 1.0 if value else 0.0
            if not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
                samples.append((d.target.point, ts, None, q if q not in (None, quality.GOOD) else NULL))
                continue
            samples.append((d.target.point, ts, float(value) * d.target.scale, quality.GOOD if q is None else q))
        return samples

    def _emit(self, samples: list[wire.Sample], n: int, received_ms: int, out: Outcome) -> None:
        seq = self.base + n
        self.bases.used(self.gateway, seq)
        self.stats["samples"] += len(samples)
        if samples:
            out.batches.append(wire.Batch(v=wire.VERSION, gw=self.gateway, seq=seq, sent=received_ms,
                                          samples=samples))
