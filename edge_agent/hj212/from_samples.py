"""Records a data logger would send, built from a polled outlet's samples (Modbus / OPC UA CEMS).

Real-time (2011): one record per poll instant, each point's metric mapped to its HJ 212 code
(parkmon/hj212_codes.py METRIC_CODES), the sample's quality as the data flag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from parkmon import hj212, quality
from parkmon.hj212_codes import CN_REALTIME, METRIC_CODES

from ..config import DeviceConfig
from ..drivers.base import Sample

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
