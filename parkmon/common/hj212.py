"""HJ 212-2017 packets: parse, build, frame a TCP stream, reassemble split packets, decode CP data.

No I/O here: the edge agent's receiver and forwarder, the simulator and the tests share it.

A frame is ``## + LLLL + data segment + CCCC + \\r\\n`` (domain.md §3.1): LLLL the data segment's length
in ASCII characters (4 decimal digits), CCCC its CRC in the standard's own CRC-16 (App. A; not
CRC-16/MODBUS) as 4 hex digits. Every failure raises :class:`Hj212Error` naming the field, what was
expected and what came, so a dead letter says exactly what was wrong.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from parkmon.common import quality
from parkmon.common.clock import CHINA
from parkmon.common.hj212_codes import CODE_METRICS, DATA_CNS, LEGACY_CODES, VALUE_FIELDS

MAX_SEGMENT = 1024  # the standard's limit on the data segment
_HEADER_FIELDS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_QN = re.compile(r"^\d{17}$")
_DATATIME = re.compile(r"^\d{14}$")
_HEX4 = re.compile(rb"^[0-9A-Fa-f]{4}$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class Hj212Error(ValueError):
    """A packet that breaks the standard: ``field`` is where, the message says what was expected."""

    def __init__(self, where: str, expected: str, got: str) -> None:
        self.field = where
        self.expected = expected
        self.got = got
        super().__init__(f"{where}: expected {expected}, got {got}")


def _crc16_bitwise(data: bytes) -> int:
    """The CRC of HJ 212-2017 App. A (``CRC16_Checkout``) as the standard writes it: init 0xFFFF, each
    byte XORed into the register after shifting it right by 8, then 8 reflected rounds with 0xA001."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ b
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0xA001
    return crc


# after ``(crc >> 8) ^ byte`` the register holds 8 bits, so the 8 rounds are a function of one byte: a table
def _rounds(x: int) -> int:
    for _ in range(8):
        x = (x >> 1) ^ 0xA001 if x & 1 else x >> 1
    return x


_CRC_TABLE = [_rounds(i) for i in range(256)]


def crc16(data: bytes) -> int:
    """The App. A CRC, table-driven (equal to the standard's bit loop, tests/test_hj212_codec.py)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc >> 8) ^ b]
    return crc


@dataclass(frozen=True)
class Packet:
    """One packet's data segment, fields as sent (strings), ``cp`` the text between ``CP=&&`` and ``&&``."""

    st: str
    cn: str
    pw: str
    mn: str
    cp: str = ""
    qn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None

    @property
    def ack_requested(self) -> bool:
        return self.flag is not None and bool(self.flag & 1)

    @property
    def split(self) -> bool:
        return self.flag is not None and bool(self.flag & 2)

    @property
    def version(self) -> int:
        """2017 when the Flag's version bits say 000001, 2005 when 000000 (or no Flag)."""
        return 2017 if self.flag is not None and (self.flag >> 2) & 0x3F == 1 else 2005

    def segment(self) -> str:
        parts = [f"QN={self.qn}"] if self.qn is not None else []
        parts += [f"ST={self.st}", f"CN={self.cn}", f"PW={self.pw}", f"MN={self.mn}"]
        if self.flag is not None:
            parts.append(f"Flag={self.flag}")
        if self.pnum is not None:
            parts += [f"PNUM={self.pnum}", f"PNO={self.pno}"]
        return ";".join(parts) + f";CP=&&{self.cp}&&"


def build(p: Packet) -> bytes:
    seg = p.segment().encode("ascii")
    if len(seg) > MAX_SEGMENT:
        raise Hj212Error("data segment", f"at most {MAX_SEGMENT} characters (split it with PNUM/PNO)",
                         f"{len(seg)}")
    return b"##" + f"{len(seg):04d}".encode() + seg + f"{crc16(seg):04X}".encode() + b"\r\n"


def parse(frame: bytes) -> Packet:
    """One whole frame (``##`` … ``\\r\\n``) into a :class:`Packet`, every check on the way."""
    if not frame.startswith(b"##"):
        raise Hj212Error("header", "'##'", repr(frame[:2]))
    if len(frame) < 12:
        raise Hj212Error("packet", "at least 12 bytes (## + length + CRC + CRLF)", f"{len(frame)} bytes")
    length_text = frame[2:6]
    if not length_text.isdigit():
        raise Hj212Error("length", "4 decimal digits", repr(length_text.decode("ascii", "replace")))
    n = int(length_text)
    if n > MAX_SEGMENT:
        raise Hj212Error("length", f"at most {MAX_SEGMENT}", str(n))
    if len(frame) != n + 12:
        raise Hj212Error("length", f"{n} characters of data segment (frame of {n + 12} bytes)",
                         f"{len(frame) - 12} (frame of {len(frame)} bytes)")
    if frame[-2:] != b"\r\n":
        raise Hj212Error("tail", "CR LF", repr(frame[-2:]))
    seg, crc_text = frame[6:6 + n], frame[6 + n:10 + n]
    if not _HEX4.match(crc_text):
        raise Hj212Error("CRC", "4 hex digits", repr(crc_text.decode("ascii", "replace")))
    if int(crc_text, 16) != crc16(seg):
        raise Hj212Error("CRC", f"{crc16(seg):04X} (HJ 212 App. A CRC of the data segment)",
                         crc_text.decode("ascii"))
    try:
        text = seg.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Hj212Error("data segment", "ASCII", f"byte 0x{seg[exc.start]:02x} at {exc.start}") from None
    return parse_segment(text)


def parse_segment(text: str) -> Packet:
    head, sep, rest = text.partition("CP=&&")
    if not sep:
        raise Hj212Error("CP", "'CP=&&…&&' at the end of the data segment", "no CP field")
    if not rest.endswith("&&"):
        raise Hj212Error("CP", "'&&' closing the command parameters", repr(rest[-8:]))
    cp = rest[:-2]
    fields: dict[str, str] = {}
    for item in head.split(";"):
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not eq:
            raise Hj212Error("data segment", "name=value fields separated by ';'", repr(item[:40]))
        if name not in _HEADER_FIELDS:
            raise Hj212Error(name, f"one of {', '.join(_HEADER_FIELDS)} before CP", repr(name[:20]))
        if name in fields:
            raise Hj212Error(name, "the field once", "twice")
        fields[name] = value
    for need in ("ST", "CN", "PW", "MN"):
        if need not in fields:
            raise Hj212Error(need, "the field in every packet", "nothing")
    qn = fields.get("QN")
    if qn is not None and not _QN.match(qn):
        raise Hj212Error("QN", "17 digits YYYYMMDDhhmmsszzz", repr(qn))
    if not fields["ST"].isdigit() or len(fields["ST"]) > 5:
        raise Hj212Error("ST", "a system code of digits (e.g. 31, 32, 91)", repr(fields["ST"]))
    if not fields["CN"].isdigit() or len(fields["CN"]) > 7:
        raise Hj212Error("CN", "a command code of digits (e.g. 2011, 9014)", repr(fields["CN"]))
    if len(fields["PW"]) > 9 or len(fields["MN"]) > 27:
        raise Hj212Error("PW/MN", "PW ≤ 9 and MN ≤ 27 characters", f"{len(fields['PW'])} / {len(fields['MN'])}")
    flag = _int(fields, "Flag", 0, 255)
    pnum, pno = _int(fields, "PNUM", 1, 9999), _int(fields, "PNO", 1, 9999)
    if (pnum is None) != (pno is None):
        raise Hj212Error("PNUM/PNO", "both or neither", "only one")
    if pnum is not None and pno is not None and pno > pnum:
        raise Hj212Error("PNO", f"at most PNUM={pnum}", str(pno))
    return Packet(st=fields["ST"], cn=fields["CN"], pw=fields["PW"], mn=fields["MN"], cp=cp, qn=qn, flag=flag,
                  pnum=pnum, pno=pno)


def _int(fields: dict[str, str], name: str, lo: int, hi: int) -> int | None:
    v = fields.get(name)
    if v is None:
        return None
    if not v.isdigit() or not lo <= int(v) <= hi:
        raise Hj212Error(name, f"an integer {lo}..{hi}", repr(v))
    return int(v)


# --- TCP stream framing --------------------------------------------------------------------------------
class Framer:
    """Cuts a TCP byte stream into frames. Garbage before ``##`` and frames whose length field or tail is
    wrong come out as :class:`Hj212Error` with the bytes skipped, and framing resumes at the next ``##``."""

    def __init__(self) -> None:
        # bounded without a limit of its own: a frame is at most MAX_SEGMENT + 12 bytes, after which the
        # length check cuts the buffer down to the next '##'
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes | Hj212Error]:
        self._buf += data
        while True:
            start = self._buf.find(b"##")
            if start < 0:
                if len(self._buf) > 1:  # keep a lone trailing '#', it may start the next frame
                    junk = bytes(self._buf[:-1])
                    del self._buf[:-1]
                    if junk.strip(b"\r\n"):
                        yield Hj212Error("stream", "a packet starting with '##'", _show(junk))
                return
            if start > 0:
                junk = bytes(self._buf[:start])
                del self._buf[:start]
                if junk.strip(b"\r\n"):
                    yield Hj212Error("stream", "a packet starting with '##'", _show(junk))
            if len(self._buf) < 6:
                return
            length = bytes(self._buf[2:6])
            if not length.isdigit() or int(length) > MAX_SEGMENT:
                bad = self._skip_to_next()
                yield Hj212Error("length", f"4 decimal digits ≤ {MAX_SEGMENT}", _show(bad))
                continue
            total = int(length) + 12
            # a whole valid frame starting inside this one means this one was cut short (a truncated
            # packet, a wrong length): report it and go on from the whole one instead of swallowing it
            nxt = self._next_whole(min(total, len(self._buf)))
            if nxt > 0:
                bad = bytes(self._buf[:nxt])
                del self._buf[:nxt]
                yield Hj212Error("length", f"{int(length)} characters of data segment (packet cut short?)",
                                 _show(bad))
                continue
            if len(self._buf) < total:
                return
            frame = bytes(self._buf[:total])
            if frame[-2:] != b"\r\n":
                bad = self._skip_to_next()
                yield Hj212Error("length", f"{int(length)} characters then CRC and CR LF", _show(bad))
                continue
            del self._buf[:total]
            yield frame

    def _next_whole(self, within: int) -> int:
        """Where a complete frame with a good CRC starts after position 0 and before ``within``, or -1."""
        at = self._buf.find(b"##", 1, within)
        while at > 0:
            head = bytes(self._buf[at + 2:at + 6])
            if head.isdigit():
                end = at + int(head) + 12
                if end <= len(self._buf) and self._buf[end - 2:end] == b"\r\n":
                    try:
                        parse(bytes(self._buf[at:end]))
                        return at
                    except Hj212Error:
                        pass
            at = self._buf.find(b"##", at + 1, within)
        return -1

    def _skip_to_next(self) -> bytes:
        nxt = self._buf.find(b"##", 2)
        cut = nxt if nxt > 0 else len(self._buf)
        bad = bytes(self._buf[:cut])
        del self._buf[:cut]
        return bad

    def pending(self) -> bytes:
        """Bytes of an unfinished frame (a connection that drops here lost a truncated packet)."""
        return bytes(self._buf)


def _show(b: bytes) -> str:
    text = b[:60].decode("ascii", "replace")
    return repr(text + ("…" if len(b) > 60 else ""))


# --- split packets -------------------------------------------------------------------------------------
@dataclass
class Reassembler:
    """Joins the parts of a split packet (Flag D bit, PNUM/PNO, one QN) into one packet whose CP is the
    parts' CPs in PNO order joined by ';'. Parts of a packet still incomplete ``max_age_s`` after its
    first part came are dropped (the sender re-sends the whole packet when it gets no answer)."""

    max_age_s: float = 120.0
    _parts: dict[tuple[str, str, str, int], dict[int, Packet]] = field(default_factory=dict)
    _born: dict[tuple[str, str, str, int], float] = field(default_factory=dict)
    expired: int = 0

    def add(self, p: Packet, now_s: float | None = None) -> Packet | None:
        flag = None if p.flag is None else p.flag & ~2
        if p.pnum is None or p.pno is None or p.pnum == 1:
            return replace(p, pnum=None, pno=None, flag=flag)
        if p.qn is None:
            raise Hj212Error("QN", "a QN on every part of a split packet (it ties the parts)", "none")
        now = time.monotonic() if now_s is None else now_s
        for old in [k for k, t in self._born.items() if now - t > self.max_age_s]:
            self._parts.pop(old, None)
            self._born.pop(old, None)
            self.expired += 1
        key = (p.mn, p.cn, p.qn, p.pnum)
        other = next((k for k in self._parts if k[:3] == key[:3] and k[3] != p.pnum), None)
        if other is not None:
            raise Hj212Error("PNUM", f"{other[3]}, as the other parts of QN {p.qn} say", str(p.pnum))
        got = self._parts.setdefault(key, {})
        self._born.setdefault(key, now)
        got[p.pno] = p
        if len(got) < p.pnum:
            return None
        del self._parts[key], self._born[key]
        cp = ";".join(got[i].cp for i in range(1, p.pnum + 1) if got[i].cp)
        return replace(got[1], cp=cp, pnum=None, pno=None, flag=flag)

    def incomplete(self) -> int:
        return len(self._parts)


def split(p: Packet, max_cp: int = 900) -> list[Packet]:
    """A packet whose data segment would exceed the limit, as parts on item boundaries (D bit set)."""
    if len(p.segment()) <= MAX_SEGMENT:
        return [p]
    items = p.cp.split(";")
    chunks: list[str] = []
    cur: list[str] = []
    for it in items:
        if cur and len(";".join([*cur, it])) > max_cp:
            chunks.append(";".join(cur))
            cur = []
        cur.append(it)
    chunks.append(";".join(cur))
    flag = (p.flag or 4) | 2
    return [replace(p, cp=c, flag=flag, pnum=len(chunks), pno=i + 1) for i, c in enumerate(chunks)]


# --- CP data -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """A data upload (CN 2011 / 2051 / 2061 / 2031): when, and each code's fields."""

    mn: str
    st: str
    cn: str
    data_time_ms: int  # the instant (2011) or the start of the period (2051 / 2061 / 2031)
    values: dict[str, dict[str, float]]  # code (2017) -> field (Rtd, Avg, …) -> value
    flags: dict[str, str]  # code -> data flag (N, F, M, S, D, C, T, B)
    extra: dict[str, str]  # other CP items kept as text (SBxxx-RS, SampleTime, …)

    @property
    def period(self) -> str:
        return DATA_CNS[self.cn]


def parse_time(text: str, where: str = "DataTime") -> int:
    if not _DATATIME.match(text):
        raise Hj212Error(where, "14 digits YYYYMMDDhhmmss", repr(text))
    try:
        t = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CHINA)
    except ValueError:
        raise Hj212Error(where, "a real date and time", repr(text)) from None
    return int(t.timestamp() * 1000)


def format_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).strftime("%Y%m%d%H%M%S")


def make_qn(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).strftime("%Y%m%d%H%M%S") + f"{ms % 1000:03d}"


def cp_items(cp: str) -> dict[str, str]:
    """``a=1,b=2;c=3`` -> {a: 1, b: 2, c: 3}; a repeated name is an error (it would lose a value)."""
    out: dict[str, str] = {}
    if not cp:
        return out
    for group in cp.split(";"):
        for item in group.split(","):
            if not item:
                continue
            name, eq, value = item.partition("=")
            if not eq or not name:
                raise Hj212Error("CP", "name=value items separated by ';' or ','", repr(item[:40]))
            if name in out:
                raise Hj212Error(f"CP {name}", "each item once", "twice")
            out[name] = value
    return out


def normalise_code(code: str) -> str:
    """2017 codes pass through; HJ/T 212-2005 codes become their 2017 equivalents."""
    return LEGACY_CODES.get(code, code)


def record(p: Packet) -> Record:
    if p.cn not in DATA_CNS:
        raise Hj212Error("CN", f"a data upload ({', '.join(DATA_CNS)})", p.cn)
    items = cp_items(p.cp)
    if "DataTime" not in items:
        raise Hj212Error("CP DataTime", "the data's time", "nothing")
    ts = parse_time(items.pop("DataTime"))
    values: dict[str, dict[str, float]] = {}
    flags: dict[str, str] = {}
    extra: dict[str, str] = {}
    for name, text in items.items():
        code, dash, fld = name.rpartition("-")
        if not dash or not code:
            extra[name] = text
            continue
        code = normalise_code(code)
        if fld == "Flag":
            if len(text) != 1:
                raise Hj212Error(f"CP {name}", "one data flag letter (N, F, M, S, D, C, T, B)", repr(text))
            flags[code] = text
        elif fld in VALUE_FIELDS:
            if not _NUMBER.match(text):
                raise Hj212Error(f"CP {name}", "a number", repr(text[:20]))
            values.setdefault(code, {})[fld] = float(text)
        else:
            extra[name] = text
    return Record(p.mn, p.st, p.cn, ts, values, flags, extra)


def flag_quality(flag: str | None) -> int:
    """A data flag as parkmon quality; no flag is 'normal', an unknown letter is bad (reason: device)."""
    if flag is None:
        return quality.GOOD
    return quality.HJ212_FLAGS.get(flag, quality.bad(quality.Reason.DEVICE_FAILURE))


def cp_of(data_time_ms: int, values: dict[str, dict[str, float]], flags: dict[str, str] | None = None,
          extra: dict[str, str] | None = None) -> str:
    """The CP text of a data upload: ``DataTime=…;code-Field=v,…,code-Flag=N;…``."""
    groups = [f"DataTime={format_time(data_time_ms)}"]
    for code, fields in values.items():
        items = [f"{code}-{f}={_num(v)}" for f, v in fields.items()]
        if flags and code in flags:
            items.append(f"{code}-Flag={flags[code]}")
        groups.append(",".join(items))
    groups += [f"{k}={v}" for k, v in (extra or {}).items()]
    return ";".join(groups)


def _num(v: float) -> str:
    if not math.isfinite(v):
        raise Hj212Error("CP value", "a finite number (leave the field out and flag the code instead)", repr(v))
    text = f"{v:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


# --- metrics ---------------------------------------------------------------------------------------------
def metric_of(code: str, fld: str, cn: str) -> str | None:
    """The parkmon metric of a code's field in a data upload, or None when parkmon has no such metric.

    Real-time: Rtd is the base metric (``cems.so2``), ZsRtd its value at the reference O2 (``cems.so2.ref``).
    Minute / hour / day records: ``cems.so2.hour.avg`` (Avg, Min, Max), ``….hour.ref_avg`` (ZsAvg …) and
    ``….hour.amount`` (Cou: kg of a pollutant, m³ of a flow)."""
    base = CODE_METRICS.get(code)
    if base is None:
        return None
    if cn == "2011":
        return {"Rtd": base, "ZsRtd": f"{base}.ref"}.get(fld)
    period = DATA_CNS.get(cn)
    if period is None:
        return None
    stat = {"Avg": "avg", "Min": "min", "Max": "max", "ZsAvg": "ref_avg", "ZsMin": "ref_min", "ZsMax": "ref_max",
            "Cou": "amount"}.get(fld)
    return None if stat is None else f"{base}.{period}.{stat}"


def point_name(code: str, fld: str, cn: str) -> str:
    """The gateway point a field lands on: ``a21026-Rtd``, ``a21026-Avg-hour`` (HJ 212's own names)."""
    return f"{code}-{fld}" if cn == "2011" else f"{code}-{fld}-{DATA_CNS[cn]}"
