"""生产设备数字化率 — equipment digitalisation rate: of the production devices an enterprise (or park)
has registered, the share that report data (a reading within the window). Measured from data, not a
survey. Target 60 % by 2025 (analytics/defaults.yaml, 《促进制造业智能化发展实施方案》). Pure."""

from __future__ import annotations

from typing import Any

from analytics.targets import defaults_section


def settings() -> dict[str, Any]:
    return defaults_section("digitalisation")


def rate(reporting: int, registered: int) -> float | None:
    if registered <= 0:
        return None
    if not 0 <= reporting <= registered:
        raise ValueError(f"{reporting} devices reporting out of {registered} registered is impossible")
    return reporting / registered


class Digitalisation:
    key = "digitalisation_rate"
    name_zh = "生产设备数字化率"
    name_en = "Equipment digitalisation rate"
    unit = "ratio"
