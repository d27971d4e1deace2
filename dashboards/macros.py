"""Expand a panel's SQL the way Grafana does before it reaches PostgreSQL, so tests can run it.

Two steps, as in Grafana 11:

1. the browser replaces dashboard variables (``$park``, ``${park}``, ``[[park]]``) with the SQL data
   sources' rule (``interpolateVariable`` of the SQL datasource plugins): a single value goes in as
   it is, a multi-value or "All" variable becomes a list of quoted literals joined by commas; and the
   built-in ``$__interval`` / ``$__interval_ms``;
2. the server's SQL engine (``pkg/tsdb/grafana-postgresql-datasource``: ``sqleng`` then
   ``macros.go``) replaces ``$__interval_ms``, ``$__interval``, ``$__unixEpochFrom()`` /
   ``$__unixEpochTo()`` and then every ``$__name(args)`` macro: ``$__timeFilter``, ``$__timeFrom``,
   ``$__timeTo``, ``$__timeGroup`` (``floor(extract(epoch from c)/s)*s``, or ``time_bucket`` with the
   TimescaleDB option), ``$__timeGroupAlias``, ``$__time``, ``$__timeEpoch``, ``$__unixEpochFilter``,
   ``$__unixEpoch*``. An unknown macro is an error, as in Grafana.

This is a re-statement of Grafana's documented behaviour for testing, not a copy of its code; the
unit tests pin it to the outputs Grafana's own macro tests expect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2_592_000, "y": 31_536_000}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)\s*$")
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


def interval_seconds(text: str) -> float:
    m = _INTERVAL.match(text.strip("'"))
    if m is None:
        raise MacroError(f"error parsing interval {text}")
    return float(m.group(1)) * _UNITS_S[m.group(2)]


def format_interval(seconds: float) -> str:
    """Grafana's gtime.FormatInterval: the largest whole unit (``1h``, ``5m``, ``30s``, ``500ms``)."""
    ms = round(seconds * 1000)
    for unit, size in (("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
                       ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _num(x: float) -> str:
    """Go's %v of a float64: no trailing .0 for whole numbers."""
    return str(int(x)) if x == int(x) else repr(x)


def _rfc3339(t: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, 'Z' for UTC."""
    u = t.astimezone(UTC)
    frac = f"{u.microsecond:06d}".rstrip("0")
    return u.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def interpolate_variables(sql: str, variables: Mapping[str, str | Sequence[str]],
                          multi: frozenset[str] = frozenset()) -> str:
    """Step 1: dashboard variables. A list value, or a name in ``multi``, is quoted and joined."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name.startswith("__") or name not in variables:
            return m.group(0)  # built-ins and macros are the server's; unknown names stay, as in Grafana
        fmt = m.group(3)
        value = variables[name]
        if fmt in ("raw",):
            return value if isinstance(value, str) else ",".join(value)
        if isinstance(value, str) and name not in multi and fmt is None:
            return value
        values = [value] if isinstance(value, str) else list(value)
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)

    return _VARIABLE.sub(sub, sql)


def expand(sql: str, start: datetime, end: datetime, interval_s: float,
           variables: Mapping[str, str | Sequence[str]] | None = None, multi: frozenset[str] = frozenset(),
           timescaledb: bool = False) -> str:
    """The SQL Grafana would send to PostgreSQL for this time range, interval and variables."""
    sql = interpolate_variables(sql, variables or {}, multi)
    sql = sql.replace("$__interval_ms", str(round(interval_s * 1000)))
    sql = sql.replace("$__interval", format_interval(interval_s))
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(end.timestamp())))
    original = sql

    def macro(m: re.Match[str]) -> str:
        name, args = m.group(1), [a.strip(" ") for a in m.group(2).split(",")]
        if name == "__timeGroup":
            # Grafana < 5.3 compatibility: a ',' right after the call means the aliased form
            at = original.find(m.group(0))
            if at >= 0 and original[at + len(m.group(0)):at + len(m.group(0)) + 1] == ",":
                name = "__timeGroupAlias"
        return _evaluate(name, args, start, end, timescaledb)

    return _MACRO.sub(macro, sql)


def _evaluate(name: str, args: list[str], start: datetime, end: datetime, timescaledb: bool) -> str:
    col = args[0] if args and args[0] else None

    def need_col() -> str:
        if col is None:
            raise MacroError(f"missing time column argument for macro {name}")
        return col

    if name == "__time":
        return f'{need_col()} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {need_col()}) as "time"'
    if name == "__timeFilter":
        return f"{need_col()} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339(start)}'"
    if name == "__timeTo":
        return f"'{_rfc3339(end)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        secs = interval_seconds(args[1])
        group = (f"time_bucket('{secs:.3f}s',{args[0]})" if timescaledb
                 else f"floor(extract(epoch from {args[0]})/{_num(secs)})*{_num(secs)}")
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        secs = interval_seconds(args[1])
        group = f"floor(({args[0]})/{_num(secs)})*{_num(secs)}"
        return group + (' AS "time"' if name == "__unixEpochGroupAlias" else "")
    if name == "__unixEpochFilter":
        c = need_col()
        return f"{c} >= {int(start.timestamp())} AND {c} <= {int(end.timestamp())}"
    if name == "__unixEpochNanoFilter":
        c = need_col()
        return f"{c} >= {_nanos(start)} AND {c} <= {_nanos(end)}"
    if name == "__unixEpochNanoFrom":
        return str(_nanos(start))
    if name == "__unixEpochNanoTo":
        return str(_nanos(end))
    raise MacroError(f'unknown macro "{name}"')


def _nanos(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
