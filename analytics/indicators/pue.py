"""数据中心PUE — power usage effectiveness of a data centre over a period: the facility's electricity
use over its IT equipment's (GB 40879 calls the annual figure 电能比). Pure.

Facility use = grid import + on-site renewable generation − export (what the site used, as in the
comprehensive energy); IT use = the IT-load meters (UPS output, metric ``elec.it.energy``). Target
1.3 (《节能技术改造实施方案》: "数据中心PUE值达到1.3"; national hub nodes 1.25, a configurable
choice). Lower is better.
"""

from __future__ import annotations

TARGET = 1.3
SOURCE = "《节能技术改造实施方案》: 数据中心PUE值达到1.3"


def pue(facility_kwh: float | None, it_kwh: float | None) -> float | None:
    """None without IT energy to divide by; a value below 1 means the meters disagree and is refused."""
    if facility_kwh is None or it_kwh is None or it_kwh <= 0:
        return None
    value = facility_kwh / it_kwh
    if value < 1.0:
        raise ValueError(f"PUE {value:.3f} < 1: the IT meters counted more ({it_kwh:.1f} kWh) than the site used "
                         f"({facility_kwh:.1f} kWh); check which meters are tagged elec.it.energy")
    return value


class Pue:
    key = "pue"
    name_zh = "数据中心电能使用效率(PUE)"
    name_en = "Data-centre PUE"
    unit = "ratio (facility / IT)"
