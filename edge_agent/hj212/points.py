"""The points an HJ 212 device has: its HJ 212 names (``a21026-Rtd``, ``w01018-Avg-hour``) on parkmon metrics."""

from __future__ import annotations

import re
from typing import Any

from parkmon.common import hj212, metrics
from parkmon.common.hj212_codes import CN_DAY, CN_HOUR, CN_MINUTE, CN_REALTIME, DATA_CNS, ST_AIR_SOURCE

GAS_CODES = ("a21026", "a21002", "a34013", "a19001", "a00000", "a01012")  # SO2 NOx dust O2 flow temperature
WATER_CODES = ("w00000", "w01018", "w21003", "w01001", "w21011", "w21001")  # flow COD NH3-N pH TP TN
_POLLUTANTS = {"a21026", "a21002", "a34013"}  # have values at the reference O2 (Zs*)
_AMOUNTS = {"a21026", "a21002", "a34013", "a00000", "w00000", "w01018", "w21003", "w21011", "w21001"}
_PERIOD_CN = {v: k for k, v in DATA_CNS.items()}
NAME = re.compile(r"^(?P<code>[A-Za-z0-9]+)-(?P<field>Rtd|ZsRtd|Min|Avg|Max|Cou|ZsMin|ZsAvg|ZsMax)"
                  r"(?:-(?P<period>minute|hour|day))?$")


def parse_point_name(name: str) -> tuple[str, str, str]:
    """``a21026-Avg-hour`` -> (code, field, CN); ValueError naming the form when it is not one."""
    m = NAME.match(name)
    if m is None:
        raise ValueError(f"HJ 212 point {name!r}: name it code-Field[-period], e.g. a21026-Rtd, a21026-ZsRtd, "
                         "w01018-Avg-hour, a00000-Cou-day")
    period = m.group("period")
    cn = CN_REALTIME if period is None else _PERIOD_CN[period]
    if (cn == CN_REALTIME) != (m.group("field") in ("Rtd", "ZsRtd")):
        raise ValueError(f"HJ 212 point {name!r}: Rtd/ZsRtd are real-time (no period); Min/Avg/Max/Cou/Zs* need "
                         "a period (-minute, -hour, -day)")
    return m.group("code"), m.group("field"), cn


def default_points(st: str) -> list[dict[str, Any]]:
    """Every point an outlet of this system code reports, for a device config without ``points``."""
    codes = GAS_CODES if st == ST_AIR_SOURCE else WATER_CODES
    out: list[dict[str, Any]] = []
    for code in codes:
        fields = [("Rtd", CN_REALTIME)] + ([("ZsRtd", CN_REALTIME)] if code in _POLLUTANTS else [])
        for cn in (CN_MINUTE, CN_HOUR, CN_DAY):
            fields += [(f, cn) for f in ("Avg", "Min", "Max")]
            if code in _POLLUTANTS:
                fields += [(f, cn) for f in ("ZsAvg", "ZsMin", "ZsMax")]
            if code in _AMOUNTS:
                fields.append(("Cou", cn))
        for fld, cn in fields:
            metric = hj212.metric_of(code, fld, cn)
            if metric is not None:
                out.append({"name": hj212.point_name(code, fld, cn), "metric": metric,
                            "label": metrics.get(metric).zh})
    return out
