"""One rule watching one subject (a point, a gateway, an outlet, a park): ok → pending → firing → ok.
Pure: samples in, transitions out; the engine persists what comes out.

- pending: the condition holds but not yet for ``duration_s``; nothing is said;
- firing: it has held long enough (one transition, with when it started and how far over);
- back to ok only past the hysteresis (one ``resolved`` transition), so a value hovering at the line
  gives one alert, not one a second;
- samples older than the last one seen are late data (a gateway replaying its buffer): they do not
  move a live alarm; samples in maintenance or calibration, and bad ones, move nothing either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from analytics.alerts.rules import Rule
from parkmon.common import quality

State = Literal["ok", "pending", "firing"]


@dataclass(frozen=True)
class Transition:
    rule_id: str
    subject: str
    to: Literal["firing", "resolved"]
    at_ms: int
    since_ms: int  # when the condition began
    value: float | None  # the value that made the transition
    peak: float | None  # the furthest value while it held


@dataclass
class Tracker:
    rule: Rule
    subject: str
    state: State = "ok"
    since_ms: int = 0
    peak: float | None = None
    last_ts: int = -(2**62)
    last_value: float | None = None
    history: list[tuple[int, float]] = field(default_factory=list)  # rate rules: recent samples

    def observe(self, ts: int, value: float | None, q: int) -> Transition | None:
        """A new sample of the subject; a transition when the alert starts firing or resolves."""
        if ts <= self.last_ts:
            return None  # late or repeated: the live state already moved past it
        self.last_ts = ts
        if self.rule.kind == "quality":
            bad = quality.quality_class(q) == quality.QualityClass.BAD or \
                quality.reason(q) == quality.Reason.COUNTER_RESET
            return self._step(ts, bad, not bad, None)
        if value is None or quality.quality_class(q) == quality.QualityClass.BAD or self.rule.suppressed(q):
            return None  # bad, or maintenance / calibration: says nothing about the process
        if self.rule.kind == "rate":
            prev = self.last_value
            self.last_value = value
            if prev is None or not self.history:
                self.history = [(ts, value)]
                return None
            t0, v0 = self.history[-1]
            self.history = [(ts, value)]
            per_min = (value - v0) / ((ts - t0) / 60_000) if ts > t0 else 0.0
            return self._step(ts, self.rule.over(per_min), self.rule.clear(per_min), per_min)
        self.last_value = value
        return self._step(ts, self.rule.over(value), self.rule.clear(value), value)

    def _step(self, ts: int, over: bool, clear: bool, value: float | None) -> Transition | None:
        if self.state == "firing":
            if value is not None and (self.peak is None or _further(self.rule, value, self.peak)):
                self.peak = value
            if clear:
                self.state = "ok"
                return Transition(self.rule.id, self.subject, "resolved", ts, self.since_ms, value, self.peak)
            return None
        if not over:
            self.state, self.peak = "ok", None
            return None
        if self.state == "ok":
            self.state, self.since_ms, self.peak = "pending", ts, value
        elif value is not None and (self.peak is None or _further(self.rule, value, self.peak)):
            self.peak = value
        if ts - self.since_ms >= self.rule.duration_s * 1000:
            self.state = "firing"
            return Transition(self.rule.id, self.subject, "firing", ts, self.since_ms, value, self.peak)
        return None

    def silent(self, now_ms: int, last_seen_ms: int | None) -> Transition | None:
        """Stale rules: fire when the subject has been silent longer than the threshold (seconds);
        resolve when it is heard again."""
        limit = float(self.rule.threshold or 0.0) * 1000
        quiet = last_seen_ms is None or now_ms - last_seen_ms > limit
        if quiet and self.state != "firing":
            self.state, self.since_ms = "firing", last_seen_ms or now_ms
            return Transition(self.rule.id, self.subject, "firing", now_ms, self.since_ms, None, None)
        if not quiet and self.state == "firing":
            self.state = "ok"
            return Transition(self.rule.id, self.subject, "resolved", now_ms, self.since_ms, None, None)
        return None

    def judged(self, at_ms: int, over: bool, value: float | None) -> Transition | None:
        """Rules judged on a computed figure (a valid hourly average, an indicator): each judgement
        counts as held for its whole period, so there is no pending."""
        if over and self.state != "firing":
            self.state, self.since_ms, self.peak = "firing", at_ms, value
            return Transition(self.rule.id, self.subject, "firing", at_ms, at_ms, value, value)
        if over and value is not None and (self.peak is None or _further(self.rule, value, self.peak)):
            self.peak = value
        if not over and self.state == "firing":
            self.state = "ok"
            return Transition(self.rule.id, self.subject, "resolved", at_ms, self.since_ms, value, self.peak)
        return None


def _further(rule: Rule, a: float, b: float) -> bool:
    return a < b if rule.op == "<" else abs(a) > abs(b) if rule.op == "both" else a > b
