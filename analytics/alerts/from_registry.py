"""Rules that follow from what the registry says about a device: a pressure vessel (压力容器) or pipeline
(管道) alarms above its own design pressure (设计压力). The registry file is the park definition YAML
(the simulator's park files have the same shape), so a park writes each vessel's design pressure once."""

from __future__ import annotations

from typing import Any

from analytics.alerts.rules import Rule, parse_rules

KIND_ZH = {"pressure_vessel": ("压力容器超压", "Pressure vessel above design pressure"),
           "pipeline": ("管道超压", "Pipeline above design pressure")}


def pressure_rules(definition: dict[str, Any], duration_s: float = 10.0, hysteresis: float = 0.03) -> list[Rule]:
    """One rule per pressure vessel and pipeline with a design pressure: over it for ``duration_s`` is
    critical; it clears ``hysteresis`` (a fraction of the design pressure) below."""
    park = str(definition["park"]["key"])
    out = []
    for ent in definition.get("enterprises", []):
        for dev in ent.get("devices", []):
            kind, design = dev.get("kind"), dev.get("design_pressure_mpa")
            if kind not in KIND_ZH or not design:
                continue
            zh, en = KIND_ZH[kind]
            out.append({"id": f"overpressure.{ent['key']}.{dev['id']}", "kind": "threshold",
                        "metric": "safety.pressure", "park": park, "enterprise": ent["key"], "device": dev["id"],
                        "op": ">", "threshold": float(design), "hysteresis": round(float(design) * hysteresis, 4),
                        "duration_s": duration_s, "severity": "critical", "escalate_after_s": 600,
                        "name_zh": f"{zh}·{dev.get('name') or dev['id']}", "name_en": f"{en}: {dev['id']}",
                        "source": f"设计压力 {design} MPa (registry)"})
    return parse_rules({"rules": out}, "registry")
