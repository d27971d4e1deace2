"""``balance`` rules: each meter balance of the registry (a main meter and its ``sum_of`` sub-meters, see
analytics/indicators/meter_balance.py) judged on the hour just ended. The imbalance in % of the main meter
past the limit — the rule's ``threshold``, else the carrier's limit in defaults.yaml ``meter_balance`` —
for ``duration_s`` fires once; back inside by the hysteresis it resolves once. ``op``: ``">"`` losses
only (the sub-meters count less), ``"<"`` excess only (below −limit), ``"both"`` either way.

An hour is judged as a whole: the condition counts from the start of the first hour out, so three hours
out in a row hold for 3 h when the third ends. An hour without a figure (a meter that did not cover it:
a stale or quality rule watches that) or under ``min_amount`` on both sides (main meter and the sum)
moves nothing. The engine calls :func:`judge_balances` from its hourly pass (``AlertEngine._hourly``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from analytics.alerts.actions import Subject
from analytics.alerts.rules import Rule
from analytics.alerts.state import Tracker, Transition
from analytics.indicators.meter_balance import balances
from ingest.store import Store
from parkmon.common.clock import HOUR_MS

log = logging.getLogger("parkmon.alerts")


class _Engine(Protocol):
    store: Store
    rules: list[Rule]
    _parks: dict[str, tuple[str, str]]
    _trackers: dict[tuple[str, str], Tracker]


def out_of(rule: Rule, value: float, limit: float) -> bool:
    """The imbalance ``value`` (%) past ``limit`` on the rule's side."""
    return value > limit if rule.op == ">" else value < -limit if rule.op == "<" else abs(value) > limit


def back_in(rule: Rule, value: float, limit: float) -> bool:
    """Back inside the limit by the hysteresis: the condition for resolving."""
    inner = limit - rule.hysteresis
    return value <= inner if rule.op == ">" else value >= -inner if rule.op == "<" else abs(value) <= inner


def step(tr: Tracker, start_ms: int, end_ms: int, value: float, limit: float) -> Transition | None:
    """One judged hour [start, end) with imbalance ``value`` (%): the transition it makes, if any."""
    rule = tr.rule
    if tr.state == "firing":
        if tr.peak is None or abs(value) > abs(tr.peak):
            tr.peak = value
        if back_in(rule, value, limit):
            tr.state = "ok"
            return Transition(rule.id, tr.subject, "resolved", end_ms, tr.since_ms, value, tr.peak)
        return None
    if not out_of(rule, value, limit):
        tr.state, tr.peak = "ok", None
        return None
    if tr.state == "ok":
        tr.state, tr.since_ms, tr.peak = "pending", start_ms, value
    elif tr.peak is None or abs(value) > abs(tr.peak):
        tr.peak = value
    if end_ms - tr.since_ms >= rule.duration_s * 1000:
        tr.state = "firing"
        return Transition(rule.id, tr.subject, "firing", end_ms, tr.since_ms, value, tr.peak)
    return None


def judge_balances(engine: _Engine, hour_end: int) -> list[tuple[Rule, Subject, Transition, float | None]]:
    """Every balance rule on every balance of every park, for the hour ending at ``hour_end``."""
    rules = [r for r in engine.rules if r.kind == "balance" and r.enabled]
    out: list[tuple[Rule, Subject, Transition, float | None]] = []
    if not rules:
        return out
    for park, (name_zh, region) in engine._parks.items():
        try:
            lines = balances(engine.store, park, hour_end - HOUR_MS, hour_end)
        except (LookupError, ValueError) as exc:  # one park's bad registry must not lose the hour
            log.warning("meter balances of park %s not judged: %s", park, exc)
            continue
        for b in lines:
            out += _judge(engine, rules, park, name_zh, region, b, hour_end)
    return out


def _judge(engine: _Engine, rules: Sequence[Rule], park: str, name_zh: str, region: str, b: dict[str, Any],
           hour_end: int) -> list[tuple[Rule, Subject, Transition, float | None]]:
    ent, dev = b["meter"].split("/", 1)
    subj = Subject(f"{park}/{b['meter']}/balance/{b['carrier']}", park, ent, dev, b["metric"], "%",
                   f"{b['name'] or dev} {b['carrier_zh']}总分表不平衡率", name_zh, region)
    out: list[tuple[Rule, Subject, Transition, float | None]] = []
    for rule in rules:
        if not rule.applies(park, ent, dev, b["kind"], b["metric"]):
            continue
        if b["imbalance_pct"] is None or max(b["main"], b["members_sum"]) < rule.min_amount:
            continue  # no figure, or an idle hour on both sides (a stopped main meter still counts its subs)
        limit = float(rule.threshold if rule.threshold is not None else b["limit_pct"])
        tr = engine._trackers.setdefault((rule.id, subj.key), Tracker(rule, subj.key))
        tx = step(tr, hour_end - HOUR_MS, hour_end, float(b["imbalance_pct"]), limit)
        if tx is not None:
            out.append((rule, subj, tx, limit))
    return out
