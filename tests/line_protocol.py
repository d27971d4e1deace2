"""A strict parser of InfluxDB line protocol, written from the spec
(https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/), to check what the InfluxDB
mirror sends: ``measurement[,tag=v...] field=v[,field=v...] [timestamp]``.

Escapes: measurement - comma and space; tag keys/values and field keys - comma, equals sign, space;
string field values - double quote and backslash. Field values: float (``1``, ``1.5``, ``-1e3``),
integer (``1i``), unsigned (``1u``), string (``"..."``), boolean (t/T/true/True/TRUE/f/...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+i$")
_UINT = re.compile(r"^\d+u$")
_BOOL = {"t": True, "T": True, "true": True, "True": True, "TRUE": True,
         "f": False, "F": False, "false": False, "False": False, "FALSE": False}


class LineProtocolError(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | str | bool]
    timestamp: int | None


def _split(s: str, seps: str, escapable: str) -> tuple[str, str, str]:
    """Read up to the first unescaped separator; returns (unescaped token, separator, rest)."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in escapable:
            out.append(s[i + 1])
            i += 2
            continue
        if c in seps:
            return "".join(out), c, s[i + 1:]
        out.append(c)
        i += 1
    return "".join(out), "", ""


def _field_value(s: str) -> tuple[float | int | str | bool, str, str]:
    if s.startswith('"'):
        out, i = [], 1
        while i < len(s):
            if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in '"\\':
                out.append(s[i + 1])
                i += 2
            elif s[i] == '"':
                rest = s[i + 1:]
                return "".join(out), rest[:1], rest[1:]
            else:
                out.append(s[i])
                i += 1
        raise LineProtocolError("unterminated string field value")
    raw, sep, rest = _split(s, ", ", "")
    if _INT.match(raw):
        return int(raw[:-1]), sep, rest
    if _UINT.match(raw):
        return int(raw[:-1]), sep, rest
    if raw in _BOOL:
        return _BOOL[raw], sep, rest
    if _FLOAT.match(raw):
        return float(raw), sep, rest
    raise LineProtocolError(f"field value {raw!r} is not a float, integer, string or boolean")


def parse_line(line: str) -> Line:
    if not line or line.startswith("#"):
        raise LineProtocolError("empty line or comment")
    measurement, sep, rest = _split(line, ", ", ", ")
    if not measurement:
        raise LineProtocolError("missing measurement")
    tags: dict[str, str] = {}
    while sep == ",":
        key, eq, rest = _split(rest, "=", ",= ")
        if eq != "=" or not key:
            raise LineProtocolError(f"tag {key!r} has no value")
        value, sep, rest = _split(rest, ", ", ",= ")
        if not value:
            raise LineProtocolError(f"tag {key!r} has an empty value")
        tags[key] = value
    if sep != " ":
        raise LineProtocolError("no field set")
    fields: dict[str, float | int | str | bool] = {}
    while True:
        key, eq, rest = _split(rest, "=", ",= ")
        if eq != "=" or not key:
            raise LineProtocolError(f"field {key!r} has no value")
        fields[key], sep, rest = _field_value(rest)
        if sep != ",":
            break
    if sep == " ":
        if not re.fullmatch(r"-?\d+", rest):
            raise LineProtocolError(f"timestamp {rest!r} is not an integer")
        return Line(measurement, tags, fields, int(rest))
    if sep or rest:
        raise LineProtocolError(f"trailing {rest!r}")
    return Line(measurement, tags, fields, None)


def parse(body: str) -> list[Line]:
    return [parse_line(ln) for ln in body.split("\n") if ln]
