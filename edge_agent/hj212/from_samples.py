"""Records a data logger would send, built from a polled outlet's samples (Modbus / OPC UA CEMS).

Real-time (2011): one record per poll instant, each point's metric mapped to its HJ 212 code
(parkmon/common/hj212_codes.py METRIC_CODES), the sample's quality as the data flag. Minute / hour / day:
:class:`PeriodRecords`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from edge_agent.config import DeviceConfig
from edge_agent.drivers.base import Sample
from edge_agent.hj212.forwarder import Forwarder
from parkmon.common import (
    emissions,  # pure: standard library and parkmon only (tests/test_emissions.py proves it)
    hj212,
    quality,
)
from parkmon.common.hj212_codes import CN_HOUR, CN_MINUTE, CN_REALTIME, METRIC_CODES, ST_AIR_SOURCE

_REASON_FLAGS = {quality.Reason.MAINTENANCE: "M", quality.Reason.CALIBRATION: "C", quality.Reason.MANUAL: "S",
                 quality.Reason.STOPPED: "F", quality.Reason.OUT_OF_RANGE: "T", quality.Reason.LINK_FAILURE: "B"}


def flag_of(q: int) -> str:
    """parkmon quality as an HJ 212 data flag: N when good, the flag its reason names, else D (fault)."""
    if quality.is_good(q):
        return "N"
    return _REASON_FLAGS.get(quality.reason(q), "D")


def codes_of(device: DeviceConfig) -> dict[str, str]:
    """point name -> HJ 212 code, for the device's points whose metric has one."""
    return {p.name: METRIC_CODES[p.metric] for p in device.points if p.metric in METRIC_CODES}


def realtime_records(device: DeviceConfig, samples: Sequence[Sample], mn: str, st: str) -> list[hj212.Record]:
    codes = codes_of(device)
    by_ts: dict[int, tuple[dict[str, dict[str, float]], dict[str, str]]] = defaultdict(lambda: ({}, {}))
    for key, ts, value, q in samples:
        code = codes.get(key.partition(".")[2])
        if code is None or value is None:
            continue
        values, flags = by_ts[ts]
        values[code] = {"Rtd": value}
        flags[code] = flag_of(q)
    return [hj212.Record(mn, st, CN_REALTIME, ts, v, f, {}) for ts, (v, f) in sorted(by_ts.items())]


class PeriodRecords:
    """Minute, hour and day records of a polled outlet, as its data logger would make them
    (parkmon/common/emissions.py: the validity rules, reference O2, amounts).

    Samples are kept only for the minute being measured; each ended minute becomes a record, and an
    ended hour (China day) is rolled up from the minute (hour) records the forwarder already holds on
    disk, so a gateway restart loses at most the minute in progress."""

    def __init__(self, device: DeviceConfig, forwarder: Forwarder) -> None:
        self.codes = codes_of(device)
        self.forwarder = forwarder
        self.kind: Literal["gas", "water"] = "gas" if forwarder.up.st == ST_AIR_SOURCE else "water"
        self._samples: dict[str, list[tuple[int, float | None, int]]] = defaultdict(list)
        self._done_until = 0  # every minute before this has been made

    def add(self, samples: Sequence[Sample], now_ms: int) -> int:
        """Take a poll's samples; returns how many records were queued."""
        for key, ts, value, q in samples:
            code = self.codes.get(key.partition(".")[2])
            if code is not None and ts >= self._done_until:
                self._samples[code].append((ts, value, q))
        minute_end = now_ms - now_ms % 60_000
        if minute_end <= self._done_until or not self._samples:
            return 0
        up = self.forwarder.up
        made = emissions.records(self._samples, self.kind, minute_end, mn=up.mn, cns=(CN_MINUTE,))
        queued = self.forwarder.relay_all(made)
        for m in made:
            queued += self._close_parents(m.data_time_ms + 60_000)
        self._done_until = minute_end
        for code in self._samples:
            self._samples[code] = [s for s in self._samples[code] if s[0] >= minute_end]
        return queued

    def _close_parents(self, t: int) -> int:
        """At the end of an hour, its hour record; at the end of a China day, the day's."""
        if t % 3_600_000:
            return 0
        up, n = self.forwarder.up, 0
        for child, span in ((CN_MINUTE, 3_600_000), (CN_HOUR, 86_400_000)):
            start = t - span
            if span == 86_400_000 and (t + 8 * 3_600_000) % 86_400_000:
                break  # not the end of a China day
            kids = [hj212.record(hj212.Packet(up.st, child, up.pw, up.mn, cp))
                    for cp in self.forwarder.outbox.history(child, start, t - 1)]
            n += self.forwarder.relay_all(emissions.roll_up_records(kids, self.kind, t, mn=up.mn))
        return n
