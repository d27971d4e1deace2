"""The built-in live board (实时看板): one page per park, fed by a server-sent-events stream.

``GET /board/`` lists the parks, ``GET /board/{park}`` is the page (static HTML + JS, Apache ECharts
served from this package: parks run offline). ``GET /api/v1/parks/{park}/live`` streams a snapshot
every ``every`` seconds; ``…/live/snapshot`` answers the same body once. A snapshot holds:

- today's new-energy share (China day so far) from :func:`analytics.indicators.new_energy_share.compute_park_share`
  with the app's share settings, as the indicator API computes it, with target, status and inputs;
- the share of each hour of today (closed hours are kept for a few minutes, the open one recomputed);
- live power by source (PV, wind, storage with discharge positive, grid import at the boundary
  meters): the latest good, fresh reading of every point summed over the park, and the last
  30 minutes per minute (the 1-minute rollups up to the rollup backlog, the raw readings after it);
- the park's firing alerts with their Chinese and English text;
- devices whose latest readings are all bad or stale, so a device going offline shows;
- this month's electricity cost by time-of-use band (分时电费) from the energy-cost indicator, recomputed
  at most every :attr:`LiveBoard.cost_ttl_s`.

Snapshots are computed in a worker thread and shared: however many boards watch a park, it is
computed at most once per :attr:`LiveBoard.ttl_s`, and the day's share (the costly part) at most at
the duty cycle :attr:`LiveBoard.share_duty`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles

from analytics.indicators.base import Context, load
from analytics.indicators.new_energy_share import compute_park_share
from analytics.meters import FLOW_METRICS
from analytics.targets import ShareSettings
from ingest.store import Store, alerts, lookups
from ingest.store.base import ParkInfo
from parkmon.api.indicators import period_bounds
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy, principal
from parkmon.common import quality
from parkmon.common.clock import CHINA

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
HOUR_MS, MINUTE_MS = 3_600_000, 60_000
HISTORY_MINUTES = 30
MAX_STREAMS = 8  # concurrent live streams per token holder: a control room's screens, not a flood

# source -> the metric of its power; grid: active power of the meters that count the park's import/export
POWER_METRICS: dict[str, str] = {"pv": "pv.power", "wind": "wind.power", "storage": "storage.power",
                                 "grid": "elec.active_power"}
GRID_COUNTERS = frozenset(FLOW_METRICS["imp"] + FLOW_METRICS["exp"])

# its paths in full: the pages hang under /board/, the stream and snapshot under the API's prefix
router = APIRouter(tags=["live board 实时看板"])


def static_files() -> StaticFiles:
    """The board's script, style sheet and the vendored ECharts, mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)


@dataclass
class _Park:
    """What the board keeps of one park; touched only under its lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    snap: tuple[float, int, dict[str, Any]] | None = None  # (at, stale_after_s, body)
    share: tuple[float, float, int, dict[str, Any], list[dict[str, Any]]] | None = None  # (at, took, day, …)
    hours: dict[int, tuple[float, float, dict[str, Any]]] = field(default_factory=dict)  # hour -> (at, wall, point)
    cost: tuple[float, int, dict[str, Any]] | None = None  # (at, month start, body)


class LiveBoard:
    """Snapshots of parks for the board, shared by all the clients watching them."""

    ttl_s = 1.0  # a snapshot younger than this is served again
    hour_ttl_s = 300.0  # a closed hour of the trend is recomputed this often (late data)
    # the day's share reads the day's raw counter readings (decision 0007: periods under a day do), which
    # grows through the day; it is recomputed when its last computation is older than took / share_duty,
    # so a park's share keeps at most this fraction of a thread busy (power, devices, alerts: every event)
    share_duty = 0.25
    cost_ttl_s = 300.0  # the month's cost by band: a bill's figure, not a second's

    def __init__(self, store: Store, settings: ShareSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        # ``clock``: the wall clock in seconds; a replay of a past day (or a test) gives its own
        self.store, self.settings, self.clock = store, settings, clock
        self.streams = 0  # open event streams (the event loop's thread only)
        self.per_holder: dict[str, int] = {}  # open streams per token holder (the event loop's thread only)
        self.closing = threading.Event()  # set by close(): the streams end so the server can stop
        self._lock = threading.Lock()
        self._parks: dict[str, _Park] = {}

    def close(self) -> None:
        """End every open stream within a quarter second (call before stopping the server: uvicorn
        otherwise waits for them, then cancels them with an error)."""
        self.closing.set()

    def snapshot(self, park: str, stale_after_s: int = 300) -> dict[str, Any]:
        """The park now; LookupError for a park that is not registered."""
        info = next((p for p in self.store.parks() if p.key == park), None)
        if info is None:
            raise LookupError(f"park {park!r} is not registered")
        with self._lock:
            state = self._parks.setdefault(park, _Park())
        with state.lock:  # one computation per park at a time; the others wait and take its result
            if state.snap is not None and state.snap[1] == stale_after_s \
                    and time.monotonic() - state.snap[0] < self.ttl_s:
                return state.snap[2]
            body: dict[str, Any] = _finite(self._compute(state, info, stale_after_s))
            state.snap = (time.monotonic(), stale_after_s, body)
            return body

    def _compute(self, state: _Park, info: ParkInfo, stale_after_s: int) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.clock(), tz=CHINA)
        start, end = period_bounds("today", now)
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        share, trend = self._share(state, info.key, start_ms, end_ms)
        latest = lookups.latest_by_point(self.store, info.key, end_ms - stale_after_s * 1000)
        firing, alert_items = alerts.firing(self.store, info.key)
        return {
            "park": {"key": info.key, "name_zh": info.name_zh, "name_en": info.name_en,
                     "park_class": info.park_class, "region": info.region},
            "at_ms": end_ms,
            "at": end.isoformat(timespec="seconds"),
            "share": share,
            "share_trend": trend,
            "power": _power(self.store, latest, end_ms),
            "devices": _devices(latest, stale_after_s),
            "alerts": {"firing": firing, "items": alert_items},
            "cost": self._cost(state, info.key, now),
        }

    def _cost(self, state: _Park, park: str, now: datetime) -> dict[str, Any]:
        """This month so far by tariff band (尖峰/高峰/平段/低谷), as the energy-cost indicator gives it."""
        start, _ = period_bounds("month", now)
        start_ms = int(start.timestamp() * 1000)
        last = state.cost
        if last is not None and last[1] == start_ms and time.monotonic() - last[0] < self.cost_ttl_s:
            return last[2]
        ind = load("energy_cost")
        try:
            r = ind.feed(self.store, park, ind.params.model_validate({"start": start, "end": now}), Context())
        except ValueError as exc:  # the month's first instant, or a tariff file that does not load
            return {"value": None, "detail": str(exc)}
        body = {"value": r.value, "unit": r.unit, "period_start": r.period_start.isoformat(),
                "completeness": round(r.completeness, 4),
                **{k: r.inputs[k] for k in ("energy_yuan", "demand_yuan", "kwh", "untariffed_kwh", "by_band")},
                "tariffs": [{k: t[k] for k in ("id", "name_zh", "name_en", "confidence")}
                            for t in r.inputs["tariff_tables"]]}
        state.cost = (time.monotonic(), start_ms, body)
        return body

    def _share(self, state: _Park, park: str, start_ms: int,
               end_ms: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Today's share as the indicator API computes it (its window in period_start/end) and the hourly
        trend; the last ones again while they are fresh enough for the share's duty cycle."""
        last = state.share
        if last is not None and last[2] == start_ms and time.monotonic() - last[0] < last[1] / self.share_duty:
            return last[3], last[4]
        t0 = time.monotonic()
        share = compute_park_share(self.store, park, start_ms, end_ms, self.settings).to_json()
        trend = self._trend(state, park, start_ms, end_ms)
        state.share = (t0, time.monotonic() - t0, start_ms, share, trend)
        return share, trend

    def _trend(self, state: _Park, park: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """The share of each hour of today up to now (the hour still running so far)."""
        out = []
        for h in [h for h in state.hours if h < start_ms]:
            del state.hours[h]  # yesterday's hours
        for h in range(start_ms, end_ms, HOUR_MS):
            h_end = min(h + HOUR_MS, end_ms)
            cached = state.hours.get(h)
            if cached is not None and h_end == h + HOUR_MS and cached[1] >= h_end + MINUTE_MS \
                    and time.monotonic() - cached[0] < self.hour_ttl_s:
                out.append(cached[2])
                continue
            r = compute_park_share(self.store, park, h, h_end, self.settings)
            point = {"start_ms": h, "end_ms": h_end, "value": r.value, "status": r.status,
                     "completeness": round(r.completeness, 4)}
            state.hours[h] = (time.monotonic(), self.clock() * 1000, point)
            out.append(point)
        return out


def _finite(x: Any) -> Any:
    """The body with every NaN or infinity as None: JSON has no such numbers (browsers refuse them)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def _usable(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _power_points(latest: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The power points of each source; grid: active power of the devices metering the park's import
    or export (the boundary meters the share counts), not of sub-meters."""
    boundary = {(r["ent"], r["dev"]) for r in latest if r["metric"] in GRID_COUNTERS or r["dev_kind"] == "grid_meter"}
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in POWER_METRICS}
    for r in latest:
        for source, metric in POWER_METRICS.items():
            if r["metric"] == metric and (source != "grid" or (r["ent"], r["dev"]) in boundary):
                out[source].append(r)
    return out


def _power(store: Store, latest: Sequence[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    by_source = _power_points(latest)
    now: dict[str, Any] = {}
    for source, rows in by_source.items():
        good = [r for r in rows if r["ts"] is not None and quality.is_good(r["quality"]) and _usable(r["value"])]
        now[source] = {"kw": round(sum(r["value"] for r in good), 3) if good else None,
                       "points": len(rows), "reporting": len(good)}
    return {"unit": "kW", "now": now, "history": _history(store, by_source, now_ms)}


def _history(store: Store, by_source: dict[str, list[dict[str, Any]]], now_ms: int) -> dict[str, Any]:
    """Per minute of the last ``HISTORY_MINUTES``: each source's points' mean good values, summed."""
    start = (now_ms // MINUTE_MS - HISTORY_MINUTES + 1) * MINUTE_MS
    buckets = list(range(start, now_ms + 1, MINUTE_MS))
    ids = [r["pid"] for rows in by_source.values() for r in rows]
    means: dict[int, dict[int, float]] = {pid: {} for pid in ids}
    # minutes before the rollups' backlog come from the rollups, the rest (at least the minute still
    # running) from the raw readings: the whole window only when nothing refreshes the rollups
    backlog = store.rollup_backlog_from()
    raw_from = now_ms // MINUTE_MS * MINUTE_MS if backlog is None else max(start, backlog // MINUTE_MS * MINUTE_MS)
    rolled = store.rollups(ids, start, raw_from, "1m") if raw_from > start else {}
    for pid, rolled_rows in rolled.items():
        for row in rolled_rows:
            if row.bucket_ms < raw_from and row.mean is not None and math.isfinite(row.mean):
                means[pid][row.bucket_ms] = row.mean
    sums: dict[tuple[int, int], list[float]] = {}
    for pid, raw in store.readings(ids, raw_from, now_ms + 1).items():
        for ts, value, q in raw:
            if value is not None and quality.is_good(q) and math.isfinite(value):
                sums.setdefault((pid, ts // MINUTE_MS * MINUTE_MS), []).append(value)
    for (pid, bucket), values in sums.items():
        means[pid][bucket] = sum(values) / len(values)
    out: dict[str, Any] = {"bucket_ms": MINUTE_MS, "t": buckets}
    for source, rows in by_source.items():
        series: list[float | None] = []
        for b in buckets:
            have = [means[r["pid"]][b] for r in rows if b in means[r["pid"]]]
            series.append(round(sum(have), 3) if have else None)
        out[source] = series
    return out


def _devices(latest: Sequence[dict[str, Any]], stale_after_s: int) -> dict[str, Any]:
    """Devices with no usable (good or uncertain) fresh reading on any point: bad quality (the reason of
    one of them), or silent for ``stale_after_s``; ``degraded`` counts devices with any such point."""
    devices: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in latest:
        devices.setdefault((r["ent"], r["dev"]), []).append(r)
    offline, degraded = [], 0
    for (ent, dev), rows in devices.items():
        fresh = [r for r in rows if r["ts"] is not None]
        ok = [r for r in fresh if quality.quality_class(r["quality"]) != quality.QualityClass.BAD]
        if len(ok) < len(rows):
            degraded += 1
        if ok:
            continue
        if fresh:
            why = quality.reason(fresh[0]["quality"]).name.lower()
            last = max(r["ts"] for r in fresh)
        else:
            why, last = "stale", None
        offline.append({"enterprise": ent, "device": dev, "name": rows[0]["dev_name"] or "", "reason": why,
                        "last_ms": last})
    return {"total": len(devices), "offline": len(offline), "degraded": degraded, "stale_after_s": stale_after_s,
            "offline_devices": offline}


# ---- routes ------------------------------------------------------------------------------------
def _board(request: Request) -> LiveBoard:
    board: LiveBoard = request.app.state.board
    return board


StaleAfter = Annotated[int, Query(ge=10, le=86_400, description="a reading older than this (s) is stale")]


async def _snapshot(board: LiveBoard, park: str, stale_after_s: int) -> dict[str, Any]:
    try:
        return await anyio.to_thread.run_sync(board.snapshot, park, stale_after_s)
    except LookupError as exc:
        raise HTTPException(404, f"{exc}; GET /api/v1/parks lists the parks") from None


async def _pause(board: LiveBoard, seconds: float) -> bool:
    """Sleep ``seconds`` in quarter-second steps; True as soon as the board closes."""
    steps = max(1, math.ceil(seconds / 0.25))
    for _ in range(steps):
        if board.closing.is_set():
            return True
        await anyio.sleep(seconds / steps)
    return board.closing.is_set()


def _event(body: dict[str, Any], n: int, event: str | None = None) -> ServerSentEvent:
    # the JSON compact and in UTF-8 (the library's own encoding escapes every Chinese character)
    return ServerSentEvent(raw_data=json.dumps(body, ensure_ascii=False, separators=(",", ":")), id=str(n),
                           event=event, retry=3000 if n == 1 else None)


def _stream_slot(request: Request) -> str:
    """Whose stream this is; 429 when that token holder has :data:`MAX_STREAMS` open (issue 20 item 18: one
    client opened streams without bound, each a snapshot every few seconds). Authentication off: no cap."""
    if getattr(request.app.state, "auth", None) is None:
        return ""
    who = principal(request)
    holder = f"{who.role}:{who.name}"
    if _board(request).per_holder.get(holder, 0) >= MAX_STREAMS:
        raise HTTPException(429, f"{who.describe()} has {MAX_STREAMS} live streams open, the most one token "
                                 "holder may: close a board (or its tab) first")
    return holder


async def _first(request: Request, park: str, stale_after_s: StaleAfter = 300) -> dict[str, Any]:
    """The stream's first snapshot, a dependency: its 404 is answered before the stream starts."""
    return await _snapshot(_board(request), park, stale_after_s)


@router.get(API_V1 + "/parks/{park}/live", summary="Live board stream: the park every few seconds (实时数据流, SSE)",
            response_class=EventSourceResponse, openapi_extra=policy("park"),
            responses={200: {"description": "server-sent events; each `data:` is the snapshot body"}})
async def live(request: Request, park: str, holder: Annotated[str, Depends(_stream_slot)],
               first: Annotated[dict[str, Any], Depends(_first)],
               every: Annotated[float, Query(ge=1, le=60, description="seconds between events")] = 2.0,
               stale_after_s: StaleAfter = 300) -> AsyncIterator[ServerSentEvent]:
    board = _board(request)
    board.streams += 1
    board.per_holder[holder] = board.per_holder.get(holder, 0) + 1
    try:
        body: dict[str, Any] | None = first
        n = 0
        while True:
            n += 1
            if body is not None:
                yield _event(body, n)
            if await _pause(board, every):  # cancelled when the client goes (Starlette watches)
                return
            try:
                body = await anyio.to_thread.run_sync(board.snapshot, park, stale_after_s)
            except LookupError as exc:
                yield _event({"detail": str(exc)}, n + 1, "problem")
                return
            except Exception as exc:  # e.g. the database away for a moment: say so, try again
                log.warning("live board %s: %s", park, exc)
                body = None
                yield _event({"detail": f"snapshot failed: {exc}"}, n, "problem")
    finally:
        board.streams -= 1
        board.per_holder[holder] -= 1
        if not board.per_holder[holder]:
            del board.per_holder[holder]


@router.get(API_V1 + "/parks/{park}/live/snapshot", summary="The live board's data once (实时看板数据)",
            openapi_extra=policy("park"))
async def live_snapshot(request: Request, park: str, stale_after_s: StaleAfter = 300) -> dict[str, Any]:
    return await _snapshot(_board(request), park, stale_after_s)
