"""总分表平衡 — meter balance: a main meter against the sum of its sub-meters (the registry's ``sum_of``),
carrier by carrier (electricity, water, natural gas, heat, steam), per period: the imbalance in the meter's
unit and in % of the main meter. A loss, a leak, an unmetered tap or a meter that stopped shows here.

Pure part: :func:`imbalance`. The amounts are what each counter advanced over the period
(:func:`analytics.meters.point_amounts`: rollups where current, readings after); a meter that did not
cover the period leaves its balance without a figure (never guessed). The indicator's value is the
|imbalance %| of the balance furthest out against its carrier's limit (defaults.yaml ``meter_balance``),
its target that limit; lower is better. Method and registry format: docs/indicators/meter-balance.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, status_for
from analytics.meters import point_amounts
from analytics.targets import defaults_section
from ingest.store.records import registry
from parkmon.common.clock import CHINA

if TYPE_CHECKING:
    from ingest.store.base import Store

# carrier (the limits' keys) -> the counters that measure it, in order of preference: a device is read on the
# first it has (electricity: a main meter at the grid connection counts import, sub-meters often consumption)
CARRIERS: dict[str, tuple[str, ...]] = {"electricity": ("elec.import.energy", "elec.load.energy"),
                                        "water": ("water.volume",), "natural_gas": ("gas.volume",),
                                        "heat": ("heat.energy",), "steam": ("steam.mass",)}
UNITS = {"electricity": "kWh", "water": "m³", "natural_gas": "m³", "heat": "GJ", "steam": "t"}
CARRIER_ZH = {"electricity": "电", "water": "水", "natural_gas": "天然气", "heat": "热", "steam": "蒸汽"}
MAX_INTERVALS = 744  # a month of hours


def imbalance(main: float | None, parts: Sequence[float | None]) -> tuple[float | None, float | None]:
    """main − Σ parts, and that in % of main (positive: the sub-meters miss some of the flow: losses, a
    leak, an unmetered user; negative: they count more than came in). No figure if any meter has none.
    A main meter that counted nothing while its sub-meters counted is −100 % (it stopped); nothing on
    either side is 0 %."""
    if main is None or any(p is None for p in parts):
        return None, None
    diff = main - sum(p for p in parts if p is not None)
    if main > 0:
        return diff, diff / main * 100
    return diff, (0.0 if diff == 0 else -100.0)


def limits_pct() -> dict[str, float]:
    """Per carrier, the imbalance (% of the main meter) judged out: defaults.yaml ``meter_balance``."""
    return {k: float(v) for k, v in defaults_section("meter_balance")["limits_pct"].items()}


def balances(store: Store, park: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Every balance of the park over [start, end), one line per main meter and carrier it measures."""
    regs = registry.balances(store, park)
    if not regs:
        return []
    return _lines(store, regs, store.points(park, metrics=[m for ms in CARRIERS.values() for m in ms]), start_ms,
                  end_ms)


def _lines(store: Store, regs: list[dict[str, Any]], pts: Sequence[Any], start_ms: int,
           end_ms: int) -> list[dict[str, Any]]:
    """The balances ``regs`` over [start, end) from the counters ``pts`` (read once for many periods)."""
    by_dev: dict[tuple[str, str], list[Any]] = {}
    for p in pts:
        by_dev.setdefault((f"{p.enterprise}/{p.device}", p.metric or ""), []).append(p)
    amounts, _resets, source = point_amounts(store, pts, start_ms, end_ms)
    limits = limits_pct()

    def metric_of(dev: str, carrier: str) -> str | None:
        return next((m for m in CARRIERS[carrier] if (dev, m) in by_dev), None)

    def amount(dev: str, carrier: str) -> float | None:
        """What the device counted of the carrier; None: no such counter, or one did not cover the period."""
        mine = by_dev.get((dev, metric_of(dev, carrier) or ""), [])
        got = [amounts[p.id] for p in mine]
        return None if not mine or any(a is None for a in got) else sum(a for a in got if a is not None)

    out = []
    for b in regs:
        for carrier in CARRIERS:
            metric = metric_of(b["meter"], carrier)
            if metric is None:
                continue
            main = amount(b["meter"], carrier)
            parts = {m: amount(m, carrier) for m in b["members"]}
            diff, pct = imbalance(main, list(parts.values()))
            out.append({"meter": b["meter"], "name": b["name"], "kind": b["kind"], "carrier": carrier,
                        "carrier_zh": CARRIER_ZH[carrier], "metric": metric, "unit": UNITS[carrier], "main": main,
                        "members_sum": None if diff is None or main is None else main - diff,
                        "members": parts, "imbalance": diff, "imbalance_pct": pct,
                        "limit_pct": limits[carrier], "source": source,
                        "not_covering": [m for m, a in {b["meter"]: main, **parts}.items() if a is None]})
    return out


class BalanceParams(Span):
    interval: Annotated[Literal["period", "day", "hour"], Field(
        description="one figure for the period, or one per China day or hour (at most 744)")] = "period"


def _cuts(p: BalanceParams) -> list[tuple[int, int]]:
    if p.interval == "period":
        return [(p.start_ms, p.end_ms)]
    step = timedelta(days=1) if p.interval == "day" else timedelta(hours=1)
    t = p.start.astimezone(CHINA).replace(minute=0, second=0, microsecond=0)
    if p.interval == "day":
        t = t.replace(hour=0)
    out = []
    while int(t.timestamp() * 1000) < p.end_ms:
        nxt = t + step
        out.append((max(p.start_ms, int(t.timestamp() * 1000)), min(p.end_ms, int(nxt.timestamp() * 1000))))
        t = nxt
        if len(out) > MAX_INTERVALS:
            raise ValueError(f"more than {MAX_INTERVALS} intervals of a {p.interval}: ask for a shorter period "
                             "or a coarser interval")
    return out


class MeterBalance(Indicator[BalanceParams]):
    key = "meter_balance"
    name_zh = "总分表平衡"
    name_en = "Meter balance (main meter vs sum of sub-meters)"
    unit = "%"
    better = "lower"
    params = BalanceParams

    def feed(self, store: Store, park: str, p: BalanceParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        whole = balances(store, park, p.start_ms, p.end_ms)
        judged = [b for b in whole if b["imbalance_pct"] is not None]
        worst = max(judged, key=lambda b: abs(b["imbalance_pct"]) / b["limit_pct"], default=None)
        value = None if worst is None else abs(worst["imbalance_pct"])
        target = None if worst is None else worst["limit_pct"]
        intervals = []
        if p.interval != "period" and whole:
            regs = registry.balances(store, park)
            pts = store.points(park, metrics=[m for ms in CARRIERS.values() for m in ms])
            for a, b in _cuts(p):
                intervals.append({"start": datetime.fromtimestamp(a / 1000, CHINA).isoformat(),
                                  "balances": [{k: x[k] for k in ("meter", "carrier", "main", "members_sum",
                                                                  "imbalance", "imbalance_pct")}
                                               for x in _lines(store, regs, pts, a, b)]})
        return self.make_result(
            None if value is None else round(value, 4), p.start, p.end, target=target,
            completeness=len(judged) / len(whole) if whole else 0.0,
            status=status_for(value, target, self.better),
            inputs={"park": park, "balances": whole, "worst": None if worst is None else worst["meter"],
                    "intervals": intervals, "limits_source": defaults_section("meter_balance")["source"]},
            method="imbalance = main meter - sum of its sub-meters (registry sum_of), per carrier, over the period; "
                   "% of the main meter; the value is the largest |%| measured against its carrier's limit")

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        report[self.key] = None if result is None else result.to_json()
