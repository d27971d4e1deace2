"""What the agent does to samples between the driver and the buffer.

- Totalisers keep their raw value; a step backwards is flagged, never smoothed: near the top of the
  register it is a rollover, otherwise a meter reset or replacement (quality uncertain with the
  reason, so the platform's energy sums know what happened).
- Report by exception: a point with a ``deadband`` is sent only when it moved by at least that
  much, its quality changed, or ``heartbeat_s`` passed, so a flat value still shows it is alive.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.config import AgentConfig, PointConfig
from edge_agent.drivers.base import Sample
from parkmon.common import metrics, quality
from parkmon.common.quality import Reason

_WIDTH = {"uint16": 2**16, "int16": 2**16, "uint32": 2**32, "int32": 2**32, "uint64": 2**64, "int64": 2**64}
ROLLOVER_FRACTION = 0.9  # a previous raw value above 90 % of the register's range means it wrapped


@dataclass(slots=True)
class _PointState:
    last_value: float | None = None  # last good counter value seen
    sent_value: float | None = None  # last value sent (deadband)
    sent_quality: int = -1
    sent_ms: int = 0


class SampleFilter:
    def __init__(self, cfg: AgentConfig) -> None:
        self.heartbeat_ms = int(cfg.publish.heartbeat_s * 1000)
        self._points: dict[str, PointConfig] = {f"{d.id}.{p.name}": p for d in cfg.devices for p in d.points}
        self._counter = {k for k, p in self._points.items() if metrics.get(p.metric).kind == metrics.Kind.COUNTER}
        self._state: dict[str, _PointState] = {}
        self.suppressed = 0
        self.resets = 0
        self.rollovers = 0

    def apply(self, samples: list[Sample]) -> list[Sample]:
        out: list[Sample] = []
        for s in samples:
            key, ts, value, q = s
            st = self._state.get(key)
            if st is None:
                st = self._state[key] = _PointState()
            if key in self._counter and value is not None and quality.is_good(q):
                q = self._check_counter(key, st, value, q)
            p = self._points.get(key)
            if p is not None and p.deadband is not None and not self._due(st, ts, value, q, p.deadband):
                self.suppressed += 1
                continue
            st.sent_value, st.sent_quality, st.sent_ms = value, q, ts
            out.append((key, ts, value, q))
        return out

    def _check_counter(self, key: str, st: _PointState, value: float, q: int) -> int:
        last, st.last_value = st.last_value, value
        if last is None or value >= last:
            return q
        p = self._points[key]
        width = _WIDTH.get(p.type)
        if width is not None and p.scale > 0 and (last - p.offset) / p.scale >= ROLLOVER_FRACTION * width:
            self.rollovers += 1
            return quality.uncertain(Reason.COUNTER_ROLLOVER)
        self.resets += 1
        return quality.uncertain(Reason.COUNTER_RESET)

    def _due(self, st: _PointState, ts: int, value: float | None, q: int, deadband: float) -> bool:
        if st.sent_value is None or value is None or q != st.sent_quality:
            return True
        if ts - st.sent_ms >= self.heartbeat_ms:
            return True
        return abs(value - st.sent_value) >= deadband
