"""生产设备数字化率 — equipment digitalisation rate: of the production devices an enterprise (or park)
has registered, the share that report data (a reading within the window). Measured from data, not a
survey. Target 60 % by 2025 (analytics/defaults.yaml, 《促进制造业智能化发展实施方案》). The register
is the six systems' device register (``ingest.store.records.registry.production_devices``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AwareDatetime, Field

from analytics.indicators.base import Context, Indicator, IndicatorResult, Params, status_for
from analytics.targets import defaults_section
from ingest.store.records import registry
from parkmon.common.clock import DAY_MS, now_ms

if TYPE_CHECKING:
    from ingest.store.base import Store

METHOD = ("registered production devices (registry: production = true) with a reading in the window, over all "
          "registered production devices")


def settings() -> dict[str, Any]:
    return defaults_section("digitalisation")


def rate(reporting: int, registered: int) -> float | None:
    if registered <= 0:
        return None
    if not 0 <= reporting <= registered:
        raise ValueError(f"{reporting} devices reporting out of {registered} registered is impossible")
    return reporting / registered


class DigitalisationParams(Params):
    days: Annotated[int, Field(ge=1, le=366, description="a device reports if it sent a reading in this window")] = 7
    start: Annotated[AwareDatetime | None, Field(description="reporting since this instant instead (a report: its "
                                                             "period's start)")] = None


class Digitalisation(Indicator[DigitalisationParams]):
    key = "digitalisation_rate"
    name_zh = "生产设备数字化率"
    name_en = "Equipment digitalisation rate"
    unit = "ratio"
    params = DigitalisationParams

    def feed(self, store: Store, park: str, p: DigitalisationParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        now = now_ms()
        since = int(p.start.timestamp() * 1000) if p.start else now - p.days * DAY_MS
        devs = registry.production_devices(store, park, since)
        cfg = settings()
        target = float(cfg["target"])

        def judged(items: list[dict[str, Any]]) -> dict[str, Any]:
            r = rate(sum(d["reporting"] for d in items), len(items))
            return {"value": r, "registered": len(items), "reporting": sum(d["reporting"] for d in items),
                    "status": status_for(r, target, self.better),
                    "not_reporting": [f"{d['enterprise']}/{d['device']}" for d in items if not d["reporting"]]}

        park_wide = judged(devs)
        ents = sorted({d["enterprise"] for d in devs})
        return self.make_result(
            park_wide["value"], datetime.fromtimestamp(since / 1000, tz=UTC),
            datetime.fromtimestamp(now / 1000, tz=UTC), target=target, completeness=1.0 if devs else 0.0, method=METHOD,
            inputs={"park": park, "source": cfg["source"], "window_days": p.days, "since_ms": since,
                    **{k: park_wide[k] for k in ("registered", "reporting", "not_reporting")},
                    "enterprises": {e: judged([d for d in devs if d["enterprise"] == e]) for e in ents}})

    def view(self, result: IndicatorResult) -> dict[str, Any]:
        i = result.inputs
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "unit": self.unit,
                "target": result.target, "source": i["source"], "window_days": i["window_days"],
                "value": result.value, "registered": i["registered"], "reporting": i["reporting"],
                "status": result.status, "not_reporting": i["not_reporting"], "enterprises": i["enterprises"],
                "method": result.method}

    def period_params(self, start: datetime, end: datetime, period: str | None) -> DigitalisationParams | None:
        return DigitalisationParams(start=start)  # devices that reported since the period began

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        if result is not None:
            report["digitalisation"] = {"value": result.value, "registered": result.inputs["registered"],
                                        "reporting": result.inputs["reporting"], "target": result.target,
                                        "status": result.status}

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, pct

        d = report["digitalisation"]
        return [["生产设备数字化率 Equipment digitalisation", pct(d["value"]), pct(d["target"]), STATUS_ZH[d["status"]],
                 ""]]
